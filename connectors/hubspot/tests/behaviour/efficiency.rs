//! What a pull of the default simulated portal costs in requests: the figure the run summary
//! reports as requests per row.

use kpipe_sim::platform::hubspot::{HubSpotApi, TruthOptions};

use crate::common;
use crate::{SEED, pull, start_api, window};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_weeks_of_the_default_portal_cost_few_requests_per_row() {
    let api = HubSpotApi::default();
    let sim = start_api(&api).await;
    let window = window("2026-10-01", "2026-10-28");
    let pulled = pull(common::oauth_table(&sim), window).await;
    pulled.expect_ok("four weeks");
    pulled.totals().assert_eq(&common::expected(&api, SEED, window, &TruthOptions::default()), "four weeks");
    let telemetry = pulled.telemetry.expect("telemetry");
    let rows = pulled.rows.len() as f64;
    let per_row = telemetry.requests as f64 / rows;
    eprintln!(
        "four weeks of the default portal: {} rows, {} requests ({} token), {per_row:.4} per row",
        pulled.rows.len(),
        telemetry.requests,
        telemetry.token_refreshes
    );
    assert!(per_row < 0.05, "{per_row} requests per row");
}
