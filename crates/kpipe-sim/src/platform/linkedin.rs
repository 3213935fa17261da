//! LinkedIn Marketing API (`/rest/...`): canned envelopes. Endpoints come with the connector.
//!
//! Shapes follow `shared/apis/linkedin.md` §6 (rate limits and the error envelope
//! `{"status", "serviceErrorCode", "code", "message"}`).

use serde_json::json;

use crate::config::{CannedResponse, RefreshRotation};
use crate::quota::QuotaRule;

/// The 429 of an exhausted application daily limit (no `Retry-After`; resets at midnight UTC).
#[must_use]
pub fn daily_quota_exhausted() -> CannedResponse {
    CannedResponse::json(
        429,
        json!({"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
               "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}),
    )
}

/// A daily cap of `limit` requests answered like LinkedIn.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit).named("linkedin_daily").with_response(daily_quota_exhausted())
}

/// The 401 of an expired access token (`EXPIRED_ACCESS_TOKEN`). The notes give no
/// `serviceErrorCode` for expiry, so none is sent: clients should branch on status and `code`.
#[must_use]
pub fn expired_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": 401, "code": "EXPIRED_ACCESS_TOKEN",
               "message": "The token used in the request has expired"}),
    )
}

/// The 401 of a revoked (or unknown) access token: `REVOKED_ACCESS_TOKEN`, serviceErrorCode 65601.
#[must_use]
pub fn invalid_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
               "message": "The token used in the request has been revoked by the user"}),
    )
}

/// LinkedIn's refresh behaviour: the refresh token is echoed back (fixed TTL) with its lifetime.
#[must_use]
pub fn auth_config() -> crate::AuthConfig {
    let mut extra = serde_json::Map::new();
    extra.insert("refresh_token_expires_in".to_owned(), json!(31_535_999));
    extra.insert(
        "scope".to_owned(),
        json!("r_ads,r_ads_reporting,r_organization_social,rw_organization_admin"),
    );
    crate::AuthConfig {
        require_bearer: true,
        refresh_rotation: RefreshRotation::Echo,
        expires_in: std::time::Duration::from_secs(5_183_999),
        extra_token_fields: extra,
        expired_response: expired_token(),
        invalid_response: invalid_token(),
        ..crate::AuthConfig::default()
    }
}
