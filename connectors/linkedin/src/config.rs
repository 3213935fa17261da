//! The `[sources.<name>]` table of a `type = "linkedin"` source, and its checks.

use kpipe_core::{ConfigError, Secret};
use kpipe_http::{RateLimit, RetryConfig};

use crate::fields::{self, AnalyticsField};

/// The API's base URL; paths below it start with `rest/`.
pub const DEFAULT_BASE_URL: &str = "https://api.linkedin.com";

/// LinkedIn's OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";

/// The `LinkedIn-Version` sent unless `api_version` says otherwise. LinkedIn serves each
/// monthly version for about a year.
pub const DEFAULT_API_VERSION: &str = "202610";

/// Elements per listing page (campaigns, creatives, organization statistics) unless
/// `page_size` says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The largest listing page LinkedIn serves.
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// Days per ad analytics request at most, unless `days_per_request` says otherwise: a month, so
/// that a pull stopped by the daily cap still publishes whole months.
pub const DEFAULT_DAYS_PER_REQUEST: u32 = 31;

/// Where LinkedIn silently cuts an ad analytics response.
pub const DEFAULT_RESPONSE_ELEMENT_CAP: u32 = 15_000;

/// `concurrency` at the default pace: requests in flight that keep
/// [`crate::client::DEFAULT_RATE_LIMIT`] with answers taking a second.
pub const DEFAULT_CONCURRENCY: u32 = 9;

/// The most requests in flight.
pub const MAX_CONCURRENCY: u32 = 16;

/// How long an answer is taken to take when deriving `concurrency` from the pace: LinkedIn
/// answers in a few hundred milliseconds, large analytics answers in about a second.
pub const ANSWER_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// The configuration. Unknown keys are errors, so a misspelt key is caught when the
/// configuration is read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedInConfig {
    /// Sponsored ad accounts, as ids (`"508000001"`) or URNs (`"urn:li:sponsoredAccount:508000001"`).
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Company pages, as ids or `urn:li:organization:<id>`; optional.
    #[serde(default)]
    pub organization_ids: Vec<String>,
    /// A member access token (60 days). Give it, or `client_id` + `client_secret` +
    /// `refresh_token`.
    pub access_token: Option<Secret>,
    /// The app's client id, for the refresh-token grant.
    pub client_id: Option<String>,
    /// The app's client secret.
    pub client_secret: Option<Secret>,
    /// A programmatic refresh token (365 days).
    pub refresh_token: Option<Secret>,
    /// The token endpoint (default [`DEFAULT_TOKEN_URL`]).
    #[schemars(extend("default" = DEFAULT_TOKEN_URL))]
    pub token_url: Option<String>,
    /// The consent page `kpipe auth` opens to obtain the refresh token (default LinkedIn's);
    /// pulls do not use it.
    pub auth_url: Option<String>,
    /// The scopes `kpipe auth` asks for (default `r_ads r_ads_reporting rw_organization_admin
    /// r_organization_social`); pulls do not use them.
    pub scopes: Option<Scopes>,
    /// `LinkedIn-Version`, `YYYYMM` (default [`DEFAULT_API_VERSION`]).
    #[schemars(extend("default" = DEFAULT_API_VERSION))]
    pub api_version: Option<String>,
    /// The API's base URL (default [`DEFAULT_BASE_URL`]); `http://` only for loopback hosts.
    #[schemars(extend("default" = DEFAULT_BASE_URL))]
    pub base_url: Option<String>,
    /// Elements per listing page, 1 to 1000 (default 100).
    #[schemars(extend("default" = DEFAULT_PAGE_SIZE))]
    pub page_size: Option<u32>,
    /// Days per ad analytics request at most, 1 to 366 (default 31); fewer are asked when the
    /// accounts are large enough for a response to approach the element cap, and never more
    /// than [`fields::MAX_REACH_DAYS`], beyond which LinkedIn leaves reach out.
    #[schemars(extend("default" = DEFAULT_DAYS_PER_REQUEST))]
    pub days_per_request: Option<u32>,
    /// LinkedIn's silent truncation point of an ad analytics response (default 15,000).
    #[schemars(extend("default" = DEFAULT_RESPONSE_ELEMENT_CAP))]
    pub response_element_cap: Option<u32>,
    /// More ad analytics fields to pull, written as `linkedin.<snake_case name>` metrics (the
    /// README lists them).
    #[serde(default)]
    pub extra_fields: Vec<String>,
    /// Requests allowed per period for the whole source (default 10 per second; LinkedIn
    /// publishes only daily limits).
    pub rate_limit: Option<RateLimit>,
    /// Requests of different ad accounts in flight at once, 1 to 16. Default: as many as keep
    /// `rate_limit`'s pace with answers taking up to a second (9 at the default pace of 10 in any
    /// second, spread evenly). LinkedIn publishes daily limits only; answers carrying many elements lower it
    /// (an answer of 15,000 elements is read alone).
    #[schemars(extend("default" = DEFAULT_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// Retry attempts and backoff.
    pub retry: Option<RetryConfig>,
}

