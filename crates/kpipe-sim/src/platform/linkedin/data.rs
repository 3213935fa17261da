//! The simulated LinkedIn data: ad accounts with campaigns and creatives, their daily ad
//! analytics, and company pages with daily follower gains and share statistics. Every value is
//! derived from the server seed and what it describes (creative and day, organization and day),
//! so the same seed gives the same numbers whatever order requests arrive in; tests compare a
//! connector's rows with these functions.
//!
//! The numbers hang together the way LinkedIn's do: a campaign's day is the sum of its
//! creatives' days (reach excepted, which counts unique members), clicks never exceed
//! impressions, and spend is a high-precision decimal that is sometimes a float residue such as
//! `-2E-18` (`shared/apis/linkedin.md` §3.1, "Number formats").

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use crate::rng::{SimRng, mix64};

/// Units of money per currency unit: amounts are kept as integers of 10^-18.
const MONEY_SCALE: i128 = 1_000_000_000_000_000_000;

/// An ad account and the shape of what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdAccount {
    /// The numeric id (`urn:li:sponsoredAccount:<id>`).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// ISO 4217 currency of its spend.
    pub currency: String,
    /// `ACTIVE`, `CANCELED`, `DRAFT`, `PENDING_DELETION` or `REMOVED`.
    pub status: String,
    /// Campaigns in the account.
    pub campaigns: u64,
    /// Creatives per campaign.
    pub creatives_per_campaign: u64,
}

impl AdAccount {
    /// An active account with `campaigns` campaigns of `creatives` creatives each.
    #[must_use]
    pub fn new(id: u64, currency: &str, campaigns: u64, creatives: u64) -> Self {
        Self {
            id,
            name: format!("Ad account {id}"),
            currency: currency.to_owned(),
            status: "ACTIVE".to_owned(),
            campaigns,
            creatives_per_campaign: creatives,
        }
    }
}

/// A company page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The numeric id (`urn:li:organization:<id>`).
    pub id: u64,
    /// Its localized name.
    pub name: String,
}

/// A campaign, as the campaign search lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// The numeric id.
    pub id: u64,
    /// The account it belongs to.
    pub account_id: u64,
    /// Its campaign group (`urn:li:sponsoredCampaignGroup:<id>`).
    pub group_id: u64,
    /// Its name.
    pub name: String,
    /// `ACTIVE`, `PAUSED`, `ARCHIVED`, `COMPLETED`, ...
    pub status: &'static str,
}

/// A creative, as the creatives finder lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creative {
    /// The numeric id (`urn:li:sponsoredCreative:<id>`).
    pub id: u64,
    /// Its campaign.
    pub campaign_id: u64,
    /// Its account.
    pub account_id: u64,
    /// Its name.
    pub name: String,
    /// `ACTIVE`, `PAUSED`, ...
    pub status: &'static str,
}

/// What ad analytics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pivot {
    /// One element per campaign (and day, with `DAILY`).
    Campaign,
    /// One element per creative.
    Creative,
    /// One element per campaign group.
    CampaignGroup,
    /// One element per ad account.
    Account,
}

impl Pivot {
    /// The pivots served, finest first.
    pub const ALL: [Pivot; 4] = [Pivot::Creative, Pivot::Campaign, Pivot::CampaignGroup, Pivot::Account];

    /// The `pivot=` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Pivot::Campaign => "CAMPAIGN",
            Pivot::Creative => "CREATIVE",
            Pivot::CampaignGroup => "CAMPAIGN_GROUP",
            Pivot::Account => "ACCOUNT",
        }
    }

    /// The pivot called `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Pivot> {
        Pivot::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The URN of an entity of this pivot.
    #[must_use]
    pub fn urn(self, id: u64) -> String {
        match self {
            Pivot::Campaign => format!("urn:li:sponsoredCampaign:{id}"),
            Pivot::Creative => format!("urn:li:sponsoredCreative:{id}"),
            Pivot::CampaignGroup => format!("urn:li:sponsoredCampaignGroup:{id}"),
            Pivot::Account => format!("urn:li:sponsoredAccount:{id}"),
        }
    }
}

/// One element of an ad analytics response before it is written as JSON: an entity on a day
/// (`DAILY`) or over the days asked for (`ALL`) and the requested metrics, valued as the API
/// sends them (counts as integers, money as decimal strings, a few ratios as floats).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsElement {
    /// `urn:li:sponsoredCampaign:<id>`, `urn:li:sponsoredCreative:<id>`,
    /// `urn:li:sponsoredCampaignGroup:<id>` or `urn:li:sponsoredAccount:<id>`.
    pub entity_urn: String,
    /// The day, or the first day asked for (`dateRange.start`).
    pub date: NaiveDate,
    /// The same day, or the last day asked for (`dateRange.end`).
    pub last: NaiveDate,
    /// Metric field name to value.
    pub values: Map<String, Value>,
}

