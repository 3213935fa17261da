//! The scenarios: what the simulated APIs hold and enforce, and how kpipe is configured to pull
//! them. `kpipe-bench serve` and the driver build both sides from the same [`Plan`], so the
//! figures can be checked against the simulator's own truth.

use chrono::NaiveDate;

/// One end-to-end scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A nightly pull of four platforms against their published quotas, latency 150-600 ms;
    /// also the source of the calls-per-row figures.
    Quota,
    /// kpipe's default settings (only the required keys configured) against answers of 100 ms and
    /// Facebook report runs that take 2 s: how close the defaults come to the time the API and
    /// LinkedIn's pace allow.
    Defaults,
    /// Zero latency, no quota, largest pages: metric rows per CPU second.
    Cpu,
    /// Peak memory of the CPU-bound setup at about a million metric rows.
    #[value(name = "memory-1m")]
    #[serde(rename = "memory-1m")]
    Memory1M,
    /// Peak memory of the CPU-bound setup at about ten million metric rows.
    #[value(name = "memory-10m")]
    #[serde(rename = "memory-10m")]
    Memory10M,
    /// The same Facebook insights pulled by kpipe and by a Python peer (dlt).
    Peer,
    /// The CPU-bound pull written to a local directory and to an S3-compatible server (moto on
    /// 127.0.0.1): what writing to an object store costs in wall time and memory.
    #[value(name = "s3")]
    #[serde(rename = "s3")]
    S3,
    /// The CPU-bound pull written as Parquet files, then as Delta Lake tables
    /// (`format = "delta"`): what a commit per source costs in CPU and memory.
    Delta,
    /// 5,000 accounts, portals and properties of the four platforms pulled by 8 shard processes
    /// at once into an S3-compatible server, against the platforms' limits (the application-wide
    /// ones shared by the shards); then one `kpipe kpis`. Not in [`Scenario::ALL`]: run it with
    /// `--scenario shards-5k`.
    #[value(name = "shards-5k")]
    #[serde(rename = "shards-5k")]
    Shards5k,
}

