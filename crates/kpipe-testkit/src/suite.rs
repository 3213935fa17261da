//! The conformance cases. Each takes the connector's [`Harness`], starts its own simulator,
//! and panics with an explanation when the connector breaks the contract.
//! [`conformance_suite!`](crate::conformance_suite) makes a test of each.

use std::time::Duration;

use kpipe_core::{ConnectorFactory, DateWindow, DynSource, ErrorChain, ErrorKind};
use kpipe_sim::{Fault, FaultRule, QuotaRule, SimConfig, SimServer};

use crate::harness::{Auth, Harness, Setup};
use crate::logs::LogCapture;
use crate::pull::{Pulled, build_source, pull};

/// The simulator seed of every case.
pub const SEED: u64 = 20_261_123;

async fn start(config: SimConfig) -> SimServer {
    match SimServer::start(config).await {
        Ok(sim) => sim,
        Err(e) => panic!("the simulator did not start: {e}"),
    }
}

/// Requests the simulator received on the harness's data endpoints.
fn data_requests(h: &dyn Harness, sim: &SimServer) -> u64 {
    sim.path_counts().iter().filter(|(p, _)| p.starts_with(h.data_path())).map(|(_, n)| n).sum()
}

async fn pull_with(
    h: &dyn Harness,
    configure: impl FnOnce(SimConfig) -> SimConfig,
    setup: Setup,
    rate_limit: Option<(u32, u32)>,
    window: DateWindow,
) -> (SimServer, Pulled) {
    let sim = start(configure(h.sim_config(SEED))).await;
    let source = build_source(h, &sim, setup, rate_limit);
    let pulled = pull(source.as_ref(), window).await;
    (sim, pulled)
}

fn assert_in_window(pulled: &Pulled, window: DateWindow, case: &str) {
    let outside: Vec<_> = pulled.rows.iter().filter(|r| !window.contains(r.date)).take(5).collect();
    assert!(outside.is_empty(), "{case}: rows dated outside the window {window}: {outside:?}");
}

fn assert_exact(h: &dyn Harness, pulled: &Pulled, window: DateWindow, case: &str) {
    pulled.expect_ok(case);
    let reasons: Vec<_> = pulled.quarantined.iter().take(5).map(|q| (&q.location, &q.reason)).collect();
    assert!(pulled.quarantined.is_empty(), "{case}: records were quarantined: {reasons:?}");
    assert_in_window(pulled, window, case);
    let expected = h.expected(SEED, window);
    pulled.totals().assert_eq(&expected, case);
}

/// Every metric of every entity and day equals the simulator's own value; nothing is written
/// twice or outside the window; the source reports its request counters, which agree with
/// what the simulator received.
pub async fn exact_totals(h: &dyn Harness) {
    let window = h.window();
    assert!(!h.expected(SEED, window).is_empty(), "the harness's window must hold data");
    let (sim, pulled) = pull_with(h, |c| c, Setup::default(), None, window).await;
    assert_exact(h, &pulled, window, "exact_totals");
    if !pulled.completed.is_empty() {
        let missing: Vec<_> =
            window.days().filter(|d| !pulled.completed.iter().any(|w| w.contains(*d))).collect();
        assert!(
            missing.is_empty(),
            "exact_totals: a finished pull left days undeclared complete: {missing:?}"
        );
    }
    let telemetry = pulled.telemetry.as_ref().unwrap_or_else(|| {
        panic!("exact_totals: an HTTP source reports its request counters (Source::telemetry)")
    });
    let api_requests: u64 = data_requests(h, &sim);
    assert!(
        telemetry.requests >= api_requests && api_requests > 0,
        "exact_totals: the source counted {} requests, the simulator saw {api_requests} on {}",
        telemetry.requests,
        h.data_path()
    );
    assert_eq!(sim.requests_over_quota(), 0);
    let source = build_source(h, &sim, Setup::default(), None);
    assert_declared(&h.factory(), source.as_ref(), &pulled, "exact_totals");
}

