//! The `[sources.<name>]` table of a `type = "facebook"` source, and its checks.

use std::collections::BTreeMap;
use std::time::Duration;

use kpipe_core::{ConfigError, Secret};
use kpipe_http::{RateLimit, RetryConfig};

use crate::mapping::{ActionMapping, PageMetrics};
use crate::normalize::Level;

/// The Graph API host.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// The Graph / Marketing API version used unless `api_version` says otherwise (released
/// 2026-02-18; each version is served for about two years).
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// Rows per insights page unless `page_size` says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 5_000;

/// The configuration. Unknown keys are errors, so a misspelt key is caught when the
/// configuration is read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FacebookConfig {
    /// Ad accounts to pull insights of, with or without the `act_` prefix.
    #[serde(default)]
    pub ad_account_ids: Vec<String>,
    /// Pages to pull Page insights of.
    #[serde(default)]
    pub page_ids: Vec<String>,
    /// A system-user token (recommended) or a long-lived user token, with `ads_read`,
    /// `read_insights` and `pages_read_engagement`.
    pub access_token: Secret,
    /// The Graph API version, `vNN.N` (default [`DEFAULT_API_VERSION`]).
    #[schemars(extend("default" = DEFAULT_API_VERSION))]
    pub api_version: Option<String>,
    /// The API's base URL (default [`DEFAULT_BASE_URL`]); `http://` only for loopback hosts.
    #[schemars(extend("default" = DEFAULT_BASE_URL))]
    pub base_url: Option<String>,
    /// Insights levels to pull: `account`, `campaign`, `ad_set`, `ad` (default the last three).
    pub levels: Option<Vec<String>>,
    /// `action_attribution_windows`, e.g. `["7d_click", "1d_view"]` (default: the ad account's
    /// attribution setting).
    pub attribution_windows: Option<Vec<String>>,
    /// Which action types make which canonical metric, replacing the default list of the metrics
    /// named, e.g. `{ conversions = ["offsite_conversion.custom.123"] }`. An empty list maps
    /// nothing to that metric.
    pub action_types: Option<BTreeMap<String, Vec<String>>>,
    /// Page insights metrics to pull (default `page_media_view`, `page_post_engagements`,
    /// `page_daily_follows_unique`, `page_follows`).
    #[schemars(extend("default" = crate::mapping::DEFAULT_PAGE_METRICS))]
    pub page_metrics: Option<Vec<String>>,
    /// Insights rows per page (1 to 5000; default 500). Halved by the connector when the API asks
    /// to reduce the amount of data.
    #[schemars(extend("default" = DEFAULT_PAGE_SIZE))]
    pub page_size: Option<u32>,
    /// When and how asynchronous report runs are used.
    pub async_reports: Option<AsyncReportsConfig>,
    /// Usage percentage (of any usage header) from which the connector pauses before the next
    /// request about that object (default 90).
    pub usage_threshold_pct: Option<u8>,
    /// Requests allowed per period for the whole source (default at most 20 in any second, 10 a
    /// second sustained after a burst of 10).
    pub rate_limit: Option<RateLimit>,
    /// Synchronous insights listings (of different accounts and levels) and report results
    /// read at once, 1 to 16. Default: as many as keep `rate_limit`'s pace with answers taking
    /// up to a second (10 at the default pace, 10 a second sustained), fewer when their pages
    /// together could hold more than 10,000 rows (2 at `page_size = 5000`); a configured value
    /// is kept whatever the page size. Meta limits calls per ad account and
    /// hour, not requests in flight; the usage headers slow the source down near a limit.
    #[schemars(extend("default" = DEFAULT_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// Retry attempts and backoff.
    pub retry: Option<RetryConfig>,
}

