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

use std::collections::{BTreeMap, HashMap};
use std::fmt;

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
    Money(cents).to_string()
}

/// Minor units written as [`money`] does, without a `String` of their own (rows are written
/// straight to the response).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Money(pub(crate) u64);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0;
        match cents % 100 {
            0 => write!(f, "{}", cents / 100),
            c if c % 10 == 0 => write!(f, "{}.{}", cents / 100, c / 10),
            c => write!(f, "{}.{c:02}", cents / 100),
        }
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

/// The action types of `actions`, in the API's order.
const ACTION_TYPES: [&str; 17] = [
    "link_click",
    "landing_page_view",
    "post_reaction",
    "comment",
    "post",
    "video_view",
    "like",
    "post_engagement",
    "page_engagement",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_lead",
    "lead",
    "offsite_conversion.fb_pixel_purchase",
    "purchase",
    "omni_purchase",
    CUSTOM_CONVERSION,
    "onsite_conversion.messaging_conversation_started_7d",
];

/// The action types of `action_values`, in the API's order.
const VALUE_TYPES: [&str; 4] =
    ["offsite_conversion.fb_pixel_purchase", "purchase", "omni_purchase", CUSTOM_CONVERSION];

/// The figures of one ad on one day, or of the ads one row adds up. Every ad reports every type,
/// so counts are kept by position in [`ACTION_TYPES`] and [`VALUE_TYPES`], zeros included.
#[derive(Debug, Clone, Copy, Default)]
struct Delivery {
    impressions: u64,
    reach: u64,
    clicks: u64,
    inline_link_clicks: u64,
    spend_cents: u64,
    actions: [u64; ACTION_TYPES.len()],
    values: [u64; VALUE_TYPES.len()],
}

impl Delivery {
    /// Adds the additive figures of `more` (all but reach).
    fn add(&mut self, more: &Delivery) {
        self.impressions += more.impressions;
        self.clicks += more.clicks;
        self.inline_link_clicks += more.inline_link_clicks;
        self.spend_cents += more.spend_cents;
        self.actions.iter_mut().zip(more.actions).for_each(|(sum, n)| *sum += n);
        self.values.iter_mut().zip(more.values).for_each(|(sum, n)| *sum += n);
    }
}

/// What one ad delivered on a day from [`FIRST_DAY`] on, drawn from `label` (`{ad_id}/{day}`),
/// or `None` on a day without delivery (no row at all).
fn ad_delivery(seed: u64, label: &str) -> Option<Delivery> {
    let mut rng = SimRng::derive(seed, "facebook-ad-day", hash_label(label));
    if rng.range(0, 100) < 15 {
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
    // In the order of ACTION_TYPES and VALUE_TYPES.
    let actions = [
        link,
        landing,
        reactions,
        comments,
        shares,
        video,
        page_likes,
        post_engagement,
        post_engagement + page_likes,
        lead_forms,
        pixel_leads,
        lead_forms + pixel_leads,
        purchases,
        purchases,
        purchases,
        custom,
        messaging,
    ];
    let values = [purchase_cents, purchase_cents, purchase_cents, custom_cents];
    Some(Delivery { impressions, reach, clicks, inline_link_clicks: link, spend_cents, actions, values })
}

/// What every ad of `tree` delivered on `day`, by position in the tree.
fn deliveries(seed: u64, tree: &[Branch], day: NaiveDate) -> Vec<Option<Delivery>> {
    if day < FIRST_DAY {
        return vec![None; tree.len()];
    }
    // One buffer for every ad's label: a day has as many draws as ads.
    let day = day.to_string();
    let mut label = String::new();
    tree.iter()
        .map(|(_, _, ad)| {
            label.clear();
            label.push_str(&ad.id);
            label.push('/');
            label.push_str(&day);
            ad_delivery(seed, &label)
        })
        .collect()
}

/// Adds `children` up (at least one); reach is drawn between the largest child's and their sum.
fn aggregate<'a>(
    seed: u64,
    entity_id: &str,
    day: NaiveDate,
    children: impl Iterator<Item = &'a Delivery>,
) -> Delivery {
    let mut total = Delivery::default();
    let (mut largest, mut sum) = (0, 0);
    for child in children {
        total.add(child);
        largest = largest.max(child.reach);
        sum += child.reach;
    }
    let overlap =
        SimRng::derive(seed, "facebook-reach", hash_label(&format!("{entity_id}/{day}"))).range(55, 91);
    total.reach = largest + (sum - largest) * overlap / 100;
    total
}