/// OAuth scopes, as one space-separated string or a list.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Scopes {
    /// `"r_ads r_ads_reporting"`.
    Text(String),
    /// `["r_ads", "r_ads_reporting"]`.
    List(Vec<String>),
}

/// How the source authenticates, checked.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A long-lived access token.
    AccessToken(Secret),
    /// The refresh-token grant.
    Refresh {
        /// `client_id`.
        client_id: String,
        /// `client_secret`.
        client_secret: Secret,
        /// `refresh_token`.
        refresh_token: Secret,
        /// The token endpoint.
        token_url: String,
    },
}

/// The configuration after its checks: what the source runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Ad account ids.
    pub account_ids: Vec<u64>,
    /// Organization ids.
    pub organization_ids: Vec<u64>,
    /// Credentials.
    pub credentials: Credentials,
    /// `LinkedIn-Version`.
    pub api_version: String,
    /// The base URL.
    pub base_url: String,
    /// Listing page size.
    pub page_size: u32,
    /// Days per ad analytics request at most.
    pub days_per_request: u32,
    /// The element cap of an ad analytics response.
    pub response_element_cap: u32,
    /// Every ad analytics field pulled: the canonical ones, then the extras.
    pub fields: Vec<AnalyticsField>,
    /// The rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Requests of different ad accounts in flight at once.
    pub concurrency: u32,
    /// The retry settings.
    pub retry: Option<RetryConfig>,
}

/// `"508000001"` or `"urn:li:<kind>:508000001"` as a number.
fn parse_id(text: &str, kind: &str, key: &str) -> Result<u64, ConfigError> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(&format!("urn:li:{kind}:")).unwrap_or(trimmed);
    digits.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ConfigError::new(key, format!("`{text}` is not an id: expected digits or urn:li:{kind}:<digits>"))
    })
}

fn parse_ids(texts: &[String], kind: &str, key: &str) -> Result<Vec<u64>, ConfigError> {
    let mut ids = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let id = parse_id(text, kind, &format!("{key}[{i}]"))?;
        if ids.contains(&id) {
            return Err(ConfigError::new(format!("{key}[{i}]"), format!("{id} is listed twice")));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// `YYYYMM` with a month from 01 to 12.
fn check_version(version: &str) -> Result<(), ConfigError> {
    let valid = version.len() == 6
        && version.bytes().all(|b| b.is_ascii_digit())
        && version[4..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            "api_version",
            format!("`{version}` is not a version: expected YYYYMM, e.g. \"{DEFAULT_API_VERSION}\""),
        ))
    }
}

fn credentials(config: &LinkedInConfig) -> Result<Credentials, ConfigError> {
    match (&config.access_token, &config.client_id, &config.client_secret, &config.refresh_token) {
        (Some(token), None, None, None) if !token.expose().is_empty() => {
            Ok(Credentials::AccessToken(token.clone()))
        }
        (None, Some(id), Some(secret), Some(refresh)) => {
            if id.trim().is_empty() {
                return Err(ConfigError::new("client_id", "is empty"));
            }
            Ok(Credentials::Refresh {
                client_id: id.trim().to_owned(),
                client_secret: secret.clone(),
                refresh_token: refresh.clone(),
                token_url: config.token_url.clone().unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned()),
            })
        }
        _ => Err(ConfigError::new(
            "access_token",
            "give either `access_token`, or `client_id`, `client_secret` and `refresh_token`",
        )),
    }
}

