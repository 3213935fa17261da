//! The simulated Meta dataset: ad accounts with campaigns, ad sets and ads delivering every day,
//! and Pages with daily insights. Everything is derived from the server seed and the entity and
//! day, so any range can be computed on its own; this is the truth tests compare against.
//!
//! Ad-level figures are drawn per ad and day; ad sets, campaigns and the account add their
//! children up, except reach, which counts unique people and is drawn between the largest child
//! and the children's sum (people overlap across ads).
//!
//! Over a range of days ([`range_insights`], what `time_ranges` or `time_increment=all_days`
//! return), the additive figures are the days' sums and reach is drawn again, people overlapping
//! across days too: an ad's between its largest day and the sum of its days; an ad set's,
//! campaign's or account's between the larger of its largest day and its ads' largest range
//! reach, and the smaller of the sum of its days and the sum of its ads' range reach. Both
//! intervals are never empty, and with two days or more of delivery the value is below the sum
//! of the days.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Serialize;

use crate::rng::{SimRng, hash_label};

/// The first day with data; earlier windows are empty.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2025, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// The custom conversion every simulated pixel reports (an action type outside any mapping).
pub const CUSTOM_CONVERSION: &str = "offsite_conversion.custom.271828182845904";

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

/// A Facebook Page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPage {
    /// The numeric Page id.
    pub id: String,
    /// The Page name.
    pub name: String,
}

impl SimPage {
    /// A Page.
    #[must_use]
    pub fn new(id: &str, name: &str) -> Self {
        Self { id: id.to_owned(), name: name.to_owned() }
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

/// One element of `actions` or `action_values` as the API sends it: the value is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionStat {
    /// `link_click`, `lead`, `offsite_conversion.fb_pixel_purchase`, ...
    pub action_type: String,
    /// The count, or the value in the account currency for `action_values`.
    pub value: String,
}

/// An entity of an account's structure: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The numeric id, as a string.
    pub id: String,
    /// The name.
    pub name: String,
}

/// One insights row (an entity on a day) with every field the simulator can report. The
/// response holds the requested fields only, rendered by the API's rules (numbers as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsRow {
    /// The account, without `act_`.
    pub account_id: String,
    /// The account name.
    pub account_name: String,
    /// The account currency.
    pub account_currency: String,
    /// The row's level.
    pub level: InsightsLevel,
    /// The campaign (levels campaign, ad set and ad).
    pub campaign: Option<Entity>,
    /// The ad set (levels ad set and ad).
    pub adset: Option<Entity>,
    /// The ad (level ad).
    pub ad: Option<Entity>,
    /// The day, in the account's time zone; the first day of a row over a range.
    pub date: NaiveDate,
    /// The last day the row covers (`date_stop`): `date` for a daily row.
    pub date_stop: NaiveDate,
    /// Times shown.
    pub impressions: u64,
    /// Unique people reached.
    pub reach: u64,
    /// Clicks of any kind.
    pub clicks: u64,
    /// Clicks on links to a destination.
    pub inline_link_clicks: u64,
    /// Amount spent, in minor units of the account currency.
    pub spend_cents: u64,
    /// Non-zero actions by type, in the API's order.
    pub actions: Vec<(String, u64)>,
    /// Non-zero action values by type, in minor units.
    pub action_values_cents: Vec<(String, u64)>,
}

impl InsightsRow {
    /// The id of the row's entity (the account id at level account).
    #[must_use]
    pub fn entity_id(&self) -> &str {
        self.entity().map_or(self.account_id.as_str(), |e| e.id.as_str())
    }

    /// The name of the row's entity.
    #[must_use]
    pub fn entity_name(&self) -> &str {
        self.entity().map_or(self.account_name.as_str(), |e| e.name.as_str())
    }

    fn entity(&self) -> Option<&Entity> {
        match self.level {
            InsightsLevel::Account => None,
            InsightsLevel::Campaign => self.campaign.as_ref(),
            InsightsLevel::Adset => self.adset.as_ref(),
            InsightsLevel::Ad => self.ad.as_ref(),
        }
    }

