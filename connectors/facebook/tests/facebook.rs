//! Facebook behaviours beyond the conformance suite, against the simulated Graph API. Each test
//! names the section of `shared/apis/facebook.md` whose shapes it relies on.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use common::{FacebookHarness, LEVELS, SEED, Scope, expected, window};
use kpipe_core::{Currency, Decimal, DynSource, ErrorKind, Period, PeriodGrain, PeriodRequest};
use kpipe_sim::platform::facebook::{
    self, DEFAULT_AD_ACCOUNTS, DEFAULT_PAGE, FacebookGraph, InsightsLevel, PageValue, ReportRunBehaviour,
    UsageBudget,
};
use kpipe_sim::{CannedResponse, Fault, FaultRule, RecordedRequest, SimConfig, SimServer};
use kpipe_testkit::{Harness, Pulled, Setup, build_source, pull};

const ACCOUNT: &str = DEFAULT_AD_ACCOUNTS[0];

/// Whether `request` (a first or a next page) asks for the daily rows (`time_increment=1`) of
/// `level`, rather than reach per period (`time_ranges`) or another level's.
fn daily_report_of(request: &RecordedRequest, level: &str) -> bool {
    let query = request.query.as_deref().unwrap_or_default();
    query.contains(&format!("level={level}&")) && query.contains("time_increment=1")
}

fn one_account(levels: &[(InsightsLevel, &'static str)]) -> Scope {
    Scope { accounts: vec![ACCOUNT], levels: levels.to_vec(), pages: vec![], ..Scope::default() }
}

/// Report runs polled quickly; `timeout` seconds before a run counts as stuck.
fn report_runs(timeout: u64) -> String {
    format!(
        "async_reports = {{ after_days = 0, poll_initial_ms = 5, poll_max_ms = 20, \
         timeout_seconds = {timeout} }}"
    )
}

async fn run(
    h: &FacebookHarness,
    configure: impl FnOnce(SimConfig) -> SimConfig,
    setup: Setup,
    days: kpipe_core::DateWindow,
) -> (SimServer, Pulled, Box<dyn DynSource>) {
    let sim = SimServer::start(configure(h.sim_config(SEED))).await.expect("the simulator starts");
    let source = build_source(h, &sim, setup, None);
    let pulled = pull(source.as_ref(), days).await;
    (sim, pulled, source)
}

fn assert_exact(h: &FacebookHarness, pulled: &Pulled, days: kpipe_core::DateWindow, case: &str) {
    pulled.expect_ok(case);
    assert!(pulled.quarantined.is_empty(), "{case}: {:?}", pulled.quarantined);
    pulled.totals().assert_eq(&expected(&h.graph, SEED, days, &h.scope), case);
    let undeclared: Vec<_> =
        days.days().filter(|d| !pulled.completed.iter().any(|w| w.contains(*d))).collect();
    assert!(undeclared.is_empty(), "{case}: days not declared complete: {undeclared:?}");
}

/// §3: a report run that ends "Job Failed" is split into two runs over the halves of its range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_report_run_is_split_in_two_and_every_row_arrives() {
    let graph = FacebookGraph {
        report_runs: ReportRunBehaviour { failing_jobs: vec![1], ..ReportRunBehaviour::default() },
        ..FacebookGraph::default()
    };
    let monitor = graph.monitor();
    let h = FacebookHarness::custom(graph, one_account(&LEVELS), &report_runs(5));
    let days = window("2026-03-01", "2026-03-04");
    let (_sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "failed run");
    assert_eq!(monitor.failed_polls(), 1, "the first run failed once");
    // One run per level, and the failed one replaced by two.
    assert_eq!(monitor.report_runs(), 3 + 2);
}

/// §3: a run that stays "Job Running" past the timeout is abandoned and its range split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_report_run_is_abandoned_and_split() {
    let graph = FacebookGraph {
        report_runs: ReportRunBehaviour { stuck_jobs: vec![1], ..ReportRunBehaviour::default() },
        ..FacebookGraph::default()
    };
    let monitor = graph.monitor();
    let h = FacebookHarness::custom(graph, one_account(&LEVELS[..1]), &report_runs(1));
    let days = window("2026-03-01", "2026-03-04");
    let (_sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "stuck run");
    assert_eq!(monitor.report_runs(), 1 + 2);
}