const CAMPAIGN_STATUSES: [&str; 4] = ["ACTIVE", "PAUSED", "ACTIVE", "COMPLETED"];

/// The campaigns of `account`, ordered by id.
#[must_use]
pub fn campaigns(account: &AdAccount) -> Vec<Campaign> {
    (1..=account.campaigns)
        .map(|n| Campaign {
            id: account.id * 1000 + n,
            account_id: account.id,
            group_id: group_of(account.id, n),
            name: format!("Campaign {n} of {}", account.name),
            status: CAMPAIGN_STATUSES[usize::try_from(n % 4).unwrap_or(0)],
        })
        .collect()
}

/// The campaign group of the `n`th campaign (from 1) of `account`: odd campaigns are in the
/// first group, even ones in the second.
fn group_of(account: u64, n: u64) -> u64 {
    account * 10 + 1 + (n + 1) % 2
}

/// The campaign groups of `account` that hold a campaign, ordered by id.
#[must_use]
pub fn campaign_groups(account: &AdAccount) -> Vec<u64> {
    let mut groups: Vec<u64> = campaigns(account).iter().map(|c| c.group_id).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// The creatives of `account`, ordered by id.
#[must_use]
pub fn creatives(account: &AdAccount) -> Vec<Creative> {
    campaigns(account)
        .iter()
        .flat_map(|campaign| {
            (1..=account.creatives_per_campaign).map(move |k| Creative {
                id: campaign.id * 100 + k,
                campaign_id: campaign.id,
                account_id: campaign.account_id,
                name: format!("Creative {k} of campaign {}", campaign.id),
                status: if k % 5 == 0 { "PAUSED" } else { "ACTIVE" },
            })
        })
        .collect()
}

/// How a metric field is valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// An integer that adds up from creatives to campaigns.
    Count,
    /// A decimal amount that adds up.
    Money,
    /// Unique members: not a sum.
    Reach,
    /// A double computed per entity.
    Float,
}

fn kind_of(field: &str) -> FieldKind {
    match field {
        // The current reach field and the one it replaced (deprecated by LinkedIn in 2024).
        "approximateMemberReach" | "approximateUniqueImpressions" => FieldKind::Reach,
        "averageDwellTime" | "audiencePenetration" => FieldKind::Float,
        f if f.ends_with("InLocalCurrency") || f.ends_with("InUsd") => FieldKind::Money,
        _ => FieldKind::Count,
    }
}

/// One creative's delivery on one day.
#[derive(Debug, Clone)]
struct CreativeDay {
    id: u64,
    impressions: i64,
    clicks: i64,
    landing_page_clicks: i64,
    likes: i64,
    comments: i64,
    shares: i64,
    follows: i64,
    other_engagements: i64,
    video_views: i64,
    conversions: i64,
    leads: i64,
    reach: i64,
    cost: i128,
}

fn day_key(id: u64, day: NaiveDate) -> u64 {
    mix64(id) ^ u64::try_from(day.num_days_from_ce()).unwrap_or(0)
}

fn count(rng: &mut SimRng, high: i64) -> i64 {
    i64::try_from(rng.range(0, u64::try_from(high.max(0)).unwrap_or(0) + 1)).unwrap_or(0)
}

/// What the creative did that day; `None` when it did not deliver (no element that day).
fn creative_day(seed: u64, creative: u64, day: NaiveDate) -> Option<CreativeDay> {
    let mut rng = SimRng::derive(seed, "linkedin-creative-day", day_key(creative, day));
    if rng.range(0, 100) < 12 {
        return None;
    }
    let impressions = i64::try_from(rng.range(1, 4_000)).unwrap_or(1);
    let clicks = count(&mut rng, impressions / 25 + 1);
    let landing_page_clicks = count(&mut rng, clicks);
    let likes = count(&mut rng, impressions / 60);
    let comments = count(&mut rng, likes / 4);
    let shares = count(&mut rng, likes / 5);
    let follows = count(&mut rng, 3);
    let other_engagements = count(&mut rng, 6);
    let video_views = count(&mut rng, impressions / 8);
    let conversions = count(&mut rng, clicks / 6);
    let leads = count(&mut rng, 2);
    let reach = impressions * 6 / 10 + count(&mut rng, impressions * 4 / 10);
    let cost = match rng.range(0, 100) {
        // The float residue LinkedIn sends for a day without real spend.
        0..=3 => -2,
        // Whole amounts (`"100"`).
        4..=9 => i128::from(rng.range(1, 300)) * MONEY_SCALE,
        // 15 significant decimals (`"24.457317520310493"`).
        _ => i128::from(rng.range(0, 250_000_000_000_000_000)) * 1_000,
    };
    Some(CreativeDay {
        id: creative,
        impressions,
        clicks,
        landing_page_clicks,
        likes,
        comments,
        shares,
        follows,
        other_engagements,
        video_views,
        conversions,
        leads,
        reach,
        cost,
    })
}

