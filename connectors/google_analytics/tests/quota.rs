//! The property quotas of `shared/apis/ga4.md` §6 against the simulator, which enforces them per
//! property and reports them as `propertyQuota` (§3): concurrent requests, hourly and daily
//! tokens, and their 429 `RESOURCE_EXHAUSTED` answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kpipe_core::{DateWindow, ErrorChain, ErrorKind};
use kpipe_sim::platform::ga4::{self, Ga4Api, PropertyQuotaLimits, QuotaRefusal, SimProperty};
use kpipe_sim::{Fault, FaultRule, SimServer};
use kpipe_testkit::pull;

use common::{PRIVATE_KEY, build, build_typed, day, expected, key_file, sim_config, source_table};

const SEED: u64 = 41;

fn window(from: &str, to: &str) -> DateWindow {
    DateWindow::new(day(from), day(to)).expect("a window")
}

async fn start(api: &Ga4Api) -> SimServer {
    SimServer::start(sim_config(SEED, api.clone())).await.expect("the simulator")
}

fn table(sim: &SimServer, properties: &[&str], extra: &str) -> toml::Table {
    let key = key_file(sim, PRIVATE_KEY, "quota");
    let mut table = source_table(sim, properties, &key);
    let extra: toml::Table = toml::from_str(extra).expect("a table");
    table.extend(extra);
    table
}

