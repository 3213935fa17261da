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
    /// One element per campaign and day.
    Campaign,
    /// One element per creative and day.
    Creative,
}

impl Pivot {
    /// The `pivot=` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Pivot::Campaign => "CAMPAIGN",
            Pivot::Creative => "CREATIVE",
        }
    }

    /// The pivot called `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Pivot> {
        match name {
            "CAMPAIGN" => Some(Pivot::Campaign),
            "CREATIVE" => Some(Pivot::Creative),
            _ => None,
        }
    }

    /// The URN of an entity of this pivot.
    #[must_use]
    pub fn urn(self, id: u64) -> String {
        match self {
            Pivot::Campaign => format!("urn:li:sponsoredCampaign:{id}"),
            Pivot::Creative => format!("urn:li:sponsoredCreative:{id}"),
        }
    }
}

/// One element of an ad analytics response before it is written as JSON: an entity on a day
/// and the requested metrics, valued as the API sends them (counts as integers, money as
/// decimal strings, a few ratios as floats).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsElement {
    /// `urn:li:sponsoredCampaign:<id>` or `urn:li:sponsoredCreative:<id>`.
    pub entity_urn: String,
    /// The day.
    pub date: NaiveDate,
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
            name: format!("Campaign {n} of {}", account.name),
            status: CAMPAIGN_STATUSES[usize::try_from(n % 4).unwrap_or(0)],
        })
        .collect()
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

/// The ad analytics of `account` by `pivot` for every day from `since` to `until`, with the
/// metric `fields` (names as in `fields=`; `dateRange`/`pivotValues` are not metrics). Ordered
/// by day, then entity. No element exists before `first_day` or for an entity-day without
/// delivery.
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
        for campaign in campaigns(account) {
            let delivered: Vec<CreativeDay> = all_creatives
                .iter()
                .filter(|c| c.campaign_id == campaign.id)
                .filter_map(|c| creative_day(seed, c.id, day))
                .collect();
            match pivot {
                Pivot::Creative => {
                    for creative in &delivered {
                        let values = fields
                            .iter()
                            .map(|f| ((*f).to_owned(), creative_value(seed, creative, f, day, rate)))
                            .collect();
                        out.push(AnalyticsElement { entity_urn: pivot.urn(creative.id), date: day, values });
                    }
                }
                Pivot::Campaign if !delivered.is_empty() => {
                    let values = fields
                        .iter()
                        .map(|f| {
                            ((*f).to_owned(), campaign_value(seed, campaign.id, &delivered, f, day, rate))
                        })
                        .collect();
                    out.push(AnalyticsElement { entity_urn: pivot.urn(campaign.id), date: day, values });
                }
                Pivot::Campaign => {}
            }
        }
    }
    out
}

fn creative_value(
    seed: u64,
    creative: &CreativeDay,
    field: &str,
    day: NaiveDate,
    rate: (i128, i128),
) -> Value {
    match kind_of(field) {
        FieldKind::Count | FieldKind::Reach => json!(creative.count(seed, field, day)),
        FieldKind::Money => Value::String(format_money(creative.money(seed, field, day, rate))),
        FieldKind::Float => float_value(seed, field, creative.id, day),
    }
}

fn campaign_value(
    seed: u64,
    campaign: u64,
    creatives: &[CreativeDay],
    field: &str,
    day: NaiveDate,
    rate: (i128, i128),
) -> Value {
    match kind_of(field) {
        FieldKind::Count => json!(creatives.iter().map(|c| c.count(seed, field, day)).sum::<i64>()),
        FieldKind::Money => {
            Value::String(format_money(creatives.iter().map(|c| c.money(seed, field, day, rate)).sum()))
        }
        FieldKind::Reach => {
            // Members reached by several creatives count once: between the largest creative's
            // reach and the sum.
            let largest = creatives.iter().map(|c| c.reach).max().unwrap_or(0);
            let sum: i64 = creatives.iter().map(|c| c.reach).sum();
            let mut rng = SimRng::derive(seed, "linkedin-campaign-reach", day_key(campaign, day));
            json!(largest + count(&mut rng, (sum - largest) * 8 / 10))
        }
        FieldKind::Float => float_value(seed, field, campaign, day),
    }
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
