//! Google Analytics 4 Data API (`/v1beta/properties/...`): canned envelopes. Endpoints come
//! with the connector.
//!
//! Shapes follow `shared/apis/ga4.md` §6–7 (Google's `{"error": {"code", "message", "status"}}`).

use serde_json::json;

use crate::config::CannedResponse;
use crate::quota::{QuotaRule, RetryAfter};

/// Google's error envelope.
#[must_use]
pub fn error(status: u16, grpc_status: &str, message: &str) -> CannedResponse {
    CannedResponse::json(
        status,
        json!({"error": {"code": status, "message": message, "status": grpc_status}}),
    )
}

/// Hourly property tokens exhausted (429 `RESOURCE_EXHAUSTED`, no `Retry-After`).
#[must_use]
pub fn tokens_per_hour_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        "Exhausted property tokens per hour. These quota tokens will return in under an hour. To learn more, see https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
    )
}

/// Daily property tokens exhausted (429 `RESOURCE_EXHAUSTED`).
#[must_use]
pub fn tokens_per_day_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        "Exhausted property tokens per day. These quota tokens will return tomorrow. To learn more, see https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
    )
}

/// A daily cap of `limit` requests answered like GA4.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit)
        .named("ga4_daily")
        .with_retry_after(RetryAfter::Omit)
        .with_response(tokens_per_day_exhausted())
}

/// An expired or invalid access token (401 `UNAUTHENTICATED`).
#[must_use]
pub fn unauthenticated() -> CannedResponse {
    error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    )
}

/// Google's token endpoint behaviour: no refresh token in responses, `expires_in` 3599, the
/// JWT-bearer grant verified with `jwt`.
#[must_use]
pub fn auth_config(jwt: crate::JwtBearerConfig) -> crate::AuthConfig {
    crate::AuthConfig {
        require_bearer: true,
        jwt_bearer: Some(jwt),
        expires_in: std::time::Duration::from_secs(3599),
        expired_response: unauthenticated(),
        invalid_response: unauthenticated(),
        ..crate::AuthConfig::default()
    }
}
