//! Rate limits and daily limits (§8): the `X-HubSpot-RateLimit-*` headers, the 5 per second
//! search limit, 429 bodies with and without `policyName`, and the daily limit that resets at
//! the portal's midnight.

use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use kpipe_core::ErrorKind;
use kpipe_sim::platform::hubspot::{self, HubSpotApi, TruthOptions, UsageLimits};
use kpipe_sim::{Fault, FaultRule};

use crate::common::{self, day, small_portal};
use crate::{SEED, pull, sim_config, start, start_api, window, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_limit_stops_the_pull_until_the_portals_midnight_and_keeps_finished_slices() {
    let api = HubSpotApi { first_day: day("2026-08-01"), last_day: day("2026-10-05"), ..small_portal() };
    // Three slices: 08-01..08-31, 09-01..10-01, 10-02..10-03, pulled newest first.
    let window = window("2026-08-01", "2026-10-03");
    let sim = start_api(&api).await;
    pull(common::oauth_table(&sim), window).await.expect_ok("uncapped");
    let needed = sim.requests_total() - sim.tokens_issued();

    let sim =
        start(sim_config(&api, hubspot::auth_config()).with_quota(hubspot::daily_quota(needed - 2))).await;
    let pulled = pull(common::oauth_table(&sim), window).await;
    let reset_at = match &pulled.result {
        Err(e) => match e.kind() {
            ErrorKind::QuotaExhausted { reset_at } => reset_at,
            other => panic!("expected the daily limit, got {other}: {e}"),
        },
        Ok(()) => panic!("the pull went past the daily limit"),
    };
    // The portal is at UTC-05:00: its midnight is 05:00 UTC, within the next day.
    let reset_at = reset_at.expect("a reset time");
    assert_eq!((reset_at.hour(), reset_at.minute(), reset_at.second()), (5, 0, 0));
    let ahead = reset_at - Utc::now();
    assert!(ahead > chrono::Duration::zero() && ahead <= chrono::Duration::hours(24), "{reset_at}");
    // A slice's streams are read at once: each request in flight may meet the limit once, and
    // none is sent again.
    let refused = sim.rejections_for_quota("hubspot_daily");
    assert!((1..=5).contains(&refused), "{refused} refused: the limit was retried");
    assert_eq!(pulled.retries("throttled"), 0);
    // The two newest slices were finished before the limit: they are published whole.
    assert_eq!(
        pulled.completed,
        [super::window("2026-10-02", "2026-10-03"), super::window("2026-09-01", "2026-10-01")]
    );
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    let complete = |d| d >= day("2026-09-01");
    pulled.totals().restricted(complete).assert_eq(&expected.restricted(complete), "daily limit");
    pulled.totals().assert_subset_of(&expected, "daily limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_paced_below_the_burst_limit_the_headers_report() {
    // HubSpot reports 6 requests per second here and refuses the 7th; the source's own limiter
    // would allow 100.
    let limits = UsageLimits { burst_max: 6, burst_interval: Duration::from_secs(1), daily_max: 250_000 };
    let api = HubSpotApi { usage: limits, ..small_portal() };
    let config =
        sim_config(&api, hubspot::auth_config()).with_quota(hubspot::burst_quota(6, Duration::from_secs(1)));
    let sim = start(config).await;
    let table = with(
        common::oauth_table(&sim),
        r#"
        streams = ["forms", "emails"]
        page_size = 1
        rate_limit = { requests = 100, per_seconds = 1, burst = 20 }
        "#,
    );
    let window = window("2026-10-01", "2026-10-03");
    let started = Instant::now();
    let pulled = pull(table, window).await;
    pulled.expect_ok("paced");
    let requests = sim.requests_total() - sim.tokens_issued();
    assert!(requests > 18, "only {requests} requests: too few to need pacing");
    assert_eq!(sim.requests_over_quota(), 0, "a request went over the reported burst limit");
    assert!(started.elapsed() >= Duration::from_secs(requests / 6 - 1), "{:?}", started.elapsed());
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    pulled.totals().assert_eq(&common::only(&expected, &["form", "email"]), "paced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_keeps_to_five_requests_per_second_apart_from_the_burst_limit() {
    let api = small_portal();
    let sim = start(sim_config(&api, hubspot::auth_config()).with_quota(hubspot::search_quota())).await;
    let table = with(
        common::oauth_table(&sim),
        r#"
        streams = ["contacts", "deals", "feedback"]
        page_size = 3
        rate_limit = { requests = 100, per_seconds = 1, burst = 20 }
        "#,
    );
    let window = window("2026-10-01", "2026-10-03");
    let pulled = pull(table, window).await;
    pulled.expect_ok("search limit");
    let searches: u64 =
        sim.path_counts().iter().filter(|(p, _)| p.ends_with("/search")).map(|(_, n)| *n).sum();
    assert!(searches > 10, "only {searches} searches");
    assert_eq!(sim.rejections_for_quota("hubspot_search"), 0, "a search went over 5 per second");
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    pulled
        .totals()
        .assert_eq(&common::only(&expected, &["account", "deal_pipeline", "survey"]), "search limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_limits_429_without_a_policy_or_retry_after_is_backed_off_and_retried() {
    let api = small_portal();
    let fault = FaultRule::on_requests([1, 2], Fault::Respond(hubspot::secondly_limit()))
        .on_path("/crm/v3/objects/contacts/search");
    let sim = start(sim_config(&api, hubspot::auth_config()).with_fault(fault)).await;
    let table = with(common::oauth_table(&sim), r#"streams = ["contacts"]"#);
    let window = window("2026-10-01", "2026-10-03");
    let pulled = pull(table, window).await;
    pulled.expect_ok("secondly");
    assert_eq!(pulled.retries("throttled"), 2);
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    pulled.totals().assert_eq(&common::only(&expected, &["account"]), "secondly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_app_stops_before_the_request_its_daily_remainder_would_refuse() {
    let limits = UsageLimits { daily_max: 5, ..small_portal().usage };
    let api = HubSpotApi {
        usage: limits,
        private_app_tokens: vec![common::PRIVATE_APP_TOKEN.to_owned()],
        ..small_portal()
    };
    let sim = start_api(&api).await;
    let table = with(
        common::private_app_table(&sim),
        r#"streams = ["forms"]
                                                           page_size = 1"#,
    );
    let pulled = pull(table, window("2026-10-01", "2026-10-03")).await;
    let Err(error) = &pulled.result else { panic!("the pull went past the daily limit") };
    assert!(matches!(error.kind(), ErrorKind::QuotaExhausted { reset_at: Some(_) }), "{error}");
    // Five requests were allowed and five were sent: the sixth was never tried.
    assert_eq!(sim.requests_total(), 5);
    assert_eq!(sim.requests_over_quota(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_limit_of_the_sources_own_stops_it_too() {
    let api = small_portal();
    let sim = start_api(&api).await;
    let table = with(common::private_app_table(&sim), "daily_limit = 3");
    let pulled = pull(table, window("2026-10-01", "2026-10-03")).await;
    let Err(error) = &pulled.result else { panic!("the pull went past its daily limit") };
    assert!(matches!(error.kind(), ErrorKind::QuotaExhausted { .. }), "{error}");
    assert_eq!(sim.requests_total(), 3);
}