impl CreativeDay {
    fn count(&self, seed: u64, field: &str, day: NaiveDate) -> i64 {
        match field {
            "impressions" => self.impressions,
            "clicks" => self.clicks,
            "landingPageClicks" => self.landing_page_clicks,
            "likes" => self.likes,
            "comments" => self.comments,
            "shares" => self.shares,
            "follows" => self.follows,
            "totalEngagements" => {
                self.clicks + self.likes + self.comments + self.shares + self.follows + self.other_engagements
            }
            "videoViews" => self.video_views,
            "externalWebsiteConversions" => self.conversions,
            "oneClickLeads" => self.leads,
            "approximateMemberReach" | "approximateUniqueImpressions" => self.reach,
            other => {
                let mut rng = SimRng::derive(seed, other, day_key(self.id, day));
                count(&mut rng, self.impressions / 50 + 3)
            }
        }
    }

    fn money(&self, seed: u64, field: &str, day: NaiveDate, usd_rate: (i128, i128)) -> i128 {
        match field {
            "costInLocalCurrency" => self.cost,
            "costInUsd" => self.cost * usd_rate.0 / usd_rate.1,
            other => {
                let mut rng = SimRng::derive(seed, other, day_key(self.id, day));
                i128::from(rng.range(0, 90_000)) * MONEY_SCALE / 100
            }
        }
    }
}

/// USD per unit of `currency`, as a fraction.
fn usd_rate(currency: &str) -> (i128, i128) {
    match currency {
        "EUR" => (108, 100),
        "GBP" => (127, 100),
        "CHF" => (113, 100),
        _ => (1, 1),
    }
}

