//! The HTTP runtime against the simulator over real sockets. The simulator's error bodies follow
//! the platforms' documented envelopes (LinkedIn's `TOO_MANY_REQUESTS` daily throttle, RFC 6749
//! token responses, Google's RFC 7523 JWT bearer grant), as described in shared/apis/*.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kpipe_core::{ErrorKind, Secret};
use kpipe_http::{
    ApiClient, ApiRequest, AuthPlacement, Decision, FnClassifier, HttpClient, HttpError, OAuthTokenProvider,
    Outcome, PageKind, Pagination, RateLimit, RateLimiter, RetryPolicy, ServiceAccountKey, StaticToken,
    TokenProvider,
};
use kpipe_sim::platform::linkedin;
use kpipe_sim::platform::test_routes::TestRoutesConfig;
use kpipe_sim::{AuthConfig, Fault, FaultRule, JwtBearerConfig, QuotaRule, SimConfig, SimServer};

const PRIVATE_KEY: &str = include_str!("../../kpipe-sim/tests/fixtures/test-service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../../kpipe-sim/tests/fixtures/test-service-account-key.pub.pem");
const ISSUER: &str = "kpipe-test@kpipe-sim.iam.gserviceaccount.com";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

async fn sim(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("simulator")
}

fn api(sim: &SimServer) -> kpipe_http::ApiClientBuilder {
    let http = HttpClient::new().expect("client");
    ApiClient::builder(&http, sim.base_url()).expect("base url").retry_policy(fast_retries())
}

/// LinkedIn's daily throttle: a 429 whose body names `APPLICATION DAY` or `MEMBER DAY`.
fn linkedin_daily_cap() -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("linkedin_daily_cap", |outcome: &Outcome<'_>, current| match outcome {
        Outcome::Response { status, body, .. } if status.as_u16() == 429 => {
            let text = String::from_utf8_lossy(body);
            if text.contains("APPLICATION DAY") || text.contains("MEMBER DAY") {
                Decision::QuotaExhausted { reset_at: None }
            } else {
                current
            }
        }
        _ => current,
    })
}

#[tokio::test]
async fn a_429_without_retry_after_is_retried_with_backoff() {
    let sim = sim(SimConfig::new(1)
        .with_fault(FaultRule::on_request(1, Fault::too_many_requests(None)).on_path("/test")))
    .await;
    let api = api(&sim).build();
    let r = api.send(&ApiRequest::get("test/items")).await.expect("retried");
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(sim.requests_total(), 2);
    assert_eq!(api.telemetry().retries.get("throttled"), Some(&1));
}

#[tokio::test]
async fn a_429_with_retry_after_waits_that_long() {
    let sim = sim(SimConfig::new(1)
        .with_fault(FaultRule::on_request(1, Fault::too_many_requests(Some(1))).on_path("/test")))
    .await;
    let api = api(&sim).build();
    let start = Instant::now();
    api.send(&ApiRequest::get("test/items")).await.expect("retried");
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
    assert_eq!(sim.requests_total(), 2);
}

#[tokio::test]
async fn a_daily_cap_stops_instead_of_retrying() {
    let sim = sim(SimConfig::new(1).with_quota(linkedin::daily_quota(2))).await;
    let api = api(&sim).classifier(linkedin_daily_cap()).build();
    for _ in 0..2 {
        api.send(&ApiRequest::get("test/items")).await.expect("within the cap");
    }
    let err = api.send(&ApiRequest::get("test/items")).await.expect_err("capped");
    assert!(matches!(err, HttpError::QuotaExhausted { .. }), "{err}");
    assert!(matches!(err.kind(), ErrorKind::QuotaExhausted { .. }));
    // Not one request burnt retrying the cap.
    assert_eq!(sim.requests_total(), 3);
}

#[tokio::test]
async fn a_retry_after_of_hours_means_quota_exhausted() {
    let sim = sim(SimConfig::new(1)
        .with_fault(FaultRule::always(Fault::too_many_requests(Some(6 * 3600))).on_path("/test")))
    .await;
    let api = api(&sim).build();
    let err = api.send(&ApiRequest::get("test/items")).await.expect_err("capped");
    match err {
        HttpError::QuotaExhausted { reset_at: Some(t), .. } => {
            assert!(t > chrono::Utc::now() + chrono::Duration::hours(5))
        }
        other => panic!("{other}"),
    }
    assert_eq!(sim.requests_total(), 1);
}