/// §2-3: a one-day run that fails cannot be split: that day is read with a synchronous report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_one_day_run_is_read_synchronously() {
    let graph = FacebookGraph {
        report_runs: ReportRunBehaviour { failing_jobs: vec![1], ..ReportRunBehaviour::default() },
        ..FacebookGraph::default()
    };
    let h = FacebookHarness::custom(graph, one_account(&LEVELS[..1]), &report_runs(5));
    let days = window("2026-03-02", "2026-03-02");
    let (sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "one-day run");
    let synchronous = sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/v25.0/act_{ACCOUNT}/insights"))
        .filter(|r| daily_report_of(r, "campaign"))
        .count();
    assert_eq!(synchronous, 1);
}

/// §4: Meta refuses a whole request for one retired metric with `(#100) The value must be a
/// valid insights metric`; that metric is dropped and reported, the others still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_page_metric_is_dropped_and_reported_while_the_others_arrive() {
    let graph = FacebookGraph::default();
    let monitor = graph.monitor();
    let scope = Scope {
        accounts: vec![],
        pages: vec![DEFAULT_PAGE],
        page_metrics: vec![
            ("page_post_engagements", "engagements"),
            ("page_daily_follows_unique", "follower_gains"),
            ("page_follows", "followers"),
        ],
        ..Scope::default()
    };
    let extra = r#"page_metrics = [
        "page_impressions", "page_post_engagements", "page_daily_follows_unique", "page_follows"
    ]"#;
    let h = FacebookHarness::custom(graph, scope, extra);
    let days = h.window();
    let (_sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    pulled.expect_ok("retired metric");
    pulled.totals().assert_eq(&expected(&h.graph, SEED, days, &h.scope), "retired metric");
    assert_eq!(pulled.quarantined.len(), 1, "{:?}", pulled.quarantined);
    let report = &pulled.quarantined[0];
    assert!(report.location.contains("page_impressions"), "{report:?}");
    assert!(report.reason.contains("#100") && report.reason.contains("page_impressions"), "{report:?}");
    assert!(monitor.rejected_metric_requests() >= 1);
    assert!(pulled.completed.iter().any(|w| w.contains(days.start())), "the slice is still complete");
}

/// §2: `paging.next` is an absolute URL with the token and `after`; it is followed (without the
/// token in the URL) until a page has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_next_is_followed_across_three_pages_and_stops_when_absent() {
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..1]), "");
    let days = h.window();
    let rows = h.graph.insights(SEED, ACCOUNT, InsightsLevel::Campaign, days.start(), days.end()).len();
    assert!((5..=6).contains(&rows), "two campaigns over three days: {rows} rows make three pages of two");
    let (sim, pulled, _) = run(&h, |c| c, Setup { page_size: Some(2) }, days).await;
    assert_exact(&h, &pulled, days, "three pages");
    let pages: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/v25.0/act_{ACCOUNT}/insights") && daily_report_of(r, "campaign"))
        .collect();
    assert_eq!(pages.len(), 3);
    for (i, page) in pages.iter().enumerate() {
        let query = page.query.clone().unwrap_or_default();
        assert_eq!(query.contains("after="), i > 0, "{query}");
        assert!(query.contains("limit=2") && !query.contains("access_token"), "{query}");
        assert!(page.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
    }
}

/// §2: numbers arrive as strings; spend `"14.35"` is 14.35 exactly, in the account currency,
/// and the actions map as the README documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_reads_back_exactly_with_its_currency() {
    let row = common::campaign_row("101000000000001101", "185");
    let page =
        serde_json::json!({"data": [row], "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}});
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..1]), "");
    let (_sim, pulled, _) = run(
        &h,
        // The campaigns' daily report: the account's reach and the periods are asked for beside it.
        |c| {
            c.with_fault(
                FaultRule::on_request(1, Fault::respond(200, page))
                    .on_path("/v25.0/act_")
                    .on_query("level=campaign&")
                    .on_query("time_increment=1"),
            )
        },
        Setup::default(),
        h.window(),
    )
    .await;
    pulled.expect_ok("fixture row");
    let value = |metric: &str| {
        let r =
            pulled.rows.iter().find(|r| r.metric.as_str() == metric).unwrap_or_else(|| panic!("no {metric}"));
        (r.value, r.currency)
    };
    let usd = Currency::parse("USD");
    assert_eq!(value("spend"), ("14.35".parse::<Decimal>().expect("a decimal"), usd));
    assert_eq!(value("spend").0.units(), 14_350_000_000_000_000_000);
    assert_eq!(value("revenue"), ("189.9".parse::<Decimal>().expect("a decimal"), usd));
    assert_eq!(value("leads"), (Decimal::from_i64(2), None));
    assert_eq!(value("impressions"), (Decimal::from_i64(185), None));
    assert_eq!(value("facebook.action_link_click"), (Decimal::from_i64(7), None));
}

