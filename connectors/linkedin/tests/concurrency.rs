//! `concurrency`: several ad accounts' requests in flight at once against the simulated LinkedIn
//! Marketing API (shapes of `shared/apis/linkedin.md` §3.1-§4), answers arriving out of order.
//! The rows, their order and the quarantine are those of a one-at-a-time pull.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use kpipe_sim::platform::linkedin::LinkedInApi;
use kpipe_sim::{Fault, FaultRule, Latency, RecordedRequest};
use kpipe_testkit::pull;
use serde_json::json;

use common::{build, expected_ads, sim_config, source_table, start, window};

const SEED: u64 = 11;

fn six_accounts() -> LinkedInApi {
    LinkedInApi::with_accounts(6, 3, 2)
}

/// The most API requests that arrived within `latency_ms` of one another: more than one means
/// a request was sent before the answer to another came back.
fn most_at_once(requests: &[RecordedRequest], latency_ms: u128) -> usize {
    let requests: Vec<&RecordedRequest> = requests.iter().filter(|r| r.path.starts_with("/rest/")).collect();
    requests
        .iter()
        .map(|r| {
            let start = r.arrived_after.as_millis();
            requests
                .iter()
                .filter(|o| (start..start + latency_ms).contains(&o.arrived_after.as_millis()))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_pulled_concurrently_write_what_one_at_a_time_writes() {
    let api = six_accounts();
    let days = window("2026-03-01", "2026-03-04");
    // Answers take 20-80 ms, so requests sent together come back in another order.
    let config = sim_config(SEED, api.clone()).with_latency(Latency::uniform_ms(20, 80));
    let one = start(config.clone()).await;
    // A pace that never holds a request back: only the concurrency differs.
    let fast = "rate_limit = { requests = 1000, per_seconds = 1 }";
    let alone =
        pull(build(source_table(&one, &api, &format!("{fast}\nconcurrency = 1"))).as_ref(), days).await;
    alone.expect_ok("one at a time");
    let four = start(config).await;
    let together =
        pull(build(source_table(&four, &api, &format!("{fast}\nconcurrency = 4"))).as_ref(), days).await;
    together.expect_ok("four at a time");

    assert_eq!(together.totals(), expected_ads(&api, SEED, days));
    let order = |rows: &[kpipe_core::MetricRow]| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{:?} {:?} {} {:?}", r.account_id, r.entity_id, r.date, r.metric))
            .collect()
    };
    assert_eq!(order(&together.rows), order(&alone.rows), "rows come out in the same order");
    assert_eq!(together.completed, alone.completed);
    assert_eq!(four.requests_total(), one.requests_total(), "no request more");
    assert_eq!(most_at_once(&one.requests(), 20), 1);
    assert!(most_at_once(&four.requests(), 20) > 1, "requests were in flight together");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_concurrent_requests_quarantine_is_kept() {
    let api = six_accounts();
    let days = window("2026-03-01", "2026-03-02");
    // One account's creatives listing holds an element without an id (§4 shapes otherwise).
    let page = json!({"elements": [{"name": "Creative without an id"}], "metadata": {}});
    let fault = FaultRule::always(Fault::respond(200, page)).on_path("/rest/adAccounts/508000003/creatives");
    let sim =
        start(sim_config(SEED, api.clone()).with_latency(Latency::uniform_ms(5, 30)).with_fault(fault)).await;
    let pulled = pull(build(source_table(&sim, &api, "concurrency = 3")).as_ref(), days).await;
    pulled.expect_ok("concurrent with a quarantined listing");
    assert_eq!(pulled.quarantined.len(), 1, "{:?}", pulled.quarantined);
    assert!(pulled.quarantined[0].location.contains("508000003/creatives"), "{:?}", pulled.quarantined[0]);
    // That account's creatives lose their names, not their rows.
    assert_eq!(pulled.totals(), expected_ads(&api, SEED, days));
}
