//! The source's door to HubSpot: one `ApiClient` (burst limit, retries, token, HubSpot's
//! classifier) and, in front of it, the pacing of [`Usage`] and the CRM search limit.
//!
//! CRM search has its own limit, 5 requests per second per portal, on top of the burst limit
//! (§8). A search request therefore waits for the search limiter first and then, like every
//! request, for the burst limiter: searches can never starve the other endpoints' budget, and
//! the burst limiter's count stays the total of everything sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kpipe_core::{ConfigError, RequestTelemetry};
use kpipe_http::{
    ApiClient, ApiRequest, ApiResponse, AuthPlacement, Decision, FnClassifier, HttpClient, HttpError,
    OAuthTokenProvider, Outcome, RateLimit, RateLimiter, StaticToken, TokenProvider,
};
use serde_json::Value;

use crate::config::{DEFAULT_BASE_URL, DEFAULT_TOKEN_URL, HubSpotConfig};
use crate::usage::{Admission, Usage};

/// How a source authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// A private app's static token.
    PrivateApp,
    /// An OAuth app's refresh token.
    OAuth,
}

/// The limits a source keeps to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The burst limit, for every request.
    pub burst: RateLimit,
    /// The CRM search limit, for search requests on top.
    pub search: RateLimit,
    /// This source's requests per portal day, if capped.
    pub daily: Option<u64>,
}

/// The client of one source.
#[derive(Debug)]
pub struct Hub {
    api: ApiClient,
    search_limiter: RateLimiter,
    usage: Arc<Usage>,
}

impl Hub {
    /// The client for `config` with `limits`; `auth` says which credentials it was given.
    pub fn new(config: &HubSpotConfig, auth: AuthKind, limits: Limits) -> Result<Hub, ConfigError> {
        let base_url = config.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let http = HttpClient::new().map_err(|e| ConfigError::new("base_url", e.to_string()))?;
        let provider = token_provider(config, auth, &http)?;
        let limiter = RateLimiter::new(limits.burst)
            .ok_or_else(|| ConfigError::new("rate_limit", "must allow at least one request per period"))?;
        let search_limiter = RateLimiter::new(limits.search).ok_or_else(|| {
            ConfigError::new("search_rate_limit", "must allow at least one request per period")
        })?;
        let usage = Arc::new(Usage::new(limits.daily));
        let mut builder = ApiClient::builder(&http, &base_url)
            .map_err(|e| ConfigError::new("base_url", e.to_string()))?
            .rate_limit(limiter, "portal")
            .classifier(hubspot_classifier(Arc::clone(&usage)))
            .auth(provider, AuthPlacement::BearerHeader);
        if let Some(retry) = config.retry {
            builder = builder.retry_policy(retry.policy());
        }
        Ok(Hub { api: builder.build(), search_limiter, usage })
    }

    /// What the requests cost so far, with what HubSpot's headers said is left of the portal's
    /// limits.
    pub fn telemetry(&self) -> RequestTelemetry {
        let mut telemetry = self.api.telemetry();
        if let Some((portal, left)) = self.usage.quota_left() {
            telemetry.quota_left.entry(portal).or_default().keep_lowest(&left);
        }
        telemetry
    }

    /// The credential's kind and announced lifetimes; never a token.
    pub fn token_facts(&self) -> Option<kpipe_core::TokenFacts> {
        self.api.token_facts()
    }

