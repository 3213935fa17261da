//! The `[sources.<name>]` table of a `type = "template"` source.

use kpipe_core::Secret;
use kpipe_http::{RateLimit, RetryConfig};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.example.com";

/// The configuration. Unknown keys are errors, so a misspelt key is caught when the
/// configuration is read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The ad accounts to pull, e.g. `["1001"]`.
    pub account_ids: Vec<String>,
    /// A long-lived access token. Give it, or `client_id` + `client_secret` + `refresh_token`.
    pub access_token: Option<Secret>,
    /// The OAuth client id, for the refresh-token grant.
    pub client_id: Option<String>,
    /// The OAuth client secret.
    pub client_secret: Option<Secret>,
    /// The refresh token from the consent flow.
    pub refresh_token: Option<Secret>,
    /// The token endpoint (default `<base_url>/oauth/token`).
    pub token_url: Option<String>,
    /// The API's base URL (default [`DEFAULT_BASE_URL`]); `http://` only for loopback hosts.
    #[schemars(extend("default" = DEFAULT_BASE_URL))]
    pub base_url: Option<String>,
    /// Report rows per page (the API allows 1 to 500; default 500).
    pub page_size: Option<u32>,
    /// Requests allowed per period for the whole source (default: the API's published limit,
    /// 10 per second).
    pub rate_limit: Option<RateLimit>,
    /// Retry attempts and backoff.
    pub retry: Option<RetryConfig>,
}