    /// `spend` as the API writes it (`"14.35"`, `"88.4"`, `"12"`).
    #[must_use]
    pub fn spend(&self) -> String {
        money(self.spend_cents)
    }

    /// The `actions` array.
    #[must_use]
    pub fn action_stats(&self) -> Vec<ActionStat> {
        self.actions
            .iter()
            .map(|(t, n)| ActionStat { action_type: t.clone(), value: n.to_string() })
            .collect()
    }

    /// The `action_values` array.
    #[must_use]
    pub fn action_value_stats(&self) -> Vec<ActionStat> {
        self.action_values_cents
            .iter()
            .map(|(t, c)| ActionStat { action_type: t.clone(), value: money(*c) })
            .collect()
    }
}

/// Minor units as Meta writes money: up to two decimals, no trailing zeros.
#[must_use]
pub fn money(cents: u64) -> String {
    match cents % 100 {
        0 => (cents / 100).to_string(),
        c if c % 10 == 0 => format!("{}.{}", cents / 100, c / 10),
        c => format!("{}.{c:02}", cents / 100),
    }
}

/// `numerator / denominator` with at most six decimals and no trailing zeros, the way Meta
/// writes derived ratios (`"1.594444"`).
#[must_use]
pub fn ratio(numerator: u128, denominator: u128) -> Option<String> {
    if denominator == 0 {
        return None;
    }
    let scaled = numerator * 1_000_000 / denominator;
    let (whole, frac) = (scaled / 1_000_000, scaled % 1_000_000);
    if frac == 0 {
        return Some(whole.to_string());
    }
    let digits = format!("{frac:06}");
    Some(format!("{whole}.{}", digits.trim_end_matches('0')))
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
    fn tree(&self, account: &str) -> Vec<Branch> {
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

/// The figures of one ad on one day.
#[derive(Debug, Clone, Default)]
struct Delivery {
    impressions: u64,
    reach: u64,
    clicks: u64,
    inline_link_clicks: u64,
    spend_cents: u64,
    actions: Vec<(&'static str, u64)>,
    values: Vec<(&'static str, u64)>,
}

/// What one ad delivered on `day`, or `None` on a day without delivery (no row at all).
fn ad_delivery(seed: u64, ad_id: &str, day: NaiveDate) -> Option<Delivery> {
    let mut rng = SimRng::derive(seed, "facebook-ad-day", hash_label(&format!("{ad_id}/{day}")));
    if day < FIRST_DAY || rng.range(0, 100) < 15 {
        return None;
    }
    let impressions = rng.range(40, 6_000);
    let reach = impressions * rng.range(60, 96) / 100;
    let clicks = rng.range(0, impressions / 25 + 1);
    let link = clicks * rng.range(40, 91) / 100;
    let spend_cents = rng.range(100, 25_000);
    let landing = rng.range(0, link + 1);
    let reactions = rng.range(0, impressions / 80 + 1);
    let comments = rng.range(0, 6);
    let shares = rng.range(0, 4);
    let video = rng.range(0, impressions / 12 + 1);
    let page_likes = rng.range(0, 3);
    let lead_forms = rng.range(0, 4);
    let pixel_leads = rng.range(0, 3);
    let purchases = rng.range(0, 5);
    let purchase_cents: u64 = (0..purchases).map(|_| rng.range(1_500, 15_000)).sum();
    let custom = rng.range(0, 3);
    let custom_cents: u64 = (0..custom).map(|_| rng.range(500, 5_000)).sum();
    let messaging = rng.range(0, 4);
    let post_engagement = link + reactions + comments + shares + video;
    let actions = vec![
        ("link_click", link),
        ("landing_page_view", landing),
        ("post_reaction", reactions),
        ("comment", comments),
        ("post", shares),
        ("video_view", video),
        ("like", page_likes),
        ("post_engagement", post_engagement),
        ("page_engagement", post_engagement + page_likes),
        ("onsite_conversion.lead_grouped", lead_forms),
        ("offsite_conversion.fb_pixel_lead", pixel_leads),
        ("lead", lead_forms + pixel_leads),
        ("offsite_conversion.fb_pixel_purchase", purchases),
        ("purchase", purchases),
        ("omni_purchase", purchases),
        (CUSTOM_CONVERSION, custom),
        ("onsite_conversion.messaging_conversation_started_7d", messaging),
    ];
    let values = vec![
        ("offsite_conversion.fb_pixel_purchase", purchase_cents),
        ("purchase", purchase_cents),
        ("omni_purchase", purchase_cents),
        (CUSTOM_CONVERSION, custom_cents),
    ];
    Some(Delivery { impressions, reach, clicks, inline_link_clicks: link, spend_cents, actions, values })
}

/// Adds `children` up; reach is drawn between the largest child's and their sum.
fn aggregate(seed: u64, entity_id: &str, day: NaiveDate, children: &[Delivery]) -> Delivery {
    let mut total = Delivery::default();
    let mut reaches = Vec::with_capacity(children.len());
    for child in children {
        total.impressions += child.impressions;
        total.clicks += child.clicks;
        total.inline_link_clicks += child.inline_link_clicks;
        total.spend_cents += child.spend_cents;
        reaches.push(child.reach);
        add_into(&mut total.actions, &child.actions);
        add_into(&mut total.values, &child.values);
    }
    let largest = reaches.iter().copied().max().unwrap_or(0);
    let sum: u64 = reaches.iter().sum();
    let overlap =
        SimRng::derive(seed, "facebook-reach", hash_label(&format!("{entity_id}/{day}"))).range(55, 91);
    total.reach = largest + (sum - largest) * overlap / 100;
    total
}

fn add_into(total: &mut Vec<(&'static str, u64)>, more: &[(&'static str, u64)]) {
    for (kind, n) in more {
        match total.iter_mut().find(|(k, _)| k == kind) {
            Some((_, sum)) => *sum += n,
            None => total.push((kind, *n)),
        }
    }
}

/// Every insights row of `account` at `level` from `since` to `until` (inclusive), ordered by
/// day, then entity id: what a daily (`time_increment=1`) report returns.
#[must_use]
pub fn insights(
    seed: u64,
    structure: &Structure,
    account: &SimAdAccount,
    level: InsightsLevel,
    since: NaiveDate,
    until: NaiveDate,
) -> Vec<InsightsRow> {
    let tree = structure.tree(&account.id);
    let mut rows = Vec::new();
    let mut day = since.max(FIRST_DAY);
    while day <= until {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for node in &tree {
            let Some(delivery) = ad_delivery(seed, &node.2.id, day) else { continue };
            let key = match level {
                InsightsLevel::Account => account.id.clone(),
                InsightsLevel::Campaign => node.0.id.clone(),
                InsightsLevel::Adset => node.1.id.clone(),
                InsightsLevel::Ad => node.2.id.clone(),
            };
            match groups.iter_mut().find(|g| g.key == key) {
                Some(group) => group.children.push(delivery),
                None => groups.push(Group { node, key, children: vec![delivery] }),
            }
        }
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        for group in groups {
            let figures = if level == InsightsLevel::Ad {
                group.children.into_iter().next().unwrap_or_default()
            } else {
                aggregate(seed, &group.key, day, &group.children)
            };
            rows.push(row_of(account, level, group.node, day, figures));
        }
        match day.checked_add_days(Days::new(1)) {
            Some(next) => day = next,
            None => break,
        }
    }
    rows
}

/// A value drawn between `low` and `high` (both included, `low` when `high` is not above it),
/// never `high` itself when it is above `low`: 20 % to 80 % of the way, from `key` and the range.
fn between(seed: u64, key: &str, since: NaiveDate, until: NaiveDate, low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    let share = SimRng::derive(seed, "facebook-range-reach", hash_label(&format!("{key}/{since}/{until}")))
        .range(20, 81);
    low + (high - low) * share / 100
}

/// The id of the entity `ad_row` (a daily ad row) counts towards at `level`.
fn key_at(ad_row: &InsightsRow, level: InsightsLevel) -> &str {
    let entity = match level {
        InsightsLevel::Account => return ad_row.account_id.as_str(),
        InsightsLevel::Campaign => &ad_row.campaign,
        InsightsLevel::Adset => &ad_row.adset,
        InsightsLevel::Ad => &ad_row.ad,
    };
    entity.as_ref().map_or("", |e| e.id.as_str())
}

/// The largest and the sum of `values`.
fn largest_and_sum(values: impl IntoIterator<Item = u64>) -> (u64, u64) {
    values.into_iter().fold((0, 0), |(max, sum), v| (max.max(v), sum + v))
}

/// One row per entity of `account` at `level` that delivered between `since` and `until`
/// (inclusive), over that whole range: what a report with `time_increment=all_days`, or one
/// range of `time_ranges`, returns. Sums of the days, reach drawn as the module says. Ordered by
/// entity id; `date` is `since` and `date_stop` `until`, whatever days the entity delivered.
#[must_use]
pub fn range_insights(
    seed: u64,
    structure: &Structure,
    account: &SimAdAccount,
    level: InsightsLevel,
    since: NaiveDate,
    until: NaiveDate,
) -> Vec<InsightsRow> {
    let ads = insights(seed, structure, account, InsightsLevel::Ad, since, until);
    // Each ad's reach over the range, between its largest day and the sum of its days.
    let mut ad_ids: Vec<&str> = ads.iter().map(|r| key_at(r, InsightsLevel::Ad)).collect();
    ad_ids.sort_unstable();
    ad_ids.dedup();
    let ad_reach: Vec<(&str, u64)> = ad_ids
        .iter()
        .map(|id| {
            let (max, sum) =
                largest_and_sum(ads.iter().filter(|r| key_at(r, InsightsLevel::Ad) == *id).map(|r| r.reach));
            (*id, between(seed, id, since, until, max, sum))
        })
        .collect();
    let days = if level == InsightsLevel::Ad {
        ads.clone()
    } else {
        insights(seed, structure, account, level, since, until)
    };
    let mut keys: Vec<&str> = days.iter().map(InsightsRow::entity_id).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        let own: Vec<&InsightsRow> = days.iter().filter(|r| r.entity_id() == key).collect();
        let Some(first) = own.first() else { continue };
        let (largest_day, sum_of_days) = largest_and_sum(own.iter().map(|r| r.reach));
        let reach = if level == InsightsLevel::Ad {
            ad_reach.iter().find(|(id, _)| *id == key).map_or(largest_day, |(_, r)| *r)
        } else {
            let mut children: Vec<&str> = ads
                .iter()
                .filter(|r| key_at(r, level) == key)
                .map(|r| key_at(r, InsightsLevel::Ad))
                .collect();
            children.sort_unstable();
            children.dedup();
            let (largest_child, sum_of_children) =
                largest_and_sum(ad_reach.iter().filter(|(id, _)| children.contains(id)).map(|(_, r)| *r));
            between(seed, key, since, until, largest_day.max(largest_child), sum_of_days.min(sum_of_children))
        };
        let mut row = (*first).clone();
        row.date = since;
        row.date_stop = until;
        row.reach = reach;
        row.impressions = own.iter().map(|r| r.impressions).sum();
        row.clicks = own.iter().map(|r| r.clicks).sum();
        row.inline_link_clicks = own.iter().map(|r| r.inline_link_clicks).sum();
        row.spend_cents = own.iter().map(|r| r.spend_cents).sum();
        row.actions = summed(own.iter().map(|r| &r.actions));
        row.action_values_cents = summed(own.iter().map(|r| &r.action_values_cents));
        rows.push(row);
    }
    rows
}

/// Lists of counts by type added up, types in the order first met.
fn summed<'a>(lists: impl Iterator<Item = &'a Vec<(String, u64)>>) -> Vec<(String, u64)> {
    let mut total: Vec<(String, u64)> = Vec::new();
    for list in lists {
        for (kind, n) in list {
            match total.iter_mut().find(|(k, _)| k == kind) {
                Some((_, sum)) => *sum += n,
                None => total.push((kind.clone(), *n)),
            }
        }
    }
    total
}

/// An ad with its campaign and ad set.
type Branch = (Entity, Entity, Entity);

/// The delivering ads one row adds up, and the first one's branch (for the row's ids).
struct Group<'a> {
    node: &'a Branch,
    key: String,
    children: Vec<Delivery>,
}

