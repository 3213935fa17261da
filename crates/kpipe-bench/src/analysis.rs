//! What the figures are compared with: the quota-bound minimum of a pull (requests needed over
//! the rate the platform allows), and the fewest requests the APIs allow for the rows pulled
//! (largest pages, no redundant call), both computed from the simulator's own data.

use kpipe_core::PeriodRequest;
use kpipe_sim::platform::facebook::InsightsLevel;
use kpipe_sim::platform::hubspot::{self, Dataset};
use kpipe_sim::platform::linkedin::Pivot;

use crate::scenario::{Plan, SEED, window};
use crate::serve::{PlatformStats, SimStats, facebook_graph, hubspot_api, linkedin_api, published};
use crate::summary::RunSummary;

/// The connector type of each simulated platform, as kpipe's summary names it.
pub const PLATFORMS: [(&str, &str); 4] = [
    ("linkedin", "linkedin"),
    ("facebook", "facebook"),
    ("hubspot", "hubspot"),
    ("google", "google_analytics"),
];

/// Paths of the platforms' OAuth token endpoints: not API calls, and outside every quota.
const TOKEN_PATHS: [&str; 4] = ["/oauth/v2/accessToken", "/oauth/v1/token", "/oauth/token", "/token"];

/// API requests a simulator received (its token endpoint's excluded).
pub fn api_requests(stats: &PlatformStats) -> u64 {
    stats.paths.iter().filter(|(path, _)| !TOKEN_PATHS.contains(&path.as_str())).map(|(_, n)| n).sum()
}

/// One platform's share of the quota-bound minimum.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlatformBound {
    /// `linkedin`, `facebook`, `hubspot`, `google`.
    pub platform: &'static str,
    /// API requests answered (the ones a quota refused are not needed).
    pub requests: u64,
    /// The limit that binds, in words.
    pub limit: String,
    /// Requests in the busiest scope of that limit over its rate, seconds.
    pub bound_s: f64,
    /// The longest pull of one of its sources, seconds.
    pub pulled_s: f64,
}

/// The quota-bound minimum of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaBound {
    /// Per platform.
    pub platforms: Vec<PlatformBound>,
}

impl QuotaBound {
    /// The slowest platform's bound: no pull of all of them can end sooner.
    pub fn bound_s(&self) -> f64 {
        self.platforms.iter().map(|p| p.bound_s).fold(0.0, f64::max)
    }

    /// The platform that sets the bound.
    pub fn slowest(&self) -> Option<&PlatformBound> {
        self.platforms.iter().max_by(|a, b| a.bound_s.total_cmp(&b.bound_s))
    }
}

fn per_second(requests: u64, window: std::time::Duration) -> f64 {
    requests as f64 / window.as_secs_f64()
}

/// The published rate of `requests` per `window` on the plan's clock, and how to say it.
fn app_rate(plan: &Plan, requests: u64, window: std::time::Duration) -> (f64, String) {
    let scaled = plan.app_limits.window(window);
    let rate = per_second(requests, scaled);
    let scale = plan.app_limits.time_scale.max(1);
    let words = if scale == 1 {
        format!("{rate:.0}/s")
    } else {
        format!(
            "{rate:.0}/s ({requests} per {:.1} s: {} s published, clock x{scale})",
            scaled.as_secs_f64(),
            window.as_secs()
        )
    };
    (rate, words)
}

/// Requests per ad account, from the paths of the Graph API (`/v25.0/act_<id>...`).
fn requests_per_ad_account(s: &PlatformStats) -> std::collections::BTreeMap<&str, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (path, n) in &s.paths {
        let Some(at) = path.find("/act_") else { continue };
        let rest = &path[at + 5..];
        let id = rest.split('/').next().unwrap_or(rest);
        *out.entry(id).or_default() += n;
    }
    out
}

