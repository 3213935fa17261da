//! Integration tests of the simulator: a real `reqwest` client over real sockets.
//!
//! One test binary (modules below) to keep link time down.

// Test code: clippy's `allow-unwrap-in-tests` covers `#[test]` functions but not the helpers
// they share, which may unwrap just the same.
#![allow(clippy::unwrap_used)]

mod faults;
mod latency;
mod oauth;
mod pagination;
mod quota;
mod server;

use serde_json::Value;

/// A plain-HTTP client (no proxy, no TLS needed for 127.0.0.1). reqwest is built with
/// `rustls-no-provider`, so a crypto provider must be installed before any client is built.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GETs `url` and returns status, headers and the JSON body.
pub async fn get_json(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap();
    (status, headers, body)
}