fn row_of(
    account: &SimAdAccount,
    level: InsightsLevel,
    node: &Branch,
    date: NaiveDate,
    d: Delivery,
) -> InsightsRow {
    let keep = |at: InsightsLevel, e: &Entity| (level >= at).then(|| e.clone());
    InsightsRow {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_currency: account.currency.clone(),
        level,
        campaign: keep(InsightsLevel::Campaign, &node.0),
        adset: keep(InsightsLevel::Adset, &node.1),
        ad: keep(InsightsLevel::Ad, &node.2),
        date,
        date_stop: date,
        impressions: d.impressions,
        reach: d.reach,
        clicks: d.clicks,
        inline_link_clicks: d.inline_link_clicks,
        spend_cents: d.spend_cents,
        actions: d.actions.into_iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_owned(), n)).collect(),
        action_values_cents: d
            .values
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_owned(), n))
            .collect(),
    }
}

/// A Page insights metric the simulator serves: its name and the `title` and `description`
/// the API sends along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMetricDef {
    /// The metric name (`page_media_view`).
    pub name: &'static str,
    /// The `title` field.
    pub title: &'static str,
    /// The `description` field.
    pub description: &'static str,
}

/// The Page metrics the simulator knows (current and retired ones; which are retired is
/// configured).
pub const PAGE_METRICS: [PageMetricDef; 10] = [
    PageMetricDef {
        name: "page_media_view",
        title: "Daily Media Views",
        description: "Daily: The number of times your Page's content was played or displayed.",
    },
    PageMetricDef {
        name: "page_total_media_view_unique",
        title: "Daily Unique Media Viewers",
        description: "Daily: The number of people who saw your Page's content at least once.",
    },
    PageMetricDef {
        name: "page_impressions",
        title: "Daily Total Impressions",
        description: "Daily: The number of times any content from your Page or about your Page entered a \
                      person's screen.",
    },
    PageMetricDef {
        name: "page_post_engagements",
        title: "Daily Post Engagements",
        description: "Daily: The number of times people have engaged with your posts through reactions, \
                      comments, shares and more.",
    },
    PageMetricDef {
        name: "page_daily_follows",
        title: "Daily New Follows",
        description: "Daily: The number of times your Page was followed.",
    },
    PageMetricDef {
        name: "page_daily_follows_unique",
        title: "Daily New Followers",
        description: "Daily: The number of new people who followed your Page.",
    },
    PageMetricDef {
        name: "page_daily_unfollows_unique",
        title: "Daily Unfollows",
        description: "Daily: The number of people who unfollowed your Page.",
    },
    PageMetricDef {
        name: "page_follows",
        title: "Followers",
        description: "Lifetime: The total number of people who follow your Page.",
    },
    PageMetricDef {
        name: "page_views_total",
        title: "Daily Total views count per Page",
        description: "Daily: The number of times a Page's profile has been viewed by logged in and logged \
                      out people.",
    },
    PageMetricDef {
        name: "page_actions_post_reactions_total",
        title: "Daily total post reactions of a page.",
        description: "Daily: Total post reactions by type.",
    },
];

