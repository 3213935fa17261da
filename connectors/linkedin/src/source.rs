//! The source: configuration checks, and the pull.
//!
//! A pull reads the ad accounts (currency, status) and the names of their campaigns and
//! creatives, pulls the company pages' statistics, then walks the window in date slices:
//! each slice is pulled for every account by campaign and by creative and then declared
//! complete, so a pull stopped by LinkedIn's daily limit still publishes the finished days.
//! Beside the slices, the reach of every week and month the window touches is asked for as one
//! value each ([`crate::period`]); those rows are published with the window.

use chrono::Utc;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Emitter, PullRequest, RequestEstimate, RequestTelemetry, Source,
    SourceError, StreamInfo, TokenFacts,
};

use crate::analytics;
use crate::catalog;
use crate::client::{Api, DEFAULT_RATE_LIMIT};
use crate::concurrent;
use crate::config::LinkedInConfig;
use crate::entities::{self, AdAccount};
use crate::estimate;
use crate::fields::{self, AnalyticsField};
use crate::organization;
use crate::period;

/// A configured LinkedIn source.
#[derive(Debug)]
pub struct LinkedInSource {
    api: Api,
    account_ids: Vec<u64>,
    organization_ids: Vec<u64>,
    fields: Vec<AnalyticsField>,
    days_per_request: u32,
    element_cap: u32,
    /// Requests of different ad accounts in flight at once.
    concurrency: usize,
    /// What [`Source::estimate_requests`] counts with.
    plan: estimate::Plan,
}

impl Source for LinkedInSource {
    type Config = LinkedInConfig;
    const KIND: &'static str = "linkedin";
    const DESCRIPTION: &'static str =
        "LinkedIn Marketing API: daily ad analytics by campaign and creative, company page statistics";

    const UNIT_KEYS: &'static [kpipe_core::UnitKey] = &[
        kpipe_core::UnitKey { key: "account_ids", label: |t| urn_id(t, "sponsoredAccount") },
        kpipe_core::UnitKey { key: "organization_ids", label: |t| urn_id(t, "organization") },
    ];

    /// LinkedIn counts its daily limits per application (and per member): shards share them.
    const SHARED_RATE_LIMIT: Option<kpipe_core::SharedRateLimit> = Some(kpipe_core::SharedRateLimit {
        key: "rate_limit",
        requests: DEFAULT_RATE_LIMIT.requests,
        per_seconds: DEFAULT_RATE_LIMIT.per.as_secs_f64(),
        burst: DEFAULT_RATE_LIMIT.burst,
    });

    fn build(config: LinkedInConfig, _cx: &BuildContext) -> Result<Self, ConfigError> {
        let settings = config.settings()?;
        let plan = estimate::Plan {
            accounts: settings.account_ids.len() as u64,
            organizations: settings.organization_ids.len() as u64,
            field_groups: fields::request_groups(&settings.fields).len() as u64,
            days_per_request: u64::from(settings.days_per_request),
            page_size: u64::from(settings.page_size),
            rate_limit: settings.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT),
        };
        Ok(LinkedInSource {
            api: Api::new(&settings)?,
            account_ids: settings.account_ids,
            organization_ids: settings.organization_ids,
            fields: settings.fields,
            days_per_request: settings.days_per_request,
            element_cap: settings.response_element_cap,
            concurrency: usize::try_from(settings.concurrency).unwrap_or(1),
            plan,
        })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        catalog::STREAMS.to_vec()
    }

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        catalog::catalog()
    }

    async fn check(&self) -> Result<String, SourceError> {
        let mut seen = Vec::new();
        for id in &self.account_ids {
            let account = entities::ad_account(&self.api, *id).await?;
            seen.push(format!("ad account {id} ({}, {})", account.currency, account.status));
        }
        for id in &self.organization_ids {
            let followers = organization::network_size(&self.api, *id).await?;
            seen.push(format!("company page {id} ({followers} followers)"));
        }
        Ok(format!("readable: {}", seen.join(", ")))
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        let window = request.window;
        let accounts = entities::read_accounts(&self.api, &self.account_ids, self.concurrency, out).await?;
        for account in accounts.iter().filter(|a| a.status != "ACTIVE") {
            tracing::info!(account = account.id, status = %account.status,
                "pulling an ad account that is not active");
        }
        let today = Utc::now().date_naive();
        for id in &self.organization_ids {
            organization::pull(&self.api, *id, window, today, out).await?;
        }
        let days = days_per_slice(&accounts, self.days_per_request, self.element_cap);
        tracing::debug!(days, %window, "ad analytics date slices planned");
        let cap = usize::try_from(self.element_cap).unwrap_or(usize::MAX);
        out.set_stream(analytics::ANALYTICS_STREAM);
        // Reach (a canonical field, always pulled) of every week and month the window touches.
        // Asked for beside the slices when more than one request may be in flight: run after
        // them, its few requests would leave the pace unused while the slices' last answers
        // come in. A third of the requests in flight are then its own, and its answers may
        // hold half as many elements again as the slices' answers.
        let periods_beside = self.concurrency > 1;
        let period_share = (self.concurrency / 3).max(1);
        let slice_share = if periods_beside { self.concurrency - period_share } else { 1 };
        let in_flight = concurrent::in_flight_for_elements(slice_share, largest_answer(&accounts, days));
        let largest_batch = period::largest_batch(&accounts, self.element_cap);
        let period_in_flight = concurrent::in_flight_for_elements(period_share, largest_batch * 2);
        let mut periods = out.fork();
        let reading_periods = async {
            period::pull(&self.api, &accounts, window, cap, period_in_flight, &mut periods).await?;
            // Inside this future: see `Emitter::fork`.
            periods.flush().await
        };
        let reading_slices = async {
            for slice in window.slices(days) {
                analytics::pull_accounts(&self.api, &accounts, slice, &self.fields, cap, in_flight, out)
                    .await?;
                out.complete(slice).await?;
            }
            Ok::<(), SourceError>(())
        };
        if periods_beside {
            futures::try_join!(reading_slices, reading_periods)?;
        } else {
            reading_slices.await?;
            reading_periods.await?;
        }
        out.join(periods).await
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        Some(self.api.telemetry())
    }

    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate> {
        Some(self.plan.estimate(windows, Utc::now().date_naive()))
    }

    /// After `check`, the lifetimes of the refresh answer: LinkedIn's includes what is left of
    /// the refresh token's 365 days.
    fn token_facts(&self) -> Option<TokenFacts> {
        self.api.token_facts()
    }

    /// Conversions are attributed for up to 30 days after the click, so a day's numbers can
    /// change for that long.
    fn restatement_days(&self) -> Option<u32> {
        Some(30)
    }

    /// Ad analytics keep about ten years of performance data (demographic pivots two years;
    /// shared/apis/linkedin.md, "Retention").
    fn history(&self) -> Option<kpipe_core::History> {
        Some(kpipe_core::History { days: 3_650, rule: "LinkedIn keeps ad analytics for about ten years" })
    }
}