/// The `async_reports` table.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncReportsConfig {
    /// Windows longer than this many days are pulled with report runs (default 7; 0 = always).
    pub after_days: Option<u32>,
    /// Days per report run (1 to 90; default 30). Each finished slice is declared complete.
    pub slice_days: Option<u32>,
    /// First wait before polling a run, in milliseconds (default 250). Later waits follow the
    /// run's `async_percent_completion` (when it should end at its pace so far), each at most
    /// double the previous one.
    #[schemars(extend("default" = DEFAULT_POLL_INITIAL_MS))]
    pub poll_initial_ms: Option<u64>,
    /// Longest wait between polls, in milliseconds (default 30000).
    pub poll_max_ms: Option<u64>,
    /// A run not finished after this many seconds is abandoned as stuck and its range split
    /// (default 900).
    pub timeout_seconds: Option<u64>,
    /// Report runs started and polled at once, of all accounts and levels, 1 to 100 (default
    /// 50). Meta runs them side by side and throttles through the ad account's usage headers,
    /// which pause the source's requests about an account near its limit.
    #[schemars(extend("default" = DEFAULT_RUNS_IN_FLIGHT))]
    pub runs_in_flight: Option<u32>,
}

/// The first wait before polling a report run, in milliseconds.
pub const DEFAULT_POLL_INITIAL_MS: u64 = 250;

/// Report runs in flight unless `async_reports.runs_in_flight` says otherwise.
pub const DEFAULT_RUNS_IN_FLIGHT: u32 = 50;

/// The most listings read at once.
pub const MAX_CONCURRENCY: u32 = 16;

/// `concurrency` at the default pace: requests in flight that keep
/// [`crate::source::DEFAULT_RATE_LIMIT`] with answers taking a second.
pub const DEFAULT_CONCURRENCY: u32 = 10;

/// Insights rows the answers read at once may hold together: what bounds the memory of
/// listings and report results read side by side (2 listings of 5,000-row pages, all 10 of
/// 500-row ones). A page of 5,000 ad rows with their actions is about 10 MB of JSON.
pub const ROWS_IN_FLIGHT: u32 = 10_000;

/// How long an answer of the Graph API is taken to take when deriving `concurrency` from the
/// pace: its insights answers take a few hundred milliseconds, large pages up to a second.
pub const ANSWER_TIME: Duration = Duration::from_secs(1);

/// How report runs are used, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSettings {
    /// Windows longer than this go through report runs.
    pub after_days: u64,
    /// Days per run.
    pub slice_days: u64,
    /// First poll wait.
    pub poll_initial: Duration,
    /// Longest poll wait.
    pub poll_max: Duration,
    /// When a run counts as stuck.
    pub timeout: Duration,
    /// Runs started and polled at once.
    pub runs_in_flight: u32,
}

/// The configuration, checked and resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Ad account ids without `act_`.
    pub ad_accounts: Vec<String>,
    /// Page ids.
    pub pages: Vec<String>,
    /// `vNN.N`.
    pub api_version: String,
    /// The levels pulled, coarsest first.
    pub levels: Vec<Level>,
    /// Attribution windows, if configured.
    pub attribution_windows: Option<Vec<String>>,
    /// Action types to metrics.
    pub actions: ActionMapping,
    /// Page metrics to pull and what they become.
    pub page_metrics: PageMetrics,
    /// Insights rows per page.
    pub page_size: u32,
    /// Report runs.
    pub reports: ReportSettings,
    /// Pause threshold, percent.
    pub usage_threshold_pct: f64,
    /// Synchronous reports asked for at once.
    pub concurrency: u32,
    /// Whether `concurrency` was configured (then it is kept whatever the page size).
    pub concurrency_configured: bool,
}

/// The attribution windows the API accepts (`action_attribution_windows`).
pub const ATTRIBUTION_WINDOWS: [&str; 11] = [
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "1d_ev",
    "dda",
    "default",
    "skan_view",
    "skan_click",
];

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn ids(key: &str, list: &[String], strip: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let text = raw.trim();
        let id = strip.and_then(|p| text.strip_prefix(p)).unwrap_or(text);
        if !digits(id) {
            let form = if strip.is_some() { "`act_<digits>` or `<digits>`" } else { "digits" };
            return Err(ConfigError::new(
                format!("{key}[{i}]"),
                format!("{raw:?} is not an id; expected {form}"),
            ));
        }
        if out.iter().any(|seen| seen == id) {
            return Err(ConfigError::new(format!("{key}[{i}]"), format!("{raw:?} is listed twice")));
        }
        out.push(id.to_owned());
    }
    Ok(out)
}

