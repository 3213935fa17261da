//! The HTTP runtime every connector stands on: one shared client (rustls, gzip, timeouts, a
//! kpipe user agent), proactive rate limits, retries decided by classifiers with a capped
//! backoff, OAuth2 token providers, pagination streams, and per-source telemetry.
//!
//! A connector builds one [`ApiClient`] per source and sends every request through it:
//!
//! ```no_run
//! # async fn example() -> Result<(), kpipe_http::HttpError> {
//! use std::time::Duration;
//! use kpipe_http::{ApiClient, ApiRequest, HttpClient, RateLimit, RateLimiter};
//!
//! let http = HttpClient::new()?;
//! let limiter = RateLimiter::new(RateLimit::new(100, Duration::from_secs(10))).expect("a valid limit");
//! let api = ApiClient::builder(&http, "https://api.example.com/v1")?.rate_limit(limiter, "app").build();
//! let response = api.send(&ApiRequest::get("reports").query("date", "2026-10-01")).await?;
//! let body: serde_json::Value = response.json()?;
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod error;
mod paginate;
mod ratelimit;
pub mod retry;
mod telemetry;
mod tls;
pub mod url;

pub use auth::{
    AccessToken, OAuthTokenProvider, ServiceAccountKey, SharedTokenProvider, StaticToken, TokenProvider,
};
pub use auth::{GrantedTokens, exchange_authorization_code};
pub use client::{
    ApiClient, ApiClientBuilder, ApiRequest, ApiResponse, AuthPlacement, Body, HttpClient, USER_AGENT,
};
pub use error::HttpError;
pub use paginate::{Page, PageKind, Pagination, StopReason};
pub use ratelimit::{RateLimit, RateLimiter};
pub use retry::{Classifier, Decision, FnClassifier, Outcome, RetryConfig, RetryPolicy};
pub use telemetry::{Telemetry, TelemetrySnapshot};
