//! Fault injection: 429 with and without `Retry-After`, 5xx with JSON bodies, dropped
//! connections, truncated and malformed bodies, throttling errors in 200/400 bodies, delays,
//! seeded random faults and path restriction.

use std::time::{Duration, Instant};

use kpipe_sim::platform::facebook;
use kpipe_sim::{Fault, FaultRule, SimConfig, SimServer};
use serde_json::Value;

use crate::client;

#[tokio::test]
async fn scripted_429s_with_and_without_retry_after() {
    let sim = SimServer::start(
        SimConfig::new(1)
            .with_fault(FaultRule::on_request(1, Fault::too_many_requests(Some(2))))
            .with_fault(FaultRule::on_request(2, Fault::too_many_requests(None))),
    )
    .await
    .unwrap();
    let http = client();
    let first = http.get(sim.url("/test/items")).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "2");
    let second = http.get(sim.url("/test/items")).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().get("retry-after").is_none());
    assert_eq!(http.get(sim.url("/test/items")).send().await.unwrap().status(), 200);
    assert_eq!(sim.faults_injected(), 2);
    // Injected 429s are faults, not quota rejections.
    assert_eq!(sim.requests_over_quota(), 0);
}

#[tokio::test]
async fn server_errors_carry_json_bodies() {
    let sim = SimServer::start(
        SimConfig::new(2)
            .with_fault(FaultRule::on_request(1, Fault::server_error(500)))
            .with_fault(FaultRule::on_request(2, Fault::server_error(502)))
            .with_fault(FaultRule::on_request(3, Fault::server_error(503))),
    )
    .await
    .unwrap();
    for expected in [500, 502, 503] {
        let (status, headers, body) = crate::get_json(&sim.url("/test/items")).await;
        assert_eq!(status, expected);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["status"], expected);
        assert!(body["message"].is_string());
    }
    assert_eq!(crate::get_json(&sim.url("/test/items")).await.0, 200);
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error() {
    let sim = SimServer::start(SimConfig::new(3).with_fault(FaultRule::on_request(2, Fault::DropConnection)))
        .await
        .unwrap();
    let http = client();
    // The first request opens a keep-alive connection; the second is sent on it and dropped.
    assert_eq!(http.get(sim.url("/test/items")).send().await.unwrap().status(), 200);
    let error = http.get(sim.url("/test/items")).send().await.unwrap_err();
    assert!(error.status().is_none(), "no HTTP status for a dropped connection: {error:?}");
    assert!(error.is_request() || error.is_connect() || error.is_body(), "{error:?}");
    // The client recovers on a fresh connection.
    assert_eq!(http.get(sim.url("/test/items")).send().await.unwrap().status(), 200);
    assert_eq!(sim.connections_dropped(), 1);
    assert_eq!(sim.requests()[1].status, None);
}

#[tokio::test]
async fn a_truncated_body_fails_while_reading() {
    let sim = SimServer::start(SimConfig::new(4).with_fault(FaultRule::on_request(1, Fault::TruncatedBody)))
        .await
        .unwrap();
    let http = client();
    let response = http.get(sim.url("/test/items?page_size=50")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let declared: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(declared > 100);
    let error = response.bytes().await.unwrap_err();
    assert!(error.is_body() || error.is_decode() || error.is_request(), "{error:?}");
    let whole = http.get(sim.url("/test/items?page_size=50")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(whole.len(), declared);
}

#[tokio::test]
async fn malformed_json_arrives_whole_but_does_not_parse() {
    let sim = SimServer::start(SimConfig::new(5).with_fault(FaultRule::on_request(1, Fault::MalformedJson)))
        .await
        .unwrap();
    let http = client();
    let response = http.get(sim.url("/test/items")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    let good = http.get(sim.url("/test/items")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&good[..bytes.len()], &bytes[..], "the first half of the real body");
}

#[tokio::test]
async fn throttling_errors_in_200_and_400_bodies() {
    let sim = SimServer::start(
        SimConfig::new(6)
            .with_fault(FaultRule::on_request(1, Fault::Respond(facebook::user_request_limit(200))))
            .with_fault(FaultRule::on_request(2, Fault::Respond(facebook::ad_account_limit()))),
    )
    .await
    .unwrap();
    let (status, _, body) = crate::get_json(&sim.url("/test/next")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException",
                                     "code": 17, "error_subcode": 2446079, "fbtrace_id": "ASimTrace"}})
    );
    let (status, _, body) = crate::get_json(&sim.url("/test/next")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 80000);
}

#[tokio::test]
async fn faults_can_be_restricted_to_a_path() {
    let sim = SimServer::start(
        SimConfig::new(7).with_fault(FaultRule::always(Fault::server_error(503)).on_path("/test/pages")),
    )
    .await
    .unwrap();
    assert_eq!(crate::get_json(&sim.url("/test/items")).await.0, 200);
    assert_eq!(crate::get_json(&sim.url("/test/pages")).await.0, 503);
}

#[tokio::test]
async fn a_delay_fault_slows_one_request() {
    let sim = SimServer::start(
        SimConfig::new(8).with_fault(FaultRule::on_request(1, Fault::Delay(Duration::from_millis(150)))),
    )
    .await
    .unwrap();
    let started = Instant::now();
    assert_eq!(crate::get_json(&sim.url("/test/items")).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn random_faults_are_reproducible_with_the_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let sim = SimServer::start(
            SimConfig::new(seed).with_fault(FaultRule::with_probability(0.4, Fault::server_error(503))),
        )
        .await
        .unwrap();
        let http = client();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(http.get(sim.url("/test/items")).send().await.unwrap().status().as_u16());
        }
        statuses
    }
    let a = pattern(11).await;
    assert_eq!(a, pattern(11).await);
    assert_ne!(a, pattern(12).await);
    let failures = a.iter().filter(|s| **s == 503).count();
    assert!((5..=30).contains(&failures), "{failures} of 40 at p = 0.4");
}