/// §6: an ad account at 95 % of its budget (`X-Ad-Account-Usage`, reset in 1 s) makes the next
/// request about it wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_at_95_percent_makes_the_next_request_wait() {
    let busy = CannedResponse::json(200, serde_json::json!({"data": [], "paging": {}}))
        .with_header(
            "X-Ad-Account-Usage",
            serde_json::json!({"acc_id_util_pct": 95.0, "reset_time_duration": 1,
                               "ads_api_access_tier": "standard_access"})
            .to_string(),
        )
        .with_header(
            "X-Business-Use-Case-Usage",
            serde_json::json!({ACCOUNT: [{"type": "ads_insights", "call_count": 95, "total_cputime": 30,
                                           "total_time": 30, "estimated_time_to_regain_access": 0}]})
            .to_string(),
        );
    // One request at a time: a request already in flight when the busy answer comes cannot be
    // held back, the next one can.
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..2]), "concurrency = 1");
    let (sim, pulled, _) = run(
        &h,
        |c| c.with_fault(FaultRule::on_request(1, Fault::Respond(busy)).on_path("/v25.0/")),
        Setup::default(),
        h.window(),
    )
    .await;
    pulled.expect_ok("busy account");
    // The requests sent beside the first (the period reach is asked for while the slice is
    // pulled) were on their way before its answer; every later one waited for the pause.
    let requests = sim.requests();
    let first = requests[0].arrived_after;
    let gaps: Vec<Duration> = requests.iter().map(|r| r.arrived_after.saturating_sub(first)).collect();
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(100) || *g >= Duration::from_millis(950)),
        "requests came {gaps:?} after the first"
    );
    assert!(gaps.iter().any(|g| *g >= Duration::from_millis(950)), "{gaps:?}");
    let telemetry = pulled.telemetry.clone().expect("telemetry");
    assert!(telemetry.throttle_waits >= 1 && telemetry.throttle_wait_ms >= 900, "{telemetry:?}");
}

/// §6: with a small business-use-case budget, the usage headers slow the source down before
/// the limit: the simulator never has to throttle, and every row arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_headers_keep_the_source_under_the_budget() {
    let graph = FacebookGraph {
        usage_budget: UsageBudget::new(10, Duration::from_secs(1)),
        ..FacebookGraph::default()
    };
    let monitor = graph.monitor();
    // Requests in flight together are answered before their usage headers can slow the next
    // ones: one listing at a time, and a pause from half the budget, keep the overshoot of the
    // few requests the source sends side by side (Pages, period reach) within the budget.
    let h = FacebookHarness::custom(graph, Scope::default(), "concurrency = 1\nusage_threshold_pct = 50");
    let days = h.window();
    let (_sim, pulled, _) = run(&h, |c| c, Setup { page_size: Some(5) }, days).await;
    assert_exact(&h, &pulled, days, "small budget");
    assert_eq!(monitor.throttled(), 0, "the platform had to throttle");
    let telemetry = pulled.telemetry.clone().expect("telemetry");
    assert!(telemetry.throttle_waits >= 1, "no pause was needed: {telemetry:?}");
    assert_eq!(pulled.retries("throttled"), 0);
}

/// §3 ("Please reduce the amount of data", code 1/99, HTTP 500): the page size is halved until
/// the API answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reduce_the_amount_of_data_halves_the_page_size() {
    let graph = FacebookGraph { reduce_data_above: Some(100), ..FacebookGraph::default() };
    let h = FacebookHarness::custom(graph, one_account(&LEVELS[2..]), "");
    let days = h.window();
    let (sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "smaller pages");
    let limits: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| daily_report_of(r, "ad"))
        .filter_map(|r| {
            r.query.as_deref().and_then(|q| q.split('&').find(|p| p.starts_with("limit=")).map(str::to_owned))
        })
        .collect();
    assert_eq!(limits, ["limit=500", "limit=250", "limit=125", "limit=62"]);
    assert_eq!(pulled.retries("server_error"), 0, "the refusal is not retried as is");
}

