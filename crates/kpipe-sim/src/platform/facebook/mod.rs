//! Facebook / Meta Graph and Marketing API (`/vXX.0/...`): canned envelopes. Endpoints come
//! with the connector.
//!
//! Shapes follow `shared/apis/facebook.md` §5–6: throttling is reported in an error body
//! (HTTP 400, sometimes 200 from batch calls), never with 429 / `Retry-After`.

use serde_json::json;

use crate::config::CannedResponse;

/// Meta's error envelope.
#[must_use]
pub fn error(status: u16, code: u64, subcode: Option<u64>, message: &str) -> CannedResponse {
    let mut error =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "ASimTrace"});
    if let (Some(subcode), Some(object)) = (subcode, error.as_object_mut()) {
        object.insert("error_subcode".to_owned(), json!(subcode));
    }
    CannedResponse::json(status, json!({ "error": error }))
}

/// `(#17) User request limit reached` (subcode 2446079), with this status (400, or 200 to
/// hide it in a success).
#[must_use]
pub fn user_request_limit(status: u16) -> CannedResponse {
    error(status, 17, Some(2_446_079), "(#17) User request limit reached")
}

/// `(#80000)` ads-insights business-use-case throttling on an ad account (HTTP 400).
#[must_use]
pub fn ad_account_limit() -> CannedResponse {
    error(
        400,
        80_000,
        Some(2_446_079),
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    )
}

/// An expired access token: code 190, subcode 463, HTTP 400 (what the Graph API sends).
#[must_use]
pub fn expired_token() -> CannedResponse {
    error(
        400,
        190,
        Some(463),
        "Error validating access token: Session has expired on Tuesday, 01-Jan-2030 00:00:00 PST.",
    )
}

/// An invalid access token: code 190 (HTTP 400).
#[must_use]
pub fn invalid_token() -> CannedResponse {
    error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")
}