/// `units` (10^-18) as Java's `BigDecimal.toString()` writes it, which is what LinkedIn sends:
/// trailing zeros dropped, scientific notation when the value is tiny (`-2E-18`).
#[must_use]
pub fn format_money(units: i128) -> String {
    if units == 0 {
        return "0".to_owned();
    }
    let mut unscaled = units;
    let mut scale: i32 = 18;
    while scale > 0 && unscaled % 10 == 0 {
        unscaled /= 10;
        scale -= 1;
    }
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if negative { "-" } else { "" };
    let length = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let adjusted = length - 1 - scale;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    if adjusted >= -6 {
        let point = usize::try_from(length - scale).unwrap_or(0);
        if length > scale {
            return format!("{sign}{}.{}", &digits[..point], &digits[point..]);
        }
        let zeros = "0".repeat(usize::try_from(scale - length).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let mantissa =
        if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
    format!("{sign}{mantissa}E{adjusted}")
}

fn float_value(seed: u64, field: &str, entity: u64, day: NaiveDate) -> Value {
    let mut rng = SimRng::derive(seed, field, day_key(entity, day));
    let value = match field {
        "averageDwellTime" => (rng.next_f64() * 12.0 * 100.0).round() / 100.0,
        _ => (rng.next_f64() * 10_000.0).round() / 1_000_000.0,
    };
    json!(value)
}

fn days(since: NaiveDate, until: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    since.iter_days().take_while(move |d| *d <= until)
}

/// What an account delivered on one day: each campaign that delivered, with its creatives'
/// days.
struct AccountDay {
    day: NaiveDate,
    campaigns: Vec<(Campaign, Vec<CreativeDay>)>,
}

fn account_day(seed: u64, account: &AdAccount, all_creatives: &[Creative], day: NaiveDate) -> AccountDay {
    let campaigns = campaigns(account)
        .into_iter()
        .filter_map(|campaign| {
            let delivered: Vec<CreativeDay> = all_creatives
                .iter()
                .filter(|c| c.campaign_id == campaign.id)
                .filter_map(|c| creative_day(seed, c.id, day))
                .collect();
            (!delivered.is_empty()).then_some((campaign, delivered))
        })
        .collect();
    AccountDay { day, campaigns }
}

/// Unique members of several overlapping audiences: between the largest and the sum (members
/// reached by several count once), drawn from `label` and `key`.
fn overlapping_reach(seed: u64, label: &str, key: u64, parts: &[i64]) -> i64 {
    let largest = parts.iter().copied().max().unwrap_or(0);
    let sum: i64 = parts.iter().sum();
    let mut rng = SimRng::derive(seed, label, key);
    largest + count(&mut rng, (sum - largest) * 8 / 10)
}

/// An entity of a pivot on one day: its id, the creative days it is made of, and its reach.
struct DayEntity<'a> {
    id: u64,
    creatives: Vec<&'a CreativeDay>,
    reach: i64,
}

/// The entities of `pivot` that delivered on `d`'s day, in listing order. Reach is each
/// level's own: a campaign's lies between its largest creative's and the sum of its creatives',
/// a campaign group's likewise over its campaigns, and the account's over its groups.
fn day_entities<'a>(seed: u64, account: &AdAccount, d: &'a AccountDay, pivot: Pivot) -> Vec<DayEntity<'a>> {
    let day = d.day;
    let by_campaign: Vec<(u64, DayEntity<'a>)> = d
        .campaigns
        .iter()
        .map(|(campaign, creatives)| {
            let reaches: Vec<i64> = creatives.iter().map(|c| c.reach).collect();
            let reach =
                overlapping_reach(seed, "linkedin-campaign-reach", day_key(campaign.id, day), &reaches);
            (campaign.group_id, DayEntity { id: campaign.id, creatives: creatives.iter().collect(), reach })
        })
        .collect();
    let mut groups: Vec<DayEntity<'a>> = Vec::new();
    let mut group_parts: Vec<Vec<i64>> = Vec::new();
    for (group, campaign) in &by_campaign {
        let at = match groups.iter().position(|g| g.id == *group) {
            Some(at) => at,
            None => {
                groups.push(DayEntity { id: *group, creatives: Vec::new(), reach: 0 });
                group_parts.push(Vec::new());
                groups.len() - 1
            }
        };
        groups[at].creatives.extend(campaign.creatives.iter().copied());
        group_parts[at].push(campaign.reach);
    }
    for (group, parts) in groups.iter_mut().zip(&group_parts) {
        group.reach = overlapping_reach(seed, "linkedin-group-reach", day_key(group.id, day), parts);
    }
    match pivot {
        Pivot::Creative => d
            .campaigns
            .iter()
            .flat_map(|(_, creatives)| creatives.iter())
            .map(|c| DayEntity { id: c.id, creatives: vec![c], reach: c.reach })
            .collect(),
        Pivot::Campaign => by_campaign.into_iter().map(|(_, e)| e).collect(),
        Pivot::CampaignGroup => groups,
        Pivot::Account if groups.is_empty() => Vec::new(),
        Pivot::Account => {
            let parts: Vec<i64> = groups.iter().map(|g| g.reach).collect();
            let reach = overlapping_reach(seed, "linkedin-account-reach", day_key(account.id, day), &parts);
            let creatives = groups.into_iter().flat_map(|g| g.creatives).collect();
            vec![DayEntity { id: account.id, creatives, reach }]
        }
    }
}

/// The values of `fields` for an entity made of `parts` (creative days and their days): counts
/// and money add up, reach is `reach`, averages are drawn for the entity and `first` day.
fn element_values(
    seed: u64,
    fields: &[&str],
    parts: &[(NaiveDate, &CreativeDay)],
    reach: i64,
    entity: u64,
    first: NaiveDate,
    rate: (i128, i128),
) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| {
            let value = match kind_of(f) {
                FieldKind::Count => json!(parts.iter().map(|(d, c)| c.count(seed, f, *d)).sum::<i64>()),
                FieldKind::Money => {
                    Value::String(format_money(parts.iter().map(|(d, c)| c.money(seed, f, *d, rate)).sum()))
                }
                FieldKind::Reach => json!(reach),
                FieldKind::Float => float_value(seed, f, entity, first),
            };
            ((*f).to_owned(), value)
        })
        .collect()
}

/// The ad analytics of `account` by `pivot` for every day from `since` to `until`
/// (`timeGranularity=DAILY`), with the metric `fields` (names as in `fields=`;
/// `dateRange`/`pivotValues` are not metrics). Ordered by day, then entity. No element exists
/// before `first_day` or for an entity-day without delivery.
#[must_use]
pub fn ad_analytics(
    seed: u64,
    account: &AdAccount,
    first_day: NaiveDate,
    pivot: Pivot,
    since: NaiveDate,
    until: NaiveDate,
    fields: &[&str],
) -> Vec<AnalyticsElement> {
    let rate = usd_rate(&account.currency);
    let all_creatives = creatives(account);
    let mut out = Vec::new();
    for day in days(since.max(first_day), until) {
        let delivered = account_day(seed, account, &all_creatives, day);
        for entity in day_entities(seed, account, &delivered, pivot) {
            let parts: Vec<(NaiveDate, &CreativeDay)> = entity.creatives.iter().map(|c| (day, *c)).collect();
            let values = element_values(seed, fields, &parts, entity.reach, entity.id, day, rate);
            out.push(AnalyticsElement { entity_urn: pivot.urn(entity.id), date: day, last: day, values });
        }
    }
    out
}

