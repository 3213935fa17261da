//! `POST /` with `batch=[{"method": "GET", "relative_url": "v25.0/<report_run_id>?fields=..."}]`
//! (the Graph API's batch requests, `shared/apis/facebook.md` §3: how clients poll many report
//! runs at once): a JSON array with one `{"code", "headers", "body"}` per request, `body` the
//! answer's JSON as a string. The simulator answers report-run polls in a batch; any other
//! request in it gets Meta's "unsupported request" error in its place. Each request of a batch
//! counts against its ad account's usage as a call of its own, as Meta counts them.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use super::{GraphState, Node, error, post_params, unsupported};
use crate::config::CannedResponse;

/// The most requests one batch may hold (Meta's limit).
pub const MAX_BATCH: usize = 50;

/// One answer of a batch: its status, headers and body (a string of JSON).
fn item(canned: CannedResponse, headers: Vec<(String, String)>) -> Value {
    let headers: Vec<Value> = canned
        .headers
        .iter()
        .chain(&headers)
        .map(|(name, value)| json!({"name": name, "value": value}))
        .chain([json!({"name": "Content-Type", "value": "text/javascript; charset=UTF-8"})])
        .collect();
    json!({"code": canned.status, "headers": headers, "body": canned.body.to_string()})
}

/// The node a `relative_url` asks about: `v25.0/<node>?...`, `/v25.0/<node>` or `<node>`.
fn node_of<'a>(relative_url: &'a str, version: &str) -> &'a str {
    let path = relative_url.split('?').next().unwrap_or_default().trim_start_matches('/');
    path.strip_prefix(version).map_or(path, |rest| rest.trim_start_matches('/')).trim_end_matches('/')
}

/// `POST /`: a batch of report-run polls.
pub(super) async fn batch(
    State(state): State<Arc<GraphState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = post_params(query.as_deref(), &headers, &body);
    let requests = params
        .iter()
        .find(|(k, _)| k == "batch")
        .and_then(|(_, v)| serde_json::from_str::<Vec<Value>>(v).ok());
    let Some(requests) = requests else {
        return error(400, 100, None, "(#100) The parameter batch is required and must be a JSON array")
            .to_response();
    };
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return error(400, 100, None, &format!("(#100) A batch holds 1 to {MAX_BATCH} requests"))
            .to_response();
    }
    let version = state.api.api_version.clone();
    let mut answers = Vec::with_capacity(requests.len());
    for request in &requests {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("GET");
        let url = request.get("relative_url").and_then(Value::as_str).unwrap_or_default();
        let node = node_of(url, &version);
        let answer = match state.resolve(node) {
            Node::ReportRun(id, account) if method.eq_ignore_ascii_case("GET") => {
                let (answer, usage) = state.poll_run(&id, account);
                item(answer, usage)
            }
            _ => item(unsupported(&method.to_ascii_lowercase(), node), Vec::new()),
        };
        answers.push(answer);
    }
    CannedResponse::json(200, Value::Array(answers)).to_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_name_their_node_with_or_without_the_version() {
        assert_eq!(node_of("v25.0/6120000000001?fields=id,async_status", "v25.0"), "6120000000001");
        assert_eq!(node_of("/v25.0/6120000000001/", "v25.0"), "6120000000001");
        assert_eq!(node_of("6120000000001", "v25.0"), "6120000000001");
    }
}