impl Scenario {
    /// Every scenario, in the order `cargo xtask bench` runs them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Quota,
        Scenario::Defaults,
        Scenario::Cpu,
        Scenario::Memory1M,
        Scenario::Memory10M,
        Scenario::Peer,
        Scenario::S3,
        Scenario::Delta,
    ];

    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Quota => "quota",
            Scenario::Defaults => "defaults",
            Scenario::Cpu => "cpu",
            Scenario::Memory1M => "memory-1m",
            Scenario::Memory10M => "memory-10m",
            Scenario::Peer => "peer",
            Scenario::S3 => "s3",
            Scenario::Delta => "delta",
            Scenario::Shards5k => "shards-5k",
        }
    }

    /// What the simulator serves and enforces, and how kpipe pulls it. `quick` shrinks the
    /// volumes for a check that the plumbing works.
    pub fn plan(self, quick: bool) -> Plan {
        let q = |full: u64, small: u64| if quick { small } else { full };
        match self {
            Scenario::Quota => Plan {
                // Quick runs check the plumbing: they need not wait.
                latency_ms: Some(if quick { (1, 5) } else { (150, 600) }),
                published_quotas: true,
                linkedin: Some(LinkedInPlan {
                    accounts: q(50, 3),
                    campaigns: 6,
                    creatives_per_campaign: 3,
                    ..LinkedInPlan::default()
                }),
                facebook: Some(FacebookPlan {
                    accounts: q(50, 3),
                    campaigns: 2,
                    adsets: 2,
                    ads: 2,
                    levels: &["campaign", "ad_set", "ad"],
                    page_size: 5_000,
                    ..FacebookPlan::default()
                }),
                hubspot: Some(HubSpotPlan {
                    portals: q(50, 2),
                    contacts_per_day: (12, 30),
                    deals_per_day: (3, 8),
                    ..HubSpotPlan::default()
                }),
                ga4: Some(Ga4Plan { properties: q(50, 3), traffic: 2, ..Ga4Plan::default() }),
                kpi_stage: true,
                ..Plan::default()
            },
            // Sized for 10-30 s of the pipeline: about 2.9M metric rows.
            Scenario::Cpu | Scenario::S3 | Scenario::Delta => Self::bulk(q(6, 1), quick),
            Scenario::Memory1M => Self::bulk(q(2, 1), quick),
            Scenario::Memory10M => Self::bulk(q(20, 2), quick),
            Scenario::Peer => Plan {
                latency_ms: None,
                published_quotas: false,
                linkedin: None,
                facebook: Some(FacebookPlan {
                    accounts: q(10, 2),
                    campaigns: q(10, 2),
                    adsets: 4,
                    ads: 5,
                    levels: &["ad"],
                    page_size: 500,
                    ..FacebookPlan::default()
                }),
                hubspot: None,
                ga4: None,
                // The peer pulls and writes Parquet; it computes no KPIs.
                kpi_stage: false,
                ..Plan::default()
            },
            Scenario::Shards5k => Self::shards(quick),
            Scenario::Defaults => crate::defaults::plan(quick),
        }
    }

    /// 5,000 units (200 quick) in the proportions of an agency's book: 30% LinkedIn ad accounts,
    /// 40% Facebook ad accounts, 24% GA4 properties, 6% HubSpot portals, each platform's units
    /// a long tail ([`Sizing::LongTail`]); LinkedIn, Facebook and GA4 split into sources of
    /// equal size, HubSpot one source per portal. Pulled by 8 shards, latency 5-20 ms, the
    /// limits that bind at this volume (the application-wide ones) on a clock 4 times faster.
    fn shards(quick: bool) -> Plan {
        let q = |full: u64, small: u64| if quick { small } else { full };
        Plan {
            latency_ms: Some((5, 20)),
            published_quotas: true,
            linkedin: Some(LinkedInPlan {
                accounts: q(1_500, 60),
                // The large accounts; the others are smaller (see `Sizing::LongTail`).
                campaigns: 50,
                creatives_per_campaign: 4,
                sources: 3,
                sizing: Sizing::LongTail,
            }),
            facebook: Some(FacebookPlan {
                accounts: q(2_000, 80),
                // The simulator gives every account of a server one shape: small accounts.
                campaigns: 1,
                adsets: 1,
                ads: 2,
                levels: &["campaign", "ad_set", "ad"],
                page_size: 5_000,
                sources: 4,
                ..FacebookPlan::default()
            }),
            hubspot: Some(HubSpotPlan {
                portals: q(300, 12),
                // The large portals; the others are smaller (see `Sizing::LongTail`).
                contacts_per_day: (150, 300),
                deals_per_day: (30, 60),
                sizing: Sizing::LongTail,
            }),
            ga4: Some(Ga4Plan {
                properties: q(1_200, 48),
                // The large properties' traffic; the others are quieter (see `Sizing::LongTail`).
                traffic: 40,
                sources: 3,
                sizing: Sizing::LongTail,
            }),
            // The shards compute no KPIs; `kpipe kpis` does once they are done.
            kpi_stage: false,
            days: if quick { 7 } else { 28 },
            app_limits: AppLimits { time_scale: 4, facebook_app_pace: true, headroom_pct: 96 },
            shards: 8,
            connector_defaults: false,
        }
    }

    /// The CPU-bound setup with `units` of data: per unit, a LinkedIn account of 50 campaigns
    /// of 10 creatives, a Facebook account of 10 campaigns of 5 ad sets of 10 ads, and a GA4
    /// property: about 490,000 metric rows per unit over the 28 days.
    fn bulk(units: u64, quick: bool) -> Plan {
        Plan {
            latency_ms: None,
            published_quotas: false,
            linkedin: Some(LinkedInPlan {
                accounts: units,
                campaigns: if quick { 5 } else { 50 },
                creatives_per_campaign: 10,
                ..LinkedInPlan::default()
            }),
            facebook: Some(FacebookPlan {
                accounts: units,
                campaigns: if quick { 2 } else { 10 },
                adsets: 5,
                ads: 10,
                levels: &["campaign", "ad_set", "ad"],
                page_size: 5_000,
                ..FacebookPlan::default()
            }),
            hubspot: None,
            ga4: Some(Ga4Plan { properties: units, traffic: 4, ..Ga4Plan::default() }),
            kpi_stage: true,
            ..Plan::default()
        }
    }
}

/// The days every scenario pulls: four weeks, as a nightly pull with a 28-day lookback does.
pub fn window() -> (NaiveDate, NaiveDate) {
    let day = |d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap_or_default();
    (day(1), day(28))
}

/// The seed of the simulated data.
pub const SEED: u64 = 2026;

