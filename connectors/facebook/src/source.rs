//! The source: configuration checks, the clients, and the pull loop.

use std::sync::Arc;
use std::time::Duration;

use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Emitter, PeriodRequest, PullRequest, RequestEstimate,
    RequestTelemetry, Secret, Source, SourceError, StreamInfo,
};
use kpipe_http::{ApiClient, ApiRequest, HttpClient, RateLimit, RateLimiter};
use serde_json::Value;

use crate::client::{GraphObject, scrub};
use crate::config::{DEFAULT_BASE_URL, FacebookConfig, Settings};
use crate::listing::ADS_STREAM;
use crate::page_insights::{PAGE_STREAM, PageRun};
use crate::usage::UsageBook;

/// The default pace for the whole source: at most 20 requests in any second, 10 a second
/// sustained after a burst of 10. Meta publishes hourly budgets per ad account and Page
/// (standard tier: `600 + 400 x active ads` insights calls an hour per account) rather than a
/// rate; the usage headers steer the real pace near a budget, this keeps bursts short.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit { requests: 20, per: Duration::from_secs(1), burst: 10 };

/// A configured Facebook source.
#[derive(Debug)]
pub struct FacebookSource {
    pub(crate) settings: Settings,
    pub(crate) token: Secret,
    pub(crate) accounts: Vec<GraphObject>,
    pub(crate) pages: Vec<GraphObject>,
    pub(crate) book: Arc<UsageBook>,
    /// The longest wait honoured by sleeping (the retry policy's `max_retry_after`).
    pub(crate) max_wait: Duration,
    /// The pace of the whole source.
    pub(crate) rate_limit: RateLimit,
    /// Report-run polls waiting to go in a batch.
    pub(crate) polls: crate::run_polls::RunPolls,
    /// Insights listings being read, at most [`Settings::listings_in_flight`] at once across
    /// the source: what bounds the memory of the answers in flight.
    pub(crate) readers: tokio::sync::Semaphore,
}

impl Source for FacebookSource {
    type Config = FacebookConfig;
    const KIND: &'static str = "facebook";
    const DESCRIPTION: &'static str =
        "Facebook (Meta): daily ads insights (campaigns, ad sets, ads) and Page insights from the Graph API";

