//! Quotas: fixed and rolling windows with `Retry-After`, keyed counters, the never-resetting
//! daily cap with a LinkedIn-style body, and the over-quota counter.

use std::time::Duration;

use kpipe_sim::platform::{ga4, hubspot, linkedin};
use kpipe_sim::{QuotaKey, QuotaRule, RetryAfter, SimConfig, SimServer};
use serde_json::json;

use crate::client;

async fn status_and_retry_after(request: reqwest::RequestBuilder) -> (u16, Option<String>) {
    let response = request.send().await.unwrap();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry)
}

#[tokio::test]
async fn fixed_window_refuses_with_retry_after_then_resets() {
    // Windows start when the server starts: the burst below fits well inside the first one.
    let window = Duration::from_millis(600);
    let sim =
        SimServer::start(SimConfig::new(1).with_quota(QuotaRule::fixed_window(3, window))).await.unwrap();
    let http = client();
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(status_and_retry_after(http.get(sim.url("/test/items"))).await);
    }
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!((ok, refused.len()), (3, 2), "{results:?}");
    for (_, retry) in &refused {
        assert_eq!(retry.as_deref(), Some("1"), "a sub-second wait rounds up to 1 s");
    }
    assert_eq!(sim.requests_over_quota(), refused.len() as u64);
    assert_eq!(sim.rejections_for_quota("fixed_window"), refused.len() as u64);
    tokio::time::sleep(window).await;
    assert_eq!(status_and_retry_after(http.get(sim.url("/test/items"))).await.0, 200);
    assert_eq!(sim.requests_total(), 6);
}

#[tokio::test]
async fn rolling_window_is_counted_per_key() {
    let rule = QuotaRule::rolling_window(2, Duration::from_secs(5))
        .keyed_by(QuotaKey::Header("x-account".to_owned()))
        .with_retry_after(RetryAfter::Seconds(7));
    let sim = SimServer::start(SimConfig::new(2).with_quota(rule)).await.unwrap();
    let http = client();
    let get = |account: &str| http.get(sim.url("/test/echo")).header("x-account", account);
    assert_eq!(status_and_retry_after(get("a")).await.0, 200);
    assert_eq!(status_and_retry_after(get("a")).await.0, 200);
    assert_eq!(status_and_retry_after(get("a")).await, (429, Some("7".to_owned())));
    assert_eq!(status_and_retry_after(get("b")).await.0, 200);
    assert_eq!(sim.requests_over_quota(), 1);
}

#[tokio::test]
async fn daily_cap_answers_like_linkedin_and_never_resets() {
    let rule = linkedin::daily_quota(2).keyed_by(QuotaKey::QueryParam("account".to_owned()));
    let sim = SimServer::start(SimConfig::new(3).with_quota(rule)).await.unwrap();
    let http = client();
    for _ in 0..2 {
        assert_eq!(http.get(sim.url("/test/items?account=1")).send().await.unwrap().status(), 200);
    }
    for _ in 0..3 {
        let response = http.get(sim.url("/test/items?account=1")).send().await.unwrap();
        assert_eq!(response.status(), 429);
        assert!(response.headers().get("retry-after").is_none());
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
                   "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."})
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another account still has its quota.
    assert_eq!(http.get(sim.url("/test/items?account=2")).send().await.unwrap().status(), 200);
    assert_eq!(sim.requests_over_quota(), 3);
    assert_eq!(sim.rejections_for_quota("linkedin_daily"), 3);
}

#[tokio::test]
async fn platform_quota_presets_use_their_envelopes() {
    let sim = SimServer::start(
        SimConfig::new(4)
            .with_quota(ga4::daily_quota(0).on_path("/test/pages"))
            .with_quota(hubspot::burst_quota(0, Duration::from_secs(10)).on_path("/test/items")),
    )
    .await
    .unwrap();
    let (status, headers, body) = crate::get_json(&sim.url("/test/pages")).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let (status, headers, body) = crate::get_json(&sim.url("/test/items")).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "10");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(crate::get_json(&sim.url("/test/offset")).await.0, 200);
}

#[tokio::test]
async fn the_token_endpoint_is_outside_unrestricted_quotas() {
    let sim = SimServer::start(SimConfig::new(5).with_quota(QuotaRule::daily(0))).await.unwrap();
    let response = client()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(client().get(sim.url("/test/items")).send().await.unwrap().status(), 429);
    assert_eq!(sim.requests_over_quota(), 1);
}
