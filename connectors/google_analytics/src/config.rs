//! The `[sources.<name>]` table of a `type = "google_analytics"` source.

use kpipe_core::Secret;
use kpipe_http::{RateLimit, RetryConfig};

/// The Analytics Data API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://analyticsdata.googleapis.com";

/// Google's token endpoint, for the refresh-token grant (a service-account key file names its
/// own `token_uri`).
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The configuration. Unknown keys are errors, so a misspelt key is caught when the
/// configuration is read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleAnalyticsConfig {
    /// The GA4 properties to pull, numeric ids (`"123456789"`, or `"properties/123456789"`).
    pub property_ids: Vec<String>,
    /// A service account's JSON key file (relative paths are read from the configuration's
    /// directory). Give it, or `client_id` + `client_secret` + `refresh_token`.
    pub credentials_file: Option<String>,
    /// The OAuth client id, for the refresh-token grant.
    pub client_id: Option<String>,
    /// The OAuth client secret.
    pub client_secret: Option<Secret>,
    /// The refresh token from the consent flow.
    pub refresh_token: Option<Secret>,
    /// The token endpoint: default the key file's `token_uri`, or [`DEFAULT_TOKEN_URL`] for the
    /// refresh-token grant.
    pub token_url: Option<String>,
    /// The scopes tokens are asked for (default the read-only Analytics scope,
    /// [`crate::auth::SCOPE`]); `kpipe auth` asks the consent for them too.
    pub scopes: Option<Vec<String>>,
    /// Google's consent page, read by `kpipe auth` only.
    pub auth_url: Option<String>,
    /// The API's base URL (default [`DEFAULT_BASE_URL`]); `http://` only for loopback hosts.
    #[schemars(extend("default" = DEFAULT_BASE_URL))]
    pub base_url: Option<String>,
    /// `currencyCode` of every report (ISO 4217): revenue converted by Google into this
    /// currency. Default: each property's own currency.
    pub currency_code: Option<String>,
    /// Report rows per request, the `limit` (1 to 250,000; default 100,000).
    #[schemars(extend("default" = crate::source::DEFAULT_PAGE_SIZE))]
    pub page_size: Option<u32>,
    /// Days per report request (1 to 366; default 31). Each finished span of days is published
    /// even when a daily quota stops the pull later.
    #[schemars(extend("default" = crate::source::DEFAULT_DAYS_PER_REQUEST))]
    pub days_per_request: Option<u32>,
    /// Report requests in flight at once for the whole source (default 10).
    #[schemars(extend("default" = crate::source::DEFAULT_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// Requests of one property in flight at once at most (default 10, a standard property's
    /// limit; 50 for Analytics 360). The property's own `concurrentRequests` quota, read from
    /// its first answer, lowers it.
    #[schemars(extend("default" = crate::source::DEFAULT_CONCURRENT_REQUESTS_PER_PROPERTY))]
    pub concurrent_requests_per_property: Option<u32>,
    /// Minutes a pull may run (default 60): when a property's hourly tokens run out, the pull
    /// waits for the next hour only if that comes before this deadline, and otherwise stops
    /// as for a daily quota.
    #[schemars(extend("default" = crate::source::DEFAULT_DEADLINE_MINUTES))]
    pub deadline_minutes: Option<u32>,
    /// Custom reports, pulled for every property besides the built-in ones.
    #[serde(default)]
    pub reports: Vec<CustomReportConfig>,
    /// Requests allowed per period for the whole source (default: 10 per second, the Data
    /// API's 600 requests per minute per user).
    pub rate_limit: Option<RateLimit>,
    /// Retry attempts and backoff.
    pub retry: Option<RetryConfig>,
}

/// One custom report (`[[sources.<name>.reports]]`). Its rows are dated by the `date`
/// dimension, which is added first; `level` is the report's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomReportConfig {
    /// The report's name, snake_case: the `level` of its rows.
    pub name: String,
    /// GA4 dimension API names (at most 8; `date` is implied).
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// GA4 metric API names (1 to 10).
    pub metrics: Vec<String>,
}
