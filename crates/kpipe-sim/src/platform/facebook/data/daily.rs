//! What each ad delivers every day, and the daily insights rows of every level that add the
//! ads up.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::row::InsightsRow;
use super::structure::{Branch, Entity, InsightsLevel, SimAdAccount, Structure};
use super::{CUSTOM_CONVERSION, FIRST_DAY};
use crate::rng::{SimRng, hash_label};

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
pub(super) struct Delivery {
    pub(super) impressions: u64,
    pub(super) reach: u64,
    pub(super) clicks: u64,
    pub(super) inline_link_clicks: u64,
    pub(super) spend_cents: u64,
    pub(super) actions: [u64; ACTION_TYPES.len()],
    pub(super) values: [u64; VALUE_TYPES.len()],
}

impl Delivery {
    /// Adds the additive figures of `more` (all but reach).
    pub(super) fn add(&mut self, more: &Delivery) {
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
pub(super) fn deliveries(seed: u64, tree: &[Branch], day: NaiveDate) -> Vec<Option<Delivery>> {
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
pub(super) fn days_with_data(since: NaiveDate, until: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    since.max(FIRST_DAY).iter_days().take_while(move |day| *day <= until)
}

/// The id of the entity `node`'s ad counts towards at `level` (the account's at level account).
pub(super) fn key_of<'t>(node: &'t Branch, account_id: &'t str, level: InsightsLevel) -> &'t str {
    match level {
        InsightsLevel::Account => account_id,
        InsightsLevel::Campaign => &node.0.id,
        InsightsLevel::Adset => &node.1.id,
        InsightsLevel::Ad => &node.2.id,
    }
}

/// The ads of an account gathered into the rows of one level: each row's entity id with the
/// positions of its ads in the tree, in the tree's order. Rows are ordered by entity id.
pub(super) struct Groups<'t> {
    tree: &'t [Branch],
    level: InsightsLevel,
    rows: Vec<(&'t str, Vec<usize>)>,
}

impl<'t> Groups<'t> {
    pub(super) fn new(tree: &'t [Branch], account_id: &'t str, level: InsightsLevel) -> Self {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (position, node) in tree.iter().enumerate() {
            by_key.entry(key_of(node, account_id, level)).or_default().push(position);
        }
        Self { tree, level, rows: by_key.into_iter().collect() }
    }

    /// Appends the rows of `day` to `out` from the ads' `deliveries` that day (by position): one
    /// per entity with a delivering ad, which gives the row its ids (the first in the tree).
    pub(super) fn add_day(
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
pub(super) struct DayFigures<'t> {
    /// The entity's position among its level's (which is the order of ids).
    pub(super) entity: usize,
    /// The entity's id.
    pub(super) key: &'t str,
    /// The ad that gives the row its ids.
    pub(super) node: &'t Branch,
    pub(super) day: NaiveDate,
    pub(super) figures: Delivery,
}

/// The figures of `figures` (ordered by day) from `since` to `until`.
pub(super) fn within<'a, 't>(
    figures: &'a [DayFigures<'t>],
    since: NaiveDate,
    until: NaiveDate,
) -> &'a [DayFigures<'t>] {
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

/// The row of `d` for the entity of `node` at `level` over `days` (first and last), listing the
/// non-zero `actions` and `action_values` in the order of `lists` (positions in [`ACTION_TYPES`]
/// and [`VALUE_TYPES`]).
pub(super) fn row_of(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::facebook::data::fixtures::{SHAPE, account, day};

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
}