/// §2: attribution windows are sent as `action_attribution_windows`; the metric is `value`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_windows_are_sent_and_the_value_is_read() {
    let h = FacebookHarness::custom(
        FacebookGraph::default(),
        one_account(&LEVELS[..1]),
        r#"attribution_windows = ["7d_click", "1d_view"]"#,
    );
    let days = h.window();
    let (sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "attribution windows");
    let campaigns = sim.requests().into_iter().find(|r| daily_report_of(r, "campaign")).expect("a report");
    let query = campaigns.query.unwrap_or_default();
    assert!(query.contains("action_attribution_windows=%5B%227d_click%22%2C%221d_view%22%5D"), "{query}");
}

/// §6: a throttling error whose wait is beyond what a run sleeps stops the source as
/// quota-exhausted, without retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_business_use_case_block_stops_as_quota_exhausted() {
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..1]), "");
    let (_sim, pulled, _) = run(
        &h,
        |c| c.with_fault(FaultRule::always(Fault::Respond(facebook::business_use_case_exhausted(60)))),
        Setup::default(),
        h.window(),
    )
    .await;
    match &pulled.result {
        Err(e) => match e.kind() {
            ErrorKind::QuotaExhausted { reset_at: Some(at) } => {
                let ahead = at.signed_duration_since(chrono::Utc::now()).num_minutes();
                assert!((58..=60).contains(&ahead), "resets in {ahead} minutes");
            }
            other => panic!("expected quota exhausted, got {other}"),
        },
        Ok(()) => panic!("a blocked account succeeded"),
    }
    assert_eq!(pulled.retries("throttled"), 0);
}

/// §1-§4: `check` reads every ad account and Page without pulling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_every_account_and_page() {
    let h = FacebookHarness::new();
    let sim = SimServer::start(h.sim_config(SEED)).await.expect("the simulator starts");
    let source = build_source(&h, &sim, Setup::default(), None);
    let said = source.check().await.expect("the check passes");
    assert!(said.starts_with("3 object(s) readable with API v25.0"), "{said}");
    assert!(said.contains(&format!("act_{ACCOUNT} (Acme Outdoor US, USD, America/Los_Angeles)")), "{said}");
    assert!(said.contains(&format!("page {DEFAULT_PAGE} (Acme Outdoor, Page token available)")), "{said}");
    assert!(!said.contains("sim-at-"), "{said}");
    // v25.0's ads requests are served until 2027-02-23: from 90 days before, the check says so.
    assert!(
        said.contains("Meta serves the Marketing API v25.0") && said.contains("set `api_version`"),
        "{said}"
    );
}

/// The table `kpipe demo` writes for Facebook; `{base_url}` is the simulator's.
const DEMO_TABLE: &str = r#"
[sources.facebook]
type = "facebook"
base_url = "{base_url}"
ad_account_ids = ["act_101000000000001", "act_101000000000002"]
page_ids = ["200000000000001"]
access_token = "sim-facebook-system-user-token"
# The simulator finishes report runs within two polls: poll it briskly.
async_reports = { poll_initial_ms = 100, poll_max_ms = 1000 }
"#;

