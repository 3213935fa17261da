//! The HTML report of `kpipe demo`, opened offline in Chromium (`check_report.py` beside this
//! file, driven by Playwright): every chart drawn, with the datasets expected from the demo's
//! KPI and metric files, and no console error, page error or network request. The screenshot
//! and the page are kept under `<target>/test-artifacts/report/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use kpipe_core::NaiveDate;
use kpipe_kpi::{Grain, KpiRow, Scope};

use crate::common::text;

/// `<target>/test-artifacts/report`: `$CARGO_TARGET_DIR`, or the workspace's `target`.
fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let dir = target.join("test-artifacts").join("report");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The id suffix of a currency.
fn suffix(currency: Option<&str>) -> String {
    currency.map(|c| format!("-{c}")).unwrap_or_default()
}

/// The charts the report of `out` must draw, by canvas id, with their number of datasets:
/// counted here from the stored rows, independently of the report's code.
fn expected_charts(out: &Path) -> BTreeMap<String, usize> {
    let rows = kpipe_kpi::read_kpis(out, None).unwrap_or_else(|e| panic!("{e}"));
    let days: Vec<NaiveDate> =
        rows.iter().filter(|r| r.grain == Grain::Day).map(|r| r.period_start).collect();
    let (from, to) = (*days.iter().min().expect("day rows"), *days.iter().max().expect("day rows"));
    let in_window = |r: &&KpiRow| r.period_start <= to && r.period_end >= from;
    let blended = |r: &&KpiRow| matches!(r.scope, Scope::All | Scope::Platform);
    let mut expected = BTreeMap::new();

    let kpis: BTreeSet<(String, Option<String>)> = rows
        .iter()
        .filter(in_window)
        .filter(blended)
        .filter(|r| r.grain != Grain::Day)
        .map(|r| (r.kpi.to_string(), r.currency.map(|c| c.as_str().to_owned())))
        .collect();
    for (kpi, currency) in &kpis {
        let of: Vec<&KpiRow> = rows
            .iter()
            .filter(in_window)
            .filter(blended)
            .filter(|r| r.kpi.as_str() == kpi && r.currency.map(|c| c.as_str().to_owned()) == *currency)
            .collect();
        let id = format!("kpi-{kpi}{}", suffix(currency.as_deref()));
        for grain in [Grain::Week, Grain::Month] {
            // One line per series (all platforms, each platform) with a value in some period.
            let series: BTreeSet<Option<&str>> = of
                .iter()
                .filter(|r| r.grain == grain && r.value.is_some())
                .map(|r| r.platform.as_deref())
                .collect();
            if !series.is_empty() {
                expected.insert(format!("{id}-{grain}"), series.len());
            }
        }
        // Platforms side by side: the latest month (else week) and the one before, where a
        // platform has a value.
        let grain = if of.iter().any(|r| r.grain == Grain::Month) { Grain::Month } else { Grain::Week };
        let starts = || of.iter().filter(|r| r.grain == grain).map(|r| r.period_start);
        // The latest period within the window, else the latest one.
        let whole = starts().filter(|s| *s >= from && grain.period_end(*s) <= to).max();
        let Some(last) = whole.or_else(|| starts().max()) else { continue };
        let previous = grain.period_start(last.pred_opt().expect("a day before"));
        let periods = [previous, last]
            .iter()
            .filter(|start| {
                of.iter().any(|r| {
                    r.grain == grain
                        && r.period_start == **start
                        && r.scope == Scope::Platform
                        && r.value.is_some()
                })
            })
            .count();
        if periods > 0 {
            expected.insert(format!("{id}-platforms"), periods);
        }
    }

    // ROI and ROAS over the window's days, one chart per currency of their rows.
    let mut roi: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.grain == Grain::Day && r.period_start >= from && r.period_start <= to) {
        if matches!(r.kpi.as_str(), "roi" | "roas") && matches!(r.scope, Scope::All | Scope::Platform) {
            let set = roi.entry(r.currency.map(|c| c.as_str().to_owned())).or_default();
            if r.denominator.is_some_and(|d| d.units() != 0) {
                set.insert(r.kpi.to_string());
            }
        }
    }
    for (currency, kpis) in roi {
        if !kpis.is_empty() {
            expected.insert(format!("roi{}", suffix(currency.as_deref())), kpis.len());
        }
    }

    // Spend per currency, from the metric rows: by platform, by week (a line per platform),
    // by campaign.
    let metrics = kpipe_sink_parquet::read::read_dir(&out.join("metrics")).unwrap_or_else(|e| panic!("{e}"));
    let mut spend: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    let mut social = BTreeSet::new();
    for s in metrics.iter().filter(|s| s.row.date >= from && s.row.date <= to) {
        let metric = s.row.metric.as_str();
        if metric == "spend"
            && let Some(code) = s.row.currency
        {
            let entry = spend.entry(code.as_str().to_owned()).or_default();
            entry.0.insert(s.row.platform.to_string());
            entry.1 |= s.row.level.as_str() == "campaign";
        }
        if ["invites_sent", "invites_accepted", "replies", "interested"].contains(&metric) {
            social.insert(s.row.platform.to_string());
        }
    }
    for (code, (platforms, campaigns)) in spend {
        expected.insert(format!("spend-{code}-platforms"), 1);
        expected.insert(format!("spend-{code}-weeks"), platforms.len());
        if campaigns {
            expected.insert(format!("spend-{code}-campaigns"), 1);
        }
    }
    expected.insert("funnel-journey".to_owned(), 1);
    if !social.is_empty() {
        expected.insert("funnel-social".to_owned(), social.len());
    }
    expected
}