/// The quota-bound minimum of a run of `plan` that made the requests in `stats` (the requests
/// of every process, for a sharded run; `summary` then the shards' summaries merged).
pub fn quota_bound(plan: &Plan, stats: &SimStats, summary: &RunSummary) -> QuotaBound {
    let mut platforms = Vec::new();
    let pulled = |kind: &str| summary.platform(kind).slowest_s;
    let answered = |s: &PlatformStats| api_requests(s).saturating_sub(s.over_quota + s.platform_refusals);
    if let (Some(_), Some(s)) = (&plan.linkedin, stats.platforms.get("linkedin")) {
        let requests = answered(s);
        let (rate, words) = app_rate(plan, published::LINKEDIN_REQUESTS, published::LINKEDIN_WINDOW);
        platforms.push(PlatformBound {
            platform: "linkedin",
            requests,
            limit: format!("{words} for the application (kpipe's pace; LinkedIn publishes daily caps only)"),
            bound_s: requests as f64 / rate,
            pulled_s: pulled("linkedin"),
        });
    }
    if let (Some(p), Some(s)) = (&plan.facebook, stats.platforms.get("facebook")) {
        // Meta's budget is per ad account: the busiest account binds.
        let busiest = requests_per_ad_account(s).into_values().max().unwrap_or(0);
        let per_hour = published::FACEBOOK_BASE + published::FACEBOOK_PER_AD * p.ads_per_account();
        let requests = answered(s);
        let mut limit = format!(
            "{per_hour}/h per ad account (600 + 400 x {} ads), busiest account {busiest}",
            p.ads_per_account()
        );
        // A rolling hour's budget: calls within it wait for nothing, the next ones for the hour
        // to roll on (a rate would make 8 calls of a 1,400-call budget take 20 s).
        let windows = busiest.saturating_sub(1) / per_hour.max(1);
        let mut bound_s = windows as f64 * published::FACEBOOK_WINDOW.as_secs_f64();
        if plan.app_limits.facebook_app_pace {
            let (app, words) =
                app_rate(plan, published::FACEBOOK_APP_REQUESTS, published::FACEBOOK_APP_WINDOW);
            let app_s = requests as f64 / app;
            limit = if app_s >= bound_s {
                format!("{words} for the application (binding); {limit}")
            } else {
                format!("{limit} (binding); {words} for the application")
            };
            bound_s = bound_s.max(app_s);
        }
        platforms.push(PlatformBound {
            platform: "facebook",
            requests,
            limit,
            bound_s,
            pulled_s: pulled("facebook"),
        });
    }
    if let (Some(p), Some(s)) = (&plan.hubspot, stats.platforms.get("hubspot")) {
        // The limits are per portal: the busiest portal binds.
        let searches_of = |paths: &std::collections::BTreeMap<String, u64>| -> u64 {
            paths.iter().filter(|(path, _)| path.starts_with("/crm/v3/objects/")).map(|(_, n)| n).sum()
        };
        let per_portal: Vec<(u64, u64)> = if s.servers.is_empty() {
            // Every portal holds the same data: each made the same requests.
            let portals = p.portals.max(1);
            vec![(searches_of(&s.paths) / portals, answered(s) / portals)]
        } else {
            s.servers
                .iter()
                .map(|server| {
                    let stats = PlatformStats { paths: server.paths.clone(), ..PlatformStats::default() };
                    (searches_of(&server.paths), api_requests(&stats).saturating_sub(server.over_quota))
                })
                .collect()
        };
        let bound_of = |(searches, requests): (u64, u64)| {
            let search =
                searches as f64 / per_second(published::HUBSPOT_SEARCH, published::HUBSPOT_SEARCH_WINDOW);
            let burst =
                requests as f64 / per_second(published::HUBSPOT_BURST, published::HUBSPOT_BURST_WINDOW);
            search.max(burst)
        };
        let busiest =
            per_portal.iter().copied().max_by(|a, b| bound_of(*a).total_cmp(&bound_of(*b))).unwrap_or((0, 0));
        platforms.push(PlatformBound {
            platform: "hubspot",
            requests: answered(s),
            limit: format!(
                "per portal: search 5/s, 110 per 10 s; busiest portal {} searches, {} requests",
                busiest.0, busiest.1
            ),
            bound_s: bound_of(busiest),
            pulled_s: pulled("hubspot"),
        });
    }
    if let (Some(_), Some(s)) = (&plan.ga4, stats.platforms.get("google")) {
        let requests = answered(s);
        let (rate, words) = app_rate(plan, published::GA4_REQUESTS, published::GA4_WINDOW);
        platforms.push(PlatformBound {
            platform: "google",
            requests,
            limit: format!("{words} per user (600 per minute); 10 concurrent per property"),
            bound_s: requests as f64 / rate,
            pulled_s: pulled("google_analytics"),
        });
    }
    QuotaBound { platforms }
}