/// §1-§4: the demo's table pulls 28 days of the default simulator (report runs, Page insights)
/// with its static system-user token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_table_pulls_the_default_simulator() {
    let config = SimConfig::new(7)
        .with_auth(facebook::auth_config())
        .with_platform(std::sync::Arc::new(FacebookGraph::default()));
    let sim = SimServer::start(config).await.expect("the simulator starts");
    let file: toml::Table = toml::from_str(&DEMO_TABLE.replace("{base_url}", sim.base_url())).expect("toml");
    let mut table = file["sources"]["facebook"].as_table().expect("the source table").clone();
    assert_eq!(table.remove("type").and_then(|t| t.as_str().map(str::to_owned)).as_deref(), Some("facebook"));
    let cx = kpipe_core::BuildContext { source_name: "facebook".into(), config_dir: std::env::temp_dir() };
    let source = kpipe_connector_facebook::factory().build(table, &cx).expect("the demo table builds");
    let days = window("2026-10-01", "2026-10-28");
    let pulled = pull(source.as_ref(), days).await;
    pulled.expect_ok("demo");
    assert!(pulled.quarantined.is_empty(), "{:?}", pulled.quarantined);
    pulled.totals().assert_eq(&expected(&FacebookGraph::default(), 7, days, &Scope::default()), "demo");
    // Reach per week and month (Ad Account Insights, `time_ranges`) after the report runs.
    let graph = FacebookGraph::default();
    let mut truth = 0;
    for request in PeriodRequest::for_window(days) {
        for account in DEFAULT_AD_ACCOUNTS {
            for (level, label) in [(InsightsLevel::Account, "account"), (InsightsLevel::Adset, "ad_set")] {
                for row in graph.range_insights(7, account, level, request.period.start, request.through) {
                    let found = pulled.period_rows.iter().find(|p| {
                        p.request == request
                            && p.row.account_id.as_ref() == account
                            && p.row.level.as_ref() == label
                            && p.row.entity_id.as_ref() == row.entity_id()
                    });
                    assert_eq!(found.map(|p| p.row.value), Some(Decimal::from_i64(row.reach as i64)));
                    truth += 1;
                }
            }
        }
    }
    assert!(truth > 0 && pulled.period_rows.len() > truth, "campaigns and ads have period rows too");
}

/// §4: when every configured Page metric is refused, the configuration is wrong: the source
/// fails with a configuration error instead of writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_every_metric_is_refused_is_a_configuration_error() {
    let scope =
        Scope { accounts: vec![], pages: vec![DEFAULT_PAGE], page_metrics: vec![], ..Scope::default() };
    let h =
        FacebookHarness::custom(FacebookGraph::default(), scope, r#"page_metrics = ["page_impressions"]"#);
    let (_sim, pulled, _) = run(&h, |c| c, Setup::default(), h.window()).await;
    match &pulled.result {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains("page_metrics"), "{}", e.message());
        }
        Ok(()) => panic!("a Page without any servable metric succeeded"),
    }
    assert_eq!(pulled.quarantined.len(), 1, "the refused metric is still reported");
}

/// §2: `level = account` rows have the account as their entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_level_is_available() {
    let h = FacebookHarness::custom(
        FacebookGraph::default(),
        one_account(&[(InsightsLevel::Account, "account")]),
        "",
    );
    let days = h.window();
    let (_sim, pulled, _) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "account level");
    assert!(pulled.rows.iter().all(|r| r.entity_id.as_ref() == ACCOUNT && r.level.as_ref() == "account"));
}