#[test]
fn the_demo_report_opens_offline_and_draws_every_chart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["demo", "--output"])
        .arg(&out)
        .env_remove("RUST_LOG")
        .output()
        .expect("kpipe runs");
    let said = text(&run);
    assert_eq!(run.status.code(), Some(0), "{said}");
    let report = out.join("report.html");
    assert!(said.contains(&format!("Report: {}", report.display())), "{said}");
    assert!(report.is_file(), "{said}");

    // `kpipe report` writes the same page from the configuration, for a window given or not.
    let config = out.join("kpipe.toml");
    let again = out.join("again/report.html");
    let written = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["report", "-c"])
        .arg(&config)
        .arg("--out")
        .arg(&again)
        .output()
        .expect("kpipe runs");
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    assert!(text(&written).contains("report 2026-10-01..2026-10-28:"), "{}", text(&written));
    assert!(again.is_file());
    let inverted = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["report", "-c"])
        .arg(&config)
        .args(["--from", "2026-10-20", "--to", "2026-10-10", "--out"])
        .arg(dir.path().join("never.html"))
        .output()
        .expect("kpipe runs");
    assert_eq!(inverted.status.code(), Some(2), "{}", text(&inverted));
    assert!(text(&inverted).contains("--from 2026-10-20 is after --to 2026-10-10"), "{}", text(&inverted));
    assert!(!dir.path().join("never.html").exists());

    let expected = expected_charts(&out);
    // Every KPI of the demo that has a value by week over a platform draws at least a chart.
    assert!(expected.len() > 40, "{expected:?}");
    assert!(
        expected.keys().any(|id| id.starts_with("spend-USD"))
            && expected.keys().any(|id| id.starts_with("spend-EUR"))
    );
    let expected_file = dir.path().join("expected.json");
    std::fs::write(&expected_file, serde_json::to_string(&expected).expect("json")).expect("written");

    let artifacts = artifact_dir();
    let kept = artifacts.join("demo-report.html");
    std::fs::copy(&report, &kept).expect("copied");
    let screenshot = artifacts.join("demo-report.png");
    let _ = std::fs::remove_file(&screenshot);

    let python = kpipe_testkit::services::python().expect("the test services' Python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report/check_report.py");
    let check = Command::new(python)
        .arg(&script)
        .arg(&report)
        .arg("--expected")
        .arg(&expected_file)
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .expect("python runs");
    let said = text(&check);
    assert!(check.status.success(), "the report failed in Chromium:\n{said}");
    assert!(said.contains(&format!("{} chart(s) drawn as expected", expected.len())), "{said}");
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
}