/// A Page insight value: a number, or an object of counts by type (reactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageValue {
    /// A plain count.
    Count(u64),
    /// Counts by key, non-zero keys only (`{}` when empty).
    Breakdown(Vec<(String, u64)>),
}

#[derive(Debug, Clone, Copy)]
struct PageDayFigures {
    views: u64,
    viewers: u64,
    engagements: u64,
    follows: u64,
    followers_new: u64,
    unfollows: u64,
    profile_views: u64,
    reactions: [u64; 4],
}

fn page_day(seed: u64, page: &str, day: NaiveDate) -> PageDayFigures {
    let mut rng = SimRng::derive(seed, "facebook-page-day", hash_label(&format!("{page}/{day}")));
    let views = rng.range(200, 20_000);
    let viewers = views * rng.range(40, 90) / 100;
    let engagements = rng.range(10, 800);
    let follows = rng.range(0, 30);
    let followers_new = follows * rng.range(80, 101) / 100;
    let unfollows = rng.range(0, 6);
    let profile_views = rng.range(50, 2_000);
    let reactions = [rng.range(0, 120), rng.range(0, 30), rng.range(0, 8), rng.range(0, 3)];
    PageDayFigures {
        views,
        viewers,
        engagements,
        follows,
        followers_new,
        unfollows,
        profile_views,
        reactions,
    }
}

