//! The `defaults` scenario: kpipe's default settings against answers of 100 ms. A Facebook
//! source and a LinkedIn source configured with the required keys only (ids, credentials,
//! addresses) are pulled by one `kpipe run` over 14 days: longer than the Facebook connector's
//! 7-day threshold, so it reads its insights through asynchronous report runs, which the
//! simulator completes 2 s after their creation however often they are polled.
//!
//! What it reports: each source's pull (its `duration_ms` in the run summary) against the
//! least time its API allows (Facebook: one report run and the requests it needs; LinkedIn: its
//! requests at the connector's default pace of 10 a second), the whole run's wall time, the
//! rows, and the requests refused over a quota. A change that slows the defaults shows here
//! even when the tuned configurations of the other scenarios still meet their targets.

use std::time::Duration;

use crate::analysis::{api_requests, insights_level, quota_bound};
use crate::report::{Figure, ScenarioReport, Verdict};
use crate::run::{KpipeRun, Options, RunError, group, status_figure};
use crate::scenario::{FacebookPlan, LinkedInPlan, Plan, SEED, Scenario};
use crate::serve::facebook_graph;

/// The latency of every answer of the full scenario, milliseconds.
pub const LATENCY_MS: u64 = 100;

/// How long a report run takes in the full scenario.
pub const REPORT_RUN_TIME: Duration = Duration::from_secs(2);

/// The Facebook connector's default `page_size`: insights rows per page of a run's results.
pub const FACEBOOK_DEFAULT_PAGE_SIZE: u32 = 500;

/// The Facebook connector's default `levels`.
pub const FACEBOOK_DEFAULT_LEVELS: &[&str] = &["campaign", "ad_set", "ad"];

/// The Facebook source's pull over its bound: at most this.
pub const FACEBOOK_TARGET: f64 = 1.5;

/// The LinkedIn source's pull over its bound: at most this (the quota scenario's tuned source
/// is held to 1.10; defaults with answers of 100 ms get more room).
pub const LINKEDIN_TARGET: f64 = 1.25;

/// Days pulled: more than the Facebook connector's `async_reports.after_days` default of 7.
const DAYS: u32 = 14;

/// The scenario's plan. `quick`: one account of each platform, answers of 1-5 ms, report runs
/// of 50 ms.
pub fn plan(quick: bool) -> Plan {
    let q = |full: u64, small: u64| if quick { small } else { full };
    Plan {
        latency_ms: Some(if quick { (1, 5) } else { (LATENCY_MS, LATENCY_MS) }),
        published_quotas: true,
        linkedin: Some(LinkedInPlan {
            // About 5 requests an account: 20 take LinkedIn's default pace some seconds.
            accounts: q(20, 1),
            campaigns: 6,
            creatives_per_campaign: 3,
            ..LinkedInPlan::default()
        }),
        facebook: Some(FacebookPlan {
            accounts: q(2, 1),
            // Small accounts: each run's results are one page.
            campaigns: 3,
            adsets: 2,
            ads: 2,
            // Not written into the configuration: what the connector is expected to use.
            levels: FACEBOOK_DEFAULT_LEVELS,
            page_size: FACEBOOK_DEFAULT_PAGE_SIZE,
            pages: 1,
            report_run_time: Some(if quick { Duration::from_millis(50) } else { REPORT_RUN_TIME }),
            ..FacebookPlan::default()
        }),
        hubspot: None,
        ga4: None,
        // What is measured is the pull.
        kpi_stage: false,
        days: DAYS,
        connector_defaults: true,
        ..Plan::default()
    }
}

/// The least time the Facebook source can take: its report runs start at once, so it cannot end
/// before the longest of them has been started, has run, has been seen completed and has had
/// its results read, each request answered no sooner than the simulator's latency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportRunBound {
    /// The latency of one answer (the least of the plan's range).
    pub latency: Duration,
    /// How long the simulator takes to complete a run.
    pub run_time: Duration,
    /// Pages of results of the run with the most.
    pub pages: u64,
}

impl ReportRunBound {
    /// The POST that starts the run, the run itself, one poll that sees it completed, its
    /// result pages.
    pub fn duration(&self) -> Duration {
        let requests = u32::try_from(2 + self.pages).unwrap_or(u32::MAX);
        self.latency.saturating_mul(requests) + self.run_time
    }

    /// What it adds up, in words.
    pub fn describe(&self) -> String {
        let ms = self.latency.as_millis();
        format!(
            "one report run: POST ({ms} ms), the run ({:.1} s), one poll ({ms} ms), {} page{} of results at {ms} ms",
            self.run_time.as_secs_f64(),
            self.pages,
            if self.pages == 1 { "" } else { "s" }
        )
    }
}