/// What one scenario simulates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Answer latency, uniform in `[min, max]` milliseconds; `None` answers at once.
    pub latency_ms: Option<(u64, u64)>,
    /// Whether the simulator enforces the platforms' published quotas (otherwise none at all).
    pub published_quotas: bool,
    /// LinkedIn, if pulled.
    pub linkedin: Option<LinkedInPlan>,
    /// Facebook, if pulled.
    pub facebook: Option<FacebookPlan>,
    /// HubSpot, if pulled.
    pub hubspot: Option<HubSpotPlan>,
    /// Google Analytics 4, if pulled.
    pub ga4: Option<Ga4Plan>,
    /// Whether `kpipe run` computes the KPIs after the pull (its default).
    pub kpi_stage: bool,
    /// Days pulled, from the first day of [`window`] (28: the whole window).
    pub days: u32,
    /// How the limits of a whole application are enforced.
    pub app_limits: AppLimits,
    /// `kpipe run` processes that split the configuration between them (`--shard K/N`); 1: one
    /// unsharded run.
    pub shards: u32,
    /// Whether kpipe's sources are configured with the required keys only (ids, credentials,
    /// addresses), every other setting left to the connector's default; otherwise each is tuned
    /// to the limits the simulator enforces.
    pub connector_defaults: bool,
}

impl Default for Plan {
    /// Nothing pulled, no latency, no quota, the KPI stage on, the whole window, one process,
    /// tuned sources.
    fn default() -> Self {
        Plan {
            latency_ms: None,
            published_quotas: false,
            linkedin: None,
            facebook: None,
            hubspot: None,
            ga4: None,
            kpi_stage: true,
            days: 28,
            app_limits: AppLimits::PUBLISHED,
            shards: 1,
            connector_defaults: false,
        }
    }
}

impl Plan {
    /// The days this plan pulls: the first [`Plan::days`] of [`window`].
    pub fn window(&self) -> (NaiveDate, NaiveDate) {
        let (start, end) = window();
        let last = start.checked_add_days(chrono::Days::new(u64::from(self.days.max(1)) - 1)).unwrap_or(end);
        (start, last.min(end))
    }
}

/// The limits that one application has in all, whatever number of processes (shards) share
/// it: LinkedIn's pace, Facebook's application pace, GA4's requests per user. The simulator
/// counts them across every process it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AppLimits {
    /// Their windows are this many times shorter than published (1: as published), the number
    /// of requests per window the same: a scenario too large to wait for at the published pace
    /// runs on a faster clock. Per-object limits (per ad account, portal, property) are kept as
    /// published.
    pub time_scale: u32,
    /// Whether the Facebook application is held to its pace across every process (the quota
    /// scenario's single process is not).
    pub facebook_app_pace: bool,
    /// The share of each application-wide limit, in percent, that kpipe's configuration uses
    /// (in all, over every source and shard): the rest absorbs requests that the machine's
    /// scheduling bunches up on arrival.
    pub headroom_pct: u32,
}

impl AppLimits {
    /// As published, kpipe configured to the limit.
    pub const PUBLISHED: AppLimits = AppLimits { time_scale: 1, facebook_app_pace: false, headroom_pct: 100 };

    /// A published window on this plan's clock.
    pub fn window(&self, published: std::time::Duration) -> std::time::Duration {
        published / self.time_scale.max(1)
    }
}

/// How the units of one platform (accounts, portals, properties) differ in size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Sizing {
    /// All of the plan's size.
    #[default]
    Uniform,
    /// One unit in 100 of the plan's size, one in 10 medium, the rest small (an agency's book:
    /// a few large clients and a long tail). Which tier a unit is in follows from its number, so
    /// the large ones are spread over the sources and the shards.
    LongTail,
}

/// The size class of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Tier {
    /// The plan's size.
    Large,
    /// In between.
    Medium,
    /// The long tail.
    Small,
}

impl Sizing {
    /// The tier of unit `n` (numbered from 1).
    pub fn tier(self, n: u64) -> Tier {
        match self {
            Sizing::Uniform => Tier::Large,
            Sizing::LongTail if n % 100 == 1 => Tier::Large,
            Sizing::LongTail if n % 10 == 5 => Tier::Medium,
            Sizing::LongTail => Tier::Small,
        }
    }
}

/// `items` in `sources` runs of equal length (the last ones shorter when they do not divide).
fn split<T: Clone>(items: &[T], sources: u64) -> Vec<Vec<T>> {
    let per = items.len().div_ceil(usize::try_from(sources.max(1)).unwrap_or(1)).max(1);
    items.chunks(per).map(<[T]>::to_vec).collect()
}

/// The name of source `i` (from 0) of `count` named `base`: `base` alone when there is one.
pub fn source_name(base: &str, i: usize, count: usize) -> String {
    if count <= 1 { base.to_owned() } else { format!("{base}_{}", i + 1) }
}

/// LinkedIn ad accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LinkedInPlan {
    /// Ad accounts.
    pub accounts: u64,
    /// Campaigns per (large) account.
    pub campaigns: u64,
    /// Creatives per campaign of a (large) account.
    pub creatives_per_campaign: u64,
    /// kpipe sources the accounts are split into.
    pub sources: u64,
    /// How the accounts differ.
    pub sizing: Sizing,
}

