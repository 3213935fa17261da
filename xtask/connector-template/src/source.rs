//! The source: configuration checks, the HTTP client, and the pull loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, Utc};
use futures::StreamExt;
use kpipe_core::{
    BuildContext, ConfigError, Currency, DateWindow, Emitter, Label, MetricOrigin, PullRequest, Quarantined,
    RequestEstimate, RequestTelemetry, Source, SourceError, StreamCatalog, StreamInfo,
};
use kpipe_http::{
    ApiClient, ApiRequest, AuthPlacement, Decision, FnClassifier, HttpClient, HttpError, OAuthTokenProvider,
    Outcome, PageKind, Pagination, RateLimit, RateLimiter, StaticToken, TokenProvider,
};

use crate::config::{DEFAULT_BASE_URL, TemplateConfig};
use crate::normalize::{AccountContext, FIELD_METRICS, LEVEL, normalize};

/// The API's published limit: 10 requests per second per application.
pub const PUBLISHED_RATE_LIMIT: RateLimit = RateLimit { requests: 10, per: Duration::from_secs(1), burst: 1 };

/// The most days one report request may span (the API refuses more than 93).
const MAX_DAYS_PER_REQUEST: u64 = 90;

/// The largest page the API serves.
const MAX_PAGE_SIZE: u32 = 500;

const REPORT_STREAM: &str = "report";

/// The one stream.
const STREAM: StreamInfo =
    StreamInfo { name: REPORT_STREAM, description: "Daily campaign impressions, clicks and spend" };

/// A configured Template source.
#[derive(Debug)]
pub struct TemplateSource {
    api: ApiClient,
    account_ids: Vec<String>,
    page_size: u32,
    rate_limit: RateLimit,
}

impl Source for TemplateSource {
    type Config = TemplateConfig;
    const KIND: &'static str = "template";
    const DESCRIPTION: &'static str = "Template: daily campaign reports (impressions, clicks, spend)";

    fn build(config: TemplateConfig, _cx: &BuildContext) -> Result<Self, ConfigError> {
        if config.account_ids.is_empty() || config.account_ids.iter().any(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("account_ids", "give at least one account id, none empty"));
        }
        let page_size = config.page_size.unwrap_or(MAX_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(ConfigError::new("page_size", format!("must be within 1..={MAX_PAGE_SIZE}")));
        }
        let base_url = config.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let http = HttpClient::new().map_err(|e| ConfigError::new("base_url", e.to_string()))?;
        let provider = token_provider(&config, &http, &base_url)?;
        let limit = config.rate_limit.unwrap_or(PUBLISHED_RATE_LIMIT);
        let limiter = RateLimiter::new(limit)
            .ok_or_else(|| ConfigError::new("rate_limit", "must allow at least one request per period"))?;
        let mut builder = ApiClient::builder(&http, &base_url)
            .map_err(|e| ConfigError::new("base_url", e.to_string()))?
            .rate_limit(limiter, "app")
            .classifier(daily_cap())
            .auth(provider, AuthPlacement::BearerHeader);
        if let Some(retry) = config.retry {
            builder = builder.retry_policy(retry.policy());
        }
        Ok(TemplateSource {
            api: builder.build(),
            account_ids: config.account_ids,
            page_size,
            rate_limit: limit,
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        vec![STREAM]
    }

    /// Built from the mapping table the normalizer reads, so that it cannot drift from it.
    fn catalog() -> Vec<StreamCatalog> {
        let metrics = FIELD_METRICS.iter().map(|(field, metric)| MetricOrigin::canonical(*metric, *field));
        vec![StreamCatalog::new(STREAM).levels([LEVEL]).metrics(metrics)]
    }

    async fn check(&self) -> Result<String, SourceError> {
        let mut seen = Vec::new();
        for id in &self.account_ids {
            let account = self.account(id).await?;
            seen.push(format!("{id} ({})", account.currency.as_str()));
        }
        Ok(format!("{} account(s) readable: {}", seen.len(), seen.join(", ")))
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        let mut accounts = Vec::with_capacity(self.account_ids.len());
        for id in &self.account_ids {
            accounts.push(self.account(id).await?);
        }
        // Slice by slice over every account, so that each finished slice is a set of complete
        // days: if the daily quota runs out, those days are still published.
        for slice in request.window.slices(MAX_DAYS_PER_REQUEST) {
            for account in &accounts {
                self.pull_report(account, slice, out).await?;
            }
            out.complete(slice).await?;
        }
        Ok(())
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        Some(self.api.telemetry())
    }

    /// The pull's walk counted instead of sent: each account's details, then each slice's
    /// report of each account, a page or more (how many depends on the rows).
    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate> {
        let accounts = self.account_ids.len() as u64;
        let mut estimate = RequestEstimate::exactly(0);
        for window in windows {
            let slices = window.slices(MAX_DAYS_PER_REQUEST).len() as u64;
            estimate.add(accounts, Some(accounts));
            estimate.add(slices * accounts, None);
        }
        let mut estimate = estimate
            .note(format!("a report takes one page per {} rows of an account and slice", self.page_size));
        estimate.pace = Some(self.rate_limit.pace());
        Some(estimate)
    }
}

impl TemplateSource {
    /// The account's currency, which its report rows do not repeat.
    async fn account(&self, id: &str) -> Result<AccountContext, SourceError> {
        #[derive(serde::Deserialize)]
        struct Account {
            currency: String,
        }
        // Labelled with the stream its requests serve, so the run summary counts them per stream.
        let request = ApiRequest::get(&format!("example/v1/accounts/{id}")).stream(REPORT_STREAM);
        let response = self.api.send(&request).await?;
        let account: Account = response.json()?;
        let currency = Currency::parse(&account.currency).ok_or_else(|| {
            SourceError::data(format!("account {id}: `{}` is not an ISO 4217 currency", account.currency))
        })?;
        Ok(AccountContext { account_id: Label::from(id.to_owned()), currency })
    }

