//! The source: configuration checks, the HTTP client, `check`, and the pull.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kpipe_core::{
    BuildContext, ConfigError, Currency, Emitter, ErrorKind, PullRequest, RequestTelemetry, Source,
    SourceError, StreamInfo,
};
use kpipe_http::{ApiClient, ApiRequest, AuthPlacement, HttpClient, HttpError, RateLimit, RateLimiter};
use serde_json::Value;

use crate::auth::token_provider;
use crate::config::{DEFAULT_BASE_URL, GoogleAnalyticsConfig};
use crate::pacing::{
    Admission, Clock, PropertyPacer, PropertyQuota, next_hour, next_pacific_midnight, quota_classifier,
    system_clock,
};
use crate::reports::{MAX_PAGE_SIZE, ReportSpec};

mod estimate;
mod pull;

/// The Data API's per-user limit, 600 requests a minute, as 10 a second with bursts of 10 (the
/// concurrent requests a standard property allows).
pub const PUBLISHED_RATE_LIMIT: RateLimit =
    RateLimit { requests: 600, per: Duration::from_secs(60), burst: 10 };

/// Rows per request unless configured: large pages mean few requests, and a page of this size is
/// still a modest amount of memory.
pub const DEFAULT_PAGE_SIZE: u32 = 100_000;

/// Days per request unless configured.
pub const DEFAULT_DAYS_PER_REQUEST: u32 = 31;

/// Requests in flight for the source unless configured.
pub const DEFAULT_CONCURRENCY: u32 = 10;

/// A standard property's concurrent requests.
pub const DEFAULT_CONCURRENT_REQUESTS_PER_PROPERTY: u32 = 10;

/// Minutes a pull may run unless configured.
pub const DEFAULT_DEADLINE_MINUTES: u32 = 60;

/// How long after the top of the hour a pull resumes when it waited for hourly tokens.
const RESUME_MARGIN: Duration = Duration::from_secs(1);

/// Waits for hourly tokens one request makes at most, so that a quota that stays exhausted
/// after its reset stops the pull instead of waiting hour after hour.
const MAX_HOURLY_WAITS: u32 = 2;

/// Times one request is sent again after its renewed token was refused too.
const MAX_TOKEN_RENEWALS: u32 = 3;

/// Reports per `batchRunReports` at most.
const MAX_BATCH: usize = 5;

/// One configured property.
#[derive(Debug)]
struct Property {
    id: String,
    pacer: PropertyPacer,
}

/// A configured Google Analytics 4 source.
pub struct GoogleAnalyticsSource {
    api: ApiClient,
    properties: Vec<Property>,
    specs: Vec<ReportSpec>,
    /// The period reports of `specs` ([`ReportSpec::period_reports`]), in the same order.
    period_specs: Vec<ReportSpec>,
    currency: Option<Currency>,
    page_size: u32,
    days_per_request: u32,
    concurrency: usize,
    deadline: chrono::Duration,
    clock: Clock,
    /// The pace of the whole source.
    rate_limit: RateLimit,
}

impl std::fmt::Debug for GoogleAnalyticsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAnalyticsSource")
            .field("api", &self.api)
            .field("properties", &self.properties.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
            .field("reports", &self.specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>())
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

fn property_ids(ids: &[String]) -> Result<Vec<String>, ConfigError> {
    if ids.is_empty() {
        return Err(ConfigError::new("property_ids", "give at least one GA4 property id"));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim();
        let id = id.strip_prefix("properties/").unwrap_or(id);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(
                "property_ids",
                format!("`{id}` is not a numeric GA4 property id (Admin > Property settings)"),
            ));
        }
        if out.iter().any(|o| o == id) {
            return Err(ConfigError::new("property_ids", format!("`{id}` is given twice")));
        }
        out.push(id.to_owned());
    }
    Ok(out)
}

impl Source for GoogleAnalyticsSource {
    type Config = GoogleAnalyticsConfig;
    const KIND: &'static str = "google_analytics";
    const DESCRIPTION: &'static str =
        "Google Analytics 4: daily traffic by channel and source / medium, property totals, custom reports";