impl Default for LinkedInPlan {
    fn default() -> Self {
        LinkedInPlan {
            accounts: 0,
            campaigns: 1,
            creatives_per_campaign: 1,
            sources: 1,
            sizing: Sizing::Uniform,
        }
    }
}

impl LinkedInPlan {
    /// The account ids (the simulator's numbering).
    pub fn account_ids(&self) -> Vec<u64> {
        (1..=self.accounts).map(|n| 508_000_000 + n).collect()
    }

    /// Campaigns and creatives per campaign of account `n` (from 1): medium accounts run 6
    /// campaigns of 2 creatives, small ones 1 or 2 campaigns of 1 or 2 creatives.
    pub fn shape(&self, n: u64) -> (u64, u64) {
        match self.sizing.tier(n) {
            Tier::Large => (self.campaigns, self.creatives_per_campaign),
            Tier::Medium => (6, 2),
            Tier::Small => (1 + n % 2, 1 + (n / 2) % 2),
        }
    }

    /// The kpipe sources: name and account ids.
    pub fn sources(&self) -> Vec<(String, Vec<u64>)> {
        let parts = split(&self.account_ids(), self.sources);
        let count = parts.len();
        parts.into_iter().enumerate().map(|(i, ids)| (source_name("linkedin_ads", i, count), ids)).collect()
    }
}

/// Facebook ad accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FacebookPlan {
    /// Ad accounts.
    pub accounts: u64,
    /// Campaigns per account.
    pub campaigns: u64,
    /// Ad sets per campaign.
    pub adsets: u64,
    /// Ads per ad set.
    pub ads: u64,
    /// The insights levels kpipe pulls.
    pub levels: &'static [&'static str],
    /// Insights rows per page.
    pub page_size: u32,
    /// kpipe sources the accounts are split into.
    pub sources: u64,
    /// Facebook Pages whose Page insights are pulled too (`page_ids`; unsharded plans only).
    pub pages: u64,
    /// How long the simulator's asynchronous report runs take, whatever the polling; `None`:
    /// they complete after a number of polls.
    pub report_run_time: Option<std::time::Duration>,
}

impl Default for FacebookPlan {
    fn default() -> Self {
        FacebookPlan {
            accounts: 0,
            campaigns: 1,
            adsets: 1,
            ads: 1,
            levels: &["campaign", "ad_set", "ad"],
            page_size: 5_000,
            sources: 1,
            pages: 0,
            report_run_time: None,
        }
    }
}

impl FacebookPlan {
    /// The Page ids.
    pub fn page_ids(&self) -> Vec<String> {
        (1..=self.pages).map(|n| format!("{}", 200_000_000_000_000 + n)).collect()
    }

    /// The account ids, without `act_`.
    pub fn account_ids(&self) -> Vec<String> {
        (1..=self.accounts).map(|n| format!("{}", 101_000_000_000_000 + n)).collect()
    }

    /// Ads per account: what Meta's ads-insights budget grows with.
    pub fn ads_per_account(&self) -> u64 {
        self.campaigns * self.adsets * self.ads
    }

    /// The kpipe sources: name and account ids.
    pub fn sources(&self) -> Vec<(String, Vec<String>)> {
        let parts = split(&self.account_ids(), self.sources);
        let count = parts.len();
        parts.into_iter().enumerate().map(|(i, ids)| (source_name("facebook_ads", i, count), ids)).collect()
    }
}

/// HubSpot portals: one kpipe source each (one installation of the app per portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HubSpotPlan {
    /// Portals.
    pub portals: u64,
    /// Contacts created per day, a range (of a large portal).
    pub contacts_per_day: (u64, u64),
    /// Deals created per day, a range (of a large portal).
    pub deals_per_day: (u64, u64),
    /// How the portals differ.
    pub sizing: Sizing,
}

impl Default for HubSpotPlan {
    fn default() -> Self {
        HubSpotPlan { portals: 0, contacts_per_day: (12, 30), deals_per_day: (3, 8), sizing: Sizing::Uniform }
    }
}

impl HubSpotPlan {
    /// Contacts and deals created per day of portal `n` (from 1): medium portals 20-50 contacts
    /// and 4-10 deals a day, small ones 1-5 and 1-3.
    pub fn shape(&self, n: u64) -> ((u64, u64), (u64, u64)) {
        match self.sizing.tier(n) {
            Tier::Large => (self.contacts_per_day, self.deals_per_day),
            Tier::Medium => ((20, 50), (4, 10)),
            Tier::Small => ((1, 5), (1, 3)),
        }
    }

