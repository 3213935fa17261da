//! Generic JSON routes under `/test/` for the HTTP runtime's tests and the rate-limit benchmark,
//! one per pagination style, plus an echo and a status route.
//!
//! | route | pager | response |
//! |---|---|---|
//! | `GET /test/items?cursor=&page_size=` | cursor in the body | `{"elements":[..],"paging":{"next_cursor":"..."}}` |
//! | `GET /test/next?after=&limit=` | absolute next URL | `{"data":[..],"paging":{"cursors":{"before","after"},"next":"http://127.0.0.1:PORT/test/next?...&after=..."}}` |
//! | `GET /test/offset?offset=&limit=` | offset / limit | `{"items":[..],"offset":0,"limit":10,"total":95}` |
//! | `GET /test/pages?pageToken=&pageSize=` | page token | `{"rows":[..],"nextPageToken":"..."}` |
//! | `ANY /test/echo` | — | the request: method, path, query, headers, body |
//! | `GET /test/status/{code}` | — | that status with `{"status":code,"message":..}` |
//!
//! Items are `{"id":"1","value":"12.5"}` with ids `1..=total` and seeded decimal-string values.
//! The next-page marker is absent on the last page. Every pager also accepts `total=` to
//! override the configured item count for one request.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{any, get};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use crate::config::CannedResponse;
use crate::platform::{Platform, PlatformContext};
use crate::rng::SimRng;

/// The knobs of the `/test/...` routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRoutesConfig {
    /// Items in the collection (default 95: ten pages of ten, the last one short).
    pub total_items: u64,
    /// The page size when the request names none (default 10).
    pub default_page_size: u64,
    /// The largest page size accepted; larger requests get 400 (default 1000).
    pub max_page_size: u64,
    /// When set, the cursor, next URL and page token never end: the second page's marker is
    /// returned again and again (to test that a client stops on a repeated cursor).
    pub repeat_cursor: bool,
}

impl Default for TestRoutesConfig {
    fn default() -> Self {
        Self { total_items: 95, default_page_size: 10, max_page_size: 1000, repeat_cursor: false }
    }
}

impl TestRoutesConfig {
    /// The default routes serving `total_items` items.
    #[must_use]
    pub fn with_total(total_items: u64) -> Self {
        Self { total_items, ..Self::default() }
    }
}

/// The `/test/...` routes as a [`Platform`].
#[derive(Debug, Clone)]
pub(crate) struct TestRoutes {
    config: TestRoutesConfig,
}

impl TestRoutes {
    pub(crate) fn new(config: TestRoutesConfig) -> Self {
        Self { config }
    }
}

#[derive(Debug)]
struct TestState {
    config: TestRoutesConfig,
    seed: u64,
    base_url: String,
}

impl Platform for TestRoutes {
    fn name(&self) -> &str {
        "test"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        let state = Arc::new(TestState {
            config: self.config,
            seed: ctx.seed(),
            base_url: ctx.base_url().to_owned(),
        });
        Router::new()
            .route("/test/items", get(items))
            .route("/test/next", get(next_url))
            .route("/test/offset", get(offset_limit))
            .route("/test/pages", get(page_token))
            .route("/test/echo", any(echo))
            .route("/test/status/{code}", get(status))
            .with_state(state)
    }
}

/// The item at 0-based `index`: `{"id": "<index+1>", "value": "<decimal>"}`.
#[must_use]
pub fn item(seed: u64, index: u64) -> Value {
    let cents = SimRng::derive(seed, "test-item", index).range(0, 100_000);
    json!({"id": (index + 1).to_string(), "value": decimal(cents)})
}

/// `1250` -> `"12.5"`, `1200` -> `"12"`, `1234` -> `"12.34"` (no trailing zeros, like Meta).
fn decimal(cents: u64) -> String {
    match cents % 100 {
        0 => (cents / 100).to_string(),
        c if c % 10 == 0 => format!("{}.{}", cents / 100, c / 10),
        c => format!("{}.{c:02}", cents / 100),
    }
}

pub(crate) fn encode_position(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("pos:{offset}"))
}

pub(crate) fn decode_position(marker: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(marker).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("pos:")?.parse().ok()
}

fn bad_request(message: &str) -> Response {
    CannedResponse::json(400, json!({"status": 400, "message": message})).to_response()
}

fn ok(body: Value) -> Response {
    CannedResponse::json(200, body).to_response()
}

struct Page {
    items: Vec<Value>,
    offset: u64,
    size: u64,
    total: u64,
    /// The next page's position; `None` on the last page.
    next: Option<u64>,
}

impl TestState {
    /// Reads `total`, the page size (`size_key`) and the position (`marker_key`, a cursor).
    fn page(&self, params: &[(String, String)], size_key: &str, marker_key: &str) -> Result<Page, String> {
        let offset = match param(params, marker_key) {
            None | Some("") => 0,
            Some(marker) => decode_position(marker).ok_or_else(|| "Invalid cursor".to_owned())?,
        };
        self.page_at(params, size_key, offset)
    }