    /// Every page of one account's report for `slice`. An unreadable page is quarantined and
    /// ends the slice (its cursor is lost with it); the other slices go on.
    async fn pull_report(
        &self,
        account: &AccountContext,
        slice: DateWindow,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        let first = ApiRequest::get("example/v1/reports")
            .query("account_id", account.account_id.as_str())
            .query("since", slice.start().to_string())
            .query("until", slice.end().to_string())
            .query("page_size", self.page_size.to_string())
            .stream(REPORT_STREAM);
        let pagination = Pagination::new(
            PageKind::Cursor { param: "cursor".into(), next: "/paging/next_cursor".into() },
            "/data",
        );
        let mut pages = self.api.paginate(first, pagination).boxed();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => return quarantine_or_fail(e, out).await,
            };
            let elements = page.body.pointer("/data").and_then(|d| d.as_array()).map_or(&[][..], |a| a);
            for (index, element) in elements.iter().enumerate() {
                match normalize(element, account) {
                    Ok(rows) => out.emit_all(rows).await?,
                    Err(reason) => {
                        out.quarantine(Quarantined {
                            stream: REPORT_STREAM.into(),
                            location: format!("{} page {} element {index}", page.response.url, page.index),
                            reason,
                            raw: element.to_string(),
                        })
                        .await?
                    }
                }
            }
        }
        Ok(())
    }
}

/// A response that cannot be read is kept in the quarantine and the pull goes on; anything
/// else (auth, quota, transport) stops it.
async fn quarantine_or_fail(error: HttpError, out: &mut Emitter) -> Result<(), SourceError> {
    match error.to_quarantined(REPORT_STREAM) {
        Some(record) => {
            tracing::warn!(location = %record.location, "unreadable page quarantined");
            out.quarantine(record).await
        }
        None => Err(error.into()),
    }
}

fn token_provider(
    config: &TemplateConfig,
    http: &HttpClient,
    base_url: &str,
) -> Result<Arc<dyn TokenProvider>, ConfigError> {
    match (&config.access_token, &config.client_id, &config.client_secret, &config.refresh_token) {
        (Some(token), None, None, None) => Ok(Arc::new(StaticToken::new(token.clone()))),
        (None, Some(id), Some(secret), Some(refresh)) => {
            let token_url = config
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{}/oauth/token", base_url.trim_end_matches('/')));
            let provider = OAuthTokenProvider::refresh_token(http, &token_url, id, secret, refresh, true)
                .map_err(|e| ConfigError::new("token_url", e.to_string()))?;
            Ok(Arc::new(provider))
        }
        _ => Err(ConfigError::new(
            "access_token",
            "give either `access_token`, or `client_id`, `client_secret` and `refresh_token`",
        )),
    }
}

/// The API's daily cap (`429` with code `DAILY_QUOTA_EXCEEDED`) resets at midnight UTC:
/// retrying before then only burns requests.
fn daily_cap() -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("template_daily_cap", |outcome: &Outcome<'_>, current| match outcome {
        Outcome::Response { status, body, .. }
            if status.as_u16() == 429
                && serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.pointer("/error/code").and_then(|c| c.as_str().map(str::to_owned)))
                    .is_some_and(|c| c == "DAILY_QUOTA_EXCEEDED") =>
        {
            Decision::QuotaExhausted { reset_at: next_midnight_utc() }
        }
        _ => current,
    })
}

fn next_midnight_utc() -> Option<chrono::DateTime<Utc>> {
    let tomorrow = Utc::now().date_naive().checked_add_days(Days::new(1))?;
    Some(tomorrow.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn the_estimate_counts_the_pull_walk() {
        let config: TemplateConfig =
            toml::from_str("account_ids = [\"a1\", \"a2\"]\naccess_token = \"t\"").unwrap();
        let cx = BuildContext { source_name: "t".into(), config_dir: std::env::temp_dir() };
        let source = TemplateSource::build(config, &cx).unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let window = DateWindow::new(day("2026-01-01"), day("2026-12-31")).unwrap();
        let estimate = source.estimate_requests(&[window]).unwrap();
        // Two accounts' details, then 5 slices of 90 days for each.
        assert_eq!((estimate.min_requests, estimate.max_requests), (2 + 5 * 2, None));
    }

    #[test]
    fn windows_are_sliced_within_the_api_limit() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let window = DateWindow::new(day("2026-01-01"), day("2026-12-31")).unwrap();
        let parts = window.slices(90);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0].end(), day("2026-03-31"));
        assert_eq!(parts.iter().map(DateWindow::num_days).sum::<u64>(), 365);
        assert_eq!(parts[4].end(), day("2026-12-31"));
    }
}