fn quota_reset(result: &Result<(), kpipe_core::SourceError>) -> chrono::DateTime<Utc> {
    match result {
        Err(e) => match e.kind() {
            ErrorKind::QuotaExhausted { reset_at: Some(t) } => t,
            other => panic!("expected a quota stop, got {other}: {}", ErrorChain(e)),
        },
        Ok(()) => panic!("expected a quota stop, the pull succeeded"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_three_properties_and_ten_streams_no_property_has_more_in_flight_than_allowed() {
    let properties = ["111111111", "222222222", "333333333"];
    let api = Ga4Api {
        quota: PropertyQuotaLimits { concurrent_requests: 3, ..PropertyQuotaLimits::STANDARD },
        processing_time: Duration::from_millis(25),
        ..Ga4Api::new(properties.iter().map(|p| SimProperty::new(p, "USD", "UTC", 1)).collect())
    };
    let sim = start(&api).await;
    // Ten requests in flight for the source, pages of 3 rows: dozens of pages per property,
    // far more than three at once would allow. The source's ceiling stays at the default 10;
    // the property's answers say 3.
    let source = build(table(
        &sim,
        &properties,
        "concurrency = 10\npage_size = 3\nrate_limit = { requests = 1000, per_seconds = 1, burst = 100 }",
    ));
    let days = window("2026-05-01", "2026-05-20");
    let pulled = pull(source.as_ref(), days).await;
    pulled.expect_ok("concurrency");
    pulled.totals().assert_eq(&expected(&api, SEED, days, &properties), "concurrency");
    let monitor = api.monitor();
    for p in properties {
        assert_eq!(monitor.refused(p, QuotaRefusal::Concurrent), 0, "property {p}: a request was refused");
        assert!(monitor.max_in_flight(p) <= 3, "property {p}: {} in flight", monitor.max_in_flight(p));
        assert!(monitor.requests(p) > 30, "property {p}: only {} requests", monitor.requests(p));
    }
    // The gate was used to the full, so the limit held under pressure.
    assert!(properties.iter().any(|p| monitor.max_in_flight(p) == 3), "no property reached its limit");
    assert_eq!(monitor.refused_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_tokens_stop_the_pull_before_the_api_refuses_when_the_deadline_is_near() {
    let api = Ga4Api {
        quota: PropertyQuotaLimits {
            tokens_per_hour: 4,
            tokens_per_project_per_hour: 4,
            ..PropertyQuotaLimits::STANDARD
        },
        ..Ga4Api::default()
    };
    let sim = start(&api).await;
    // One day per request: the first day's reports cost 3 tokens and leave 1, which cannot pay
    // for the next day's 3.
    let source = build(table(&sim, &["123456789"], "days_per_request = 1\ndeadline_minutes = 0"));
    let days = window("2026-05-01", "2026-05-03");
    let pulled = pull(source.as_ref(), days).await;
    let reset = quota_reset(&pulled.result);
    let now = Utc::now();
    assert!(reset > now && reset <= now + chrono::Duration::hours(1), "hourly reset {reset}");
    assert_eq!(api.monitor().refused_total(), 0, "a request was sent into the exhausted quota");
    assert_eq!(pulled.completed, [window("2026-05-01", "2026-05-01")]);
    let first_day = |d| d == day("2026-05-01");
    pulled
        .totals()
        .assert_eq(&expected(&api, SEED, days, &["123456789"]).restricted(first_day), "hourly stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_refusal_is_not_retried_and_stops_when_the_deadline_is_near() {
    let api = Ga4Api::default();
    let sim = SimServer::start(
        sim_config(SEED, api.clone()).with_fault(
            FaultRule::on_request(2, Fault::Respond(ga4::tokens_per_project_per_hour_exhausted()))
                .on_path("/v1beta"),
        ),
    )
    .await
    .expect("the simulator");
    // One request at a time, so that nothing else is in flight when the refusal arrives.
    let source =
        build(table(&sim, &["123456789"], "days_per_request = 1\ndeadline_minutes = 0\nconcurrency = 1"));
    let pulled = pull(source.as_ref(), window("2026-05-01", "2026-05-03")).await;
    quota_reset(&pulled.result);
    assert_eq!(pulled.retries("throttled"), 0);
    assert_eq!(
        sim.requests_for("/v1beta/properties/123456789:batchRunReports"),
        2,
        "the refusal was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_tokens_are_waited_for_when_the_deadline_allows() {
    // The simulator's hour lasts a second; the source's clock says the hour turns in 2 s, time
    // enough for the first reports even on a busy machine. Each day's batch costs 3 tokens and
    // the periods' batch (4 reports) 4: of 7 tokens an hour, what is left after two batches
    // cannot pay for a third, which waits for the next hour.
    let api = Ga4Api {
        quota: PropertyQuotaLimits {
            tokens_per_hour: 7,
            tokens_per_project_per_hour: 7,
            ..PropertyQuotaLimits::STANDARD
        },
        hour: Duration::from_secs(1),
        ..Ga4Api::default()
    };
    let sim = start(&api).await;
    let now = Utc::now();
    let offset =
        kpipe_connector_google_analytics::pacing::next_hour(now) - now - chrono::Duration::seconds(2);
    let source = build_typed(table(&sim, &["123456789"], "days_per_request = 1\ndeadline_minutes = 60"))
        .with_clock(Arc::new(move || Utc::now() + offset));
    let days = window("2026-05-01", "2026-05-02");
    let started = Instant::now();
    let pulled = pull(&source, days).await;
    pulled.expect_ok("hourly wait");
    assert!(started.elapsed() >= Duration::from_secs(2), "the pull did not wait: {:?}", started.elapsed());
    pulled.totals().assert_eq(&expected(&api, SEED, days, &["123456789"]), "hourly wait");
    assert_eq!(api.monitor().refused_total(), 0);
    assert_eq!(pulled.completed.len(), 2);
    assert_eq!(api.monitor().requests("123456789"), 3);
    assert!(!pulled.period_rows.is_empty(), "the periods' batch was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_tokens_stop_the_pull_until_midnight_pacific_time() {
    let api = Ga4Api {
        quota: PropertyQuotaLimits { tokens_per_day: 7, ..PropertyQuotaLimits::STANDARD },
        ..Ga4Api::default()
    };
    let sim = start(&api).await;
    let source = build(table(&sim, &["123456789"], "days_per_request = 1"));
    let days = window("2026-05-01", "2026-05-05");
    let pulled = pull(source.as_ref(), days).await;
    let reset = quota_reset(&pulled.result);
    assert_eq!(reset, kpipe_connector_google_analytics::pacing::next_pacific_midnight(Utc::now()));
    // 7 tokens pay for two days of three reports; the third is not asked for.
    assert_eq!(api.monitor().refused_total(), 0);
    assert_eq!(pulled.completed, [window("2026-05-01", "2026-05-01"), window("2026-05-02", "2026-05-02")]);
    let complete = |d| pulled.completed.iter().any(|w: &DateWindow| w.contains(d));
    pulled.totals().assert_eq(&expected(&api, SEED, days, &["123456789"]).restricted(complete), "daily stop");
}
