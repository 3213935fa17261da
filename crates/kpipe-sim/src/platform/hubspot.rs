//! HubSpot (`/crm/v3/...`, `/marketing/v3/...`): canned envelopes. Endpoints come with the
//! connector.
//!
//! Shapes follow `shared/apis/hubspot.md` §8 (429 bodies with `policyName`).

use std::time::Duration;

use serde_json::json;

use crate::config::CannedResponse;
use crate::quota::{QuotaKey, QuotaRule, RetryAfter};

fn rate_limit(message: &str, policy: &str) -> CannedResponse {
    CannedResponse::json(
        429,
        json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
               "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": policy,
               "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"}),
    )
}

/// The burst-limit 429 (`TEN_SECONDLY_ROLLING`).
#[must_use]
pub fn ten_secondly_limit() -> CannedResponse {
    rate_limit("You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING")
}

/// The daily-limit 429 (`DAILY`).
#[must_use]
pub fn daily_limit() -> CannedResponse {
    rate_limit("You have reached your daily limit.", "DAILY")
}

/// HubSpot's burst limit: `limit` requests per rolling `window` per token, answered like HubSpot
/// with `Retry-After` until a slot frees.
#[must_use]
pub fn burst_quota(limit: u64, window: Duration) -> QuotaRule {
    QuotaRule::rolling_window(limit, window)
        .named("hubspot_burst")
        .keyed_by(QuotaKey::BearerToken)
        .with_retry_after(RetryAfter::UntilReset)
        .with_response(ten_secondly_limit())
}

/// An expired OAuth access token (401).
#[must_use]
pub fn expired_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": "error",
               "message": "The OAuth token used to make this call expired 1 second(s) ago.",
               "correlationId": "5b7d4f0c-8f9c-4f3a-9a51-9a0c8f2d1e11", "category": "EXPIRED_AUTHENTICATION"}),
    )
}

/// A missing or unknown access token (401).
#[must_use]
pub fn invalid_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": "error",
               "message": "Authentication credentials not found.",
               "correlationId": "0f6a3c1e-2b7d-4c59-8e4a-6d1b2c3e4f50", "category": "INVALID_AUTHENTICATION"}),
    )
}
