//! `kpipe-bench serve`: the four simulated platform APIs of a scenario, in a process of their
//! own so that the CPU time and memory measured of the kpipe process are kpipe's alone.
//!
//! The process prints one JSON line with the base URLs and credentials ([`Endpoints`]), serves
//! until its standard input closes, then prints one JSON line of what the simulators saw
//! ([`SimStats`]) and exits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kpipe_sim::platform::facebook::{
    self, FacebookGraph, ReportRunBehaviour, SimAdAccount, SimPage, Structure, UsageBudget,
};
use kpipe_sim::platform::ga4::{Ga4Api, PropertyQuotaLimits, SimProperty};
use kpipe_sim::platform::hubspot::{self, HubSpotApi, UsageLimits};
use kpipe_sim::platform::linkedin::{self, LinkedInApi};
use kpipe_sim::{AuthConfig, CannedResponse, Latency, QuotaRule, RetryAfter, SimConfig, SimServer};

use crate::scenario::{FacebookPlan, Ga4Plan, HubSpotPlan, LinkedInPlan, Plan, SEED, Sizing, window};

/// The credentials every simulated OAuth endpoint accepts (the simulator's test client).
pub const CLIENT_ID: &str = "sim-client";
/// See [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "sim-secret";
/// See [`CLIENT_ID`].
pub const REFRESH_TOKEN: &str = "sim-refresh-token";

/// The published limits the quota scenario enforces (see docs/benchmarks.md, "End to end").
pub mod published {
    use std::time::Duration;

    /// LinkedIn publishes no rate, only daily caps per endpoint whose numbers are not public;
    /// kpipe paces it at 10 requests a second, and the bench holds it to that pace.
    pub const LINKEDIN_REQUESTS: u64 = 100;
    /// See [`LINKEDIN_REQUESTS`].
    pub const LINKEDIN_WINDOW: Duration = Duration::from_secs(10);
    /// A daily application cap for LinkedIn: not published; large enough for the scenario.
    pub const LINKEDIN_DAILY: u64 = 100_000;
    /// Meta's ads-insights business-use-case budget per ad account, standard tier: calls per
    /// rolling hour are `600 + 400 * active ads`.
    pub const FACEBOOK_BASE: u64 = 600;
    /// See [`FACEBOOK_BASE`].
    pub const FACEBOOK_PER_AD: u64 = 400;
    /// See [`FACEBOOK_BASE`].
    pub const FACEBOOK_WINDOW: Duration = Duration::from_secs(3_600);
    /// Meta meters an application's calls over the hour (`X-App-Usage`) and publishes no
    /// per-second number for the Marketing API: where a scenario holds the application to a
    /// pace across processes, it is the pace the quota scenario configures, 200 requests per
    /// 10 s, answered `(#4) Application request limit reached` beyond.
    pub const FACEBOOK_APP_REQUESTS: u64 = 200;
    /// See [`FACEBOOK_APP_REQUESTS`].
    pub const FACEBOOK_APP_WINDOW: Duration = Duration::from_secs(10);
    /// HubSpot's burst limit of an OAuth (public) app: 110 requests per 10 s per installing
    /// portal.
    pub const HUBSPOT_BURST: u64 = 110;
    /// See [`HUBSPOT_BURST`].
    pub const HUBSPOT_BURST_WINDOW: Duration = Duration::from_secs(10);
    /// HubSpot's CRM search limit: 5 requests per second per portal.
    pub const HUBSPOT_SEARCH: u64 = 5;
    /// See [`HUBSPOT_SEARCH`].
    pub const HUBSPOT_SEARCH_WINDOW: Duration = Duration::from_secs(1);
    /// The Analytics Data API's 600 requests per minute per user (besides each property's
    /// token and concurrency quotas, which the simulator enforces as published).
    pub const GA4_REQUESTS: u64 = 600;
    /// See [`GA4_REQUESTS`].
    pub const GA4_WINDOW: Duration = Duration::from_secs(60);
}

/// Where one simulated platform listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
}

/// What `serve` prints first: where each platform of the plan listens.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// LinkedIn Marketing API.
    pub linkedin: Option<Endpoint>,
    /// Facebook Graph API.
    pub facebook: Option<Endpoint>,
    /// HubSpot: one server per portal.
    pub hubspot: Vec<Endpoint>,
    /// Google Analytics Data API.
    pub google: Option<Endpoint>,
    /// The Graph API's system-user token the Facebook simulator accepts.
    pub facebook_token: String,
}

