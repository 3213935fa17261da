//! The generic `/test/...` routes: each pagination style, the repeat-cursor mode, bad input,
//! and seeded data.

use kpipe_sim::platform::test_routes::item;
use kpipe_sim::{SimConfig, SimServer, TestRoutesConfig};
use serde_json::Value;

use crate::get_json;

fn ids(items: &Value) -> Vec<u64> {
    items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().parse().unwrap()).collect()
}

#[tokio::test]
async fn cursor_in_body_pager_walks_every_item_once() {
    let sim = SimServer::start(SimConfig::new(1)).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => sim.url(&format!("/test/items?page_size=10&cursor={c}")),
            None => sim.url("/test/items?page_size=10"),
        };
        let (status, headers, body) = get_json(&url).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/json");
        pages += 1;
        seen.extend(ids(&body["elements"]));
        match body["paging"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 10);
    assert_eq!(seen, (1..=95).collect::<Vec<_>>());
    assert_eq!(sim.requests_for("/test/items"), 10);
    // Values are seeded decimal strings.
    let (_, _, first) = get_json(&sim.url("/test/items?page_size=1")).await;
    assert_eq!(first["elements"][0], item(1, 0));
    assert!(first["elements"][0]["value"].as_str().unwrap().parse::<f64>().is_ok());
}

#[tokio::test]
async fn next_url_pager_gives_absolute_links_that_keep_the_parameters() {
    let sim =
        SimServer::start(SimConfig::new(2).with_test_routes(TestRoutesConfig::with_total(25))).await.unwrap();
    let mut url = sim.url("/test/next?limit=10&fields=id%2Cvalue");
    let mut seen = Vec::new();
    let mut links = Vec::new();
    loop {
        let (status, _, body) = get_json(&url).await;
        assert_eq!(status, 200);
        seen.extend(ids(&body["data"]));
        assert!(body["paging"]["cursors"]["after"].is_string());
        match body["paging"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&format!("{}/test/next?", sim.base_url())), "{next}");
                assert!(
                    next.contains("limit=10")
                        && next.contains("fields=id%2Cvalue")
                        && next.contains("after=")
                );
                links.push(next.to_owned());
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(links.len(), 2);
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
}

#[tokio::test]
async fn offset_pager_reports_the_total() {
    let sim = SimServer::start(SimConfig::new(3)).await.unwrap();
    let (_, _, body) = get_json(&sim.url("/test/offset?offset=20&limit=10&total=23")).await;
    assert_eq!(ids(&body["items"]), vec![21, 22, 23]);
    assert_eq!(
        (body["offset"].as_u64(), body["limit"].as_u64(), body["total"].as_u64()),
        (Some(20), Some(10), Some(23))
    );
    let (status, _, past_end) = get_json(&sim.url("/test/offset?offset=50&limit=10&total=23")).await;
    assert_eq!(status, 200);
    assert!(past_end["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn page_token_pager_omits_the_token_on_the_last_page() {
    let sim = SimServer::start(SimConfig::new(4)).await.unwrap();
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let (_, _, body) =
            get_json(&sim.url(&format!("/test/pages?pageSize=40&total=90&pageToken={token}"))).await;
        seen.extend(ids(&body["rows"]));
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 90);
    assert_eq!(sim.requests_for("/test/pages"), 3);
}

#[tokio::test]
async fn an_empty_collection_has_no_next_page() {
    let sim =
        SimServer::start(SimConfig::new(5).with_test_routes(TestRoutesConfig::with_total(0))).await.unwrap();
    let (_, _, items) = get_json(&sim.url("/test/items")).await;
    assert_eq!(items, serde_json::json!({"elements": [], "paging": {}}));
    let (_, _, next) = get_json(&sim.url("/test/next")).await;
    assert_eq!(next, serde_json::json!({"data": [], "paging": {}}));
}

#[tokio::test]
async fn repeat_cursor_mode_returns_the_same_cursor_forever() {
    let routes = TestRoutesConfig { repeat_cursor: true, ..TestRoutesConfig::with_total(30) };
    let sim = SimServer::start(SimConfig::new(6).with_test_routes(routes)).await.unwrap();
    let (_, _, first) = get_json(&sim.url("/test/items?page_size=10")).await;
    let cursor = first["paging"]["next_cursor"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let (_, _, page) = get_json(&sim.url(&format!("/test/items?page_size=10&cursor={cursor}"))).await;
        assert_eq!(page["paging"]["next_cursor"].as_str(), Some(cursor.as_str()));
        assert_eq!(ids(&page["elements"]), (11..=20).collect::<Vec<_>>());
    }
    // The other pagers repeat too, even past the end.
    let (_, _, token_page) = get_json(&sim.url("/test/pages?pageSize=10")).await;
    let token = token_page["nextPageToken"].as_str().unwrap().to_owned();
    let (_, _, again) = get_json(&sim.url(&format!("/test/pages?pageSize=10&pageToken={token}"))).await;
    assert_eq!(again["nextPageToken"].as_str(), Some(token.as_str()));
    let (_, _, next_page) = get_json(&sim.url("/test/next?limit=10")).await;
    let next = next_page["paging"]["next"].as_str().unwrap().to_owned();
    let (_, _, next_again) = get_json(&next).await;
    assert_eq!(next_again["paging"]["next"].as_str(), Some(next.as_str()));
}

#[tokio::test]
async fn bad_paging_parameters_are_400s() {
    let sim = SimServer::start(SimConfig::new(7)).await.unwrap();
    for path in [
        "/test/items?cursor=not-a-cursor",
        "/test/items?page_size=0",
        "/test/pages?pageSize=100000",
        "/test/offset?offset=-1",
    ] {
        let (status, _, body) = get_json(&sim.url(path)).await;
        assert_eq!(status, 400, "{path}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_pages() {
    let a = SimServer::start(SimConfig::new(99)).await.unwrap();
    let b = SimServer::start(SimConfig::new(99)).await.unwrap();
    let c = SimServer::start(SimConfig::new(100)).await.unwrap();
    let path = "/test/items?page_size=50";
    let (_, _, body_a) = get_json(&a.url(path)).await;
    let (_, _, body_b) = get_json(&b.url(path)).await;
    let (_, _, body_c) = get_json(&c.url(path)).await;
    assert_eq!(body_a, body_b);
    assert_ne!(body_a["elements"], body_c["elements"]);
}