/// Reach over the days from `since` to `until` of every entity of `account` that delivered on
/// one of them, by pivot and id: the simulator's truth of a period's unique members.
///
/// Each value is at least the entity's largest day and at most the sum of its days (a member
/// reached on several days counts once), and keeps the hierarchy: at least the largest child's
/// value over the same days and at most the children's sum (creatives in a campaign, campaigns
/// in a group, groups in the account). Within those bounds it is drawn from the seed, the
/// entity and the days; over a single day it is that day's reach.
fn range_reach(
    seed: u64,
    account: &AdAccount,
    first_day: NaiveDate,
    since: NaiveDate,
    until: NaiveDate,
) -> HashMap<(Pivot, u64), i64> {
    let all_creatives = creatives(account);
    let delivered: Vec<AccountDay> =
        days(since.max(first_day), until).map(|d| account_day(seed, account, &all_creatives, d)).collect();
    // Day reaches of each entity, by pivot.
    let mut daily: HashMap<(Pivot, u64), Vec<i64>> = HashMap::new();
    for d in &delivered {
        for pivot in Pivot::ALL {
            for entity in day_entities(seed, account, d, pivot) {
                daily.entry((pivot, entity.id)).or_default().push(entity.reach);
            }
        }
    }
    let key = mix64(day_key(account.id, since) ^ mix64(u64::try_from(until.num_days_from_ce()).unwrap_or(0)));
    let mut reach: HashMap<(Pivot, u64), i64> = HashMap::new();
    let settle = |pivot: Pivot, id: u64, children: &[i64], reach: &mut HashMap<(Pivot, u64), i64>| {
        let Some(days) = daily.get(&(pivot, id)) else { return };
        let low = days.iter().copied().max().unwrap_or(0).max(children.iter().copied().max().unwrap_or(0));
        let mut high: i64 = days.iter().sum();
        if !children.is_empty() {
            high = high.min(children.iter().sum());
        }
        let mut rng = SimRng::derive(seed, "linkedin-range-reach", mix64(id) ^ key);
        reach.insert((pivot, id), low + count(&mut rng, (high - low).max(0) * 8 / 10));
    };
    let campaigns = campaigns(account);
    for creative in &all_creatives {
        settle(Pivot::Creative, creative.id, &[], &mut reach);
    }
    for campaign in &campaigns {
        let children: Vec<i64> = all_creatives
            .iter()
            .filter(|c| c.campaign_id == campaign.id)
            .filter_map(|c| reach.get(&(Pivot::Creative, c.id)).copied())
            .collect();
        settle(Pivot::Campaign, campaign.id, &children, &mut reach);
    }
    for group in campaign_groups(account) {
        let children: Vec<i64> = campaigns
            .iter()
            .filter(|c| c.group_id == group)
            .filter_map(|c| reach.get(&(Pivot::Campaign, c.id)).copied())
            .collect();
        settle(Pivot::CampaignGroup, group, &children, &mut reach);
    }
    let children: Vec<i64> = campaign_groups(account)
        .into_iter()
        .filter_map(|g| reach.get(&(Pivot::CampaignGroup, g)).copied())
        .collect();
    settle(Pivot::Account, account.id, &children, &mut reach);
    reach
}

/// The entity ids of `pivot` in `account`, in listing order.
fn entity_ids(account: &AdAccount, pivot: Pivot) -> Vec<u64> {
    match pivot {
        Pivot::Creative => creatives(account).iter().map(|c| c.id).collect(),
        Pivot::Campaign => campaigns(account).iter().map(|c| c.id).collect(),
        Pivot::CampaignGroup => campaign_groups(account),
        Pivot::Account => vec![account.id],
    }
}

/// Reach of each entity of `pivot` over the days from `since` to `until` (see
/// [`ad_analytics_total`]), in listing order; entities that did not deliver are left out.
#[must_use]
pub fn period_reach(
    seed: u64,
    account: &AdAccount,
    first_day: NaiveDate,
    pivot: Pivot,
    since: NaiveDate,
    until: NaiveDate,
) -> Vec<(u64, i64)> {
    let reach = range_reach(seed, account, first_day, since, until);
    entity_ids(account, pivot).into_iter().filter_map(|id| Some((id, *reach.get(&(pivot, id))?))).collect()
}

