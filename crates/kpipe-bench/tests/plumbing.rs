//! The benchmark's plumbing on a tiny volume, untimed: `kpipe-bench serve` starts the four
//! simulated APIs in their own process, the generated configuration pulls all of them, kpipe's
//! summary is read back, and the quota bound and calls per row come out of what both sides
//! saw. The pull runs in this process (the bench runs the `kpipe` binary instead); the response
//! shapes are the simulator's, which follow shared/apis/*.md.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use kpipe_bench::analysis::{calls_per_row, quota_bound};
use kpipe_bench::measure::Usage;
use kpipe_bench::run::{KpipeRun, SimProcess};
use kpipe_bench::scenario::{Scenario, window};
use kpipe_bench::summary::RunSummary;

const BENCH: &str = env!("CARGO_BIN_EXE_kpipe-bench");

fn pull(config: &Path, (from, to): (chrono::NaiveDate, chrono::NaiveDate)) -> RunSummary {
    let cfg = kpipe_cli::config::load(config, &|_| None)
        .unwrap_or_else(|e| panic!("the generated configuration: {e}"));
    let mut options = kpipe_cli::RunOptions::new(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    options.from = Some(from);
    options.to = Some(to);
    options.full_refresh = true;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let summary = runtime.block_on(kpipe_cli::run(cfg, options, Arc::new(kpipe_cli::runner::Quiet))).unwrap();
    // Through JSON, as the bench reads `--summary-json`.
    RunSummary::parse(&serde_json::to_string(&summary).unwrap()).unwrap()
}

#[test]
fn a_quick_quota_scenario_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Scenario::Quota.plan(true);
    let sims = SimProcess::start(Path::new(BENCH), Scenario::Quota, true).unwrap();
    let toml = kpipe_bench::config::kpipe_toml(&plan, &sims.endpoints, &dir.path().join("out")).unwrap();
    let config = dir.path().join("kpipe.toml");
    std::fs::write(&config, &toml).unwrap();
    let summary = pull(&config, window());
    let stats = sims.stop().unwrap();

    for source in &summary.sources {
        assert_eq!(source.status, "succeeded", "{source:?}");
        assert!(source.rows_written > 0, "{source:?}");
    }
    let portals = plan.hubspot.map_or(0, |h| h.portals) as usize;
    assert_eq!(summary.platform("hubspot").sources, portals);
    assert_eq!(stats.platforms.len(), 4, "{stats:?}");
    assert_eq!(stats.refused_over_quota(), 0, "{stats:?}");

    // The bound counts the requests the simulators answered; the slowest platform sets the
    // whole. A platform whose budget is an allowance the pull stays within (Meta's hourly
    // calls per ad account) bounds nothing: zero.
    let bound = quota_bound(&plan, &stats, &summary);
    assert_eq!(bound.platforms.len(), 4);
    for p in &bound.platforms {
        assert!(p.requests > 0 && p.bound_s >= 0.0, "{p:?}");
    }
    let slowest = bound.slowest().unwrap();
    assert!(slowest.bound_s > 0.0, "{slowest:?}");
    assert_eq!(bound.bound_s(), slowest.bound_s);

    // The fewest requests the APIs allow can only be fewer than kpipe made.
    let calls = calls_per_row(&plan, &stats, &summary);
    assert_eq!(calls.len(), 4);
    for c in &calls {
        assert!(c.rows > 0 && c.minimum > 0, "{c:?}");
        assert!(c.minimum <= c.requests, "{c:?}");
    }
}

#[test]
fn a_quick_defaults_scenario_pulls_through_report_runs() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Scenario::Defaults.plan(true);
    let sims = SimProcess::start(Path::new(BENCH), Scenario::Defaults, true).unwrap();
    let toml = kpipe_bench::config::kpipe_toml(&plan, &sims.endpoints, &dir.path().join("out")).unwrap();
    let config = dir.path().join("kpipe.toml");
    std::fs::write(&config, &toml).unwrap();
    let summary = pull(&config, plan.window());
    let stats = sims.stop().unwrap();

    let kinds: Vec<&str> = summary.sources.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&"facebook") && kinds.contains(&"linkedin"), "{kinds:?}");
    for source in &summary.sources {
        assert_eq!(source.status, "succeeded", "{source:?}");
        assert!(source.rows_written > 0, "{source:?}");
    }
    assert_eq!(stats.refused_over_quota(), 0, "{stats:?}");
    // At least a run per default level of the one account: the defaults chose report runs.
    let facebook = &stats.platforms["facebook"];
    assert!(facebook.report_runs >= 3, "{facebook:?}");

    let run = KpipeRun { usage: Usage::default(), summary, stats };
    let report = kpipe_bench::defaults::report(&plan, &run);
    let names: Vec<&str> = report.figures.iter().map(|f| f.name.as_str()).collect();
    for name in ["facebook: pulled / bound", "linkedin: pulled / bound", "requests refused over quota"] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert!(!names.contains(&"sources not succeeded"), "{names:?}");
}

#[test]
fn measure_reports_the_exit_code_and_the_cost() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("usage.json");
    let status = std::process::Command::new(BENCH)
        .args(["measure", "--out"])
        .arg(&out)
        .args(["--", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"])
        .status()
        .unwrap();
    assert!(status.success());
    let usage: kpipe_bench::measure::Usage =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(usage.exit_code, Some(3));
    assert!(usage.cpu_s() > 0.0 && usage.max_rss_kib > 0, "{usage:?}");
}