/// The days from `since` (not before [`FIRST_DAY`]) to `until`, inclusive.
fn days_with_data(since: NaiveDate, until: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    since.max(FIRST_DAY).iter_days().take_while(move |day| *day <= until)
}

/// The id of the entity `node`'s ad counts towards at `level` (the account's at level account).
fn key_of<'t>(node: &'t Branch, account_id: &'t str, level: InsightsLevel) -> &'t str {
    match level {
        InsightsLevel::Account => account_id,
        InsightsLevel::Campaign => &node.0.id,
        InsightsLevel::Adset => &node.1.id,
        InsightsLevel::Ad => &node.2.id,
    }
}

/// The ads of an account gathered into the rows of one level: each row's entity id with the
/// positions of its ads in the tree, in the tree's order. Rows are ordered by entity id.
struct Groups<'t> {
    tree: &'t [Branch],
    level: InsightsLevel,
    rows: Vec<(&'t str, Vec<usize>)>,
}

impl<'t> Groups<'t> {
    fn new(tree: &'t [Branch], account_id: &'t str, level: InsightsLevel) -> Self {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (position, node) in tree.iter().enumerate() {
            by_key.entry(key_of(node, account_id, level)).or_default().push(position);
        }
        Self { tree, level, rows: by_key.into_iter().collect() }
    }

    /// Appends the rows of `day` to `out` from the ads' `deliveries` that day (by position): one
    /// per entity with a delivering ad, which gives the row its ids (the first in the tree).
    fn add_day(
        &self,
        seed: u64,
        day: NaiveDate,
        deliveries: &[Option<Delivery>],
        out: &mut Vec<DayFigures<'t>>,
    ) {
        for (entity, (key, ads)) in self.rows.iter().enumerate() {
            let mut delivering = ads.iter().filter_map(|&at| deliveries[at].as_ref().map(|d| (at, d)));
            let Some((first, first_figures)) = delivering.next() else { continue };
            let figures = if self.level == InsightsLevel::Ad {
                *first_figures
            } else {
                aggregate(seed, key, day, std::iter::once(first_figures).chain(delivering.map(|(_, d)| d)))
            };
            out.push(DayFigures { entity, key, node: &self.tree[first], day, figures });
        }
    }
}

/// One entity's figures on one day: what a daily row holds.
#[derive(Debug, Clone, Copy)]
struct DayFigures<'t> {
    /// The entity's position among its level's (which is the order of ids).
    entity: usize,
    /// The entity's id.
    key: &'t str,
    /// The ad that gives the row its ids.
    node: &'t Branch,
    day: NaiveDate,
    figures: Delivery,
}

/// The figures of `figures` (ordered by day) from `since` to `until`.
fn within<'a, 't>(figures: &'a [DayFigures<'t>], since: NaiveDate, until: NaiveDate) -> &'a [DayFigures<'t>] {
    let start = figures.partition_point(|f| f.day < since);
    let end = figures.partition_point(|f| f.day <= until);
    figures.get(start..end.max(start)).unwrap_or_default()
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
    let groups = Groups::new(&tree, &account.id, level);
    let mut figures = Vec::new();
    for day in days_with_data(since, until) {
        groups.add_day(seed, day, &deliveries(seed, &tree, day), &mut figures);
    }
    // A day's lists are in the API's order.
    let lists = || (0..ACTION_TYPES.len(), 0..VALUE_TYPES.len());
    figures.iter().map(|f| row_of(account, level, f.node, (f.day, f.day), &f.figures, lists())).collect()
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
    ranges_insights(seed, structure, account, level, &[(since, until)])
}