    /// The Hub ID of portal `n` (from 1): with [`Sizing::Uniform`] every portal is the
    /// simulator's one portal; otherwise each has its own.
    pub fn portal_id(&self, n: u64) -> Option<u64> {
        (self.sizing != Sizing::Uniform).then_some(40_000_000 + n)
    }

    /// The kpipe source of portal `n` (from 1).
    pub fn source_name(&self, n: u64) -> String {
        if self.sizing == Sizing::Uniform { format!("hubspot_portal_{n:02}") } else { format!("hs_{n:03}") }
    }
}

/// GA4 properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ga4Plan {
    /// Properties.
    pub properties: u64,
    /// How busy each (large) one is (the simulator's `traffic`).
    pub traffic: u64,
    /// kpipe sources the properties are split into.
    pub sources: u64,
    /// How the properties differ: in traffic only (every property reports the same cells, so
    /// the same number of rows).
    pub sizing: Sizing,
}

impl Default for Ga4Plan {
    fn default() -> Self {
        Ga4Plan { properties: 0, traffic: 1, sources: 1, sizing: Sizing::Uniform }
    }
}

impl Ga4Plan {
    /// The property ids.
    pub fn property_ids(&self) -> Vec<String> {
        (1..=self.properties).map(|n| format!("{}", 300_000_000 + n)).collect()
    }

    /// The traffic of property `n` (from 1): a fifth of the plan's for medium ones, 1 for small.
    pub fn traffic_of(&self, n: u64) -> u64 {
        match self.sizing.tier(n) {
            Tier::Large => self.traffic,
            Tier::Medium => (self.traffic / 5).max(1),
            Tier::Small => 1,
        }
    }

    /// The kpipe sources: name and property ids.
    pub fn sources(&self) -> Vec<(String, Vec<String>)> {
        let parts = split(&self.property_ids(), self.sources);
        let count = parts.len();
        parts.into_iter().enumerate().map(|(i, ids)| (source_name("web_analytics", i, count), ids)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plans_are_smaller_and_ids_are_distinct() {
        for scenario in Scenario::ALL.into_iter().chain([Scenario::Shards5k]) {
            let (full, quick) = (scenario.plan(false), scenario.plan(true));
            let accounts =
                |p: &Plan| p.facebook.map_or(0, |f| f.accounts) + p.linkedin.map_or(0, |l| l.accounts);
            assert!(accounts(&quick) < accounts(&full), "{scenario:?}");
        }
        let plan = Scenario::Quota.plan(false);
        let ids = plan.facebook.map(|f| f.account_ids()).unwrap_or_default();
        assert_eq!(ids.len(), 50);
        assert_eq!(ids[0], "101000000000001");
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn the_sharded_plan_is_five_thousand_units_in_sources_of_equal_size() {
        let plan = Scenario::Shards5k.plan(false);
        let (li, fb, hs, ga) =
            (plan.linkedin.unwrap(), plan.facebook.unwrap(), plan.hubspot.unwrap(), plan.ga4.unwrap());
        assert_eq!(li.accounts + fb.accounts + hs.portals + ga.properties, 5_000);
        assert_eq!(Scenario::Shards5k.plan(true).window().1, NaiveDate::from_ymd_opt(2026, 10, 7).unwrap());
        assert_eq!(plan.window(), window());
        let sizes: Vec<usize> = li.sources().iter().map(|(_, ids)| ids.len()).collect();
        assert_eq!(sizes, [500, 500, 500]);
        assert_eq!(fb.sources().len(), 4);
        assert_eq!(ga.sources()[2].0, "web_analytics_3");
        // The tiers: 1 in 100 large, 1 in 10 medium, spread over the sources.
        let tiers: Vec<Tier> = (1..=li.accounts).map(|n| li.sizing.tier(n)).collect();
        assert_eq!(tiers.iter().filter(|t| **t == Tier::Large).count(), 15);
        assert_eq!(tiers.iter().filter(|t| **t == Tier::Medium).count(), 150);
        assert_eq!(li.shape(1), (50, 4));
        assert!((2..=4).all(|n| li.shape(n).0 <= 2 && li.shape(n).1 <= 2));
        // The unsharded scenarios keep their names.
        let quota = Scenario::Quota.plan(false);
        assert_eq!(quota.linkedin.unwrap().sources()[0].0, "linkedin_ads");
        assert_eq!(quota.hubspot.unwrap().source_name(3), "hubspot_portal_03");
        assert_eq!(hs.source_name(3), "hs_003");
    }
}