/// Followers at the end of `day`: a base plus every day's new followers minus unfollows.
fn followers(seed: u64, page: &str, day: NaiveDate) -> u64 {
    let mut total: u64 = 5_000;
    let mut d = FIRST_DAY;
    while d <= day {
        let f = page_day(seed, page, d);
        total = (total + f.followers_new).saturating_sub(f.unfollows);
        match d.checked_add_days(Days::new(1)) {
            Some(next) => d = next,
            None => break,
        }
    }
    total
}

/// The value of `metric` for `page` on `day` (Pacific time), or `None` before the Page had
/// data or for a metric the simulator does not know.
#[must_use]
pub fn page_metric(seed: u64, page: &str, metric: &str, day: NaiveDate) -> Option<PageValue> {
    if day < FIRST_DAY {
        return None;
    }
    let f = page_day(seed, page, day);
    let count = match metric {
        "page_media_view" => f.views,
        "page_total_media_view_unique" => f.viewers,
        // The retired metric kept its old meaning: a little more than the media views.
        "page_impressions" => f.views + f.views / 10,
        "page_post_engagements" => f.engagements,
        "page_daily_follows" => f.follows,
        "page_daily_follows_unique" => f.followers_new,
        "page_daily_unfollows_unique" => f.unfollows,
        "page_follows" => followers(seed, page, day),
        "page_views_total" => f.profile_views,
        "page_actions_post_reactions_total" => {
            let keys = ["like", "love", "wow", "haha"];
            return Some(PageValue::Breakdown(
                keys.iter()
                    .zip(f.reactions)
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, n)| ((*k).to_owned(), n))
                    .collect(),
            ));
        }
        _ => return None,
    };
    Some(PageValue::Count(count))
}