/// The rows of [`range_insights`] for each of `ranges` in turn: what a report with
/// `time_ranges` returns. Each day is drawn once however the ranges overlap (weeks within
/// months), so a report of many ranges costs about the days they cover.
#[must_use]
pub fn ranges_insights(
    seed: u64,
    structure: &Structure,
    account: &SimAdAccount,
    level: InsightsLevel,
    ranges: &[(NaiveDate, NaiveDate)],
) -> Vec<InsightsRow> {
    let tree = structure.tree(&account.id);
    let ads = Groups::new(&tree, &account.id, InsightsLevel::Ad);
    let parents = (level != InsightsLevel::Ad).then(|| Groups::new(&tree, &account.id, level));
    let spans: Vec<Span<'_>> = covering_spans(ranges)
        .into_iter()
        .map(|(since, until)| {
            let mut span = Span { since, until, ads: Vec::new(), parents: Vec::new() };
            for day in days_with_data(since, until) {
                let deliveries = deliveries(seed, &tree, day);
                ads.add_day(seed, day, &deliveries, &mut span.ads);
                if let Some(parents) = &parents {
                    parents.add_day(seed, day, &deliveries, &mut span.parents);
                }
            }
            span
        })
        .collect();
    let mut rows = Vec::new();
    for &(since, until) in ranges {
        let Some(span) = spans.iter().find(|s| s.since <= since && until <= s.until) else { continue };
        let ads = within(&span.ads, since, until);
        let range = Range { seed, account, level, since, until };
        rows.extend(if parents.is_some() {
            range.parent_rows(ads, within(&span.parents, since, until))
        } else {
            range.ad_rows(ads)
        });
    }
    rows
}

/// The smallest runs of consecutive days that hold every one of `ranges`, in order.
fn covering_spans(ranges: &[(NaiveDate, NaiveDate)]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for (since, until) in sorted {
        match spans.last_mut() {
            Some(last) if since <= last.1.succ_opt().unwrap_or(last.1) => last.1 = last.1.max(until),
            _ => spans.push((since, until)),
        }
    }
    spans
}

/// The daily figures of a run of days, at ad level and, for another level, at that level.
struct Span<'t> {
    since: NaiveDate,
    until: NaiveDate,
    ads: Vec<DayFigures<'t>>,
    parents: Vec<DayFigures<'t>>,
}

/// One range of a report: whose rows, at which level, over which days.
struct Range<'t> {
    seed: u64,
    account: &'t SimAdAccount,
    level: InsightsLevel,
    since: NaiveDate,
    until: NaiveDate,
}