/// The parameters of `request`, decoded.
fn params_of(request: &RecordedRequest) -> Vec<(String, String)> {
    kpipe_sim::query_pairs(request.query.as_deref().unwrap_or_default())
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A period row's place: account, level, entity, period.
type PeriodKey = (String, String, String, Period);

/// Reach per ISO week and calendar month, shaped after Meta's Ad Account Insights reference
/// (`GET /act_{id}/insights`, parameters `level` and `time_ranges`: "Array of time range
/// objects ... Each time range will have one result set ... If `time_ranges` is specified,
/// `date_preset`, `time_range` and `time_increment` are ignored"; every row has `date_start` and
/// `date_stop`), and the Page's weekly reach after the Page Insights reference (`period=week`,
/// one rolling weekly value per day, `end_time` closing its last day). Over a window of two whole
/// weeks and a running one, across the end of February: at the account, campaign, ad set and ad
/// levels and for the Page, every period's value is the simulator's truth, which is below the
/// sum of the days (a summing connector fails); the running week and month are partial; the
/// account's own daily reach arrives as day rows; and the requests are those the estimate
/// predicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_per_week_and_month_is_the_platforms_own_value() {
    let scope = Scope {
        page_metrics: vec![("page_media_view", "impressions"), ("page_total_media_view_unique", "reach")],
        ..Scope::default()
    };
    let extra = r#"
        page_metrics = ["page_media_view", "page_total_media_view_unique"]
        async_reports = { after_days = 30 }
    "#;
    let h = FacebookHarness::custom(FacebookGraph::default(), scope, extra);
    let days = window("2026-02-25", "2026-03-10");
    let (sim, pulled, source) = run(&h, |c| c, Setup::default(), days).await;
    // Day rows, the account's daily reach among them, exactly.
    assert_exact(&h, &pulled, days, "periods");
    let account_reach =
        pulled.rows.iter().filter(|r| r.level.as_ref() == "account" && r.metric.as_str() == "reach").count();
    assert_eq!(account_reach, 2 * 14, "both accounts' reach on each day");

    let requests = PeriodRequest::for_window(days);
    let shown: Vec<String> =
        requests.iter().map(|r| format!("{} {} {}", r.period.grain, r.period.start, r.through)).collect();
    assert_eq!(
        shown,
        [
            "week 2026-02-23 2026-03-01",
            "week 2026-03-02 2026-03-08",
            "week 2026-03-09 2026-03-10",
            "month 2026-02-01 2026-02-28",
            "month 2026-03-01 2026-03-10",
        ]
    );
    let mut truth: BTreeMap<PeriodKey, (Decimal, Option<String>, NaiveDate)> = BTreeMap::new();
    let levels = [
        (InsightsLevel::Account, "account"),
        (InsightsLevel::Campaign, "campaign"),
        (InsightsLevel::Adset, "ad_set"),
        (InsightsLevel::Ad, "ad"),
    ];
    for account in DEFAULT_AD_ACCOUNTS {
        for (level, label) in levels {
            for request in &requests {
                let (since, through) = (request.period.start, request.through);
                let daily = h.graph.insights(SEED, account, level, since, through);
                for row in h.graph.range_insights(SEED, account, level, since, through) {
                    let own: Vec<u64> =
                        daily.iter().filter(|d| d.entity_id() == row.entity_id()).map(|d| d.reach).collect();
                    if own.len() >= 2 {
                        assert!(row.reach < own.iter().sum::<u64>(), "the truth is not the sum of the days");
                    }
                    let key =
                        (account.to_owned(), label.to_owned(), row.entity_id().to_owned(), request.period);
                    let name = Some(row.entity_name().to_owned());
                    truth.insert(key, (Decimal::from_i64(row.reach as i64), name, through));
                }
            }
        }
    }
    for week in requests.iter().filter(|r| r.period.grain == PeriodGrain::Week && !r.is_partial()) {
        let value = h
            .graph
            .page_week_metric(SEED, DEFAULT_PAGE, "page_total_media_view_unique", week.through)
            .expect("the Page had data");
        let key = (DEFAULT_PAGE.to_owned(), "page".to_owned(), DEFAULT_PAGE.to_owned(), week.period);
        truth.insert(key, (Decimal::from_i64(value as i64), Some("Acme Outdoor".to_owned()), week.through));
    }
    let mut got: BTreeMap<PeriodKey, (Decimal, Option<String>, NaiveDate)> = BTreeMap::new();
    for p in &pulled.period_rows {
        let r = &p.row;
        assert_eq!((r.metric.as_str(), r.date), ("reach", p.request.period.start), "{p:?}");
        assert_eq!(p.request.is_partial(), p.request.through < p.request.period.end());
        let key = (r.account_id.to_string(), r.level.to_string(), r.entity_id.to_string(), p.request.period);
        let name = r.entity_name.as_deref().map(str::to_owned);
        assert!(got.insert(key, (r.value, name, p.request.through)).is_none(), "written twice: {p:?}");
    }
    assert_eq!(got.len(), truth.len());
    assert_eq!(got, truth, "every period's reach is the platform's own");
    // The running week and month are partial, up to the window's last day; the others whole.
    let partial: Vec<String> = pulled
        .period_rows
        .iter()
        .filter(|p| p.request.is_partial())
        .map(|p| format!("{} {} {}", p.request.period.grain, p.request.period.start, p.request.through))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(partial, ["month 2026-03-01 2026-03-10", "week 2026-03-09 2026-03-10"]);
    // A whole week inside the window: its reach is below the sum of the pulled days' reach.
    let week = requests[1];
    for p in pulled.period_rows.iter().filter(|p| p.request == week && p.row.level.as_ref() == "account") {
        let summed: Decimal = pulled
            .rows
            .iter()
            .filter(|r| {
                r.level.as_ref() == "account"
                    && r.entity_id == p.row.entity_id
                    && r.metric.as_str() == "reach"
            })
            .filter(|r| week.days().contains(r.date))
            .fold(Decimal::ZERO, |total, r| total.checked_add(r.value).unwrap_or(total));
        assert!(p.row.value < summed, "{} is not below the days' {summed}", p.row.value);
    }
    // The Page has no monthly reach (`days_28` is a rolling 28 days) nor a running week's.
    assert!(!got.keys().any(|(_, level, _, period)| level == "page" && period.grain == PeriodGrain::Month));

    // One request per account and level for every period, the ranges in `time_ranges`.
    let sent = sim.requests();
    let per_period: Vec<Vec<(String, String)>> =
        sent.iter().map(params_of).filter(|p| param(p, "time_ranges").is_some()).collect();
    assert_eq!(per_period.len(), 2 * 4, "one request per account and level");
    for params in &per_period {
        let ranges: serde_json::Value =
            serde_json::from_str(param(params, "time_ranges").unwrap_or_default())
                .expect("time_ranges is JSON");
        assert_eq!(ranges.as_array().map(Vec::len), Some(5));
        assert_eq!(ranges[0], serde_json::json!({"since": "2026-02-23", "until": "2026-03-01"}));
        assert!(param(params, "time_increment").is_none() && param(params, "time_range").is_none());
        assert!(param(params, "fields").is_some_and(|f| f.ends_with(",reach,date_start,date_stop")));
    }
    let daily_reach: Vec<Vec<(String, String)>> = sent
        .iter()
        .map(params_of)
        .filter(|p| param(p, "level") == Some("account") && param(p, "time_increment") == Some("1"))
        .collect();
    assert_eq!(daily_reach.len(), 2);
    assert_eq!(param(&daily_reach[0], "fields"), Some("account_id,account_name,reach,date_start,date_stop"));
    let weekly: Vec<Vec<(String, String)>> =
        sent.iter().map(params_of).filter(|p| param(p, "period") == Some("week")).collect();
    assert_eq!(weekly.len(), 1);
    assert_eq!(
        (param(&weekly[0], "metric"), param(&weekly[0], "since"), param(&weekly[0], "until")),
        (Some("page_total_media_view_unique"), Some("2026-03-01"), Some("2026-03-09"))
    );
    // The plan's estimate is what was sent: every listing fits a page.
    let estimate = source.estimate_requests(&[days]).expect("an estimate");
    assert_eq!(sent.len() as u64, estimate.min_requests, "{estimate:?}");
}