    /// The pacing state, which needs the portal's time zone for its midnight.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// Sends a GET (or any request) after the pacing allows it.
    pub async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, HttpError> {
        loop {
            match self.usage.admit(Instant::now()) {
                Admission::Go => break,
                Admission::Wait(wait) => {
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "pacing below HubSpot's reported burst limit"
                    );
                    pause(wait).await;
                }
                Admission::DailyLimit(reset_at) => {
                    tracing::warn!(?reset_at, "the daily request limit is used up; stopping");
                    return Err(HttpError::QuotaExhausted { url: self.api.base_url().to_string(), reset_at });
                }
            }
        }
        self.api.send(request).await
    }

    /// `POST /crm/v3/objects/{object}/search` with `body`, within the search limit. Search only
    /// reads, so it is safe to send again after a failure.
    pub async fn search(&self, object: &str, body: Value) -> Result<ApiResponse, HttpError> {
        self.search_request(ApiRequest::post_json(&format!("crm/v3/objects/{object}/search"), body)).await
    }

    /// The same for `stream`, which the run summary counts the request for.
    pub async fn search_for(
        &self,
        stream: &str,
        object: &str,
        body: Value,
    ) -> Result<ApiResponse, HttpError> {
        let request = ApiRequest::post_json(&format!("crm/v3/objects/{object}/search"), body).stream(stream);
        self.search_request(request).await
    }

    async fn search_request(&self, request: ApiRequest) -> Result<ApiResponse, HttpError> {
        let request = request.idempotent(true);
        let waited = self.search_limiter.acquire("search").await;
        if !waited.is_zero() {
            tracing::trace!(waited_ms = waited.as_millis() as u64, "waited for the search limit");
        }
        self.send(&request).await
    }
}

/// Waits `duration`. Connectors have no timer of their own; a limiter allowing one request per
/// `duration` makes its second request wait that long.
async fn pause(duration: Duration) {
    if let Some(limiter) = RateLimiter::new(RateLimit::new(1, duration.max(Duration::from_millis(1)))) {
        limiter.acquire("pause").await;
        limiter.acquire("pause").await;
    }
}

fn token_provider(
    config: &HubSpotConfig,
    auth: AuthKind,
    http: &HttpClient,
) -> Result<Arc<dyn TokenProvider>, ConfigError> {
    match (auth, &config.access_token, &config.client_id, &config.client_secret, &config.refresh_token) {
        (AuthKind::PrivateApp, Some(token), ..) => Ok(Arc::new(StaticToken::new(token.clone()))),
        (AuthKind::OAuth, None, Some(id), Some(secret), Some(refresh)) => {
            let token_url = config.token_url.clone().unwrap_or_else(|| match &config.base_url {
                Some(base) => format!("{}/oauth/v1/token", base.trim_end_matches('/')),
                None => DEFAULT_TOKEN_URL.to_owned(),
            });
            // HubSpot takes the client credentials as form fields (§7).
            let provider = OAuthTokenProvider::refresh_token(http, &token_url, id, secret, refresh, true)
                .map_err(|e| ConfigError::new("token_url", e.to_string()))?;
            Ok(Arc::new(provider))
        }
        _ => Err(ConfigError::new(
            "access_token",
            "give either a private app's `access_token`, or an OAuth app's `client_id`, `client_secret` \
             and `refresh_token`",
        )),
    }
}

/// The `policyName` of a 429 body.
fn policy_name(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("policyName")?.as_str().map(str::to_owned)
}

/// Reads the rate-limit headers of every response, and makes a 429 of the `DAILY` policy stop
/// the pull until the portal's midnight instead of being retried (§8).
fn hubspot_classifier(
    usage: Arc<Usage>,
) -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("hubspot", move |outcome: &Outcome<'_>, current| {
        let Outcome::Response { status, headers, body } = outcome else { return current };
        // A header that is not a number (a proxy's rewrite, a new format) is ignored: the
        // headers only tune the pace and the summary.
        usage.observe(|name| {
            let value = headers.get(name)?;
            let number = value.to_str().ok().and_then(|v| v.trim().parse().ok());
            if number.is_none() {
                tracing::debug!(header = name, value = ?value, "rate-limit header ignored: not a number");
            }
            number
        });
        if status.as_u16() == 429 && policy_name(body).as_deref() == Some("DAILY") {
            return Decision::QuotaExhausted { reset_at: usage.daily_reset() };
        }
        current
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_policy_is_read_from_the_429_body() {
        // Bodies of §8: the documented SECONDLY shape and the observed DAILY one.
        let daily =
            br#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT",
                         "correlationId":"c033cdaa-2c40-4a64-ae48-b4cec88dad24","policyName":"DAILY"}"#;
        assert_eq!(policy_name(daily).as_deref(), Some("DAILY"));
        let secondly = br#"{"status":"error","message":"You have reached your secondly limit.",
                            "errorType":"RATE_LIMIT"}"#;
        assert_eq!(policy_name(secondly), None);
        assert_eq!(policy_name(b"<html>"), None);
    }
}