/// Every stream the source pulls is in its connector's catalog ([`kpipe_core::catalog`]), and
/// every row it emitted, day rows and period rows, is declared there: its metric by the stream it
/// was emitted under, its level and its dimension columns too.
pub fn assert_declared(factory: &ConnectorFactory, source: &dyn DynSource, pulled: &Pulled, case: &str) {
    let catalog = factory.catalog();
    for stream in source.streams() {
        let declared = catalog.iter().find(|s| s.stream.name == stream.name);
        assert!(
            declared.is_some(),
            "{case}: stream `{}` of `{}` is not in its catalog (Source::catalog)",
            stream.name,
            factory.kind
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let day_rows = pulled.rows.iter().zip(pulled.row_streams.iter().map(Option::as_deref));
    let period_rows = pulled.period_rows.iter().map(|p| (&p.row, None));
    for (row, stream, period) in
        day_rows.map(|(r, s)| (r, s, false)).chain(period_rows.map(|(r, s)| (r, s, true)))
    {
        // One check per kind of row is enough; a pull holds thousands of each.
        let dimensions = row.dimensions.values().map(|v| v.is_some());
        let key =
            (stream.map(str::to_owned), row.metric.to_string(), row.level.to_string(), dimensions, period);
        if !seen.insert(key) {
            continue;
        }
        if let Err(e) = kpipe_core::check_row(&catalog, stream, row, period) {
            panic!(
                "{case}: `{}` emitted a row its catalog does not declare: {e}; declare it in \
                 Source::catalog (row: {row:?})",
                factory.kind
            );
        }
    }
}

/// With the smallest pages the connector can ask for, every page is read and the totals stay
/// exact; more requests are needed than with the default page size.
pub async fn many_pages(h: &dyn Harness) {
    let window = h.window();
    let (sim, pulled) = pull_with(h, |c| c, Setup::default(), None, window).await;
    pulled.expect_ok("many_pages (default pages)");
    let default_requests = data_requests(h, &sim);
    let (sim, pulled) = pull_with(h, |c| c, Setup { page_size: Some(2) }, None, window).await;
    assert_exact(h, &pulled, window, "many_pages");
    let small_requests = data_requests(h, &sim);
    assert!(
        small_requests > default_requests,
        "many_pages: with page size 2 the source sent {small_requests} data requests, no more than the \
         {default_requests} of the default page size: does the harness pass `page_size` on?"
    );
}

/// 429s with `Retry-After` are waited out and retried; nothing is lost.
pub async fn throttled_requests_are_retried(h: &dyn Harness) {
    let window = h.window();
    let fault = h.throttled(1);
    let (_sim, pulled) = pull_with(
        h,
        |c| c.with_fault(FaultRule::on_requests([1, 2], fault).on_path(h.data_path())),
        Setup::default(),
        None,
        window,
    )
    .await;
    assert_exact(h, &pulled, window, "throttled_requests_are_retried");
    assert!(pulled.retries("throttled") >= 2, "throttled: retries {:?}", pulled.telemetry);
}

/// A daily cap stops the stream at once with `QuotaExhausted`: the refused request is not
/// retried (retrying would burn what is left of tomorrow's quota too), and what was pulled
/// before is the simulator's data.
pub async fn daily_cap_stops_the_stream(h: &dyn Harness) {
    if h.daily_cap(1).is_none() {
        eprintln!("daily_cap_stops_the_stream: the platform has no daily cap; nothing to test");
        return;
    }
    let window = h.window();
    let small = Setup { page_size: Some(2) };
    // The cap falls halfway through what the whole pull needs.
    let (sim, _) = pull_with(h, |c| c, small, None, window).await;
    let token_path = sim.token_url().trim_start_matches(sim.base_url()).to_owned();
    let needed = sim.path_counts().iter().filter(|(p, _)| **p != token_path).map(|(_, n)| n).sum::<u64>();
    let Some(rule) = h.daily_cap((needed / 2).max(1)) else { return };
    let name = rule.name.clone();
    let (sim, pulled) = pull_with(h, |c| c.with_quota(rule), small, None, window).await;
    match &pulled.result {
        Err(e) if matches!(e.kind(), ErrorKind::QuotaExhausted { .. }) => {}
        other => panic!("daily_cap: expected a quota-exhausted error, got {other:?}"),
    }
    let refused = sim.rejections_for_quota(&name);
    assert!(refused >= 1, "daily_cap: the cap was never reached");
    // Concurrent streams may each hit the cap once; none may try again.
    let streams = h.window().num_days().max(1) * 8;
    assert!(refused <= streams, "daily_cap: {refused} refused requests: the cap was retried");
    assert_eq!(pulled.retries("throttled"), 0, "daily_cap: a daily cap was retried");
    assert_in_window(&pulled, window, "daily_cap");
    let expected = h.expected(SEED, window);
    pulled.totals().assert_subset_of(&expected, "daily_cap");
    // The days the source declared complete are published on their own: they must be whole.
    let complete = |d| pulled.completed.iter().any(|w| w.contains(d));
    pulled
        .totals()
        .restricted(complete)
        .assert_eq(&expected.restricted(complete), "daily_cap (completed days)");
}

/// A token that expires after a few requests is renewed once per expiry and the pull goes on
/// (sources with refreshable credentials); a long-lived token that expires fails the source
/// with an authentication error that does not show it.
pub async fn token_expiring_mid_run(h: &dyn Harness) {
    let window = h.window();
    const USES: u64 = 2;
    let (sim, pulled) = pull_with(
        h,
        |c| {
            let auth = h.expiring_auth(c.auth.clone(), USES);
            c.with_auth(auth)
        },
        Setup { page_size: Some(2) },
        None,
        window,
    )
    .await;
    match h.auth() {
        Auth::Refreshable => {
            assert_exact(h, &pulled, window, "token_expiring_mid_run");
            let issued = sim.tokens_issued();
            assert!(issued >= 2, "token_expiring_mid_run: the token never expired ({issued} issued)");
            let accepted = sim.requests_total().saturating_sub(sim.auth_rejections() + issued);
            // Each token but the last served its USES requests: a token refreshed twice for one
            // expiry would leave one unused.
            assert!(
                (issued - 1) * USES <= accepted,
                "token_expiring_mid_run: {issued} tokens for {accepted} accepted requests: \
                 an expiry was refreshed more than once"
            );
            if let Some(t) = &pulled.telemetry {
                assert_eq!(t.token_refreshes, issued, "token_expiring_mid_run: tokens obtained");
            }
        }
        Auth::StaticToken => {
            let Err(e) = &pulled.result else { panic!("token_expiring_mid_run: an expired token succeeded") };
            assert_eq!(e.kind(), ErrorKind::Auth, "token_expiring_mid_run: {}", ErrorChain(e));
            let message = ErrorChain(e).to_string();
            for secret in h.secrets(&sim) {
                assert!(!message.contains(&secret), "token_expiring_mid_run: the error shows a secret");
            }
        }
    }
}

/// 5xx answers are retried and nothing is lost.
pub async fn server_errors_are_retried(h: &dyn Harness) {
    let window = h.window();
    let (_sim, pulled) = pull_with(
        h,
        |c| {
            c.with_fault(FaultRule::on_requests([1, 2], Fault::server_error(503)).on_path(h.data_path()))
                .with_fault(FaultRule::on_request(4, Fault::server_error(500)).on_path(h.data_path()))
        },
        Setup::default(),
        None,
        window,
    )
    .await;
    assert_exact(h, &pulled, window, "server_errors_are_retried");
    assert!(pulled.retries("server_error") >= 2, "server_errors: retries {:?}", pulled.telemetry);
}

/// A page whose body is cut into invalid JSON once is fetched again; nothing is lost.
pub async fn malformed_page_is_fetched_again(h: &dyn Harness) {
    let window = h.window();
    let (_sim, pulled) = pull_with(
        h,
        |c| c.with_fault(FaultRule::on_request(1, Fault::MalformedJson).on_path(h.data_path())),
        Setup::default(),
        None,
        window,
    )
    .await;
    assert_exact(h, &pulled, window, "malformed_page_is_fetched_again");
    assert_eq!(pulled.retries("malformed_body"), 1, "malformed_page: {:?}", pulled.telemetry);
}

/// A body cut short mid-transfer is fetched again; nothing is lost.
pub async fn truncated_page_is_fetched_again(h: &dyn Harness) {
    let window = h.window();
    let (_sim, pulled) = pull_with(
        h,
        |c| c.with_fault(FaultRule::on_request(1, Fault::TruncatedBody).on_path(h.data_path())),
        Setup::default(),
        None,
        window,
    )
    .await;
    assert_exact(h, &pulled, window, "truncated_page_is_fetched_again");
}

/// When every data response after the first is unreadable, the source neither panics nor
/// invents rows: the unreadable pages are quarantined with their bodies (the pull ends
/// partial) or the pull fails as a data error, and every row written is the simulator's.
pub async fn page_that_stays_malformed_is_quarantined(h: &dyn Harness) {
    let window = h.window();
    let (_sim, pulled) = pull_with(
        h,
        |c| c.with_fault(FaultRule::after(1, Fault::MalformedJson).on_path(h.data_path())),
        Setup::default(),
        None,
        window,
    )
    .await;
    match &pulled.result {
        Ok(()) => {
            assert!(
                !pulled.quarantined.is_empty(),
                "stays_malformed: unreadable pages vanished without a trace"
            );
            for q in &pulled.quarantined {
                assert!(!q.reason.is_empty() && !q.location.is_empty(), "stays_malformed: {q:?}");
            }
            assert!(
                pulled.quarantined.iter().any(|q| !q.raw.is_empty()),
                "stays_malformed: the unreadable body is not kept"
            );
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Data, "stays_malformed: {}", ErrorChain(e)),
    }
    assert_in_window(&pulled, window, "stays_malformed");
    pulled.totals().assert_subset_of(&h.expected(SEED, window), "stays_malformed");
}

/// Elements the connector cannot read are quarantined with their reason; the pull goes on.
pub async fn malformed_elements_are_quarantined(h: &dyn Harness) {
    let window = h.window();
    let probe = start(h.sim_config(SEED)).await;
    let Some(fault) = h.malformed_elements(&probe) else {
        eprintln!(
            "malformed_elements_are_quarantined: the harness has no malformed element; nothing to test"
        );
        return;
    };
    let (_sim, pulled) = pull_with(
        h,
        |c| c.with_fault(FaultRule::on_request(1, fault).on_path(h.data_path())),
        Setup::default(),
        None,
        window,
    )
    .await;
    pulled.expect_ok("malformed_elements_are_quarantined");
    assert!(!pulled.quarantined.is_empty(), "malformed_elements: nothing was quarantined");
    for q in &pulled.quarantined {
        assert!(!q.reason.is_empty() && !q.raw.is_empty(), "malformed_elements: {q:?}");
    }
    assert!(!pulled.rows.is_empty(), "malformed_elements: one bad element stopped the whole pull");
}

/// A window without data gives no rows, no quarantine and no error.
pub async fn empty_window(h: &dyn Harness) {
    let window = h.empty_window();
    assert!(h.expected(SEED, window).is_empty(), "the harness's empty window must hold no data");
    let (_sim, pulled) = pull_with(h, |c| c, Setup::default(), None, window).await;
    pulled.expect_ok("empty_window");
    assert!(pulled.rows.is_empty(), "empty_window: {} rows", pulled.rows.len());
    assert!(pulled.quarantined.is_empty(), "empty_window: {:?}", pulled.quarantined);
}

/// With the source's `rate_limit` set to the simulator's quota, no request is refused for
/// going over it, in any rolling second.
pub async fn no_request_beyond_the_quota(h: &dyn Harness) {
    const PER_SECOND: u32 = 4;
    let window = h.window();
    let quota = QuotaRule::rolling_window(u64::from(PER_SECOND), Duration::from_secs(1)).named("conformance");
    let (sim, pulled) =
        pull_with(h, |c| c.with_quota(quota), Setup::default(), Some((PER_SECOND, 1)), window).await;
    assert_exact(h, &pulled, window, "no_request_beyond_the_quota");
    assert_eq!(sim.requests_over_quota(), 0, "no_request_beyond_the_quota: requests refused over quota");
}

/// At trace level, no log line of a pull (with tokens expiring and being renewed) shows a
/// credential, an access token issued by the simulator, or a refresh token; nor does the error
/// of a pull whose token is refused.
pub async fn no_secret_in_logs(h: &dyn Harness) {
    let capture = LogCapture::new();
    let window = h.window();
    let (secrets, error) = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => panic!("no_secret_in_logs: cannot start a runtime: {e}"),
                };
                tracing::subscriber::with_default(capture.subscriber(), || {
                    runtime.block_on(async {
                        let (sim, pulled) = pull_with(
                            h,
                            |c| {
                                let auth = h.expiring_auth(c.auth.clone(), 2);
                                c.with_auth(auth)
                            },
                            Setup { page_size: Some(2) },
                            None,
                            window,
                        )
                        .await;
                        let mut secrets = h.secrets(&sim);
                        // Then a pull whose every token is refused.
                        let source = build_source(h, &sim, Setup::default(), None);
                        sim.expire_all_tokens();
                        let refused = start(
                            h.sim_config(SEED)
                                .with_fault(FaultRule::always(Fault::ExpireToken).on_path(h.data_path())),
                        )
                        .await;
                        secrets.extend(h.secrets(&refused));
                        let failing = build_source(h, &refused, Setup::default(), None);
                        let failed = pull(failing.as_ref(), window).await;
                        drop(source);
                        let error = match (&pulled.result, &failed.result) {
                            (_, Err(e)) => format!("{} / {e:?}", ErrorChain(e)),
                            (Err(e), Ok(())) => format!("{} / {e:?}", ErrorChain(e)),
                            (Ok(()), Ok(())) => String::new(),
                        };
                        (secrets, error)
                    })
                })
            });
            match worker.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    });
    let logs = capture.text();
    assert!(
        logs.lines().count() >= 3,
        "no_secret_in_logs: the capture saw {} lines; are requests logged through tracing?",
        logs.lines().count()
    );
    let mut secrets = secrets;
    secrets.push("sim-at-".to_owned());
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!("no_secret_in_logs: a log line shows a secret: {line}");
        }
        assert!(!error.contains(secret.as_str()), "no_secret_in_logs: an error shows a secret: {error}");
    }
}
