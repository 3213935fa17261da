//! Closing a period: its aggregates grouped by owner and put in output order, the units of
//! each scope over them, and the evaluation of every KPI over each unit, row by row.

use super::{
    ClosedPeriod, Computation, Decimal, EndedPeriod, EntityInfo, Entry, Part, PeriodCells, RowSink, RowView,
    Scope, Scopes, TermSet, Unit, evaluate, grouped,
};

impl Computation<'_> {
    /// A completed period's aggregates, grouped by owner and put in output order. Read source
    /// by source, the platform and all-platforms scopes are left out: the period's accounts'
    /// aggregates are kept for them instead (see [`Computation::close_kept`]).
    pub(crate) fn close(&mut self, period: EndedPeriod) -> ClosedPeriod {
        let EndedPeriod { grain, start, cells } = period;
        let PeriodCells { end, mut entity, mut entity_starts, mut account, mut account_starts } = cells;
        self.apply_period_values(grain, start, &mut entity, &mut account);
        self.apply_period_openings(grain, start, &mut entity_starts, &mut account_starts);
        self.count_without_period_value(grain, &entity);
        let used = entity.iter().filter(|a| !a.is_empty()).count() + entity_starts.len();
        let mut entries = Vec::with_capacity(used + account.len() + account_starts.len());
        self.order_cells();
        let cell_keys = self.cells.keys();
        let entity_entries = self.cell_order.iter().flat_map(|&id| {
            let key = cell_keys[id as usize];
            let days = entity.get(id as usize).filter(|a| !a.is_empty());
            let start = if entity_starts.is_empty() { None } else { entity_starts.get(&id) };
            days.into_iter().chain(start).map(move |agg| Entry { key, agg: *agg })
        });
        let mut entities = grouped(entity_entries, &mut entries);
        drop(entity);
        drop(entity_starts);
        let first_account_entry = entries.len();
        let account_entries = account.into_iter().chain(account_starts).map(|(key, agg)| Entry { key, agg });
        let mut accounts = grouped(account_entries, &mut entries);
        if self.by_source && (self.platform_scope || self.all_scope) && entries.len() > first_account_entry {
            self.keep(grain, start, end, &entries[first_account_entry..]);
        }
        self.rank_entities();
        entities.sort_unstable_by_key(|(owner, _)| self.entity_rank[*owner as usize]);
        self.sort_accounts(&mut accounts);
        let scopes = Scopes {
            entity: true,
            account: self.account_scope,
            platform: self.platform_scope && !self.by_source,
            all: self.all_scope && !self.by_source,
        };
        let (parts, units) = self.units(&entities, &accounts, &entries, scopes);
        let terms = entries.iter().map(Entry::term).collect();
        ClosedPeriod { grain, start, end, entries, terms, parts, units }
    }

    /// Accounts in output order: platform, source, account.
    pub(super) fn sort_accounts(&self, accounts: &mut [(u32, (u32, u32))]) {
        accounts.sort_by(|a, b| {
            let (a, b) = (&self.accounts[a.0 as usize], &self.accounts[b.0 as usize]);
            (&a.platform, &a.source, &a.account).cmp(&(&b.platform, &b.source, &b.account))
        });
    }

    /// The parts of a period (each entity's range of `entries`, then each account's) and the
    /// units of `scopes` computed over them.
    pub(super) fn units(
        &self,
        entities: &[(u32, (u32, u32))],
        accounts: &[(u32, (u32, u32))],
        entries: &[Entry],
        scopes: Scopes,
    ) -> (Vec<(u32, u32)>, Vec<Unit>) {
        let mut parts = Vec::with_capacity(entities.len() + accounts.len());
        let mut units = Vec::new();
        let unit = |scope, owner, lo: usize, hi: usize, parts: &[(u32, u32)]| {
            let present =
                TermSet::of(parts[lo..hi].iter().flat_map(|&(a, b)| &entries[a as usize..b as usize]));
            Unit { scope, owner, parts: (lo as u32, hi as u32), present }
        };
        for (owner, range) in entities {
            parts.push(*range);
            if scopes.entity {
                units.push(unit(Scope::Entity, *owner, parts.len() - 1, parts.len(), &parts));
            }
        }
        let first_account = parts.len();
        parts.extend(accounts.iter().map(|(_, range)| *range));
        if scopes.account {
            for (i, (owner, _)) in accounts.iter().enumerate() {
                let at = first_account + i;
                units.push(unit(Scope::Account, *owner, at, at + 1, &parts));
            }
        }
        if scopes.platform {
            // Accounts are ordered by platform first: each platform's accounts are contiguous.
            let mut lo = 0;
            while lo < accounts.len() {
                let platform = &self.accounts[accounts[lo].0 as usize].platform;
                let hi = lo
                    + accounts[lo..]
                        .iter()
                        .take_while(|(o, _)| self.accounts[*o as usize].platform == *platform)
                        .count();
                units.push(unit(
                    Scope::Platform,
                    accounts[lo].0,
                    first_account + lo,
                    first_account + hi,
                    &parts,
                ));
                lo = hi;
            }
        }
        if scopes.all && !accounts.is_empty() {
            units.push(unit(Scope::All, 0, first_account, parts.len(), &parts));
        }
        (parts, units)
    }

    /// Keeps `cell_order` up to date.
    pub(super) fn order_cells(&mut self) {
        if self.cell_order.len() == self.cells.len() {
            return;
        }
        let keys = self.cells.keys();
        self.cell_order = (0..keys.len() as u32).collect();
        self.cell_order.sort_unstable_by_key(|&id| keys[id as usize]);
    }

    /// Keeps `entity_rank` up to date: each entity's position in output order (platform,
    /// source, account, level, entity), so that a period's entities are sorted by a number
    /// rather than by five strings.
    pub(super) fn rank_entities(&mut self) {
        if self.entity_rank.len() == self.entities.len() {
            return;
        }
        let mut order: Vec<u32> = (0..self.entities.len() as u32).collect();
        fn name(e: &EntityInfo) -> (&str, &str, &str, &str, &str) {
            (e.platform.as_str(), e.source.as_str(), e.account.as_str(), e.level.as_str(), e.entity.as_str())
        }
        order.sort_unstable_by(|a, b| {
            name(&self.entities[*a as usize]).cmp(&name(&self.entities[*b as usize]))
        });
        self.entity_rank = vec![0; order.len()];
        for (rank, e) in order.into_iter().enumerate() {
            self.entity_rank[e as usize] = rank as u32;
        }
    }

    /// Evaluates every KPI of a closed period and hands its rows to `sink`, ordered by KPI
    /// (catalog order), scope (entity to all), then the scope's columns and the currency.
    pub(crate) fn emit<S: RowSink>(&mut self, period: &ClosedPeriod, sink: &mut S) -> Result<(), S::Error> {
        let catalog = self.catalog;
        let slices: Vec<Part<'_>> = period
            .parts
            .iter()
            .map(|&(lo, hi)| {
                let (lo, hi) = (lo as usize, hi as usize);
                Part { terms: &period.terms[lo..hi], entries: &period.entries[lo..hi] }
            })
            .collect();
        let mut outcomes = Vec::new();
        for (k, kpi) in catalog.kpis.iter().enumerate() {
            for unit in &period.units {
                let parts = &slices[unit.parts.0 as usize..unit.parts.1 as usize];
                outcomes.clear();
                evaluate::evaluate(
                    kpi,
                    &catalog.terms,
                    parts,
                    &unit.present,
                    period.grain,
                    &self.conversion,
                    &mut self.scratch,
                    &mut outcomes,
                );
                if outcomes.is_empty() {
                    continue;
                }
                let owner = unit.owner as usize;
                let (platform, source, account_id, level, entity_id) = match unit.scope {
                    Scope::Entity => {
                        let e = &self.entities[owner];
                        (
                            Some(&e.platform),
                            Some(&e.source),
                            Some(&e.account),
                            Some(&e.level),
                            Some(&e.entity),
                        )
                    }
                    Scope::Account => {
                        let a = &self.accounts[owner];
                        (Some(&a.platform), Some(&a.source), Some(&a.account), None, None)
                    }
                    Scope::Platform => (Some(&self.accounts[owner].platform), None, None, None, None),
                    Scope::All => (None, None, None, None, None),
                };
                let (account_key, entity_key) = match unit.scope {
                    Scope::Entity => (Some(self.entities[owner].account_ix), Some(unit.owner)),
                    Scope::Account => (Some(unit.owner), None),
                    Scope::Platform | Scope::All => (None, None),
                };
                for o in &outcomes {
                    let dec = |v: Option<i128>| v.and_then(Decimal::from_units);
                    let currency = match o.currency {
                        0 => None,
                        c => self.currencies.get(usize::from(c) - 1).copied(),
                    };
                    sink.push(&RowView {
                        kpi: &self.kpi_names[k],
                        grain: period.grain,
                        period_start: period.start,
                        period_end: period.end,
                        scope: unit.scope,
                        platform,
                        source,
                        account_id,
                        level,
                        entity_id,
                        account_key,
                        entity_key,
                        value: dec(o.value),
                        numerator: dec(o.numerator),
                        denominator: dec(o.denominator),
                        unit: kpi.def.unit,
                        currency,
                        stage: kpi.def.stage,
                    })?;
                    self.stats.kpi_rows += 1;
                }
            }
        }
        Ok(())
    }
}