#[tokio::test]
async fn server_errors_then_success() {
    let sim = sim(SimConfig::new(1)
        .with_fault(FaultRule::on_requests([1, 2], Fault::server_error(503)).on_path("/test")))
    .await;
    let api = api(&sim).build();
    api.send(&ApiRequest::get("test/items")).await.expect("third time");
    assert_eq!(sim.requests_total(), 3);
    assert_eq!(api.telemetry().retries.get("server_error"), Some(&2));
}

#[tokio::test]
async fn retries_are_limited_and_the_error_names_the_attempts() {
    let sim =
        sim(SimConfig::new(1).with_fault(FaultRule::always(Fault::server_error(500)).on_path("/test"))).await;
    let api = api(&sim).build();
    let err = api.send(&ApiRequest::get("test/items")).await.expect_err("gives up");
    assert!(matches!(err, HttpError::Status { status: 500, attempts: 6, .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(sim.requests_total(), 6);
}

#[tokio::test]
async fn a_post_that_is_not_idempotent_is_not_sent_twice() {
    let sim = sim(
        SimConfig::new(1).with_fault(FaultRule::on_request(1, Fault::server_error(503)).on_path("/test"))
    )
    .await;
    let api = api(&sim).build();
    let err = api
        .send(&ApiRequest::post_json("test/echo", serde_json::json!({"a": 1})))
        .await
        .expect_err("no retry");
    assert!(matches!(err, HttpError::Status { status: 503, .. }), "{err}");
    assert_eq!(sim.requests_total(), 1);
}

#[tokio::test]
async fn dropped_connections_and_cut_bodies_are_retried() {
    let sim = sim(SimConfig::new(1)
        .with_fault(FaultRule::on_request(1, Fault::DropConnection).on_path("/test"))
        .with_fault(FaultRule::on_request(2, Fault::TruncatedBody).on_path("/test")))
    .await;
    let api = api(&sim).build();
    let r = api.send(&ApiRequest::get("test/items")).await.expect("third time");
    let body: serde_json::Value = r.json().expect("json");
    assert!(body["elements"].is_array());
    assert_eq!(sim.requests_total(), 3);
}

#[tokio::test]
async fn a_refused_connection_gives_up_after_the_attempts() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let http = HttpClient::new().expect("client");
    let api = ApiClient::builder(&http, &format!("http://127.0.0.1:{port}"))
        .expect("base")
        .retry_policy(RetryPolicy { max_attempts: 3, ..fast_retries() })
        .build();
    let err = api.send(&ApiRequest::get("x")).await.expect_err("refused");
    assert!(matches!(err, HttpError::Transport { attempts: 3, .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Transient);
}

fn with_auth(sim: &SimServer, http: &HttpClient, provider: Arc<dyn TokenProvider>) -> ApiClient {
    ApiClient::builder(http, sim.base_url())
        .expect("base")
        .retry_policy(fast_retries())
        .auth(provider, AuthPlacement::BearerHeader)
        .build()
}

fn refresh_provider(http: &HttpClient, sim: &SimServer) -> Arc<dyn TokenProvider> {
    Arc::new(
        OAuthTokenProvider::refresh_token(
            http,
            sim.token_url(),
            "sim-client",
            &Secret::new("sim-secret"),
            &Secret::new("sim-refresh-token"),
            true,
        )
        .expect("provider"),
    )
}

#[tokio::test]
async fn a_token_that_expires_after_n_requests_is_refreshed_once_per_expiry() {
    let sim =
        sim(SimConfig::new(1).with_auth(AuthConfig { expire_after_uses: Some(3), ..AuthConfig::required() }))
            .await;
    let http = HttpClient::new().expect("client");
    let api = with_auth(&sim, &http, refresh_provider(&http, &sim));
    for _ in 0..10 {
        api.send(&ApiRequest::get("test/items")).await.expect("refreshed as needed");
    }
    // Three requests per token: 10 requests need 4 tokens, no more.
    assert_eq!(sim.tokens_issued(), 4);
    assert_eq!(api.telemetry().token_refreshes, 4);
    assert_eq!(api.telemetry().retries.get("token_refused"), Some(&3));
}

#[tokio::test]
async fn concurrent_requests_share_one_refresh() {
    let sim = sim(SimConfig::new(1).with_auth(AuthConfig::required())).await;
    let http = HttpClient::new().expect("client");
    let api = with_auth(&sim, &http, refresh_provider(&http, &sim));
    api.send(&ApiRequest::get("test/items")).await.expect("first");
    assert_eq!(sim.tokens_issued(), 1);
    sim.expire_all_tokens();
    let requests = (0..8).map(|_| {
        let api = api.clone();
        async move { api.send(&ApiRequest::get("test/items")).await }
    });
    for r in futures::future::join_all(requests).await {
        r.expect("after one refresh");
    }
    assert_eq!(sim.tokens_issued(), 2, "one expiry, one refresh");
}

#[tokio::test]
async fn concurrent_requests_outlasting_a_short_lived_token_each_refresh_again() {
    // Eight requests at once on tokens good for two requests each: the retries after the first
    // refresh drain the new token too, and each request refreshes again rather than failing.
    let sim =
        sim(SimConfig::new(1).with_auth(AuthConfig { expire_after_uses: Some(2), ..AuthConfig::required() }))
            .await;
    let http = HttpClient::new().expect("client");
    let api = with_auth(&sim, &http, refresh_provider(&http, &sim));
    let requests = (0..8).map(|_| {
        let api = api.clone();
        async move { api.send(&ApiRequest::get("test/items")).await }
    });
    for r in futures::future::join_all(requests).await {
        r.expect("refreshed as often as its tokens were refused");
    }
    assert!(sim.tokens_issued() <= 5, "{} tokens for 8 requests of 2 uses each", sim.tokens_issued());
}

#[tokio::test]
async fn a_refused_static_token_fails_without_showing_it() {
    let sim = sim(SimConfig::new(1).with_auth(AuthConfig::required())).await;
    let http = HttpClient::new().expect("client");
    let api = with_auth(&sim, &http, Arc::new(StaticToken::new(Secret::new("AQX-very-secret-token"))));
    let err = api.send(&ApiRequest::get("test/items")).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Auth);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("AQX-very-secret-token"), "{shown}");
    assert_eq!(sim.requests_total(), 2, "one refusal, one retry after the (impossible) refresh");
    let request = ApiRequest::get("x").header("Authorization", "Bearer AQX-very-secret-token");
    assert!(!format!("{request:?}").contains("AQX"));
}

#[tokio::test]
async fn a_token_in_the_query_is_redacted_from_errors() {
    let sim =
        sim(SimConfig::new(1).with_fault(FaultRule::always(Fault::server_error(400)).on_path("/test"))).await;
    let http = HttpClient::new().expect("client");
    let api = ApiClient::builder(&http, sim.base_url())
        .expect("base")
        .auth(
            Arc::new(StaticToken::new(Secret::new("EAAB-secret"))),
            AuthPlacement::QueryParam("access_token"),
        )
        .build();
    let err = api.send(&ApiRequest::get("test/items")).await.expect_err("400");
    assert!(!format!("{err} {err:?}").contains("EAAB-secret"));
}

#[tokio::test]
async fn a_service_account_assertion_is_verified_by_the_server() {
    let jwt = JwtBearerConfig::new(PUBLIC_KEY, ISSUER);
    let sim =
        sim(SimConfig::new(1).with_auth(AuthConfig { jwt_bearer: Some(jwt), ..AuthConfig::required() }))
            .await;
    let key_file = serde_json::json!({
        "type": "service_account",
        "client_email": ISSUER,
        "private_key_id": "k1",
        "private_key": PRIVATE_KEY,
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let key = ServiceAccountKey::from_json(&key_file.to_string()).expect("key");
    assert!(!format!("{key:?}").contains("PRIVATE"));
    let http = HttpClient::new().expect("client");
    let provider = OAuthTokenProvider::service_account(
        &http,
        key,
        &["https://www.googleapis.com/auth/analytics.readonly".to_owned()],
        Some(sim.token_url()),
    )
    .expect("provider");
    let api = ApiClient::builder(&http, sim.base_url())
        .expect("base")
        .auth(Arc::new(provider), AuthPlacement::BearerHeader)
        .build();
    api.send(&ApiRequest::get("test/items")).await.expect("authorized");
    assert_eq!(sim.tokens_issued(), 1);

    // Another issuer: the server's verification refuses it, and the error says so.
    let other = serde_json::json!({ "client_email": "intruder@example.com", "private_key": PRIVATE_KEY });
    let provider = OAuthTokenProvider::service_account(
        &http,
        ServiceAccountKey::from_json(&other.to_string()).expect("key"),
        &[],
        Some(sim.token_url()),
    )
    .expect("provider");
    let err = provider.token().await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!err.to_string().contains("BEGIN"), "{err}");
}

#[test]
fn a_key_file_without_a_key_is_a_clear_error() {
    let err = ServiceAccountKey::from_json(r#"{"client_email":"a@b.c","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#)
        .expect_err("bad key");
    assert!(err.to_string().contains("not an RSA private key"), "{err}");
}

async fn collect(api: &ApiClient, first: ApiRequest, pagination: Pagination) -> (Vec<usize>, Option<String>) {
    let mut pages = api.paginate(first, pagination).boxed();
    let mut items = Vec::new();
    let mut error = None;
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => items.push(p.items),
            Err(e) => error = Some(e.to_string()),
        }
    }
    (items, error)
}

#[tokio::test]
async fn every_pagination_kind_reads_every_item() {
    let sim = sim(SimConfig::new(1)).await;
    let api = api(&sim).build();
    let kinds = [
        (
            ApiRequest::get("test/items"),
            PageKind::Cursor { param: "cursor".into(), next: "/paging/next_cursor".into() },
            "/elements",
        ),
        (ApiRequest::get("test/next"), PageKind::NextUrl { next: "/paging/next".into() }, "/data"),
        (
            ApiRequest::get("test/offset"),
            PageKind::OffsetLimit { offset_param: "offset".into(), limit_param: "limit".into(), limit: 10 },
            "/items",
        ),
        (
            ApiRequest::get("test/pages"),
            PageKind::PageToken { param: "pageToken".into(), next: "/nextPageToken".into() },
            "/rows",
        ),
    ];
    for (first, kind, items) in kinds {
        let (pages, error) = collect(&api, first, Pagination::new(kind.clone(), items)).await;
        assert_eq!(error, None, "{kind:?}");
        assert_eq!(pages.iter().sum::<usize>(), 95, "{kind:?}: {pages:?}");
        assert_eq!(pages.len(), 10, "{kind:?}: {pages:?}");
    }
}

#[tokio::test]
async fn a_next_url_paginator_stops_on_a_repeated_cursor() {
    let sim = sim(SimConfig::new(1)
        .with_test_routes(TestRoutesConfig { repeat_cursor: true, ..TestRoutesConfig::default() }))
    .await;
    let api = api(&sim).build();
    let (pages, error) = collect(
        &api,
        ApiRequest::get("test/next"),
        Pagination::new(PageKind::NextUrl { next: "/paging/next".into() }, "/data"),
    )
    .await;
    assert_eq!(error, None);
    assert!(pages.len() <= 3, "{pages:?}");
    assert_eq!(sim.requests_total() as usize, pages.len());
}

#[tokio::test]
async fn a_page_cap_ends_an_endless_listing() {
    let sim = sim(SimConfig::new(1)
        .with_test_routes(TestRoutesConfig { total_items: 1_000_000, ..TestRoutesConfig::default() }))
    .await;
    let api = api(&sim).build();
    let pagination = Pagination::new(
        PageKind::Cursor { param: "cursor".into(), next: "/paging/next_cursor".into() },
        "/elements",
    )
    .max_pages(5);
    let (pages, _) = collect(&api, ApiRequest::get("test/items"), pagination).await;
    assert_eq!(pages.len(), 5);
}

#[tokio::test]
async fn a_malformed_page_is_fetched_again() {
    let sim =
        sim(SimConfig::new(1).with_fault(FaultRule::on_request(2, Fault::MalformedJson).on_path("/test")))
            .await;
    let api = api(&sim).build();
    let pagination = Pagination::new(
        PageKind::Cursor { param: "cursor".into(), next: "/paging/next_cursor".into() },
        "/elements",
    );
    let (pages, error) = collect(&api, ApiRequest::get("test/items"), pagination).await;
    assert_eq!(error, None);
    assert_eq!(pages.iter().sum::<usize>(), 95);
    assert_eq!(api.telemetry().retries.get("malformed_body"), Some(&1));
}

#[tokio::test]
async fn a_page_that_stays_malformed_is_an_error_carrying_the_body_not_a_panic() {
    let sim =
        sim(SimConfig::new(1).with_fault(FaultRule::after(1, Fault::MalformedJson).on_path("/test"))).await;
    let api = api(&sim).build();
    let pagination = Pagination::new(
        PageKind::Cursor { param: "cursor".into(), next: "/paging/next_cursor".into() },
        "/elements",
    );
    let mut pages = api.paginate(ApiRequest::get("test/items"), pagination).boxed();
    let first = pages.next().await.expect("a first page").expect("the first page is fine");
    assert_eq!(first.items, 10);
    let err = pages.next().await.expect("an error").expect_err("the second page stays malformed");
    assert_eq!(err.kind(), ErrorKind::Data);
    assert!(matches!(err, HttpError::Malformed { attempts: 6, .. }), "{err:?}");
    let record = err.to_quarantined("items").expect("a quarantinable error");
    assert!(record.raw.starts_with('{') && record.raw.contains("elements"), "{}", record.raw);
    assert!(record.location.contains("/test/items"));
}

#[tokio::test]
async fn the_rate_limiter_keeps_requests_under_the_quota() {
    let sim =
        sim(SimConfig::new(1).with_quota(QuotaRule::rolling_window(10, Duration::from_millis(500)))).await;
    let limiter =
        RateLimiter::new(RateLimit::new(10, Duration::from_millis(500)).with_burst(2)).expect("limit");
    let api = api(&sim).rate_limit(limiter, "app").build();
    let requests = (0..25).map(|_| {
        let api = api.clone();
        async move { api.send(&ApiRequest::get("test/items")).await }
    });
    for r in futures::future::join_all(requests).await {
        r.expect("no 429 needed");
    }
    assert_eq!(sim.requests_over_quota(), 0);
    assert_eq!(sim.requests_total(), 25);
    assert!(api.telemetry().throttle_waits > 0);
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let http = HttpClient::new().expect("client");
    let err = ApiClient::builder(&http, "http://api.linkedin.com").expect_err("plain http");
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A token endpoint that answers 503 (or cannot be reached) is asked again with the API
/// requests' backoff; an `invalid_grant` refusal (RFC 6749 §5.2) is final at once.
#[tokio::test]
async fn a_token_endpoint_503_is_retried_and_a_refusal_is_not() {
    let probe = sim(SimConfig::new(1)).await;
    let token_path = url::Url::parse(probe.token_url()).expect("a URL").path().to_owned();
    let sim = sim(SimConfig::new(1)
        .with_auth(AuthConfig::required())
        .with_fault(FaultRule::on_requests([1, 2], Fault::server_error(503)).on_path(token_path.clone())))
    .await;
    let http = HttpClient::new().expect("client");
    let provider = |refresh: &str| {
        OAuthTokenProvider::refresh_token(
            &http,
            sim.token_url(),
            "sim-client",
            &Secret::new("sim-secret"),
            &Secret::new(refresh),
            true,
        )
        .expect("provider")
        .with_retry(fast_retries())
    };
    provider("sim-refresh-token").token().await.expect("a token on the third request");
    assert_eq!(sim.tokens_issued(), 1);

    let refused = provider("a-revoked-refresh-token").token().await.expect_err("refused");
    assert!(matches!(refused, HttpError::Auth(_)), "{refused}");
    assert_eq!(refused.kind(), ErrorKind::Auth);

    // Unreachable: every attempt, then a transient error (not an authentication error).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let unreachable = OAuthTokenProvider::refresh_token(
        &http,
        &format!("http://{closed}/oauth/v2/accessToken"),
        "c",
        &Secret::new("s"),
        &Secret::new("r"),
        true,
    )
    .expect("provider")
    .with_retry(fast_retries());
    let err = unreachable.token().await.expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("(6 attempt(s))"), "{err}");
}
