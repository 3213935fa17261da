//! Folding a day into its periods: the day's sums per cell become each open period's
//! aggregates (its entity cells, and its accounts' cells at their coarsest level), and the
//! periods that end with the day are handed out.

use chrono::Datelike;

use super::{
    Agg, Computation, CurrencyId, DayAgg, DayCell, EndedPeriod, FxMap, Grain, PeriodCells, TermId, TermKind,
    Val, evaluate, key, level_before, unkey,
};

impl Computation<'_> {
    /// Folds the current day into its periods and returns the periods it completes.
    pub(super) fn end_day(&mut self, out: &mut Vec<EndedPeriod>) {
        let date = self.day;
        self.derive();
        let catalog = self.catalog;
        let rolls_up = self.account_scope || self.platform_scope || self.all_scope;
        // The coarsest level of each (account, term) on this day.
        let coarsest = &mut self.coarsest;
        coarsest.clear();
        if rolls_up {
            for &id in &self.day_touched {
                let (e, t, _) = unkey(self.cells.key(id));
                let info = &self.entities[e as usize];
                let ak = key(info.account_ix, t, 0);
                match coarsest.get(&ak) {
                    Some(&r) if !level_before(&self.level_names, info.level_rank, r) => {}
                    _ => {
                        coarsest.insert(ak, info.level_rank);
                    }
                }
            }
        }
        // Each cell's account key (when it is of the account's coarsest level) is the same for
        // every period it folds into: look it up once.
        // Not kept between days: it holds an entry per cell of the day, and would otherwise
        // stay allocated while the periods that end are written.
        let mut day_list = Vec::with_capacity(self.day_touched.len());
        for &id in &self.day_touched {
            let (e, t, c) = unkey(self.cells.key(id));
            let info = &self.entities[e as usize];
            let rollup = rolls_up && coarsest.get(&key(info.account_ix, t, 0)) == Some(&info.level_rank);
            day_list.push(DayCell { id, account: rollup.then(|| key(info.account_ix, t, c)) });
        }
        let day_number = date.num_days_from_ce();
        let next = date.succ_opt();
        for &grain in self.touched.grains() {
            let slot = grain as usize;
            let start = grain.period_start(date);
            // A snapshot on this day is the starting value of the period that begins tomorrow.
            let starts_tomorrow = next.filter(|n| {
                self.any_start && grain.period_start(*n) == *n && self.touched.contains(grain, *n)
            });
            for (period, is_start) in [(Some(start), false), (starts_tomorrow, true)] {
                let Some(period) = period else { continue };
                if !is_start && !self.touched.contains(grain, period) {
                    continue;
                }
                let cells = self.open[slot].entry(period).or_insert_with(|| PeriodCells {
                    end: grain.period_end(period),
                    entity: Vec::new(),
                    entity_starts: FxMap::default(),
                    account: FxMap::default(),
                    account_starts: FxMap::default(),
                });
                if self.entity_scope && !is_start && cells.entity.len() < self.cells.len() {
                    // Exactly: the cells seen grow by a little on most days, and doubling would
                    // leave up to half of each period's vector unused.
                    cells.entity.reserve_exact(self.cells.len() - cells.entity.len());
                    cells.entity.resize(self.cells.len(), Agg::default());
                }
                for cell in &day_list {
                    let (_, t, _) = unkey(self.cells.key(cell.id));
                    let term = catalog.terms.get(t);
                    let d = &self.day_sums[cell.id as usize];
                    if is_start {
                        if !term.needs_start {
                            continue;
                        }
                        if self.entity_scope {
                            cells.entity_starts.entry(cell.id).or_default().add_start(d.sum);
                        }
                        if let Some(ak) = cell.account {
                            cells.account_starts.entry(ak).or_default().add_start(d.sum);
                        }
                        continue;
                    }
                    let fold = |agg: &mut Agg| {
                        agg.add(term.additivity, day_number, d.sum, d.rows == 1, d.overflow);
                    };
                    if self.entity_scope {
                        fold(&mut cells.entity[cell.id as usize]);
                    }
                    if let Some(ak) = cell.account {
                        fold(cells.account.entry(ak).or_default());
                    }
                }
            }
        }
        self.clear_day();
        for grain in Grain::ALL {
            let slot = grain as usize;
            while let Some(entry) = self.open[slot].first_entry() {
                if entry.get().end > date {
                    break;
                }
                let (start, cells) = entry.remove_entry();
                if !self.touched.contains(grain, start) {
                    continue;
                }
                out.push(EndedPeriod { grain, start, cells });
            }
        }
    }

    pub(super) fn clear_day(&mut self) {
        for &id in &self.day_touched {
            self.day_sums[id as usize] = DayAgg::EMPTY;
        }
        self.day_touched.clear();
    }

    /// Computes the day values of `coalesce(...)` terms, per entity and currency.
    pub(super) fn derive(&mut self) {
        let catalog = self.catalog;
        for i in 0..self.derived.len() {
            let d = self.derived[i];
            let TermKind::Coalesce(alternatives) = &catalog.terms.get(d).kind else { continue };
            let mut inputs = Vec::new();
            for a in alternatives {
                a.terms(&mut inputs);
            }
            let mut owners: Vec<(u32, CurrencyId)> = self
                .day_touched
                .iter()
                .map(|&id| unkey(self.cells.key(id)))
                .filter(|(_, t, _)| inputs.contains(t))
                .map(|(e, _, c)| (e, c))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            for (e, c) in owners {
                let (cells, sums) = (&self.cells, &self.day_sums);
                let lookup =
                    |t: TermId, _start: bool| match cells.get(key(e, t, c)).map(|id| &sums[id as usize]) {
                        Some(a) if a.is_empty() => Val::Missing,
                        Some(a) if a.overflow => Val::Null,
                        Some(a) => Val::Value(a.sum),
                        None => Val::Missing,
                    };
                let value =
                    alternatives.iter().map(|a| evaluate::eval(a, &lookup)).find(|v| *v != Val::Missing);
                let agg = match value {
                    Some(Val::Value(v) | Val::Const(v)) => {
                        DayAgg { rank: 0, rows: 1, sum: v, overflow: false }
                    }
                    Some(Val::Null) => DayAgg { rank: 0, rows: 1, sum: 0, overflow: true },
                    _ => continue,
                };
                let id = self.cell_id(key(e, d, c));
                if self.day_sums[id as usize].is_empty() {
                    self.day_touched.push(id);
                }
                self.day_sums[id as usize] = agg;
            }
        }
    }
}
