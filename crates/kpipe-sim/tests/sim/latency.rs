//! Latency: fixed, uniform in a range (seeded), per-path overrides, and the token endpoint's own.

use std::time::{Duration, Instant};

use kpipe_sim::{Latency, SimConfig, SimServer};

use crate::client;

async fn timed(http: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let response = http.get(url).send().await.unwrap();
    response.bytes().await.unwrap();
    started.elapsed()
}

#[tokio::test]
async fn fixed_latency_delays_every_api_response() {
    let sim = SimServer::start(SimConfig::new(1).with_latency(Latency::fixed_ms(80))).await.unwrap();
    let http = client();
    for _ in 0..3 {
        assert!(timed(&http, &sim.url("/test/items")).await >= Duration::from_millis(80));
    }
}

#[tokio::test]
async fn uniform_latency_stays_within_its_range() {
    let sim = SimServer::start(SimConfig::new(2).with_latency(Latency::uniform_ms(20, 60))).await.unwrap();
    let http = client();
    // Ten concurrent requests: each waits its own draw, so the batch takes about the longest one.
    let started = Instant::now();
    let url = sim.url("/test/items");
    let futures: Vec<_> = (0..10).map(|_| timed(&http, &url)).collect();
    let times = futures::future::join_all(futures).await;
    for t in &times {
        assert!(*t >= Duration::from_millis(20), "{t:?}");
    }
    assert!(started.elapsed() < Duration::from_millis(600), "requests are delayed concurrently");
}

#[tokio::test]
async fn path_overrides_and_the_token_endpoint() {
    let sim = SimServer::start(
        SimConfig::new(3).with_latency(Latency::fixed_ms(150)).with_path_latency("/test/echo", Latency::None),
    )
    .await
    .unwrap();
    let http = client();
    assert!(timed(&http, &sim.url("/test/echo")).await < Duration::from_millis(150));
    let started = Instant::now();
    let response = http
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
    assert!(started.elapsed() < Duration::from_millis(150), "token_latency defaults to none");
    assert!(timed(&http, &sim.url("/test/items")).await >= Duration::from_millis(150));
}

#[tokio::test]
async fn an_impossible_range_is_a_configuration_error() {
    let error =
        SimServer::start(SimConfig::new(4).with_latency(Latency::uniform_ms(50, 10))).await.unwrap_err();
    assert!(matches!(error, kpipe_sim::SimError::Config(_)), "{error}");
}
