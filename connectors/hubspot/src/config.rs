//! The `[sources.<name>]` table of a `type = "hubspot"` source.

use std::time::Duration;

use kpipe_core::Secret;
use kpipe_http::{RateLimit, RetryConfig};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// The OAuth token endpoint (v1, §7 of the wire notes).
pub const DEFAULT_TOKEN_URL: &str = "https://api.hubapi.com/oauth/v1/token";

/// The lifecycle stages that count as a lead unless `lead_lifecycle_stages` says otherwise.
pub const DEFAULT_LEAD_STAGES: [&str; 3] = ["lead", "marketingqualifiedlead", "salesqualifiedlead"];

/// The contact property that holds the original source.
pub const DEFAULT_SOURCE_PROPERTY: &str = "hs_analytics_source";

/// The configuration. Unknown keys are errors, so a misspelt key is caught when the
/// configuration is read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSpotConfig {
    /// A private app's access token (`pat-...`). Give it, or `client_id` + `client_secret` +
    /// `refresh_token` of an OAuth app.
    pub access_token: Option<Secret>,
    /// The OAuth app's client id.
    pub client_id: Option<String>,
    /// The OAuth app's client secret.
    pub client_secret: Option<Secret>,
    /// The refresh token from the app's install (consent) flow.
    pub refresh_token: Option<Secret>,
    /// The token endpoint (default [`DEFAULT_TOKEN_URL`], or `<base_url>/oauth/v1/token` when
    /// `base_url` is given).
    pub token_url: Option<String>,
    /// The API's base URL (default [`DEFAULT_BASE_URL`]); `http://` only for loopback hosts.
    #[schemars(extend("default" = DEFAULT_BASE_URL))]
    pub base_url: Option<String>,
    /// The portal's subscription tier: selects the default burst and daily limits.
    pub portal_tier: Option<PortalTier>,
    /// Requests this source may send per portal day (default: the tier's daily limit for a
    /// private app; none for an OAuth app, which HubSpot does not cap daily).
    pub daily_limit: Option<u64>,
    /// Lifecycle stages that make a contact a lead (default `lead`, `marketingqualifiedlead`,
    /// `salesqualifiedlead`). A contact counts when its stage is one of them or has been.
    #[schemars(extend("default" = DEFAULT_LEAD_STAGES))]
    pub lead_lifecycle_stages: Option<Vec<String>>,
    /// Whether contacts and leads are broken down by original source, in the `channel`
    /// dimension (default true).
    pub leads_by_source: Option<bool>,
    /// The contact property holding the original source (default `hs_analytics_source`).
    #[schemars(extend("default" = DEFAULT_SOURCE_PROPERTY))]
    pub lead_source_property: Option<String>,
    /// Only these deal pipelines (ids), e.g. `["default"]`; all when absent.
    pub pipelines: Option<Vec<String>>,
    /// The streams to pull (default all): `contacts`, `deals`, `forms`, `emails`, `feedback`.
    pub streams: Option<Vec<String>>,
    /// Records per page: capped at each endpoint's maximum (search 200, form submissions 50,
    /// listings 100), which is also the default.
    pub page_size: Option<u32>,
    /// The burst limit this source keeps to (default: the tier's, see the README).
    pub rate_limit: Option<RateLimit>,
    /// The CRM search limit, kept apart from the burst limit (default 5 per second).
    pub search_rate_limit: Option<RateLimit>,
    /// Retry attempts and backoff.
    pub retry: Option<RetryConfig>,
}

/// A HubSpot subscription tier (usage guidelines, §8 of the wire notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortalTier {
    /// Free tools.
    Free,
    /// Starter.
    Starter,
    /// Professional.
    Professional,
    /// Enterprise.
    Enterprise,
}

impl PortalTier {
    /// Requests per 10 seconds a private app may send.
    pub fn burst_per_ten_seconds(self) -> u32 {
        match self {
            PortalTier::Free | PortalTier::Starter => 100,
            PortalTier::Professional | PortalTier::Enterprise => 190,
        }
    }

    /// Requests per day the portal allows (shared by all its private apps).
    pub fn daily_requests(self) -> u64 {
        match self {
            PortalTier::Free | PortalTier::Starter => 250_000,
            PortalTier::Professional => 625_000,
            PortalTier::Enterprise => 1_000_000,
        }
    }
}

/// An OAuth (public) app's burst limit: 110 requests per 10 seconds per installing portal.
pub const OAUTH_BURST_PER_TEN_SECONDS: u32 = 110;

/// The CRM search limit: 5 requests per second per portal.
pub const SEARCH_RATE_LIMIT: RateLimit = RateLimit { requests: 5, per: Duration::from_secs(1), burst: 1 };

/// A burst limit of `requests` per 10 seconds, a tenth of it allowed back to back.
pub fn ten_second_limit(requests: u32) -> RateLimit {
    RateLimit::new(requests, Duration::from_secs(10)).with_burst((requests / 10).max(1))
}
