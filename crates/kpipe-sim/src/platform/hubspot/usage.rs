//! The `X-HubSpot-RateLimit-*` headers of every non-search response (§8): the burst window's
//! maximum and what remains of it, and for private-app tokens the daily pair. They report what
//! the portal's requests used; quota rules do the refusing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tokio::time::Instant;

use super::HubSpotState;

/// Requests counted for the headers.
#[derive(Debug, Default)]
pub(crate) struct UsageCounter {
    window: Mutex<VecDeque<Instant>>,
    today: AtomicU64,
}

impl UsageCounter {
    /// Counts one request; returns the requests in the current burst window and today, this one
    /// included.
    fn count(&self, interval: std::time::Duration, now: Instant) -> (u64, u64) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        while window.front().is_some_and(|t| now.saturating_duration_since(*t) >= interval) {
            window.pop_front();
        }
        window.push_back(now);
        (window.len() as u64, self.today.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

pub(crate) async fn rate_limit_headers(
    State(state): State<Arc<HubSpotState>>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.api.usage;
    let private_app = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, token)| token.trim().to_owned()))
        .is_some_and(|token| state.api.private_app_tokens.contains(&token));
    let (in_window, today) = state.usage.count(limits.burst_interval, Instant::now());
    let mut response = next.run(request).await;
    let mut headers = vec![
        ("x-hubspot-ratelimit-interval-milliseconds", limits.burst_interval.as_millis() as u64),
        ("x-hubspot-ratelimit-max", limits.burst_max),
        ("x-hubspot-ratelimit-remaining", limits.burst_max.saturating_sub(in_window)),
    ];
    // OAuth apps are not told about the daily limit (§8).
    if private_app {
        headers.push(("x-hubspot-ratelimit-daily", limits.daily_max));
        headers.push(("x-hubspot-ratelimit-daily-remaining", limits.daily_max.saturating_sub(today)));
    }
    for (name, value) in headers {
        response.headers_mut().insert(name, HeaderValue::from(value));
    }
    response
}
