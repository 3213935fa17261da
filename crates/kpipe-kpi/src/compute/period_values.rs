//! Unique metrics over whole weeks and months, as the platforms report them for the period
//! (the `metrics_period` table). A week's reach is not the sum of its days (docs/kpis.md rule 2):
//! from days alone a unique term over a week or month has no value; with the platform's value
//! for the period, it has that one, at the scope the platform gave it for.

use chrono::NaiveDate;
use kpipe_core::Additivity;

use super::{Agg, Computation, DayAgg, FxMap, Grain, RowRef, accepts, key, level_before, unkey};

/// The period values read, by period: per cell (entity, term, currency), the rows of its least
/// broken-down breakdown, as for a day. Unique terms' values, and snapshot terms' opening values
/// (read by `start(...)`), apart.
#[derive(Debug, Default)]
pub(super) struct PeriodValues {
    by_period: std::collections::HashMap<(Grain, NaiveDate), FxMap<u64, DayAgg>>,
    openings: std::collections::HashMap<(Grain, NaiveDate), FxMap<u64, DayAgg>>,
}

impl Computation<'_> {
    /// Adds a stored period row: the value of a unique metric over the whole period of `grain`
    /// that starts on `start`, written by `source`. Rows of periods the computation does not
    /// produce, and of metrics that are not unique, are not used.
    pub fn add_period_row(&mut self, source: &str, grain: Grain, start: NaiveDate, row: &RowRef<'_>) {
        self.stats.period_rows_read += 1;
        let catalog = self.catalog;
        let Some(&(lo, hi)) = self.metric_terms.get(row.metric) else { return };
        if grain == Grain::Day || !self.touched.contains(grain, start) {
            return;
        }
        let entity = self.intern_entity(source, row);
        let mut mask: u16 = 0;
        for (i, d) in row.dimensions.iter().enumerate() {
            if d.is_some() {
                mask |= 1 << i;
            }
        }
        let rank = ((mask.count_ones() as u16) << 8) | mask;
        let currency = match row.currency {
            None => 0,
            Some(c) => self.intern_currency(c),
        };
        for i in lo..hi {
            let t = self.term_lists[i];
            let term = catalog.terms.get(t);
            let values = match term.additivity {
                Additivity::Unique => &mut self.period_values.by_period,
                Additivity::Snapshot if term.needs_start => &mut self.period_values.openings,
                _ => continue,
            };
            if !term.filter.is_empty() && !accepts(&term.filter.0, source, row) {
                continue;
            }
            let values = values.entry((grain, start)).or_default();
            values.entry(key(entity, t, currency)).or_insert(DayAgg::EMPTY).push(rank, row.value.units());
        }
    }

    /// Puts the period's own values of unique terms in place of what its days gave (no value,
    /// as days of a unique metric do not add up). An entity's cell takes its entity's value; an
    /// account's cell takes the value of the account's coarsest entity that has one, when
    /// exactly one entity is of that level (the account itself, usually): several campaigns'
    /// reach do not add up to the account's either.
    pub(super) fn apply_period_values(
        &mut self,
        grain: Grain,
        start: NaiveDate,
        entity: &mut Vec<Agg>,
        account: &mut FxMap<u64, Agg>,
    ) {
        let Some(values) = self.period_values.by_period.remove(&(grain, start)) else { return };
        self.apply_unique_values(values, entity, account);
    }

    fn apply_unique_values(
        &mut self,
        values: FxMap<u64, DayAgg>,
        entity: &mut Vec<Agg>,
        account: &mut FxMap<u64, Agg>,
    ) {
        let rolls_up = self.account_scope || self.platform_scope || self.all_scope;
        let mut values: Vec<(u64, DayAgg)> = values.into_iter().collect();
        values.sort_unstable_by_key(|(k, _)| *k);
        if self.entity_scope {
            // Cells with a period value but no day (an entity whose unique metric the platform
            // gives for whole periods only) are numbered here, past the period's vector: it
            // grows once and exactly, as letting it double would leave up to half of it unused.
            let mut needed = entity.len();
            for (k, _) in &values {
                needed = needed.max(self.cell_id(*k) as usize + 1);
            }
            entity.reserve_exact(needed - entity.len());
        }
        // Per account cell: the coarsest level seen, how many entities of it, and its value.
        let mut coarsest: FxMap<u64, ((u32, u32), u32, Agg)> = FxMap::default();
        for (k, d) in values {
            let (e, t, c) = unkey(k);
            let agg =
                if d.overflow { Agg::period_value(0, false) } else { Agg::period_value(d.sum, d.rows == 1) };
            if self.entity_scope {
                let id = self.cell_id(k) as usize;
                if entity.len() <= id {
                    entity.resize(id + 1, Agg::default());
                }
                entity[id] = agg;
            }
            if rolls_up {
                let info = &self.entities[e as usize];
                let ak = key(info.account_ix, t, c);
                match coarsest.get_mut(&ak) {
                    Some((rank, n, _)) if *rank == info.level_rank => *n += 1,
                    Some(seen) if !level_before(&self.level_names, info.level_rank, seen.0) => {}
                    _ => {
                        coarsest.insert(ak, (info.level_rank, 1, agg));
                    }
                }
            }
        }
        for (ak, (_, entities, agg)) in coarsest {
            if entities == 1 {
                account.insert(ak, agg);
            }
        }
    }
}