/// What one simulated platform saw.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PlatformStats {
    /// Requests received, the token endpoint's included.
    pub requests: u64,
    /// Requests received per path.
    pub paths: BTreeMap<String, u64>,
    /// Requests refused by a quota rule (429s of the generic machinery).
    pub over_quota: u64,
    /// Requests refused by the platform's own budgets (Meta's business-use-case usage, GA4's
    /// property quotas).
    pub platform_refusals: u64,
    /// Requests refused per quota rule (`linkedin_pace`, `facebook_app`, `hubspot_burst`, ...).
    #[serde(default)]
    pub rejections: BTreeMap<String, u64>,
    /// Per server, for a platform served by one server per portal (HubSpot): its requests.
    #[serde(default)]
    pub servers: Vec<ServerCounts>,
    /// Asynchronous report runs started (Facebook).
    #[serde(default)]
    pub report_runs: u64,
}

/// What one server of a platform saw.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ServerCounts {
    /// Requests received per path.
    pub paths: BTreeMap<String, u64>,
    /// Requests refused by a quota rule.
    pub over_quota: u64,
}

/// What `serve` prints last.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SimStats {
    /// Per platform name (`linkedin`, `facebook`, `hubspot`, `google`).
    pub platforms: BTreeMap<String, PlatformStats>,
}

impl SimStats {
    /// Requests refused for going over a quota, every platform and kind together.
    pub fn refused_over_quota(&self) -> u64 {
        self.platforms.values().map(|p| p.over_quota + p.platform_refusals).sum()
    }
}

/// The running simulators of one plan.
#[derive(Debug)]
pub struct Simulators {
    linkedin: Option<SimServer>,
    facebook: Option<(SimServer, facebook::FacebookMonitor)>,
    hubspot: Vec<SimServer>,
    google: Option<(SimServer, Ga4Api)>,
}

/// The names of the quota rules the scenarios' servers have.
const QUOTA_RULES: [&str; 7] = [
    "linkedin_pace",
    "linkedin_daily",
    "facebook_app",
    "hubspot_search",
    "hubspot_burst",
    "ga4_per_user",
    "ga4_daily",
];

fn base(plan: &Plan) -> SimConfig {
    let config = SimConfig::new(SEED);
    // Nothing reads the request log; keeping it would only cost memory.
    let config = SimConfig { request_log_limit: 0, test_routes: None, ..config };
    match plan.latency_ms {
        Some((min, max)) => config.with_latency(Latency::uniform_ms(min, max)),
        None => config,
    }
}

fn endpoint(server: &SimServer) -> Endpoint {
    Endpoint { base_url: server.base_url().to_owned(), token_url: server.token_url().to_owned() }
}

impl Simulators {
    /// Starts the platforms of `plan` on loopback ports.
    pub async fn start(plan: &Plan) -> Result<Simulators, kpipe_sim::SimError> {
        let linkedin = match &plan.linkedin {
            Some(p) => Some(SimServer::start(linkedin_config(plan, p)).await?),
            None => None,
        };
        let facebook = match &plan.facebook {
            Some(p) => {
                let (config, monitor) = facebook_config(plan, p);
                Some((SimServer::start(config).await?, monitor))
            }
            None => None,
        };
        let mut hubspot = Vec::new();
        if let Some(p) = &plan.hubspot {
            // A server per portal: each portal has its own limits and usage headers.
            for n in 1..=p.portals {
                hubspot.push(SimServer::start(hubspot_config(plan, p, n)).await?);
            }
        }
        let google = match &plan.ga4 {
            Some(p) => {
                let (config, api) = ga4_config(plan, p);
                Some((SimServer::start(config).await?, api))
            }
            None => None,
        };
        Ok(Simulators { linkedin, facebook, hubspot, google })
    }