/// The ad analytics of `account` by `pivot` over the days from `since` to `until` as one value
/// each (`timeGranularity=ALL`): one element per entity that delivered on any of the days, in
/// listing order, dated `since` to `until`. Counts and money are the sums of the days; reach is
/// [`period_reach`], not a sum.
#[must_use]
pub fn ad_analytics_total(
    seed: u64,
    account: &AdAccount,
    first_day: NaiveDate,
    pivot: Pivot,
    since: NaiveDate,
    until: NaiveDate,
    fields: &[&str],
) -> Vec<AnalyticsElement> {
    let rate = usd_rate(&account.currency);
    let all_creatives = creatives(account);
    let delivered: Vec<AccountDay> =
        days(since.max(first_day), until).map(|d| account_day(seed, account, &all_creatives, d)).collect();
    let mut parts: HashMap<u64, Vec<(NaiveDate, &CreativeDay)>> = HashMap::new();
    for d in &delivered {
        for entity in day_entities(seed, account, d, pivot) {
            parts.entry(entity.id).or_default().extend(entity.creatives.iter().map(|c| (d.day, *c)));
        }
    }
    let wants_reach = fields.iter().any(|f| kind_of(f) == FieldKind::Reach);
    let reach =
        if wants_reach { range_reach(seed, account, first_day, since, until) } else { HashMap::new() };
    entity_ids(account, pivot)
        .into_iter()
        .filter_map(|id| {
            let parts = parts.get(&id)?;
            let entity_reach = reach.get(&(pivot, id)).copied().unwrap_or(0);
            let values = element_values(seed, fields, parts, entity_reach, id, since, rate);
            Some(AnalyticsElement { entity_urn: pivot.urn(id), date: since, last: until, values })
        })
        .collect()
}

/// An organization's follower gains on `day`: `(organic, paid)`. With `negative_gains`, about
/// one day in ten loses more followers than it gains (the API reports net gains).
#[must_use]
pub fn follower_gains(seed: u64, organization: u64, day: NaiveDate, negative_gains: bool) -> (i64, i64) {
    let mut rng = SimRng::derive(seed, "linkedin-follower-gains", day_key(organization, day));
    let mut organic = count(&mut rng, 24);
    let paid = count(&mut rng, 5);
    if negative_gains && rng.range(0, 10) == 0 {
        organic = -paid - 1 - count(&mut rng, 4);
    }
    (organic, paid)
}

/// Followers of `organization` at the end of `day`: a seeded base before `first_day`, plus every
/// day's net gains since.
#[must_use]
pub fn followers_at_end_of(
    seed: u64,
    organization: u64,
    first_day: NaiveDate,
    day: NaiveDate,
    negative_gains: bool,
) -> i64 {
    let base = i64::try_from(SimRng::derive(seed, "linkedin-followers", organization).range(5_000, 25_000))
        .unwrap_or(5_000);
    base + days(first_day, day)
        .map(|d| {
            let (organic, paid) = follower_gains(seed, organization, d, negative_gains);
            organic + paid
        })
        .sum::<i64>()
}

/// An organization's organic share statistics of one day, the `totalShareStatistics` object of
/// a time-bound bucket (`shared/apis/linkedin.md` §3.5: no `uniqueImpressionsCount` there).
#[must_use]
pub fn share_statistics(seed: u64, organization: u64, day: NaiveDate) -> Map<String, Value> {
    let mut rng = SimRng::derive(seed, "linkedin-share-statistics", day_key(organization, day));
    let impressions = i64::try_from(rng.range(50, 6_000)).unwrap_or(50);
    let clicks = count(&mut rng, impressions / 30);
    let likes = count(&mut rng, impressions / 40);
    let comments = count(&mut rng, likes / 5);
    let shares = count(&mut rng, likes / 6);
    let share_mentions = count(&mut rng, 2);
    let comment_mentions = count(&mut rng, 2);
    let engagement = (clicks + likes + comments + shares) as f64 / impressions as f64;
    let mut stats = Map::new();
    stats.insert("impressionCount".into(), json!(impressions));
    stats.insert("clickCount".into(), json!(clicks));
    stats.insert("likeCount".into(), json!(likes));
    stats.insert("commentCount".into(), json!(comments));
    stats.insert("shareCount".into(), json!(shares));
    stats.insert("shareMentionsCount".into(), json!(share_mentions));
    stats.insert("commentMentionsCount".into(), json!(comment_mentions));
    stats.insert("engagement".into(), json!(engagement));
    stats
}