    const UNIT_KEYS: &'static [kpipe_core::UnitKey] = &[kpipe_core::UnitKey {
        key: "property_ids",
        label: |t| {
            let t = t.trim();
            t.strip_prefix("properties/").unwrap_or(t).to_owned()
        },
    }];

    fn build(config: GoogleAnalyticsConfig, cx: &BuildContext) -> Result<Self, ConfigError> {
        let ids = property_ids(&config.property_ids)?;
        let page_size =
            ConfigError::number_in("page_size", config.page_size, DEFAULT_PAGE_SIZE, 1..=MAX_PAGE_SIZE)?;
        let days_per_request = ConfigError::number_in(
            "days_per_request",
            config.days_per_request,
            DEFAULT_DAYS_PER_REQUEST,
            1..=366,
        )?;
        let concurrency =
            ConfigError::number_in("concurrency", config.concurrency, DEFAULT_CONCURRENCY, 1..=100)?;
        let per_property = ConfigError::number_in(
            "concurrent_requests_per_property",
            config.concurrent_requests_per_property,
            DEFAULT_CONCURRENT_REQUESTS_PER_PROPERTY,
            1..=50,
        )?;
        let deadline_minutes = config.deadline_minutes.unwrap_or(DEFAULT_DEADLINE_MINUTES);
        let currency = match &config.currency_code {
            None => None,
            Some(code) => Some(Currency::parse(code).ok_or_else(|| {
                ConfigError::new("currency_code", format!("`{code}` is not an ISO 4217 code such as `EUR`"))
            })?),
        };
        let mut specs = crate::catalog::builtin_reports();
        for (index, report) in config.reports.iter().enumerate() {
            let spec = ReportSpec::custom(report, index)?;
            if specs.iter().any(|s| s.name == spec.name) {
                return Err(ConfigError::new(format!("reports[{index}].name"), "is used by another report"));
            }
            specs.push(spec);
        }
        let period_specs = specs.iter().flat_map(ReportSpec::period_reports).collect();
        let base_url = config.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let http = HttpClient::new().map_err(|e| ConfigError::new("base_url", e.to_string()))?;
        let provider = token_provider(&config, cx, &http)?;
        let rate_limit = config.rate_limit.unwrap_or(PUBLISHED_RATE_LIMIT);
        let limiter = RateLimiter::new(rate_limit)
            .ok_or_else(|| ConfigError::new("rate_limit", "must allow at least one request per period"))?;
        let mut builder = ApiClient::builder(&http, &base_url)
            .map_err(|e| ConfigError::new("base_url", e.to_string()))?
            .rate_limit(limiter, "project")
            .classifier(quota_classifier(system_clock()))
            .auth(provider, AuthPlacement::BearerHeader);
        if let Some(retry) = config.retry {
            builder = builder.retry_policy(retry.policy());
        }
        let ceiling = usize::try_from(per_property).unwrap_or(1);
        Ok(GoogleAnalyticsSource {
            api: builder.build(),
            properties: ids
                .into_iter()
                .map(|id| Property { id, pacer: PropertyPacer::new(ceiling) })
                .collect(),
            specs,
            period_specs,
            currency,
            page_size,
            days_per_request,
            concurrency: usize::try_from(concurrency).unwrap_or(1),
            deadline: chrono::Duration::minutes(i64::from(deadline_minutes)),
            clock: system_clock(),
            rate_limit,
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        let mut streams = crate::catalog::STREAMS.to_vec();
        if self.specs.len() > 3 {
            streams.push(crate::catalog::CUSTOM);
        }
        streams
    }

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        crate::catalog::catalog()
    }

    async fn check(&self) -> Result<String, SourceError> {
        let custom: Vec<&ReportSpec> = self.specs.iter().skip(3).collect();
        for property in &self.properties {
            let request = ApiRequest::get(&format!("v1beta/properties/{}/metadata", property.id));
            let metadata: Value = self.api.send(&request).await?.json()?;
            let known = |kind: &str| -> Vec<&str> {
                metadata
                    .get(kind)
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter().filter_map(|d| d.get("apiName").and_then(Value::as_str)).collect()
                    })
                    .unwrap_or_default()
            };
            let (dimensions, metrics) = (known("dimensions"), known("metrics"));
            for spec in &custom {
                let unknown: Vec<&str> = spec
                    .dimensions
                    .iter()
                    .filter(|d| !dimensions.contains(&d.as_str()))
                    .chain(spec.metrics.iter().filter(|m| !metrics.contains(&m.as_str())))
                    .map(String::as_str)
                    .collect();
                if !unknown.is_empty() {
                    return Err(SourceError::config(format!(
                        "report `{}`: property {} knows no dimension or metric {unknown:?}",
                        spec.name, property.id
                    )));
                }
            }
        }
        let ids: Vec<&str> = self.properties.iter().map(|p| p.id.as_str()).collect();
        let mut message = format!("{} property(ies) readable: {}", ids.len(), ids.join(", "));
        if !custom.is_empty() {
            let names: Vec<&str> = custom.iter().map(|s| s.name.as_str()).collect();
            message.push_str(&format!("; custom reports valid: {}", names.join(", ")));
        }
        Ok(message)
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        pull::run(self, request.window, out).await
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        Some(self.api.telemetry())
    }

    fn estimate_requests(&self, windows: &[kpipe_core::DateWindow]) -> Option<kpipe_core::RequestEstimate> {
        Some(self.estimate(windows))
    }

    /// A service account's key or a user's refresh token, with the access token's lifetime
    /// once `check` obtained one.
    fn token_facts(&self) -> Option<kpipe_core::TokenFacts> {
        self.api.token_facts()
    }

    /// GA4 finishes processing a day within about 72 hours; after that its numbers hold.
    fn restatement_days(&self) -> Option<u32> {
        Some(3)
    }
}

