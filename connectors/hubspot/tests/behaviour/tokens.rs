//! OAuth access tokens live 30 minutes (`expires_in: 1800`, §7). The simulator makes that half
//! hour pass quickly: its tokens stop working after a fraction of a second while it still
//! announces 1800 seconds, or it announces a lifetime the source must refresh ahead of.

use std::time::Duration;

use kpipe_sim::Latency;
use kpipe_sim::platform::hubspot::{self, TruthOptions};

use crate::common::{self, small_portal};
use crate::{SEED, pull, sim_config, start, window, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_after_thirty_simulated_minutes_is_refreshed_once_per_expiry() {
    // 30 simulated minutes are 300 ms here; the token endpoint still says 1800 seconds, so the
    // source learns of each expiry from the 401 (EXPIRED_AUTHENTICATION, §8).
    let auth =
        kpipe_sim::AuthConfig { expire_after: Some(Duration::from_millis(300)), ..hubspot::auth_config() };
    let api = small_portal();
    let sim = start(sim_config(&api, auth).with_latency(Latency::fixed_ms(15))).await;
    let table = with(common::oauth_table(&sim), "page_size = 2");
    let window = window("2026-10-01", "2026-10-03");
    let pulled = pull(table, window).await;
    pulled.expect_ok("expiring tokens");
    pulled
        .totals()
        .assert_eq(&common::expected(&api, SEED, window, &TruthOptions::default()), "expiring tokens");
    let issued = sim.tokens_issued();
    let expiries = sim.auth_rejections();
    assert!(expiries >= 3, "the pull outlived only {expiries} tokens; make it longer");
    // One refusal per expired token, one new token per refusal, and the first one.
    assert_eq!(issued, expiries + 1, "{issued} tokens for {expiries} expiries");
    let telemetry = pulled.telemetry.expect("telemetry");
    assert_eq!(telemetry.token_refreshes, issued);
    assert_eq!(telemetry.retries.get("token_refused").copied(), Some(expiries));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refreshed_before_it_expires_mid_run() {
    // A token announced (and enforced) for 61 seconds is renewed 60 seconds early, after one
    // second: no request ever carries an expired token.
    let lifetime = Duration::from_secs(61);
    let auth = kpipe_sim::AuthConfig {
        expires_in: lifetime,
        expire_after: Some(lifetime),
        ..hubspot::auth_config()
    };
    let api = small_portal();
    let sim = start(sim_config(&api, auth).with_latency(Latency::fixed_ms(40))).await;
    let table = with(common::oauth_table(&sim), "page_size = 2");
    let window = window("2026-10-01", "2026-10-03");
    let started = std::time::Instant::now();
    let pulled = pull(table, window).await;
    pulled.expect_ok("early refresh");
    let seconds = started.elapsed().as_secs();
    assert!(seconds >= 2, "the pull took under 2 s; make it longer");
    assert_eq!(sim.auth_rejections(), 0, "a request carried an expired token");
    assert!(sim.tokens_issued() >= seconds, "{} tokens in {seconds} s", sim.tokens_issued());
    pulled
        .totals()
        .assert_eq(&common::expected(&api, SEED, window, &TruthOptions::default()), "early refresh");
}