    const UNIT_KEYS: &'static [kpipe_core::UnitKey] = &[
        kpipe_core::UnitKey {
            key: "ad_account_ids",
            label: |t| {
                let t = t.trim();
                t.strip_prefix("act_").unwrap_or(t).to_owned()
            },
        },
        kpipe_core::UnitKey { key: "page_ids", label: |t| t.trim().to_owned() },
    ];

    /// Meta's application rate limit counts every call the app makes (its `X-App-Usage`):
    /// shards share it.
    const SHARED_RATE_LIMIT: Option<kpipe_core::SharedRateLimit> = Some(kpipe_core::SharedRateLimit {
        key: "rate_limit",
        requests: DEFAULT_RATE_LIMIT.requests,
        per_seconds: DEFAULT_RATE_LIMIT.per.as_secs_f64(),
        burst: DEFAULT_RATE_LIMIT.burst,
    });

    fn build(config: FacebookConfig, _cx: &BuildContext) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&config)?;
        let base_url = config.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let http = HttpClient::new().map_err(|e| ConfigError::new("base_url", e.to_string()))?;
        let rate_limit = config.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
        let limiter = RateLimiter::new(rate_limit)
            .ok_or_else(|| ConfigError::new("rate_limit", "must allow at least one request per period"))?;
        let policy = config.retry.unwrap_or_default().policy();
        let max_wait = policy.max_retry_after;
        let book = Arc::new(UsageBook::default());
        let object = |id: &String| -> Result<GraphObject, ConfigError> {
            let builder = ApiClient::builder(&http, &base_url)
                .map_err(|e| ConfigError::new("base_url", e.to_string()))?
                // One budget for the whole source: every object's client shares the limiter.
                .rate_limit(limiter.clone(), "source")
                .retry_policy(policy.clone());
            Ok(GraphObject::new(
                id,
                builder,
                Arc::clone(&book),
                settings.usage_threshold_pct,
                max_wait,
                settings.page_size,
            ))
        };
        let accounts = settings.ad_accounts.iter().map(&object).collect::<Result<Vec<_>, _>>()?;
        let pages = settings.pages.iter().map(&object).collect::<Result<Vec<_>, _>>()?;
        let readers = tokio::sync::Semaphore::new(settings.listings_in_flight());
        Ok(FacebookSource {
            token: config.access_token,
            settings,
            accounts,
            pages,
            book,
            max_wait,
            rate_limit,
            polls: crate::run_polls::RunPolls::default(),
            readers,
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        crate::catalog::STREAMS.to_vec()
    }

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        crate::catalog::catalog()
    }

    async fn check(&self) -> Result<String, SourceError> {
        let mut seen = Vec::new();
        for account in &self.accounts {
            let request = ApiRequest::get(&format!("{}/act_{}", self.settings.api_version, account.id))
                .query("fields", "name,currency,timezone_name,account_status");
            let response = account.call(&self.book, self.max_wait, request, &self.token).await?;
            let body: Value = response.json()?;
            let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
            let status = match body.get("account_status").and_then(Value::as_i64) {
                Some(1) | None => String::new(),
                Some(other) => format!(", account_status {other} (not active)"),
            };
            seen.push(format!(
                "act_{} ({}, {}, {}{status})",
                account.id,
                field("name"),
                field("currency"),
                field("timezone_name")
            ));
        }
        for page in &self.pages {
            let request = ApiRequest::get(&format!("{}/{}", self.settings.api_version, page.id))
                .query("fields", "name,access_token");
            let response = page.call(&self.book, self.max_wait, request, &self.token).await?;
            let body: Value = response.json().map_err(|e| SourceError::data(scrub(&e.to_string())))?;
            let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
            let token =
                if body.get("access_token").is_some() { "Page token available" } else { "no Page token" };
            seen.push(format!("page {} ({name}, {token})", page.id));
        }
        let mut said = format!(
            "{} object(s) readable with API {}: {}",
            seen.len(),
            self.settings.api_version,
            seen.join(", ")
        );
        if let Some(notice) = self.version_notice() {
            said.push_str(&format!("; {notice}"));
        }
        Ok(said)
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        if let Some(notice) = self.version_notice() {
            tracing::warn!(api_version = %self.settings.api_version, "{notice}");
        }
        let window = request.window;
        let by_runs = window.num_days() > self.settings.reports.after_days;
        let parts = if by_runs { window.slices(self.settings.reports.slice_days) } else { vec![window] };
        tracing::debug!(%window, report_runs = by_runs, slices = parts.len(), "pulling Facebook insights");
        let mut pages = PageRun::default();
        // Reach over the weeks and months the window touches, published with the window: asked
        // for while the slices are pulled (a report run leaves the pace idle for seconds).
        let periods = PeriodRequest::for_window(window);
        out.set_stream(ADS_STREAM);
        let mut period_out = out.fork();
        let slices = async {
            // Slice by slice over every account, level and Page, so that each finished slice is a
            // set of complete days: if the budget runs out, those days are still published. Within
            // a slice the ad reports, the accounts' daily reach and the Pages are read at once.
            for slice in parts {
                out.set_stream(ADS_STREAM);
                let mut reach_out = out.fork();
                let mut pages_out = out.fork();
                pages_out.set_stream(PAGE_STREAM);
                let reports = async {
                    if by_runs {
                        let reports = self.reports_by_runs(slice, out);
                        // The account's daily reach is a row a day: a synchronous report is enough.
                        let reach = self.read_listings(self.account_reach_listings(slice), &mut reach_out);
                        let (reports, reach) = futures::future::join(reports, reach).await;
                        Ok(reports? & reach?)
                    } else {
                        self.sync_reports(slice, out).await
                    }
                };
                let page_insights = async {
                    let mut whole = true;
                    for page in &self.pages {
                        whole &= self.page_insights(page, slice, &mut pages, &mut pages_out).await?;
                    }
                    Ok::<bool, SourceError>(whole)
                };
                let (reports, page_insights) = futures::future::join(reports, page_insights).await;
                out.join(reach_out).await?;
                out.join(pages_out).await?;
                if reports? & page_insights? {
                    out.complete(slice).await?;
                } else {
                    tracing::warn!(%slice, "part of this slice was quarantined; its days are not declared done");
                }
            }
            // Then the Pages' weekly reach and opening followers.
            out.set_stream(PAGE_STREAM);
            for page in &self.pages {
                if !self.page_week_reach(page, window, &mut pages, out).await? {
                    tracing::warn!(page = %page.id, %window, "part of the Page's weekly reach was not written");
                }
                if !self.page_follower_openings(page, window, &mut pages, out).await? {
                    tracing::warn!(page = %page.id, %window,
                        "part of the Page's opening followers was not written");
                }
            }
            Ok::<(), SourceError>(())
        };
        let (_, period_reach) =
            futures::future::try_join(slices, self.period_reach(&periods, &mut period_out)).await?;
        out.join(period_out).await?;
        if !period_reach {
            tracing::warn!(%window, "part of the period reach was quarantined");
        }

        Ok(())
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        let mut total = RequestTelemetry::default();
        for object in self.accounts.iter().chain(&self.pages) {
            total.absorb(object.api.telemetry());
        }
        // Pauses for usage near the limit are throttling waits too.
        let (pauses, paused) = self.book.taken();
        total.throttle_waits += pauses;
        total.throttle_wait_ms += u64::try_from(paused.as_millis()).unwrap_or(u64::MAX);
        for (object, left) in self.book.quota_left() {
            total.quota_left.entry(object).or_default().keep_lowest(&left);
        }
        Some(total)
    }

    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate> {
        Some(self.estimate(windows))
    }

    /// The configured access token is sent as it is: nothing renews it here, and its expiry
    /// (if any) is not announced.
    fn token_facts(&self) -> Option<kpipe_core::TokenFacts> {
        Some(kpipe_core::TokenFacts::of(kpipe_core::CredentialKind::StaticAccessToken))
    }

    /// Meta restates a day for up to 28 days (attribution windows of up to 28 days after the
    /// click); after that the numbers hold.
    fn restatement_days(&self) -> Option<u32> {
        Some(28)
    }

    /// Ads Insights answers for the last 37 months only (shared/apis/facebook.md).
    fn history(&self) -> Option<kpipe_core::History> {
        Some(kpipe_core::History { days: 37 * 365 / 12, rule: "Meta keeps ads insights for 37 months" })
    }
}