/// Why a request produced no report.
#[derive(Debug)]
enum FetchError {
    /// The HTTP runtime's error (a quarantinable page, auth, transport, a 4xx).
    Http(HttpError),
    /// A property quota stops the pull until `reset_at`.
    Quota { property: String, which: &'static str, reset_at: DateTime<Utc> },
    /// The pull is stopping (a quota ran out): the request was not sent.
    Stopped,
}

impl FetchError {
    fn into_source_error(self) -> SourceError {
        match self {
            FetchError::Http(e) => e.into(),
            FetchError::Quota { property, which, reset_at } => SourceError::new(
                ErrorKind::QuotaExhausted { reset_at: Some(reset_at) },
                format!("property {property}: {which} used up until {reset_at}; run again after that"),
            ),
            FetchError::Stopped => SourceError::cancelled(),
        }
    }

    fn is_quota(&self) -> bool {
        match self {
            FetchError::Quota { .. } | FetchError::Stopped => true,
            FetchError::Http(e) => matches!(e.kind(), ErrorKind::QuotaExhausted { .. }),
        }
    }
}

/// The `propertyQuota` of an answer: a report's, or the first report's of a batch.
fn quota_of(body: &Value) -> Option<PropertyQuota> {
    body.get("propertyQuota").or_else(|| body.pointer("/reports/0/propertyQuota")).map(PropertyQuota::read)
}

impl GoogleAnalyticsSource {
    /// The same source computing quota resets and deadlines with `clock` instead of the
    /// system clock (the hourly wait is tested with a clock just before the hour).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Sends `request` for `property` within its quotas: through its gate, only when its tokens
    /// can pay, waiting for the next hour when hourly tokens run out and `deadline` allows.
    async fn fetch(
        &self,
        property: &Property,
        request: &ApiRequest,
        deadline: DateTime<Utc>,
        stopping: &std::sync::atomic::AtomicBool,
    ) -> Result<Value, FetchError> {
        let (mut waits, mut refused_tokens) = (0, 0);
        loop {
            let slot = property.pacer.slot().await;
            // Checked once the slot is ours: the request may have waited for it while another
            // ran into a quota.
            if stopping.load(std::sync::atomic::Ordering::Acquire) {
                return Err(FetchError::Stopped);
            }
            let reset_at = match property.pacer.admit(self.now()) {
                Admission::Go => {
                    let outcome = self.api.send(request).await.and_then(|r| r.json::<Value>());
                    let quota = outcome.as_ref().ok().and_then(quota_of);
                    property.pacer.answered(quota.as_ref(), self.now());
                    if let Some(quota) = &quota {
                        let left = quota.left();
                        if left.is_empty() {
                            tracing::debug!(property = %property.id, "propertyQuota without readable tokens ignored");
                        }
                        self.api.record_quota(&property.id, &left);
                    }
                    drop(slot);
                    match outcome {
                        Ok(body) => return Ok(body),
                        Err(HttpError::QuotaExhausted { reset_at, url }) => {
                            // The classifier's daily tokens; or a `Retry-After` too long to wait.
                            let (which, reset_at) = match reset_at {
                                Some(t) => ("daily property tokens", t),
                                None => ("the property's quota", next_pacific_midnight(self.now())),
                            };
                            property.pacer.day_exhausted(reset_at);
                            tracing::warn!(property = %property.id, %url, %reset_at, "{which} used up");
                            return Err(FetchError::Quota { property: property.id.clone(), which, reset_at });
                        }
                        // With many requests in flight, a token renewed for this request may be
                        // refused again before it is sent: the request gets a new one, a few times.
                        Err(HttpError::Status { status: 401, .. }) if refused_tokens < MAX_TOKEN_RENEWALS => {
                            refused_tokens += 1;
                            continue;
                        }
                        Err(e) if is_hourly(&e) => {
                            let reset_at = next_hour(self.now());
                            property.pacer.hour_exhausted(reset_at);
                            reset_at
                        }
                        Err(e) => return Err(FetchError::Http(e)),
                    }
                }
                Admission::HourlyExhausted { reset_at } => {
                    drop(slot);
                    reset_at
                }
                Admission::DailyExhausted { reset_at } => {
                    return Err(FetchError::Quota {
                        property: property.id.clone(),
                        which: "daily property tokens",
                        reset_at,
                    });
                }
            };
            let resume = reset_at + chrono::Duration::from_std(RESUME_MARGIN).unwrap_or_default();
            if resume > deadline || waits >= MAX_HOURLY_WAITS {
                tracing::warn!(
                    property = %property.id, %reset_at, %deadline,
                    "hourly property tokens used up; stopping"
                );
                return Err(FetchError::Quota {
                    property: property.id.clone(),
                    which: "hourly property tokens",
                    reset_at,
                });
            }
            waits += 1;
            let wait = (resume - self.now()).to_std().unwrap_or_default();
            tracing::info!(
                property = %property.id, %reset_at, wait_s = wait.as_secs(),
                "hourly property tokens used up; waiting for the next hour"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// A 429 the classifier marked as an hourly quota (it gives up with the quota kind).
fn is_hourly(e: &HttpError) -> bool {
    matches!(e, HttpError::Status { status: 429, kind: ErrorKind::QuotaExhausted { .. }, .. })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use kpipe_core::DateWindow;

    use super::*;

    #[test]
    fn windows_are_sliced_by_days_per_request() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let window = DateWindow::new(day("2026-01-01"), day("2026-12-31")).unwrap();
        let parts = window.slices(31);
        assert_eq!(parts.len(), 12);
        assert_eq!(parts[0].end(), day("2026-01-31"));
        assert_eq!(parts.iter().map(DateWindow::num_days).sum::<u64>(), 365);
        assert_eq!(window.slices(366).len(), 1);
    }

    #[test]
    fn property_ids_are_numeric_and_may_be_prefixed() {
        let ids = |l: &[&str]| property_ids(&l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(ids(&["properties/123", " 456 "]).unwrap(), ["123", "456"]);
        assert!(ids(&[]).is_err());
        assert!(ids(&["UA-1234-1"]).is_err());
        assert!(ids(&["123", "properties/123"]).is_err());
    }
}