/// Requests per useful row on one platform, against the fewest the API allows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallsPerRow {
    /// `linkedin`, `facebook`, `hubspot`, `google`.
    pub platform: &'static str,
    /// Metric rows written.
    pub rows: u64,
    /// API requests made, retries and refused ones included.
    pub requests: u64,
    /// The fewest requests that return the same data.
    pub minimum: u64,
    /// How the minimum is counted.
    pub basis: String,
}

impl CallsPerRow {
    /// Requests per row.
    pub fn per_row(&self) -> f64 {
        self.requests as f64 / self.rows.max(1) as f64
    }

    /// The minimum per row.
    pub fn minimum_per_row(&self) -> f64 {
        self.minimum as f64 / self.rows.max(1) as f64
    }

    /// Requests made over the minimum.
    pub fn ratio(&self) -> f64 {
        self.requests as f64 / self.minimum.max(1) as f64
    }
}

fn pages(items: usize, page: usize) -> u64 {
    u64::try_from(items.div_ceil(page.max(1)).max(1)).unwrap_or(u64::MAX)
}

/// Largest pages and response caps the simulated APIs serve (as the real ones document them).
const LINKEDIN_MAX_PAGE: usize = 1_000;
const LINKEDIN_ELEMENT_CAP: usize = 15_000;
const FACEBOOK_MAX_PAGE: usize = 5_000;
const HUBSPOT_SEARCH_PAGE: usize = 200;
const HUBSPOT_LISTING_PAGE: usize = 100;
const HUBSPOT_SUBMISSIONS_PAGE: usize = 50;
const GA4_BATCH: usize = 5;
/// kpipe's built-in GA4 reports: traffic, property totals, returning users.
const GA4_REPORTS: usize = 3;
/// GA4's period reports: property users and new users, property returning users, the same two
/// by channel group.
const GA4_PERIOD_REPORTS: usize = 4;
/// Date ranges one GA4 report takes.
const GA4_DATE_RANGES: usize = 4;
/// Ad accounts one LinkedIn analytics request names.
const LINKEDIN_ACCOUNTS_PER_REQUEST: usize = 50;

/// The simulator's level of a kpipe `levels` entry.
pub(crate) fn insights_level(level: &str) -> InsightsLevel {
    match level {
        "campaign" => InsightsLevel::Campaign,
        "ad_set" => InsightsLevel::Adset,
        "account" => InsightsLevel::Account,
        _ => InsightsLevel::Ad,
    }
}

