//! An ad account and its structure: the campaigns, ad sets and ads every simulated account
//! holds, and the levels insights are reported at.

/// An ad account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAdAccount {
    /// The numeric id, without `act_`.
    pub id: String,
    /// The account name.
    pub name: String,
    /// ISO 4217 currency of spend and values.
    pub currency: String,
    /// IANA time zone of its reporting days.
    pub timezone_name: String,
    /// Its UTC offset in hours (what `timezone_offset_hours_utc` reports).
    pub timezone_offset_hours_utc: i32,
}

impl SimAdAccount {
    /// An account.
    #[must_use]
    pub fn new(id: &str, name: &str, currency: &str, timezone_name: &str, offset: i32) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            currency: currency.to_owned(),
            timezone_name: timezone_name.to_owned(),
            timezone_offset_hours_utc: offset,
        }
    }
}

/// The `level` of an insights request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InsightsLevel {
    /// One row per account and day.
    Account,
    /// One row per campaign and day.
    Campaign,
    /// One row per ad set and day.
    Adset,
    /// One row per ad and day.
    Ad,
}

impl InsightsLevel {
    /// Every level, coarsest first.
    pub const ALL: [InsightsLevel; 4] =
        [InsightsLevel::Account, InsightsLevel::Campaign, InsightsLevel::Adset, InsightsLevel::Ad];

    /// The API's name (`account`, `campaign`, `adset`, `ad`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InsightsLevel::Account => "account",
            InsightsLevel::Campaign => "campaign",
            InsightsLevel::Adset => "adset",
            InsightsLevel::Ad => "ad",
        }
    }

    /// The level called `name` by the API.
    #[must_use]
    pub fn parse(name: &str) -> Option<InsightsLevel> {
        InsightsLevel::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// An entity of an account's structure: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The numeric id, as a string.
    pub id: String,
    /// The name.
    pub name: String,
}

const CAMPAIGN_NAMES: [&str; 4] = ["Spring Sale", "Lead Generation", "Retargeting", "Brand Awareness"];

/// The shape of every simulated account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    /// Campaigns per account.
    pub campaigns: u64,
    /// Ad sets per campaign.
    pub adsets: u64,
    /// Ads per ad set.
    pub ads: u64,
}

impl Structure {
    /// The campaigns of `account`, in id order.
    #[must_use]
    pub fn campaigns(&self, account: &str) -> Vec<Entity> {
        (1..=self.campaigns)
            .map(|c| Entity {
                id: format!("{account}1{c:02}"),
                name: CAMPAIGN_NAMES[usize::try_from((c - 1) % 4).unwrap_or(0)].to_owned()
                    + &if c > 4 { format!(" {c}") } else { String::new() },
            })
            .collect()
    }

    fn adsets(&self, account: &str, campaign: u64, campaign_name: &str) -> Vec<(u64, Entity)> {
        (1..=self.adsets)
            .map(|s| {
                (
                    s,
                    Entity {
                        id: format!("{account}2{campaign:02}{s:02}"),
                        name: format!("{campaign_name} - Audience {s}"),
                    },
                )
            })
            .collect()
    }

    fn ads(&self, account: &str, campaign: u64, adset: u64, adset_name: &str) -> Vec<Entity> {
        (1..=self.ads)
            .map(|d| Entity {
                id: format!("{account}3{campaign:02}{adset:02}{d:02}"),
                name: format!("{adset_name} - Creative {d}"),
            })
            .collect()
    }

    /// Every ad of `account` with its campaign and ad set.
    pub(super) fn tree(&self, account: &str) -> Vec<Branch> {
        let mut out = Vec::new();
        for (c, campaign) in self.campaigns(account).into_iter().enumerate() {
            let c = c as u64 + 1;
            for (s, adset) in self.adsets(account, c, &campaign.name) {
                for ad in self.ads(account, c, s, &adset.name) {
                    out.push((campaign.clone(), adset.clone(), ad));
                }
            }
        }
        out
    }
}

/// An ad with its campaign and ad set.
pub(super) type Branch = (Entity, Entity, Entity);