    /// Where they listen.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            linkedin: self.linkedin.as_ref().map(endpoint),
            facebook: self.facebook.as_ref().map(|(s, _)| endpoint(s)),
            hubspot: self.hubspot.iter().map(endpoint).collect(),
            google: self.google.as_ref().map(|(s, _)| endpoint(s)),
            facebook_token: facebook::DEMO_ACCESS_TOKEN.to_owned(),
        }
    }

    /// What they saw so far.
    pub fn stats(&self) -> SimStats {
        let of = |server: &SimServer, platform_refusals: u64| PlatformStats {
            requests: server.requests_total(),
            paths: server.path_counts(),
            over_quota: server.requests_over_quota(),
            platform_refusals,
            rejections: QUOTA_RULES
                .iter()
                .map(|name| ((*name).to_owned(), server.rejections_for_quota(name)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            servers: Vec::new(),
            report_runs: 0,
        };
        let mut platforms = BTreeMap::new();
        if let Some(s) = &self.linkedin {
            platforms.insert("linkedin".to_owned(), of(s, 0));
        }
        if let Some((s, monitor)) = &self.facebook {
            let stats = PlatformStats { report_runs: monitor.report_runs(), ..of(s, monitor.throttled()) };
            platforms.insert("facebook".to_owned(), stats);
        }
        if !self.hubspot.is_empty() {
            let mut all = PlatformStats::default();
            for portal in self.hubspot.iter().map(|s| of(s, 0)) {
                all.requests += portal.requests;
                all.over_quota += portal.over_quota;
                for (path, n) in &portal.paths {
                    *all.paths.entry(path.clone()).or_default() += n;
                }
                for (rule, n) in portal.rejections {
                    *all.rejections.entry(rule).or_default() += n;
                }
                all.servers.push(ServerCounts { paths: portal.paths, over_quota: portal.over_quota });
            }
            platforms.insert("hubspot".to_owned(), all);
        }
        if let Some((s, api)) = &self.google {
            platforms.insert("google".to_owned(), of(s, api.monitor().refused_total()));
        }
        SimStats { platforms }
    }

    /// Stops them.
    pub async fn shutdown(self) {
        if let Some(s) = self.linkedin {
            s.shutdown().await;
        }
        if let Some((s, _)) = self.facebook {
            s.shutdown().await;
        }
        for s in self.hubspot {
            s.shutdown().await;
        }
        if let Some((s, _)) = self.google {
            s.shutdown().await;
        }
    }
}

/// The simulated LinkedIn API of `p`: its accounts, each of its size.
pub fn linkedin_api(p: &LinkedInPlan) -> LinkedInApi {
    let uniform = LinkedInApi::with_accounts(p.accounts, p.campaigns, p.creatives_per_campaign);
    if p.sizing == Sizing::Uniform {
        return uniform;
    }
    let accounts = uniform
        .accounts
        .iter()
        .zip(1..)
        .map(|(a, n)| {
            let (campaigns, creatives) = p.shape(n);
            linkedin::AdAccount::new(a.id, &a.currency, campaigns, creatives)
        })
        .collect();
    LinkedInApi { accounts, ..uniform }
}

fn linkedin_config(plan: &Plan, p: &LinkedInPlan) -> SimConfig {
    let api = linkedin_api(p);
    let config = base(plan).with_auth(linkedin::auth_config()).with_platform(Arc::new(api));
    if !plan.published_quotas {
        return config;
    }
    config
        .with_quota(
            QuotaRule::rolling_window(
                published::LINKEDIN_REQUESTS,
                plan.app_limits.window(published::LINKEDIN_WINDOW),
            )
            .named("linkedin_pace")
            .with_retry_after(RetryAfter::Omit)
            .with_response(linkedin::throttled(None)),
        )
        .with_quota(linkedin::daily_quota(published::LINKEDIN_DAILY))
}

/// The simulated Graph API of `p`: its accounts, and the budgets of the plan.
pub fn facebook_graph(plan: &Plan, p: &FacebookPlan) -> FacebookGraph {
    let accounts = p
        .account_ids()
        .iter()
        .enumerate()
        .map(|(i, id)| {
            if i % 2 == 0 {
                SimAdAccount::new(id, &format!("Account {id}"), "USD", "America/Los_Angeles", -8)
            } else {
                SimAdAccount::new(id, &format!("Account {id}"), "EUR", "Europe/Berlin", 1)
            }
        })
        .collect();
    // Without quotas, budgets no run can reach.
    let unlimited = UsageBudget::new(u64::MAX / 2, Duration::from_secs(3_600));
    let budget = if plan.published_quotas {
        UsageBudget::new(
            published::FACEBOOK_BASE + published::FACEBOOK_PER_AD * p.ads_per_account(),
            published::FACEBOOK_WINDOW,
        )
    } else {
        unlimited
    };
    FacebookGraph {
        ad_accounts: accounts,
        pages: p.page_ids().iter().map(|id| SimPage::new(id, &format!("Page {id}"))).collect(),
        structure: Structure { campaigns: p.campaigns, adsets: p.adsets, ads: p.ads },
        usage_budget: budget,
        app_usage_budget: if plan.published_quotas {
            FacebookGraph::default().app_usage_budget
        } else {
            unlimited
        },
        report_runs: ReportRunBehaviour { run_time: p.report_run_time, ..ReportRunBehaviour::default() },
        ..FacebookGraph::default()
    }
}

fn facebook_config(plan: &Plan, p: &FacebookPlan) -> (SimConfig, facebook::FacebookMonitor) {
    let graph = facebook_graph(plan, p);
    let monitor = graph.monitor();
    let config = base(plan).with_auth(facebook::auth_config()).with_platform(Arc::new(graph));
    if !(plan.published_quotas && plan.app_limits.facebook_app_pace) {
        return (config, monitor);
    }
    // Every call of the application, whichever process and ad account it is for.
    let config = config.with_quota(
        QuotaRule::rolling_window(
            published::FACEBOOK_APP_REQUESTS,
            plan.app_limits.window(published::FACEBOOK_APP_WINDOW),
        )
        .named("facebook_app")
        .with_retry_after(RetryAfter::Omit)
        .with_response(facebook::error(400, 4, None, "(#4) Application request limit reached")),
    );
    (config, monitor)
}

/// The simulated portal of each HubSpot source of the plan (every portal holds the same data).
pub fn hubspot_api(p: &HubSpotPlan) -> HubSpotApi {
    let (start, end) = window();
    let day = |d: chrono::NaiveDate, n: i64| d.checked_add_signed(chrono::Duration::days(n)).unwrap_or(d);
    HubSpotApi {
        // A month of history before the window, and "today" the day after it, as a nightly
        // pull sees the portal.
        first_day: day(start, -30),
        last_day: day(end, 1),
        contacts_per_day: p.contacts_per_day,
        deals_per_day: p.deals_per_day,
        // What the rate-limit headers report: an OAuth app's burst limit.
        usage: UsageLimits {
            burst_max: published::HUBSPOT_BURST,
            burst_interval: published::HUBSPOT_BURST_WINDOW,
            ..HubSpotApi::default().usage
        },
        ..HubSpotApi::default()
    }
}

/// The simulated portal of HubSpot source `n` (from 1) of the plan: with [`Sizing::Uniform`],
/// [`hubspot_api`]; otherwise a portal of its own id and size.
pub fn hubspot_portal_api(p: &HubSpotPlan, n: u64) -> HubSpotApi {
    let api = hubspot_api(p);
    let Some(id) = p.portal_id(n) else { return api };
    let (contacts_per_day, deals_per_day) = p.shape(n);
    HubSpotApi {
        portal: hubspot::Portal { id, ..api.portal.clone() },
        contacts_per_day,
        deals_per_day,
        ..api
    }
}

fn hubspot_config(plan: &Plan, p: &HubSpotPlan, n: u64) -> SimConfig {
    let config =
        base(plan).with_auth(hubspot::auth_config()).with_platform(Arc::new(hubspot_portal_api(p, n)));
    if !plan.published_quotas {
        return config;
    }
    config
        .with_quota(hubspot::search_quota())
        .with_quota(hubspot::burst_quota(published::HUBSPOT_BURST, published::HUBSPOT_BURST_WINDOW))
}

/// The simulated Data API of `p`.
pub fn ga4_api(plan: &Plan, p: &Ga4Plan) -> Ga4Api {
    let properties = p
        .property_ids()
        .iter()
        .zip(1..)
        .map(|(id, n)| {
            if n % 2 == 1 {
                SimProperty::new(id, "USD", "America/Los_Angeles", p.traffic_of(n))
            } else {
                SimProperty::new(id, "EUR", "Europe/Berlin", p.traffic_of(n))
            }
        })
        .collect();
    let mut api = Ga4Api::new(properties);
    if !plan.published_quotas {
        api.quota = PropertyQuotaLimits {
            tokens_per_day: u64::MAX / 4,
            tokens_per_hour: u64::MAX / 4,
            tokens_per_project_per_hour: u64::MAX / 4,
            concurrent_requests: 1_000,
            ..PropertyQuotaLimits::STANDARD
        };
    }
    api
}

fn ga4_config(plan: &Plan, p: &Ga4Plan) -> (SimConfig, Ga4Api) {
    let api = ga4_api(plan, p);
    let config = base(plan).with_auth(AuthConfig::required()).with_platform(Arc::new(api.clone()));
    if !plan.published_quotas {
        return (config, api);
    }
    let refusal = CannedResponse::json(
        429,
        serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'Core requests' and limit 'Core requests per minute per user'"}}),
    );
    let config = config.with_quota(
        QuotaRule::rolling_window(published::GA4_REQUESTS, plan.app_limits.window(published::GA4_WINDOW))
            .named("ga4_per_user")
            .with_retry_after(RetryAfter::Omit)
            .with_response(refusal),
    );
    (config, api)
}
