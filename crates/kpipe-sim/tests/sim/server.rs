//! The server itself: counters and the request log, echo/status/404 routes, a custom platform
//! module mounted through the extension point, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use kpipe_sim::{Fault, FaultRule, Platform, PlatformContext, SimConfig, SimServer};
use serde_json::json;

use crate::client;

#[tokio::test]
async fn counters_and_request_log() {
    let sim = SimServer::start(SimConfig::new(1)).await.unwrap();
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.token_url(), format!("{}/oauth/token", sim.base_url()));
    let http = client();
    http.get(sim.url("/test/items?page_size=2")).header("x-trace", "abc").send().await.unwrap();
    http.get(sim.url("/test/items")).send().await.unwrap();
    http.get(sim.url("/test/pages")).send().await.unwrap();
    let missing = http.get(sim.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(sim.requests_total(), 4);
    assert_eq!(sim.requests_for("/test/items"), 2);
    assert_eq!(sim.requests_for("/nowhere"), 1);
    assert_eq!(sim.path_counts().len(), 3);
    let log = sim.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].number, 1);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].query.as_deref(), Some("page_size=2"));
    assert_eq!(log[0].header("X-Trace"), Some("abc"));
    assert_eq!(log[3].status, Some(404));
}

#[tokio::test]
async fn echo_and_status_routes() {
    let sim = SimServer::start(SimConfig::new(2)).await.unwrap();
    let body: serde_json::Value = client()
        .post(sim.url("/test/echo?a=1"))
        .header("linkedin-version", "202601")
        .body("hello")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["query"], "a=1");
    assert_eq!(body["headers"]["linkedin-version"], "202601");
    assert_eq!(body["body"], "hello");
    let (status, _, body) = crate::get_json(&sim.url("/test/status/418")).await;
    assert_eq!((status, body["status"].as_u64()), (418, Some(418)));
}

#[derive(Debug)]
struct Widgets;

impl Platform for Widgets {
    fn name(&self) -> &str {
        "widgets"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        let value = ctx.rng("widgets", 0).next_u64() % 1000;
        let next = format!("{}/widgets/v1/list?page=2", ctx.base_url());
        Router::new().route(
            "/widgets/v1/list",
            get(move || async move { Json(json!({"value": value, "next": next})) }),
        )
    }
}

#[tokio::test]
async fn a_platform_module_is_mounted_behind_the_same_machinery() {
    let faulty = SimConfig::new(3)
        .with_platform(Arc::new(Widgets))
        .with_fault(FaultRule::on_request(1, Fault::server_error(503)).on_path("/widgets"));
    let a = SimServer::start(faulty).await.unwrap();
    let b = SimServer::start(SimConfig::new(3).with_platform(Arc::new(Widgets))).await.unwrap();
    assert_eq!(crate::get_json(&a.url("/widgets/v1/list")).await.0, 503, "faults apply to platform routes");
    let (status, _, body_a) = crate::get_json(&a.url("/widgets/v1/list")).await;
    assert_eq!(status, 200);
    assert_eq!(body_a["next"], format!("{}/widgets/v1/list?page=2", a.base_url()));
    let (_, _, body_b) = crate::get_json(&b.url("/widgets/v1/list")).await;
    assert_eq!(body_a["value"], body_b["value"], "seeded");
    assert_eq!(a.requests_for("/widgets/v1/list"), 2);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let sim = SimServer::start(SimConfig::new(4)).await.unwrap();
    let url = sim.url("/test/items");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    sim.shutdown().await;
    assert!(client().get(&url).send().await.is_err());

    let dropped = SimServer::start(SimConfig::new(5)).await.unwrap();
    let url = dropped.url("/test/items");
    drop(dropped);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client().get(&url).send().await.is_err());
}