/// [`ReportRunBound`] of `plan`, from the simulator's data: `None` when it pulls no Facebook
/// accounts or its report runs complete by polls, not by time.
pub fn report_run_bound(plan: &Plan) -> Option<ReportRunBound> {
    let p = plan.facebook.as_ref()?;
    let run_time = p.report_run_time?;
    let latency = Duration::from_millis(plan.latency_ms.map_or(0, |(min, _)| min));
    let graph = facebook_graph(plan, p);
    let (since, until) = plan.window();
    let page_size = usize::try_from(p.page_size.max(1)).unwrap_or(usize::MAX);
    // One run per account and level: the window is shorter than the connector's 30-day slices.
    let pages = p
        .account_ids()
        .iter()
        .flat_map(|id| p.levels.iter().map(move |level| (id, insights_level(level))))
        .map(|(id, level)| graph.insights(SEED, id, level, since, until).len().div_ceil(page_size).max(1))
        .max()
        .unwrap_or(1);
    Some(ReportRunBound { latency, run_time, pages: u64::try_from(pages).unwrap_or(u64::MAX) })
}

/// Runs the scenario.
pub fn run(options: &Options) -> Result<ScenarioReport, RunError> {
    let plan = Scenario::Defaults.plan(options.quick);
    let run = crate::run::pull(options, Scenario::Defaults, &plan)?;
    Ok(report(&plan, &run))
}

/// `pulled / bound = ratio` as a figure held to `target`; missed when the platform pulled nothing.
fn ratio_figure(name: &str, pulled_s: f64, bound_s: f64, sources: usize, target: f64) -> Figure {
    let ratio = pulled_s / bound_s.max(f64::EPSILON);
    Figure::new(format!("{name}: pulled / bound"), format!("{pulled_s:.1} s / {bound_s:.1} s = {ratio:.2}"))
        .target(format!("<= {target:.2}"), Verdict::of(sources > 0 && ratio <= target))
}