impl Computation<'_> {
    /// Gives a period's snapshot terms the opening values the platform reported where the day
    /// before the period is not stored (a window that starts with the period): per entity, and
    /// per account the sum over its coarsest entities, as a stored day would have given.
    pub(super) fn apply_period_openings(
        &mut self,
        grain: Grain,
        start: NaiveDate,
        entity_starts: &mut FxMap<u32, Agg>,
        account_starts: &mut FxMap<u64, Agg>,
    ) {
        let Some(values) = self.period_values.openings.remove(&(grain, start)) else { return };
        let rolls_up = self.account_scope || self.platform_scope || self.all_scope;
        let mut values: Vec<(u64, DayAgg)> = values.into_iter().collect();
        values.sort_unstable_by_key(|(k, _)| *k);
        let mut coarsest: FxMap<u64, ((u32, u32), Agg)> = FxMap::default();
        for (k, d) in values {
            let (e, t, c) = unkey(k);
            let mut opening = Agg::default();
            opening.add_start(d.sum);
            if d.overflow {
                opening = Agg::period_value(0, false);
            }
            if self.entity_scope {
                let id = self.cell_id(k);
                entity_starts.entry(id).or_insert(opening);
            }
            if rolls_up {
                let info = &self.entities[e as usize];
                let ak = key(info.account_ix, t, c);
                match coarsest.get_mut(&ak) {
                    Some((rank, sum)) if *rank == info.level_rank => sum.add_start(d.sum),
                    Some(seen) if !level_before(&self.level_names, info.level_rank, seen.0) => {}
                    _ => {
                        coarsest.insert(ak, (info.level_rank, opening));
                    }
                }
            }
        }
        for (ak, (_, opening)) in coarsest {
            account_starts.entry(ak).or_insert(opening);
        }
    }
}

impl Computation<'_> {
    /// Counts the entities whose unique terms have days in a week or month but no value for it,
    /// so that the stage can say why those KPI values are empty.
    pub(super) fn count_without_period_value(&mut self, grain: Grain, entity: &[Agg]) {
        if grain == Grain::Day {
            return;
        }
        let catalog = self.catalog;
        for (id, agg) in entity.iter().enumerate() {
            if agg.is_empty() || agg.is_period_value() {
                continue;
            }
            let Ok(id) = u32::try_from(id) else { continue };
            let (e, t, _) = unkey(self.cells.key(id));
            let term = catalog.terms.get(t);
            if term.additivity != Additivity::Unique {
                continue;
            }
            let crate::plan::TermKind::Metric(metric) = &term.kind else { continue };
            let platform = &self.entities[e as usize].platform;
            *self.stats.without_period_value.entry(format!("{platform} {metric} {grain}")).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use kpipe_core::{DateWindow, Decimal};

    use super::super::{Agg, Computation, FxMap, Grain, RowRef};
    use crate::catalog::Catalog;
    use crate::config::Settings;

    #[test]
    fn period_values_of_cells_without_days_take_no_spare_room() {
        let catalog = Catalog::builtin();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        let window = DateWindow::new(day(2), day(8)).unwrap_or_else(|e| panic!("{e}"));
        let mut computation = Computation::new(&catalog, &Settings::default(), window);
        let ids: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        for id in &ids {
            let row = RowRef {
                platform: "facebook",
                account_id: "act_1",
                level: "campaign",
                entity_id: id,
                dimensions: [None; 8],
                metric: "reach",
                value: Decimal::from_i64(10),
                currency: None,
            };
            computation.add_period_row("fb", Grain::Week, day(2), &row);
        }
        let mut entity: Vec<Agg> = Vec::new();
        let mut account = FxMap::default();
        computation.apply_period_values(Grain::Week, day(2), &mut entity, &mut account);
        assert!(entity.len() >= ids.len());
        assert!(entity.iter().filter(|a| a.is_period_value()).count() >= ids.len());
        assert_eq!(entity.capacity(), entity.len());
    }
}