/// Ad Account Insights reference (`time_ranges`): through report runs, the periods are still
/// asked for once per account and level, synchronously, and equal the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_per_period_follows_a_pull_through_report_runs() {
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..1]), &report_runs(5));
    let days = window("2026-03-30", "2026-04-02");
    let (sim, pulled, source) = run(&h, |c| c, Setup::default(), days).await;
    assert_exact(&h, &pulled, days, "report runs");
    let mut rows = 0;
    for request in PeriodRequest::for_window(days) {
        for (level, label) in [(InsightsLevel::Account, "account"), (InsightsLevel::Campaign, "campaign")] {
            for row in h.graph.range_insights(SEED, ACCOUNT, level, request.period.start, request.through) {
                let p = pulled
                    .period_rows
                    .iter()
                    .find(|p| {
                        p.request == request
                            && p.row.level.as_ref() == label
                            && p.row.entity_id.as_ref() == row.entity_id()
                    })
                    .unwrap_or_else(|| panic!("no {label} row for {}", request.period));
                assert_eq!(p.row.value, Decimal::from_i64(row.reach as i64));
                rows += 1;
            }
        }
    }
    assert_eq!(pulled.period_rows.len(), rows);
    // The estimate counts one poll per run; the simulator's runs finish on the second.
    let sent = sim.requests();
    let runs = sent.iter().filter(|r| r.method == "POST").count();
    let polls = sent
        .iter()
        .filter(|r| r.method == "GET" && !r.path.contains("act_") && !r.path.ends_with("/insights"))
        .count();
    assert_eq!((runs, polls), (1, 2));
    let estimate = source.estimate_requests(&[days]).expect("an estimate");
    assert_eq!((sent.len() - (polls - runs)) as u64, estimate.min_requests, "{estimate:?}");
}