    /// The page at `offset`; `Err` is the message of a 400.
    fn page_at(&self, params: &[(String, String)], size_key: &str, offset: u64) -> Result<Page, String> {
        let total = match param(params, "total") {
            None => self.config.total_items,
            Some(t) => t.parse().map_err(|_| "total must be a non-negative integer".to_owned())?,
        };
        let size = match param(params, size_key) {
            None => self.config.default_page_size,
            Some(s) => s.parse().map_err(|_| format!("{size_key} must be an integer"))?,
        };
        if size == 0 || size > self.config.max_page_size {
            return Err(format!("{size_key} must be within 1..={}", self.config.max_page_size));
        }
        let end = offset.saturating_add(size).min(total);
        let items = (offset..end).map(|i| item(self.seed, i)).collect();
        let next = if self.config.repeat_cursor { Some(size) } else { (end < total).then_some(end) };
        Ok(Page { items, offset, size, total, next })
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn params_of(query: Option<String>) -> Vec<(String, String)> {
    query.as_deref().map(crate::query_pairs).unwrap_or_default()
}

/// `GET /test/items?cursor=&page_size=`: a cursor in the body.
async fn items(State(state): State<Arc<TestState>>, RawQuery(query): RawQuery) -> Response {
    let params = params_of(query);
    let page = match state.page(&params, "page_size", "cursor") {
        Ok(page) => page,
        Err(message) => return bad_request(&message),
    };
    let mut paging = Map::new();
    if let Some(next) = page.next {
        paging.insert("next_cursor".to_owned(), Value::String(encode_position(next)));
    }
    ok(json!({"elements": page.items, "paging": paging}))
}

/// `GET /test/next?after=&limit=`: Graph-API style, an absolute `paging.next` URL.
async fn next_url(State(state): State<Arc<TestState>>, RawQuery(query): RawQuery) -> Response {
    let params = params_of(query);
    let page = match state.page(&params, "limit", "after") {
        Ok(page) => page,
        Err(message) => return bad_request(&message),
    };
    let mut paging = Map::new();
    if !page.items.is_empty() {
        let before = encode_position(page.offset);
        let after = encode_position(page.offset + page.items.len() as u64);
        paging.insert("cursors".to_owned(), json!({"before": before, "after": after}));
    }
    if let Some(next) = page.next {
        let marker = encode_position(next);
        let kept = params.iter().filter(|(k, _)| k != "after").map(|(k, v)| (k.as_str(), v.as_str()));
        let query = crate::encode_query(kept.chain([("after", marker.as_str())]));
        paging.insert("next".to_owned(), Value::String(format!("{}/test/next?{query}", state.base_url)));
    }
    ok(json!({"data": page.items, "paging": paging}))
}

/// `GET /test/offset?offset=&limit=`: offset / limit with `total`.
async fn offset_limit(State(state): State<Arc<TestState>>, RawQuery(query): RawQuery) -> Response {
    let params = params_of(query);
    let offset = match param(&params, "offset").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => return bad_request("offset must be a non-negative integer"),
    };
    match state.page_at(&params, "limit", offset) {
        Ok(page) => {
            ok(json!({"items": page.items, "offset": page.offset, "limit": page.size, "total": page.total}))
        }
        Err(message) => bad_request(&message),
    }
}

/// `GET /test/pages?pageToken=&pageSize=`: Google style `nextPageToken`.
async fn page_token(State(state): State<Arc<TestState>>, RawQuery(query): RawQuery) -> Response {
    let params = params_of(query);
    let page = match state.page(&params, "pageSize", "pageToken") {
        Ok(page) => page,
        Err(message) => return bad_request(&message),
    };
    let mut body = Map::new();
    body.insert("rows".to_owned(), Value::Array(page.items));
    if let Some(next) = page.next {
        body.insert("nextPageToken".to_owned(), Value::String(encode_position(next)));
    }
    ok(Value::Object(body))
}

/// `ANY /test/echo`: the request as JSON.
async fn echo(method: Method, uri: http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut header_map = Map::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    ok(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": header_map,
        "body": String::from_utf8_lossy(&body),
    }))
}

/// `GET /test/status/{code}`: that status with a small JSON body.
async fn status(Path(code): Path<u16>) -> Response {
    if !(200..=599).contains(&code) {
        return bad_request("status must be within 200..=599");
    }
    CannedResponse::json(code, json!({"status": code, "message": format!("status {code} from kpipe-sim")}))
        .to_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_no_trailing_zeros() {
        assert_eq!(decimal(1250), "12.5");
        assert_eq!(decimal(1200), "12");
        assert_eq!(decimal(1234), "12.34");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(decimal(0), "0");
    }

    #[test]
    fn positions_round_trip() {
        assert_eq!(decode_position(&encode_position(40)), Some(40));
        assert_eq!(decode_position("garbage!"), None);
    }

    #[test]
    fn items_are_seeded() {
        assert_eq!(item(1, 3), item(1, 3));
        assert_eq!(item(1, 3)["id"], "4");
        assert_ne!(
            (0..20).map(|i| item(1, i)).collect::<Vec<_>>(),
            (0..20).map(|i| item(2, i)).collect::<Vec<_>>()
        );
    }
}