/// Requests per row of each platform `plan` pulls, against the fewest its API allows.
pub fn calls_per_row(plan: &Plan, stats: &SimStats, summary: &RunSummary) -> Vec<CallsPerRow> {
    let (since, until) = window();
    let mut out = Vec::new();
    let made = |name: &str| stats.platforms.get(name).map(api_requests).unwrap_or(0);
    // The weeks and months the window touches: reach and users are asked for each.
    let periods =
        kpipe_core::DateWindow::new(since, until).map(PeriodRequest::for_window).unwrap_or_default();
    if let Some(p) = &plan.linkedin {
        let api = linkedin_api(p);
        let mut minimum = 0;
        for id in p.account_ids() {
            let campaigns = api.campaigns(id).len();
            let creatives = api.creatives(id).len();
            minimum += 1 + pages(campaigns, LINKEDIN_MAX_PAGE) + pages(creatives, LINKEDIN_MAX_PAGE);
            for pivot in [Pivot::Campaign, Pivot::Creative] {
                let elements = api.ad_analytics(SEED, id, pivot, since, until, &["impressions"]).len();
                minimum += pages(elements, LINKEDIN_ELEMENT_CAP);
            }
        }
        // Reach per week and month: one request per period and pivot (account, campaign group,
        // campaign), for up to 50 accounts at once.
        let period_requests =
            periods.len() * 3 * (p.accounts as usize).div_ceil(LINKEDIN_ACCOUNTS_PER_REQUEST);
        minimum += period_requests as u64;
        out.push(CallsPerRow {
            platform: "linkedin",
            rows: summary.platform("linkedin").rows,
            requests: made("linkedin"),
            minimum,
            basis: "per account: the account, campaigns and creatives (1,000 a page), analytics by campaign \
                    and by creative (15,000 elements a response); per week and month, reach by account, \
                    campaign group and campaign for 50 accounts a request"
                .to_owned(),
        });
    }
    if let Some(p) = &plan.facebook {
        let graph = facebook_graph(plan, p);
        let mut minimum = 0;
        for id in p.account_ids() {
            for level in p.levels {
                let level = insights_level(level);
                minimum += pages(graph.insights(SEED, &id, level, since, until).len(), FACEBOOK_MAX_PAGE);
            }
            // Reach per week and month: one report per level with every period in
            // `time_ranges` (the account level too), and the account's daily reach.
            let mut levels: Vec<InsightsLevel> = p.levels.iter().map(|l| insights_level(l)).collect();
            if !p.levels.contains(&"account") {
                levels.push(InsightsLevel::Account);
                minimum += pages(
                    graph.insights(SEED, &id, InsightsLevel::Account, since, until).len(),
                    FACEBOOK_MAX_PAGE,
                );
            }
            let ranges: std::collections::BTreeSet<_> =
                periods.iter().map(|r| (r.period.start, r.through)).collect();
            for level in levels {
                let rows: usize = ranges
                    .iter()
                    .map(|(from, through)| graph.range_insights(SEED, &id, level, *from, *through).len())
                    .sum();
                minimum += pages(rows, FACEBOOK_MAX_PAGE);
            }
        }
        out.push(CallsPerRow {
            platform: "facebook",
            rows: summary.platform("facebook").rows,
            requests: made("facebook"),
            minimum,
            basis: format!(
                "per account and level ({}): insights pages of 5,000 rows; the account's daily reach; per \
                 level and the account level, one report of every week's and month's reach (time_ranges)",
                p.levels.join(", ")
            ),
        });
    }
    if let Some(p) = &plan.hubspot {
        let api = hubspot_api(p);
        let per_portal = hubspot_minimum(&api.dataset(SEED), &api, since, until);
        out.push(CallsPerRow {
            platform: "hubspot",
            rows: summary.platform("hubspot").rows,
            requests: made("hubspot"),
            minimum: per_portal * p.portals,
            basis: "per portal: details, pipelines, searches of 200, forms listing, submissions pages of 50 \
                    back to the window, email statistics list, names and one histogram per email"
                .to_owned(),
        });
    }
    if let Some(p) = &plan.ga4 {
        out.push(CallsPerRow {
            platform: "google",
            rows: summary.platform("google_analytics").rows,
            requests: made("google"),
            minimum: p.properties
                * (pages(GA4_REPORTS, GA4_BATCH)
                    + pages(periods.len().div_ceil(GA4_DATE_RANGES) * GA4_PERIOD_REPORTS, GA4_BATCH)),
            basis: "per property: one batchRunReports of the 3 reports (250,000 rows a page); the users of \
                    every week and month in 4 period reports, 4 date ranges a report, 5 reports a batch"
                .to_owned(),
        });
    }
    out
}

/// The fewest requests one portal's pull of `since..=until` needs.
fn hubspot_minimum(
    data: &Dataset,
    api: &hubspot::HubSpotApi,
    since: chrono::NaiveDate,
    until: chrono::NaiveDate,
) -> u64 {
    // The portal's days, daylight saving time included, as the connector cuts them.
    let start = api.portal.day_start_ms(since);
    let end = until.succ_opt().map_or(i64::MAX, |d| api.portal.day_start_ms(d));
    let created_within = |records: &[hubspot::CrmRecord]| {
        records.iter().filter(|r| (start..end).contains(&r.created_ms)).count()
    };
    // Details (zone, currency) and the deal pipelines (won stages).
    let mut minimum = 2;
    minimum += pages(created_within(&data.contacts), HUBSPOT_SEARCH_PAGE);
    minimum += pages(created_within(&data.deals), HUBSPOT_SEARCH_PAGE);
    minimum += pages(created_within(&data.feedback), HUBSPOT_SEARCH_PAGE);
    minimum += pages(api.forms.len(), HUBSPOT_LISTING_PAGE);
    for (form, submissions) in api.forms.iter().zip(&data.submissions) {
        if form.created <= until {
            // Newest first: every submission from now back to the window's first day.
            minimum += pages(
                submissions.iter().filter(|s| s.submitted_ms >= start).count(),
                HUBSPOT_SUBMISSIONS_PAGE,
            );
        }
    }
    let mut active: Vec<u64> =
        data.email_days.iter().filter(|d| since <= d.day && d.day <= until).map(|d| d.email_id).collect();
    active.sort_unstable();
    active.dedup();
    // The statistics list, then the names and one histogram per email with statistics.
    minimum += 1;
    if !active.is_empty() {
        minimum += pages(api.emails.len(), HUBSPOT_LISTING_PAGE) + active.len() as u64;
    }
    minimum
}