impl LinkedInConfig {
    /// Checks what serde cannot: ids, credentials, version, bounds and extra fields.
    pub fn settings(self) -> Result<Settings, ConfigError> {
        let account_ids = parse_ids(&self.account_ids, "sponsoredAccount", "account_ids")?;
        let organization_ids = parse_ids(&self.organization_ids, "organization", "organization_ids")?;
        if account_ids.is_empty() && organization_ids.is_empty() {
            return Err(ConfigError::new("account_ids", "give at least one ad account or organization"));
        }
        let credentials = credentials(&self)?;
        let api_version = self.api_version.clone().unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
        check_version(&api_version)?;
        let mut fields = fields::canonical();
        for (i, name) in self.extra_fields.iter().enumerate() {
            let key = format!("extra_fields[{i}]");
            let field = fields::extra(name).map_err(|reason| ConfigError::new(key.as_str(), reason))?;
            if fields.iter().any(|f| f.api == field.api) {
                return Err(ConfigError::new(key, format!("`{name}` is already pulled")));
            }
            fields.push(field);
        }
        Ok(Settings {
            account_ids,
            organization_ids,
            credentials,
            api_version,
            base_url: self.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            page_size: ConfigError::number_in(
                "page_size",
                self.page_size,
                DEFAULT_PAGE_SIZE,
                1..=MAX_PAGE_SIZE,
            )?,
            // LinkedIn serves `approximateMemberReach` (reach) only for ranges of up to 92 days.
            days_per_request: ConfigError::number_in(
                "days_per_request",
                self.days_per_request,
                DEFAULT_DAYS_PER_REQUEST,
                1..=366,
            )?
            .min(fields::MAX_REACH_DAYS),
            response_element_cap: ConfigError::number_in(
                "response_element_cap",
                self.response_element_cap,
                DEFAULT_RESPONSE_ELEMENT_CAP,
                2..=1_000_000,
            )?,
            fields,
            rate_limit: self.rate_limit,
            concurrency: ConfigError::number_in(
                "concurrency",
                self.concurrency,
                self.rate_limit
                    .unwrap_or(crate::client::DEFAULT_RATE_LIMIT)
                    .requests_in_flight_for(ANSWER_TIME, MAX_CONCURRENCY),
                1..=MAX_CONCURRENCY,
            )?,
            retry: self.retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<Settings, ConfigError> {
        let text = format!(
            "account_ids = [\"508000001\", \"urn:li:sponsoredAccount:508000002\"]\n\
             access_token = \"t\"\n{extra}"
        );
        let config: LinkedInConfig =
            toml::from_str(&text).map_err(|e| ConfigError::new("toml", e.to_string()))?;
        config.settings()
    }

    #[test]
    fn ids_may_be_urns_and_defaults_apply() {
        let s = config("").unwrap();
        assert_eq!(s.account_ids, [508_000_001, 508_000_002]);
        assert_eq!((s.api_version.as_str(), s.page_size, s.days_per_request), (DEFAULT_API_VERSION, 100, 31));
        assert_eq!(s.fields.len(), 13);
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY, "derived from the default pace");
        let paced = config("rate_limit = { requests = 100, per_seconds = 10 }\nconcurrency = 16").unwrap();
        assert_eq!(paced.concurrency, 16);
        let slow = config("rate_limit = { requests = 3, per_seconds = 1 }").unwrap();
        assert_eq!(slow.concurrency, 2, "the default follows the configured pace");
    }

    #[test]
    fn requests_never_span_more_days_than_linkedin_serves_reach_for() {
        assert_eq!(config("days_per_request = 92").unwrap().days_per_request, 92);
        assert_eq!(config("days_per_request = 366").unwrap().days_per_request, fields::MAX_REACH_DAYS);
        assert!(config("days_per_request = 367").unwrap_err().to_string().contains("days_per_request"));
    }

    #[test]
    fn the_consent_flow_keys_are_accepted() {
        assert!(
            config("auth_url = \"https://www.linkedin.com/oauth/v2/authorization\"\nscopes = \"r_ads\"")
                .is_ok()
        );
        assert!(config("scopes = [\"r_ads\", \"r_ads_reporting\"]").is_ok());
    }

    #[test]
    fn mistakes_name_their_key() {
        let key = |extra: &str| config(extra).unwrap_err().to_string();
        assert!(key("api_version = \"2026-10\"").contains("api_version"));
        assert!(key("api_version = \"202613\"").contains("api_version"));
        assert!(key("page_size = 0").contains("page_size"));
        assert!(key("extra_fields = [\"videoCompletions\", \"nope\"]").contains("extra_fields[1]"));
        assert!(key("extra_fields = [\"impressions\"]").contains("already pulled"));
        assert!(key("organization_ids = [\"x\"]").contains("organization_ids[0]"));
        assert!(key("client_id = \"c\"").contains("access_token"));
        let twice: LinkedInConfig =
            toml::from_str("account_ids = [\"1\", \"urn:li:sponsoredAccount:1\"]\naccess_token = \"t\"")
                .unwrap();
        assert!(twice.settings().unwrap_err().to_string().contains("account_ids[1]"));
    }
}
