//! Insights rows over a range of days (`time_increment=all_days`, `time_ranges`): the days'
//! sums, with reach drawn again as people overlap across days.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::daily::{DayFigures, Delivery, Groups, days_with_data, deliveries, key_of, row_of, within};
use super::row::InsightsRow;
use super::structure::{Branch, InsightsLevel, SimAdAccount, Structure};
use crate::rng::{SimRng, hash_label};

/// A value drawn between `low` and `high` (both included, `low` when `high` is not above it),
/// never `high` itself when it is above `low`: 20 % to 80 % of the way, from `key` and the range.
pub(super) fn between(seed: u64, key: &str, since: NaiveDate, until: NaiveDate, low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    let share = SimRng::derive(seed, "facebook-range-reach", hash_label(&format!("{key}/{since}/{until}")))
        .range(20, 81);
    low + (high - low) * share / 100
}

/// The largest and the sum of `values`.
pub(super) fn largest_and_sum(values: impl IntoIterator<Item = u64>) -> (u64, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::facebook::data::daily::insights;
    use crate::platform::facebook::data::fixtures::{SHAPE, account, day};

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
}