/// The Page metrics whose `period=week` value the simulator serves: unique people, not the sum
/// of the week's days.
pub const PAGE_WEEK_METRICS: [&str; 1] = ["page_total_media_view_unique"];

/// The `period=week` value of `metric` (one of [`PAGE_WEEK_METRICS`]) for `page` closing on
/// `last_day`: the people over the seven days ending that day (a rolling week, as the Graph API
/// gives one every day), between the largest of those days and their sum, below the sum when two
/// days or more had data. `None` before the Page had data.
#[must_use]
pub fn page_week_metric(seed: u64, page: &str, metric: &str, last_day: NaiveDate) -> Option<u64> {
    if !PAGE_WEEK_METRICS.contains(&metric) {
        return None;
    }
    let first_day = last_day.checked_sub_days(Days::new(6))?;
    let mut daily = Vec::with_capacity(7);
    let mut day = first_day;
    while day <= last_day {
        if let Some(PageValue::Count(n)) = page_metric(seed, page, metric, day) {
            daily.push(n);
        }
        day = day.checked_add_days(Days::new(1))?;
    }
    if daily.is_empty() {
        return None;
    }
    let (largest, sum) = largest_and_sum(daily);
    Some(between(seed, &format!("{page}/{metric}"), first_day, last_day, largest, sum))
}