/// Year, month and day of `day` as the `dateRange` objects of ad analytics write them.
#[must_use]
pub fn date_object(day: NaiveDate) -> Value {
    json!({"year": day.year(), "month": day.month(), "day": day.day()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn money_is_written_like_big_decimal() {
        assert_eq!(format_money(-2), "-2E-18");
        assert_eq!(format_money(24_457_317_520_310_493_000), "24.457317520310493");
        assert_eq!(format_money(100 * MONEY_SCALE), "100");
        assert_eq!(format_money(209_449_000_000_000_000_000), "209.449");
        assert_eq!(format_money(1_234_000_000_000), "0.000001234");
        assert_eq!(format_money(123_400_000_000), "1.234E-7");
        assert_eq!(format_money(-5 * MONEY_SCALE / 10), "-0.5");
        assert_eq!(format_money(0), "0");
    }

    #[test]
    fn campaigns_are_the_sum_of_their_creatives() {
        let account = AdAccount::new(508_000_001, "EUR", 3, 3);
        let fields = ["impressions", "clicks", "costInLocalCurrency", "approximateMemberReach"];
        let (since, until) = (day("2026-03-01"), day("2026-03-05"));
        let first = day("2026-01-01");
        let by_campaign = ad_analytics(7, &account, first, Pivot::Campaign, since, until, &fields);
        let by_creative = ad_analytics(7, &account, first, Pivot::Creative, since, until, &fields);
        assert!(!by_campaign.is_empty() && by_creative.len() > by_campaign.len());
        for element in &by_campaign {
            let id: u64 = element.entity_urn.rsplit(':').next().unwrap().parse().unwrap();
            let parts: Vec<_> = by_creative
                .iter()
                .filter(|c| c.date == element.date)
                .filter(|c| c.entity_urn.rsplit(':').next().unwrap().parse::<u64>().unwrap() / 100 == id)
                .collect();
            let sum = |f: &str| parts.iter().map(|p| p.values[f].as_i64().unwrap()).sum::<i64>();
            assert_eq!(element.values["impressions"].as_i64().unwrap(), sum("impressions"));
            let reach = element.values["approximateMemberReach"].as_i64().unwrap();
            assert!(reach <= sum("approximateMemberReach"));
            assert!(element.values["clicks"].as_i64().unwrap() <= sum("impressions"));
        }
        assert_eq!(by_campaign, ad_analytics(7, &account, first, Pivot::Campaign, since, until, &fields));
        assert!(
            ad_analytics(7, &account, first, Pivot::Campaign, day("2025-01-01"), day("2025-12-31"), &fields)
                .is_empty()
        );
    }

    /// The reach of each entity of `pivot` on each day from `since` to `until`, by id.
    fn daily_reach(
        account: &AdAccount,
        pivot: Pivot,
        since: NaiveDate,
        until: NaiveDate,
    ) -> HashMap<u64, Vec<i64>> {
        let mut by_id: HashMap<u64, Vec<i64>> = HashMap::new();
        let first = day("2026-01-01");
        for e in ad_analytics(7, account, first, pivot, since, until, &["approximateMemberReach"]) {
            let id = e.entity_urn.rsplit(':').next().unwrap().parse().unwrap();
            by_id.entry(id).or_default().push(e.values["approximateMemberReach"].as_i64().unwrap());
        }
        by_id
    }

    #[test]
    fn every_level_adds_up_its_children_except_reach() {
        let account = AdAccount::new(508_000_001, "USD", 4, 3);
        let (since, until) = (day("2026-03-01"), day("2026-03-04"));
        let first = day("2026-01-01");
        let fields = ["impressions", "costInLocalCurrency", "approximateMemberReach"];
        for (parent, child) in
            [(Pivot::Account, Pivot::CampaignGroup), (Pivot::CampaignGroup, Pivot::Campaign)]
        {
            let parents = ad_analytics(7, &account, first, parent, since, until, &fields);
            let children = ad_analytics(7, &account, first, child, since, until, &fields);
            assert!(!parents.is_empty());
            for d in days(since, until) {
                let of = |elements: &[AnalyticsElement], f: &str| -> Vec<i64> {
                    elements.iter().filter(|e| e.date == d).map(|e| e.values[f].as_i64().unwrap()).collect()
                };
                let (p_impressions, c_impressions) =
                    (of(&parents, "impressions"), of(&children, "impressions"));
                assert_eq!(p_impressions.iter().sum::<i64>(), c_impressions.iter().sum::<i64>());
                let (p_reach, c_reach) =
                    (of(&parents, "approximateMemberReach"), of(&children, "approximateMemberReach"));
                if parent == Pivot::Account {
                    let reach = p_reach[0];
                    assert!(*c_reach.iter().max().unwrap() <= reach && reach <= c_reach.iter().sum::<i64>());
                }
            }
        }
        assert_eq!(campaign_groups(&account), [5_080_000_011, 5_080_000_012]);
    }

    #[test]
    fn period_reach_is_between_the_largest_day_and_the_sum_and_keeps_the_hierarchy() {
        let account = AdAccount::new(508_000_002, "EUR", 5, 3);
        let first = day("2026-01-01");
        let (since, until) = (day("2026-04-06"), day("2026-04-12"));
        let reach: HashMap<(Pivot, u64), i64> = Pivot::ALL
            .into_iter()
            .flat_map(|p| {
                period_reach(7, &account, first, p, since, until).into_iter().map(move |(id, r)| ((p, id), r))
            })
            .collect();
        let mut below_sum = 0;
        for pivot in Pivot::ALL {
            for (id, days) in daily_reach(&account, pivot, since, until) {
                let value = reach[&(pivot, id)];
                let (largest, sum) = (*days.iter().max().unwrap(), days.iter().sum::<i64>());
                assert!(largest <= value && value <= sum, "{pivot:?} {id}: {value} not in {largest}..={sum}");
                below_sum += usize::from(value < sum);
            }
        }
        assert!(below_sum > 20, "a week's reach is below the sum of its days as a rule ({below_sum})");
        let children = |parent: Pivot, id: u64| -> Vec<i64> {
            let ids: Vec<u64> = match parent {
                Pivot::Account => campaign_groups(&account),
                Pivot::CampaignGroup => {
                    campaigns(&account).iter().filter(|c| c.group_id == id).map(|c| c.id).collect()
                }
                _ => creatives(&account).iter().filter(|c| c.campaign_id == id).map(|c| c.id).collect(),
            };
            let child = match parent {
                Pivot::Account => Pivot::CampaignGroup,
                Pivot::CampaignGroup => Pivot::Campaign,
                _ => Pivot::Creative,
            };
            ids.iter().filter_map(|i| reach.get(&(child, *i)).copied()).collect()
        };
        for ((pivot, id), value) in &reach {
            if *pivot == Pivot::Creative {
                continue;
            }
            let parts = children(*pivot, *id);
            assert!(
                *parts.iter().max().unwrap() <= *value && *value <= parts.iter().sum::<i64>(),
                "{pivot:?} {id}"
            );
        }
        // One day's reach over a range of one day is that day's.
        let one = day("2026-04-07");
        for pivot in Pivot::ALL {
            let daily: Vec<(u64, i64)> =
                daily_reach(&account, pivot, one, one).into_iter().map(|(id, r)| (id, r[0])).collect();
            let mut over_one: Vec<(u64, i64)> = period_reach(7, &account, first, pivot, one, one);
            let mut daily = daily;
            daily.sort_unstable();
            over_one.sort_unstable();
            assert_eq!(over_one, daily, "{pivot:?}");
        }
        assert_eq!(
            reach.len(),
            Pivot::ALL
                .into_iter()
                .map(|p| period_reach(7, &account, first, p, since, until).len())
                .sum::<usize>()
        );
        assert!(
            period_reach(7, &account, first, Pivot::Account, day("2025-03-01"), day("2025-03-31")).is_empty()
        );
    }

    #[test]
    fn whole_range_elements_sum_the_days_but_not_reach() {
        let account = AdAccount::new(508_000_001, "USD", 4, 2);
        let first = day("2026-01-01");
        let (since, until) = (day("2026-03-01"), day("2026-03-31"));
        let fields = ["impressions", "costInLocalCurrency", "approximateMemberReach"];
        let total = ad_analytics_total(7, &account, first, Pivot::Campaign, since, until, &fields);
        let daily = ad_analytics(7, &account, first, Pivot::Campaign, since, until, &fields);
        assert_eq!(total.len(), 4);
        for element in &total {
            assert_eq!((element.date, element.last), (since, until));
            let days: Vec<&AnalyticsElement> =
                daily.iter().filter(|d| d.entity_urn == element.entity_urn).collect();
            let sum = |f: &str| days.iter().map(|d| d.values[f].as_i64().unwrap()).sum::<i64>();
            assert_eq!(element.values["impressions"].as_i64().unwrap(), sum("impressions"));
            assert!(
                element.values["approximateMemberReach"].as_i64().unwrap() < sum("approximateMemberReach")
            );
        }
    }

    #[test]
    fn followers_add_up_their_gains() {
        let first = day("2026-01-01");
        let before = followers_at_end_of(3, 42, first, day("2026-02-01"), true);
        let (organic, paid) = follower_gains(3, 42, day("2026-02-02"), true);
        assert_eq!(followers_at_end_of(3, 42, first, day("2026-02-02"), true), before + organic + paid);
        let negative = days(first, day("2026-12-31")).any(|d| {
            let (o, p) = follower_gains(3, 42, d, true);
            o + p < 0
        });
        assert!(negative, "some day loses followers when asked to");
        assert!(days(first, day("2026-12-31")).all(|d| follower_gains(3, 42, d, false).0 >= 0));
    }
}
