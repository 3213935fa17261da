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
}

impl Scenario {
    /// Every scenario, in the order `cargo xtask bench` runs them.
    pub const ALL: [Scenario; 7] = [
        Scenario::Quota,
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
            Scenario::Cpu => "cpu",
            Scenario::Memory1M => "memory-1m",
            Scenario::Memory10M => "memory-10m",
            Scenario::Peer => "peer",
            Scenario::S3 => "s3",
            Scenario::Delta => "delta",
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
                linkedin: Some(LinkedInPlan { accounts: q(50, 3), campaigns: 6, creatives_per_campaign: 3 }),
                facebook: Some(FacebookPlan {
                    accounts: q(50, 3),
                    campaigns: 2,
                    adsets: 2,
                    ads: 2,
                    levels: &["campaign", "ad_set", "ad"],
                    page_size: 5_000,
                }),
                hubspot: Some(HubSpotPlan {
                    portals: q(50, 2),
                    contacts_per_day: (12, 30),
                    deals_per_day: (3, 8),
                }),
                ga4: Some(Ga4Plan { properties: q(50, 3), traffic: 2 }),
                kpi_stage: true,
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
                }),
                hubspot: None,
                ga4: None,
                // The peer pulls and writes Parquet; it computes no KPIs.
                kpi_stage: false,
            },
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
            }),
            facebook: Some(FacebookPlan {
                accounts: units,
                campaigns: if quick { 2 } else { 10 },
                adsets: 5,
                ads: 10,
                levels: &["campaign", "ad_set", "ad"],
                page_size: 5_000,
            }),
            hubspot: None,
            ga4: Some(Ga4Plan { properties: units, traffic: 4 }),
            kpi_stage: true,
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
}

/// LinkedIn ad accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LinkedInPlan {
    /// Ad accounts.
    pub accounts: u64,
    /// Campaigns per account.
    pub campaigns: u64,
    /// Creatives per campaign.
    pub creatives_per_campaign: u64,
}

impl LinkedInPlan {
    /// The account ids (the simulator's numbering).
    pub fn account_ids(&self) -> Vec<u64> {
        (1..=self.accounts).map(|n| 508_000_000 + n).collect()
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
}

impl FacebookPlan {
    /// The account ids, without `act_`.
    pub fn account_ids(&self) -> Vec<String> {
        (1..=self.accounts).map(|n| format!("{}", 101_000_000_000_000 + n)).collect()
    }

    /// Ads per account: what Meta's ads-insights budget grows with.
    pub fn ads_per_account(&self) -> u64 {
        self.campaigns * self.adsets * self.ads
    }
}

/// HubSpot portals: one kpipe source each (one installation of the app per portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HubSpotPlan {
    /// Portals.
    pub portals: u64,
    /// Contacts created per day, a range.
    pub contacts_per_day: (u64, u64),
    /// Deals created per day, a range.
    pub deals_per_day: (u64, u64),
}

/// GA4 properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ga4Plan {
    /// Properties.
    pub properties: u64,
    /// How busy each is (the simulator's `traffic`).
    pub traffic: u64,
}

impl Ga4Plan {
    /// The property ids.
    pub fn property_ids(&self) -> Vec<String> {
        (1..=self.properties).map(|n| format!("{}", 300_000_000 + n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plans_are_smaller_and_ids_are_distinct() {
        for scenario in Scenario::ALL {
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
}