/// Whether Pacific time is on daylight saving time at midnight starting `day`: from the second
/// Sunday of March (the switch is at 2 am, so that day still starts on standard time) to the
/// first Sunday of November (which starts on daylight time).
#[must_use]
pub fn pacific_dst_at_midnight(day: NaiveDate) -> bool {
    let nth_sunday = |month: u32, n: u32| {
        NaiveDate::from_weekday_of_month_opt(day.year(), month, Weekday::Sun, u8::try_from(n).unwrap_or(1))
    };
    match (nth_sunday(3, 2), nth_sunday(11, 1)) {
        (Some(start), Some(end)) => day > start && day <= end,
        _ => false,
    }
}

/// The `end_time` of the daily value of `day`: midnight Pacific ending that day, in UTC,
/// written like the Graph API (`2026-03-09T07:00:00+0000`).
#[must_use]
pub fn page_end_time(day: NaiveDate) -> String {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    let hour = if pacific_dst_at_midnight(next) { 7 } else { 8 };
    format!("{next}T{hour:02}:00:00+0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn account() -> SimAdAccount {
        SimAdAccount::new("101000000000001", "Acme US", "USD", "America/Los_Angeles", -7)
    }

    const SHAPE: Structure = Structure { campaigns: 2, adsets: 2, ads: 2 };

    /// shared/apis/facebook.md §2: up to six decimals, no trailing zeros (`"14.35"`, `"88.4"`).
    #[test]
    fn money_and_ratios_are_written_like_meta() {
        assert_eq!(money(1435), "14.35");
        assert_eq!(money(8840), "88.4");
        assert_eq!(money(1200), "12");
        assert_eq!(money(5), "0.05");
        assert_eq!(ratio(1435, 900).as_deref(), Some("1.594444"));
        assert_eq!(ratio(4, 2).as_deref(), Some("2"));
        assert_eq!(ratio(1, 0), None);
    }

    #[test]
    fn levels_add_up_except_reach() {
        let (since, until) = (day("2026-03-07"), day("2026-03-09"));
        let ads = insights(7, &SHAPE, &account(), InsightsLevel::Ad, since, until);
        let campaigns = insights(7, &SHAPE, &account(), InsightsLevel::Campaign, since, until);
        let total = |rows: &[InsightsRow], f: fn(&InsightsRow) -> u64| rows.iter().map(f).sum::<u64>();
        assert_eq!(total(&ads, |r| r.impressions), total(&campaigns, |r| r.impressions));
        assert_eq!(total(&ads, |r| r.spend_cents), total(&campaigns, |r| r.spend_cents));
        assert!(total(&ads, |r| r.reach) >= total(&campaigns, |r| r.reach));
        for row in campaigns.iter().chain(&ads) {
            assert!(row.reach <= row.impressions && row.inline_link_clicks <= row.clicks);
            let lead = row.actions.iter().find(|(k, _)| k == "lead").map_or(0, |(_, n)| *n);
            let parts: u64 = row
                .actions
                .iter()
                .filter(|(k, _)| {
                    k == "onsite_conversion.lead_grouped" || k == "offsite_conversion.fb_pixel_lead"
                })
                .map(|(_, n)| n)
                .sum();
            assert_eq!(lead, parts);
        }
        assert!(ads.len() < 8 * 3, "some ads do not deliver every day");
        assert_eq!(ads, insights(7, &SHAPE, &account(), InsightsLevel::Ad, since, until));
        assert!(
            insights(7, &SHAPE, &account(), InsightsLevel::Ad, day("2019-01-01"), day("2019-12-31"))
                .is_empty()
        );
    }

    /// A range's reach lies between its largest day and the sum of its days (below the sum
    /// with two days or more), and a parent's between its largest ad and its ads' sum; the
    /// additive figures are the days' sums.
    #[test]
    fn reach_over_a_range_is_below_the_sum_of_its_days_and_within_its_ads() {
        let (since, until) = (day("2026-02-23"), day("2026-03-08"));
        for level in InsightsLevel::ALL {
            let days = insights(7, &SHAPE, &account(), level, since, until);
            let ranges = range_insights(7, &SHAPE, &account(), level, since, until);
            assert!(!ranges.is_empty());
            for range in &ranges {
                let own: Vec<&InsightsRow> =
                    days.iter().filter(|r| r.entity_id() == range.entity_id()).collect();
                let (largest, sum) = largest_and_sum(own.iter().map(|r| r.reach));
                assert!(own.len() >= 2, "{level:?}: every entity delivers on several days");
                assert!(
                    range.reach >= largest && range.reach < sum,
                    "{level:?} {}: {} not in {largest}..{sum}",
                    range.entity_id(),
                    range.reach
                );
                assert_eq!(range.impressions, own.iter().map(|r| r.impressions).sum::<u64>());
                assert_eq!(range.spend_cents, own.iter().map(|r| r.spend_cents).sum::<u64>());
                assert_eq!((range.date, range.date_stop), (since, until));
            }
        }
        let ads = range_insights(7, &SHAPE, &account(), InsightsLevel::Ad, since, until);
        let accounts = range_insights(7, &SHAPE, &account(), InsightsLevel::Account, since, until);
        let (largest_ad, ads_sum) = largest_and_sum(ads.iter().map(|r| r.reach));
        assert!(accounts[0].reach >= largest_ad && accounts[0].reach <= ads_sum);
        assert!(
            range_insights(7, &SHAPE, &account(), InsightsLevel::Ad, day("2019-01-01"), day("2019-01-31"))
                .is_empty()
        );
    }

    #[test]
    fn a_range_of_one_day_is_that_day() {
        let d = day("2026-03-04");
        let daily = insights(7, &SHAPE, &account(), InsightsLevel::Campaign, d, d);
        let range = range_insights(7, &SHAPE, &account(), InsightsLevel::Campaign, d, d);
        let reach = |rows: &[InsightsRow]| {
            rows.iter().map(|r| (r.entity_id().to_owned(), r.reach)).collect::<Vec<_>>()
        };
        assert_eq!(reach(&daily), reach(&range));
    }

    #[test]
    fn a_pages_weekly_unique_value_is_below_the_sum_of_its_days() {
        let sunday = day("2026-03-08");
        let week = page_week_metric(3, "200", "page_total_media_view_unique", sunday).unwrap();
        let daily: Vec<u64> = (0..7)
            .filter_map(|back| {
                match page_metric(
                    3,
                    "200",
                    "page_total_media_view_unique",
                    sunday - chrono::TimeDelta::days(back),
                ) {
                    Some(PageValue::Count(n)) => Some(n),
                    _ => None,
                }
            })
            .collect();
        let (largest, sum) = largest_and_sum(daily);
        assert!(week >= largest && week < sum, "{week} not in {largest}..{sum}");
        assert_eq!(page_week_metric(3, "200", "page_media_view", sunday), None);
        assert_eq!(page_week_metric(3, "200", "page_total_media_view_unique", day("2024-12-31")), None);
    }

    #[test]
    fn followers_move_with_gains_and_losses() {
        let d = day("2026-03-08");
        let before = followers(3, "200", d.pred_opt().unwrap());
        let f = page_day(3, "200", d);
        assert_eq!(followers(3, "200", d), before + f.followers_new - f.unfollows);
        assert_eq!(page_metric(3, "200", "page_follows", day("2024-12-31")), None);
    }

    /// shared/apis/facebook.md §4: `end_time` closes the day in Pacific time.
    #[test]
    fn end_times_follow_pacific_daylight_saving() {
        // 2026: daylight time from March 8 to November 1.
        assert_eq!(page_end_time(day("2026-03-07")), "2026-03-08T08:00:00+0000");
        assert_eq!(page_end_time(day("2026-03-08")), "2026-03-09T07:00:00+0000");
        assert_eq!(page_end_time(day("2026-10-31")), "2026-11-01T07:00:00+0000");
        assert_eq!(page_end_time(day("2026-11-01")), "2026-11-02T08:00:00+0000");
        assert_eq!(page_end_time(day("2024-06-26")), "2024-06-27T07:00:00+0000");
    }
}