/// The figures of a run of `plan`.
pub fn report(plan: &Plan, run: &KpipeRun) -> ScenarioReport {
    let mut report = ScenarioReport::new(Scenario::Defaults);
    if let Some(bound) = report_run_bound(plan) {
        let facebook = run.summary.platform("facebook");
        let (requests, runs) =
            run.stats.platforms.get("facebook").map_or((0, 0), |s| (api_requests(s), s.report_runs));
        report.push(
            ratio_figure(
                "facebook",
                facebook.slowest_s,
                bound.duration().as_secs_f64(),
                facebook.sources,
                FACEBOOK_TARGET,
            )
            .note(format!(
                "{} requests to the simulator, {runs} report runs; bound: {}",
                group(requests),
                bound.describe()
            )),
        );
    }
    let quota = quota_bound(plan, &run.stats, &run.summary);
    if let Some(linkedin) = quota.platforms.iter().find(|p| p.platform == "linkedin") {
        report.push(
            ratio_figure(
                "linkedin",
                linkedin.pulled_s,
                linkedin.bound_s,
                run.summary.platform("linkedin").sources,
                LINKEDIN_TARGET,
            )
            .note(format!("{} requests at the connector's default pace of 10/s", group(linkedin.requests))),
        );
    }
    let pull = run.summary.duration_ms as f64 / 1000.0;
    report.push(
        Figure::new("whole run: wall", format!("{:.1} s", run.usage.wall_s))
            .note(format!("the kpipe process, start to exit, KPI stage off; the pull {pull:.1} s")),
    );
    report.push(Figure::new("metric rows", group(run.summary.rows())));
    let refused = run.stats.refused_over_quota();
    report.push(
        Figure::new("requests refused over quota", refused.to_string())
            .target("0", Verdict::of(refused == 0)),
    );
    report.extend(status_figure(&run.summary));
    report
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::measure::Usage;
    use crate::serve::{Endpoint, Endpoints, PlatformStats, SimStats};
    use crate::summary::RunSummary;

    #[test]
    fn the_plan_pulls_a_window_long_enough_for_report_runs_with_the_kpi_stage_off() {
        for quick in [false, true] {
            let plan = Scenario::Defaults.plan(quick);
            let (from, to) = plan.window();
            assert!((to - from).num_days() + 1 > 7, "{plan:?}");
            assert_eq!(to, chrono::NaiveDate::from_ymd_opt(2026, 10, 14).unwrap());
            assert!(
                plan.connector_defaults && !plan.kpi_stage && plan.hubspot.is_none() && plan.ga4.is_none()
            );
        }
        assert!(Scenario::ALL.contains(&Scenario::Defaults));
        let full = Scenario::Defaults.plan(false);
        assert_eq!(full.latency_ms, Some((100, 100)));
        assert_eq!(full.facebook.unwrap().report_run_time, Some(Duration::from_secs(2)));
    }

    #[test]
    fn the_configuration_names_the_required_keys_only() {
        let plan = Scenario::Defaults.plan(false);
        let endpoint = |port: u16| Endpoint {
            base_url: format!("http://127.0.0.1:{port}"),
            token_url: format!("http://127.0.0.1:{port}/token"),
        };
        let endpoints = Endpoints {
            linkedin: Some(endpoint(1)),
            facebook: Some(endpoint(2)),
            facebook_token: "t".into(),
            ..Endpoints::default()
        };
        let toml = crate::config::kpipe_toml(&plan, &endpoints, Path::new("/tmp/out")).unwrap();
        for tuned in ["rate_limit", "concurrency", "page_size", "levels", "async_reports"] {
            assert!(!toml.contains(tuned), "{tuned} in {toml}");
        }
        assert!(toml.contains("page_ids = [\"200000000000001\"]"), "{toml}");
        assert!(toml.contains("base_url = \"http://127.0.0.1:2\""), "{toml}");
        assert!(toml.contains("[kpis_settings]\nenabled = false"), "{toml}");
        let sources: Vec<&str> = toml.lines().filter(|l| l.starts_with("[sources.")).collect();
        assert_eq!(sources, ["[sources.linkedin_ads]", "[sources.facebook_ads]"]);
    }

    #[test]
    fn the_bound_is_one_report_run_and_its_requests() {
        let plan = Scenario::Defaults.plan(false);
        let bound = report_run_bound(&plan).unwrap();
        // 12 ads over 14 days fit in one page of 500 rows.
        assert_eq!(bound.pages, 1);
        assert_eq!(bound.duration(), Duration::from_millis(2_300));
        assert!(bound.describe().contains("one poll (100 ms)"), "{}", bound.describe());
        let quick = report_run_bound(&Scenario::Defaults.plan(true)).unwrap();
        assert_eq!(quick.duration(), Duration::from_millis(50 + 3));
        assert!(report_run_bound(&Scenario::Quota.plan(false)).is_none());
    }

    #[test]
    fn figures_hold_each_source_to_its_bound() {
        let plan = Scenario::Defaults.plan(false);
        let summary = RunSummary::parse(
            r#"{"duration_ms": 12000, "status": "succeeded", "sources": [
              {"name": "linkedin_ads", "type": "linkedin", "status": "succeeded", "rows_written": 900,
               "duration_ms": 11500, "http": {"requests": 100}},
              {"name": "facebook_ads", "type": "facebook", "status": "succeeded", "rows_written": 700,
               "duration_ms": 4000, "http": {"requests": 20}}]}"#,
        )
        .unwrap();
        let paths = |items: &[(&str, u64)]| items.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect();
        let mut stats = SimStats::default();
        stats.platforms.insert(
            "linkedin".into(),
            PlatformStats {
                paths: paths(&[("/rest/adAnalytics", 100), ("/oauth/v2/accessToken", 1)]),
                ..PlatformStats::default()
            },
        );
        stats.platforms.insert(
            "facebook".into(),
            PlatformStats {
                paths: paths(&[("/v25.0/act_101000000000001/insights", 20)]),
                report_runs: 6,
                ..PlatformStats::default()
            },
        );
        let run = KpipeRun { usage: Usage { wall_s: 12.4, ..Usage::default() }, summary, stats };
        let report = report(&plan, &run);
        let figure = |name: &str| report.figures.iter().find(|f| f.name == name).unwrap().clone();

        // 4.0 s against 2.3 s: 1.74, above 1.5.
        let facebook = figure("facebook: pulled / bound");
        assert_eq!(facebook.value, "4.0 s / 2.3 s = 1.74");
        assert_eq!(facebook.target, Some(("<= 1.50".into(), Verdict::Missed)));
        assert!(facebook.note.unwrap().starts_with("20 requests to the simulator, 6 report runs"));
        // 100 requests at 10/s: 10 s; 11.5 s is 1.15.
        let linkedin = figure("linkedin: pulled / bound");
        assert_eq!(linkedin.value, "11.5 s / 10.0 s = 1.15");
        assert_eq!(linkedin.target, Some(("<= 1.25".into(), Verdict::Met)));
        assert_eq!(figure("whole run: wall").value, "12.4 s");
        assert_eq!(figure("metric rows").value, "1,600");
        assert_eq!(figure("requests refused over quota").target, Some(("0".into(), Verdict::Met)));
        assert!(report.figures.iter().all(|f| f.name != "sources not succeeded"));
    }
}