impl<'t> Range<'t> {
    /// Each entity's days added up, by entity id, from its daily figures (ordered by day).
    fn sums(days: &[DayFigures<'t>]) -> impl Iterator<Item = (&'t str, RangeSum<'t>)> {
        let mut sums: Vec<Option<(&str, RangeSum<'_>)>> = Vec::new();
        for day in days {
            if sums.len() <= day.entity {
                sums.resize_with(day.entity + 1, || None);
            }
            let (_, sum) = sums[day.entity].get_or_insert_with(|| (day.key, RangeSum::new(day.node)));
            sum.add(&day.figures);
        }
        sums.into_iter().flatten()
    }

    fn between(&self, key: &str, low: u64, high: u64) -> u64 {
        between(self.seed, key, self.since, self.until, low, high)
    }

    /// The rows at ad level: an ad's reach lies between its largest day and the sum of its days.
    fn ad_rows(&self, ads: &[DayFigures<'t>]) -> Vec<InsightsRow> {
        Self::sums(ads)
            .map(|(id, sum)| {
                let reach = self.between(id, sum.largest_reach, sum.reach_sum);
                sum.row(self, reach)
            })
            .collect()
    }

    /// The rows at a level above the ads: reach is bounded by the entity's days and by its ads'
    /// reach over the range.
    fn parent_rows(&self, ads: &[DayFigures<'t>], days: &[DayFigures<'t>]) -> Vec<InsightsRow> {
        let children = self.children_reach(ads);
        Self::sums(days)
            .map(|(key, sum)| {
                let (largest_child, children_sum) = children.get(key).copied().unwrap_or_default();
                let low = sum.largest_reach.max(largest_child);
                let reach = self.between(key, low, sum.reach_sum.min(children_sum));
                sum.row(self, reach)
            })
            .collect()
    }

    /// For each entity at this level, the largest and the sum of the range reach of the ads that
    /// delivered under it, from the ads' daily figures.
    fn children_reach(&self, ads: &[DayFigures<'t>]) -> HashMap<&'t str, (u64, u64)> {
        let mut per_ad: HashMap<&str, (u64, u64, Vec<&str>)> = HashMap::new();
        for day in ads {
            let (largest, sum, parents) = per_ad.entry(day.key).or_default();
            (*largest, *sum) = (day.figures.reach.max(*largest), *sum + day.figures.reach);
            let parent = key_of(day.node, &self.account.id, self.level);
            if !parents.contains(&parent) {
                parents.push(parent);
            }
        }
        let mut out: HashMap<&str, (u64, u64)> = HashMap::new();
        for (id, (largest, sum, parents)) in per_ad {
            let reach = self.between(id, largest, sum);
            for parent in parents {
                let (largest_child, children_sum) = out.entry(parent).or_default();
                (*largest_child, *children_sum) = (reach.max(*largest_child), *children_sum + reach);
            }
        }
        out
    }
}

/// One entity's days within a range, added up in day order.
struct RangeSum<'t> {
    /// The ad that gives its first day's row its ids.
    node: &'t Branch,
    largest_reach: u64,
    reach_sum: u64,
    total: Delivery,
    /// Positions of the action types with a count, in the order the days first had one: the
    /// order in which the daily rows' lists add up.
    actions: Vec<usize>,
    values: Vec<usize>,
}

impl<'t> RangeSum<'t> {
    fn new(node: &'t Branch) -> Self {
        let (largest_reach, reach_sum, total) = (0, 0, Delivery::default());
        Self { node, largest_reach, reach_sum, total, actions: Vec::new(), values: Vec::new() }
    }

    fn add(&mut self, day: &Delivery) {
        self.largest_reach = self.largest_reach.max(day.reach);
        self.reach_sum += day.reach;
        self.total.add(day);
        first_met(&mut self.actions, &day.actions);
        first_met(&mut self.values, &day.values);
    }

    fn row(self, range: &Range<'_>, reach: u64) -> InsightsRow {
        let figures = Delivery { reach, ..self.total };
        let days = (range.since, range.until);
        let lists = (self.actions.into_iter(), self.values.into_iter());
        row_of(range.account, range.level, self.node, days, &figures, lists)
    }
}

/// Appends to `order` the positions of `counts` with a count that it does not hold yet.
fn first_met(order: &mut Vec<usize>, counts: &[u64]) {
    for (at, n) in counts.iter().enumerate() {
        if *n > 0 && !order.contains(&at) {
            order.push(at);
        }
    }
}

/// An ad with its campaign and ad set.
type Branch = (Entity, Entity, Entity);

/// The row of `d` for the entity of `node` at `level` over `days` (first and last), listing the
/// non-zero `actions` and `action_values` in the order of `lists` (positions in [`ACTION_TYPES`]
/// and [`VALUE_TYPES`]).
fn row_of(
    account: &SimAdAccount,
    level: InsightsLevel,
    node: &Branch,
    days: (NaiveDate, NaiveDate),
    d: &Delivery,
    lists: (impl Iterator<Item = usize>, impl Iterator<Item = usize>),
) -> InsightsRow {
    let keep = |at: InsightsLevel, e: &Entity| (level >= at).then(|| e.clone());
    let listed = |types: &[&str], counts: &[u64], order: &mut dyn Iterator<Item = usize>| {
        order
            .filter_map(|at| Some((*types.get(at)?, *counts.get(at)?)))
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| (kind.to_owned(), n))
            .collect()
    };
    let (mut actions, mut values) = lists;
    InsightsRow {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_currency: account.currency.clone(),
        level,
        campaign: keep(InsightsLevel::Campaign, &node.0),
        adset: keep(InsightsLevel::Adset, &node.1),
        ad: keep(InsightsLevel::Ad, &node.2),
        date: days.0,
        date_stop: days.1,
        impressions: d.impressions,
        reach: d.reach,
        clicks: d.clicks,
        inline_link_clicks: d.inline_link_clicks,
        spend_cents: d.spend_cents,
        actions: listed(&ACTION_TYPES, &d.actions, &mut actions),
        action_values_cents: listed(&VALUE_TYPES, &d.values, &mut values),
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