/// Ad Account Insights reference (`time_ranges`, one result set per range asked): a period
/// answer that cannot be read is quarantined like a day page (a row over a range not asked
/// for, a body without `data`), the day rows stay whole and their days complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_period_answer_is_quarantined_like_a_day_page() {
    let h = FacebookHarness::custom(FacebookGraph::default(), one_account(&LEVELS[..1]), "");
    let days = h.window();
    let stray = serde_json::json!({"data": [{"account_id": ACCOUNT, "account_name": "Acme Outdoor US",
        "reach": "900", "date_start": "2026-03-03", "date_stop": "2026-03-05"}], "paging": {}});
    let path = format!("/v25.0/act_{ACCOUNT}/insights");
    // The account's and the campaigns' period reports (`time_ranges`), asked for beside the
    // day reports.
    let periods_of = |level: &str, fault: Fault| {
        FaultRule::on_request(1, fault)
            .on_path(path.clone())
            .on_query(format!("level={level}&"))
            .on_query("time_ranges=")
    };
    let (sim, pulled, _) = run(
        &h,
        |c| {
            c.with_fault(periods_of("account", Fault::respond(200, stray)))
                .with_fault(periods_of("campaign", Fault::respond(200, serde_json::json!({"paging": {}}))))
        },
        Setup::default(),
        days,
    )
    .await;
    pulled.expect_ok("unreadable periods");
    pulled.totals().assert_eq(&expected(&h.graph, SEED, days, &h.scope), "unreadable periods");
    assert!(days.days().all(|d| pulled.completed.iter().any(|w| w.contains(d))));
    // The period listings are read at once: their records come in the order of the answers.
    let mut reasons: Vec<&str> = pulled.quarantined.iter().map(|q| q.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("no `data` array"), "{reasons:?}");
    assert!(
        reasons[1].contains("2026-03-03..=2026-03-05, which is none of the periods asked for"),
        "{reasons:?}"
    );
    assert!(pulled.period_rows.is_empty(), "{:?}", pulled.period_rows);
    // Two day reports and two period reports, in the order their answers allowed.
    let asked: Vec<bool> =
        sim.requests().iter().map(|r| params_of(r).iter().any(|(k, _)| k == "time_ranges")).collect();
    assert_eq!((asked.len(), asked.iter().filter(|p| **p).count()), (4, 2), "{asked:?}");
}

/// Page Insights reference (`page_follows`, `period=day`): the Page's followers on the day before
/// each period that starts before the window are written as that period's opening value, so that
/// follower growth over the week and the month has its denominator; periods starting inside the
/// window take the stored day instead. One request covers those days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_followers_before_each_period_are_its_opening_value() {
    // Synchronous reports, so that every request is one the estimate counts.
    let h = FacebookHarness::custom(
        FacebookGraph::default(),
        Scope::default(),
        "async_reports = { after_days = 30 }",
    );
    let days = window("2026-02-25", "2026-03-10");
    let (sim, pulled, source) = run(&h, |c| c, Setup::default(), days).await;
    pulled.expect_ok("openings");
    let mut got: Vec<(String, NaiveDate, Decimal)> = pulled
        .period_rows
        .iter()
        .filter(|p| p.row.metric.as_str() == "followers")
        .map(|p| (p.request.period.grain.to_string(), p.request.period.start, p.row.value))
        .collect();
    got.sort();
    let truth = |day: &str| {
        let day: NaiveDate = day.parse().expect("a day");
        match h.graph.page_metric(SEED, DEFAULT_PAGE, "page_follows", day) {
            Some(PageValue::Count(n)) => Decimal::from_i64(n as i64),
            other => panic!("no follower count on {day}: {other:?}"),
        }
    };
    let d = |s: &str| s.parse::<NaiveDate>().expect("a day");
    assert_eq!(
        got,
        [
            ("month".to_owned(), d("2026-02-01"), truth("2026-01-31")),
            ("week".to_owned(), d("2026-02-23"), truth("2026-02-22")),
        ]
    );
    assert!(
        pulled
            .period_rows
            .iter()
            .filter(|p| p.row.metric.as_str() == "followers")
            .all(|p| { (p.row.level.as_ref(), p.row.entity_id.as_ref()) == ("page", DEFAULT_PAGE) })
    );
    let sent = sim.requests();
    let openings: Vec<Vec<(String, String)>> = sent
        .iter()
        .map(params_of)
        .filter(|p| param(p, "metric") == Some("page_follows") && param(p, "period") == Some("day"))
        .filter(|p| param(p, "since") == Some("2026-01-31"))
        .collect();
    assert_eq!(openings.len(), 1, "one request for the days before the window");
    assert_eq!(param(&openings[0], "until"), Some("2026-02-25"));
    let estimate = source.estimate_requests(&[days]).expect("an estimate");
    assert_eq!(sent.len() as u64, estimate.min_requests, "{estimate:?}");
}