impl Settings {
    /// Insights listings (or report results) read at once: `concurrency` as configured; by
    /// default fewer when their pages together could hold more than [`ROWS_IN_FLIGHT`] rows.
    pub fn listings_in_flight(&self) -> usize {
        let fits = (ROWS_IN_FLIGHT / self.page_size.max(1)).max(1);
        let in_flight =
            if self.concurrency_configured { self.concurrency } else { self.concurrency.min(fits) };
        usize::try_from(in_flight).unwrap_or(1).max(1)
    }

    /// Checks `config`; errors name the key.
    pub fn from_config(config: &FacebookConfig) -> Result<Settings, ConfigError> {
        let ad_accounts = ids("ad_account_ids", &config.ad_account_ids, Some("act_"))?;
        let pages = ids("page_ids", &config.page_ids, None)?;
        if ad_accounts.is_empty() && pages.is_empty() {
            return Err(ConfigError::new(
                "ad_account_ids",
                "give at least one ad account (or a page in `page_ids`)",
            ));
        }
        if config.access_token.expose().trim().is_empty() {
            return Err(ConfigError::new("access_token", "is empty"));
        }
        let api_version = config.api_version.clone().unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
        let valid_version = api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| digits(major) && digits(minor));
        if !valid_version {
            return Err(ConfigError::new(
                "api_version",
                format!("{api_version:?} is not a version like \"v25.0\""),
            ));
        }
        let levels = match &config.levels {
            None => vec![Level::Campaign, Level::AdSet, Level::Ad],
            Some(names) => {
                let mut levels = Vec::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    let level = Level::from_config(name).ok_or_else(|| {
                        ConfigError::new(
                            format!("levels[{i}]"),
                            format!("{name:?} is not one of account, campaign, ad_set, ad"),
                        )
                    })?;
                    if levels.contains(&level) {
                        return Err(ConfigError::new(
                            format!("levels[{i}]"),
                            format!("{name:?} is listed twice"),
                        ));
                    }
                    levels.push(level);
                }
                levels.sort();
                levels
            }
        };
        if let Some(windows) = &config.attribution_windows {
            if windows.is_empty() {
                return Err(ConfigError::new(
                    "attribution_windows",
                    "leave it out to use the account setting",
                ));
            }
            for (i, w) in windows.iter().enumerate() {
                if !ATTRIBUTION_WINDOWS.contains(&w.as_str()) {
                    return Err(ConfigError::new(
                        format!("attribution_windows[{i}]"),
                        format!("{w:?} is not one of {}", ATTRIBUTION_WINDOWS.join(", ")),
                    ));
                }
            }
        }
        let actions = match &config.action_types {
            None => ActionMapping::default(),
            Some(overrides) => {
                ActionMapping::with_overrides(overrides).map_err(|e| e.within("action_types"))?
            }
        };
        let page_metrics = match &config.page_metrics {
            None => PageMetrics::default(),
            Some(names) => PageMetrics::new(names).map_err(|e| e.within("page_metrics"))?,
        };
        let page_size = config.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(ConfigError::new("page_size", format!("must be within 1..={MAX_PAGE_SIZE}")));
        }
        let r = config.async_reports.unwrap_or_default();
        let reports = ReportSettings {
            after_days: u64::from(r.after_days.unwrap_or(7)),
            slice_days: u64::from(r.slice_days.unwrap_or(30)),
            poll_initial: Duration::from_millis(r.poll_initial_ms.unwrap_or(DEFAULT_POLL_INITIAL_MS)),
            poll_max: Duration::from_millis(r.poll_max_ms.unwrap_or(30_000)),
            timeout: Duration::from_secs(r.timeout_seconds.unwrap_or(900)),
            runs_in_flight: ConfigError::number_in(
                "async_reports.runs_in_flight",
                r.runs_in_flight,
                DEFAULT_RUNS_IN_FLIGHT,
                1..=100,
            )?,
        };
        if !(1..=90).contains(&reports.slice_days) {
            return Err(ConfigError::new("async_reports.slice_days", "must be within 1..=90"));
        }
        if reports.poll_max < reports.poll_initial || reports.poll_initial.is_zero() {
            return Err(ConfigError::new(
                "async_reports.poll_max_ms",
                "must be at least `poll_initial_ms`, which must be above 0",
            ));
        }
        if reports.timeout.is_zero() {
            return Err(ConfigError::new("async_reports.timeout_seconds", "must be above 0"));
        }
        let threshold = config.usage_threshold_pct.unwrap_or(90);
        if !(1..=100).contains(&threshold) {
            return Err(ConfigError::new("usage_threshold_pct", "must be within 1..=100"));
        }
        Ok(Settings {
            ad_accounts,
            pages,
            api_version,
            levels,
            attribution_windows: config.attribution_windows.clone(),
            actions,
            page_metrics,
            page_size,
            reports,
            usage_threshold_pct: f64::from(threshold),
            concurrency: ConfigError::number_in(
                "concurrency",
                config.concurrency,
                config
                    .rate_limit
                    .unwrap_or(crate::source::DEFAULT_RATE_LIMIT)
                    .requests_in_flight_for(ANSWER_TIME, MAX_CONCURRENCY),
                1..=MAX_CONCURRENCY,
            )?,
            concurrency_configured: config.concurrency.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> FacebookConfig {
        toml::from_str(&format!("access_token = \"t\"\nad_account_ids = [\"act_101\", \"102\"]\n{extra}"))
            .unwrap()
    }

    fn error(extra: &str) -> ConfigError {
        Settings::from_config(&config(extra)).unwrap_err()
    }

    #[test]
    fn ids_take_the_act_prefix_or_not() {
        let s = Settings::from_config(&config("page_ids = [\"200\"]")).unwrap();
        assert_eq!(s.ad_accounts, ["101", "102"]);
        assert_eq!(s.pages, ["200"]);
        assert_eq!(s.api_version, DEFAULT_API_VERSION);
        assert_eq!(s.levels, [Level::Campaign, Level::AdSet, Level::Ad]);
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(s.listings_in_flight(), 10);
        let large = Settings::from_config(&config("page_size = 5000")).unwrap();
        assert_eq!(large.listings_in_flight(), 2, "pages of 5,000 rows: two at once");
        let chosen = Settings::from_config(&config("page_size = 5000\nconcurrency = 8")).unwrap();
        assert_eq!(chosen.listings_in_flight(), 8, "a configured concurrency is kept");
        assert_eq!(s.reports.runs_in_flight, DEFAULT_RUNS_IN_FLIGHT);
        assert_eq!(s.reports.poll_initial, Duration::from_millis(DEFAULT_POLL_INITIAL_MS));
        let paced =
            Settings::from_config(&config("rate_limit = { requests = 5, per_seconds = 1, burst = 2 }"))
                .unwrap();
        assert_eq!(paced.concurrency, 3, "the default follows the configured pace");
        let e = Settings::from_config(
            &toml::from_str::<FacebookConfig>("access_token = \"t\"\nad_account_ids = [\"act_1\", \"1\"]")
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.path, "ad_account_ids[1]");
        assert_eq!(error("page_ids = [\"page\"]").path, "page_ids[0]");
    }

    #[test]
    fn every_key_is_checked() {
        assert_eq!(error("api_version = \"25\"").path, "api_version");
        assert_eq!(error("levels = [\"adgroup\"]").path, "levels[0]");
        assert_eq!(error("attribution_windows = [\"2d_click\"]").path, "attribution_windows[0]");
        assert_eq!(error("page_size = 0").path, "page_size");
        assert_eq!(error("usage_threshold_pct = 0").path, "usage_threshold_pct");
        assert_eq!(error("async_reports = { slice_days = 91 }").path, "async_reports.slice_days");
        assert_eq!(error("async_reports = { runs_in_flight = 0 }").path, "async_reports.runs_in_flight");
        assert_eq!(error("action_types = { impressions = [\"x\"] }").path, "action_types.impressions");
        assert!(toml::from_str::<FacebookConfig>("access_token = \"t\"\nad_acount_ids = []").is_err());
        let s = Settings::from_config(&config("levels = [\"ad\", \"account\", \"adset\"]")).unwrap();
        assert_eq!(s.levels, [Level::Account, Level::AdSet, Level::Ad]);
    }

    #[test]
    fn the_token_never_prints() {
        let c = config("");
        assert!(!format!("{c:?}").contains("\"t\""));
    }
}