/// The most elements one ad analytics answer of `days` days can hold: every campaign or
/// creative of the largest account reporting every day.
fn largest_answer(accounts: &[AdAccount], days: u64) -> u64 {
    let largest = accounts.iter().map(|a| a.campaigns.len().max(a.creatives.len())).max().unwrap_or(0);
    (largest as u64).max(1).saturating_mul(days)
}

/// Days per ad analytics request: as many as keep a response of the largest account (every
/// campaign or creative reporting every day) within two thirds of the element cap, at most
/// `days_per_request`.
pub fn days_per_slice(accounts: &[AdAccount], days_per_request: u32, element_cap: u32) -> u64 {
    let budget = u64::from(element_cap) * 2 / 3;
    let largest = accounts.iter().map(|a| a.campaigns.len().max(a.creatives.len())).max().unwrap_or(0).max(1);
    (budget / largest as u64).clamp(1, u64::from(days_per_request.max(1)))
}

/// The id in the rows (`account_id`) of a configured `<digits>` or `urn:li:<kind>:<digits>`.
fn urn_id(text: &str, kind: &str) -> String {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(&format!("urn:li:{kind}:")).unwrap_or(trimmed);
    digits.parse::<u64>().map_or_else(|_| digits.to_owned(), |id| id.to_string())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use kpipe_core::DateWindow;

    use std::collections::HashMap;

    use kpipe_core::{Currency, Label};

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn account(campaigns: u64, creatives: u64) -> AdAccount {
        AdAccount {
            id: 1,
            label: Label::from("1"),
            name: None,
            currency: Currency::parse("USD").unwrap(),
            status: "ACTIVE".into(),
            campaigns: (0..campaigns).map(|i| (i, None)).collect::<HashMap<_, _>>(),
            creatives: (0..creatives).map(|i| (i, None)).collect::<HashMap<_, _>>(),
            campaign_groups: Default::default(),
        }
    }

    #[test]
    fn slices_keep_responses_below_the_element_cap() {
        // 10,000 elements of budget: 50 campaigns x 100 creatives -> 100 days, capped at 31.
        assert_eq!(days_per_slice(&[account(50, 100)], 31, 15_000), 31);
        assert_eq!(days_per_slice(&[account(50, 100), account(200, 2_000)], 366, 15_000), 5);
        assert_eq!(days_per_slice(&[account(20_000, 40_000)], 31, 15_000), 1);
        assert_eq!(days_per_slice(&[], 31, 15_000), 31);
        let window = DateWindow::new(day("2026-01-01"), day("2026-12-31")).unwrap();
        let parts = window.slices(31);
        assert_eq!(parts.len(), 12);
        assert_eq!(parts.iter().map(DateWindow::num_days).sum::<u64>(), 365);
        assert_eq!(parts[11].end(), day("2026-12-31"));
    }
}
