//! The aggregation: stored metric rows go in day by day, oldest first; the KPI rows of a period
//! come out as soon as its last day has been read. What is held in memory is one day of
//! entity-level sums and the aggregates of the open periods (a day, one or two weeks, one or two
//! months), never the rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use kpipe_core::{Currency, DateWindow, Decimal, Label};

use crate::agg::{Agg, FxMap, Val};
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::evaluate::{self, Conversion, CurrencyId, Entry, Outcome, Scratch, TermSet};
use crate::period::{Grain, Scope, Touched};
use crate::plan::{FilterKey, TermId, TermKind};
use crate::row::{KpiRow, RowRef};

/// Levels from the coarsest: at the account scope and above, each metric of an account is taken
/// on each day from the coarsest level that has it, since finer levels repeat the same numbers
/// in more detail. Levels not listed rank after these, by name.
pub const LEVEL_ORDER: [&str; 11] = [
    "account",
    "organization",
    "page",
    "property",
    "portal",
    "campaign_group",
    "campaign",
    "ad_set",
    "ad",
    "creative",
    "post",
];

/// The KPI rows of one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRows {
    /// The grain.
    pub grain: Grain,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// The rows, by KPI (catalog order), scope (entity to all), then platform, source, account,
    /// level, entity and currency.
    pub rows: Vec<KpiRow>,
}

/// What a computation read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComputeStats {
    /// Metric rows read.
    pub rows_read: u64,
    /// Of those, rows of a metric no KPI uses.
    pub rows_unused: u64,
    /// Entities seen.
    pub entities: usize,
    /// KPI rows produced.
    pub kpi_rows: u64,
}

#[derive(Debug)]
struct EntityInfo {
    source: Label,
    platform: Label,
    account: Label,
    level: Label,
    entity: Label,
    account_ix: u32,
    level_rank: (u32, u32),
}

#[derive(Debug)]
struct AccountInfo {
    source: Label,
    platform: Label,
    account: Label,
}

/// One entity's rows of one term on one day: the rows of its least broken-down breakdown (the
/// row without dimensions where there is one; breakdown rows repeat its numbers).
#[derive(Debug, Clone, Copy)]
struct DayAgg {
    /// (number of dimensions set) << 8 | which ones: lower is less broken down.
    rank: u16,
    rows: u32,
    sum: i128,
    overflow: bool,
}

impl DayAgg {
    const EMPTY: DayAgg = DayAgg { rank: u16::MAX, rows: 0, sum: 0, overflow: false };

    fn push(&mut self, rank: u16, value: i128) {
        if rank < self.rank {
            *self = DayAgg { rank, rows: 1, sum: value, overflow: false };
        } else if rank == self.rank {
            self.rows += 1;
            match self.sum.checked_add(value) {
                Some(s) => self.sum = s,
                None => self.overflow = true,
            }
        }
    }
}

#[derive(Debug)]
struct PeriodCells {
    end: NaiveDate,
    entity: FxMap<u64, Agg>,
    account: FxMap<u64, Agg>,
}

fn key(owner: u32, term: TermId, currency: CurrencyId) -> u64 {
    (u64::from(owner) << 32) | (u64::from(term) << 16) | u64::from(currency)
}

fn unkey(k: u64) -> (u32, TermId, CurrencyId) {
    ((k >> 32) as u32, ((k >> 16) & 0xffff) as TermId, (k & 0xffff) as CurrencyId)
}

/// A KPI computation over a window.
#[derive(Debug)]
pub struct Computation<'c> {
    catalog: &'c Catalog,
    entity_scope: bool,
    account_scope: bool,
    platform_scope: bool,
    all_scope: bool,
    touched: Touched,
    read: DateWindow,
    /// The day whose rows are being read.
    day: NaiveDate,
    done: bool,
    /// Per metric name, its terms: a range of `term_lists`.
    metric_terms: HashMap<String, (usize, usize)>,
    term_lists: Vec<TermId>,
    derived: Vec<TermId>,
    /// Some formula reads a snapshot at the start of a period.
    any_start: bool,
    kpi_names: Vec<Label>,
    key_buf: String,
    last_key: String,
    last_entity: u32,
    entity_index: HashMap<Box<str>, u32>,
    entities: Vec<EntityInfo>,
    account_index: HashMap<Box<str>, u32>,
    accounts: Vec<AccountInfo>,
    level_index: HashMap<Box<str>, u32>,
    level_names: Vec<Box<str>>,
    currencies: Vec<Currency>,
    rates: Option<crate::config::CurrencyRates>,
    conversion: Conversion,
    day_cells: FxMap<u64, DayAgg>,
    open: [BTreeMap<NaiveDate, PeriodCells>; 3],
    scratch: Scratch,
    stats: ComputeStats,
}

/// A row dated before a day already finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rows of {date} came after the rows of {current}: days must be read oldest first")]
pub struct OutOfOrder {
    /// The row's day.
    pub date: NaiveDate,
    /// The day being read.
    pub current: NaiveDate,
}

impl<'c> Computation<'c> {
    /// A computation of `catalog`'s KPIs for the periods `window` touches.
    pub fn new(catalog: &'c Catalog, settings: &Settings, window: DateWindow) -> Computation<'c> {
        let touched = Touched::new(window, &settings.grains);
        let read = touched.read_window();
        let mut by_metric: BTreeMap<String, Vec<TermId>> = BTreeMap::new();
        let mut derived = Vec::new();
        for (i, t) in catalog.terms.terms.iter().enumerate() {
            let Ok(id) = TermId::try_from(i) else { continue };
            match &t.kind {
                TermKind::Metric(m) => by_metric.entry(m.clone()).or_default().push(id),
                TermKind::Coalesce(_) => derived.push(id),
            }
        }
        let mut metric_terms = HashMap::new();
        let mut term_lists = Vec::new();
        for (metric, ids) in by_metric {
            metric_terms.insert(metric, (term_lists.len(), term_lists.len() + ids.len()));
            term_lists.extend(ids);
        }
        let has = |s: Scope| settings.scopes.contains(&s);
        let mut c = Computation {
            catalog,
            entity_scope: has(Scope::Entity),
            account_scope: has(Scope::Account),
            platform_scope: has(Scope::Platform),
            all_scope: has(Scope::All),
            touched,
            read,
            day: read.start(),
            done: false,
            metric_terms,
            term_lists,
            derived,
            any_start: catalog.terms.terms.iter().any(|t| t.needs_start),
            kpi_names: catalog.kpis.iter().map(|k| Label::new(&k.def.name)).collect(),
            key_buf: String::new(),
            last_key: String::new(),
            last_entity: u32::MAX,
            entity_index: HashMap::new(),
            entities: Vec::new(),
            account_index: HashMap::new(),
            accounts: Vec::new(),
            level_index: HashMap::new(),
            level_names: Vec::new(),
            currencies: Vec::new(),
            rates: settings.currency.clone(),
            conversion: Conversion::default(),
            day_cells: FxMap::default(),
            open: Default::default(),
            scratch: Scratch::default(),
            stats: ComputeStats::default(),
        };
        c.conversion.to.push(None);
        c
    }

    /// The days whose stored rows the computation needs, in order.
    pub fn read_window(&self) -> DateWindow {
        self.read
    }

    /// The periods recomputed.
    pub fn touched(&self) -> &Touched {
        &self.touched
    }

    /// What was read so far.
    pub fn stats(&self) -> &ComputeStats {
        &self.stats
    }

    /// Moves to `date`: the days before it are complete, and the periods that ended with them
    /// are returned. Returns `Ok(false)` (and nothing) for a day outside [`Self::read_window`],
    /// whose rows are not needed.
    pub fn begin_day(&mut self, date: NaiveDate, out: &mut Vec<PeriodRows>) -> Result<bool, OutOfOrder> {
        if !self.read.contains(date) || self.done {
            return Ok(false);
        }
        if date < self.day {
            return Err(OutOfOrder { date, current: self.day });
        }
        while self.day < date {
            self.end_day(out);
            self.day = self.day.succ_opt().unwrap_or(self.day);
        }
        Ok(true)
    }

    /// Adds a row of the current day (the last [`Self::begin_day`]) written by `source`.
    pub fn add_row(&mut self, source: &str, row: &RowRef<'_>) {
        self.stats.rows_read += 1;
        let catalog = self.catalog;
        let Some(&(lo, hi)) = self.metric_terms.get(row.metric) else {
            self.stats.rows_unused += 1;
            return;
        };
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
            if !term.filter.is_empty() && !accepts(&term.filter.0, source, row) {
                continue;
            }
            self.day_cells
                .entry(key(entity, t, currency))
                .or_insert(DayAgg::EMPTY)
                .push(rank, row.value.units());
        }
    }

    /// Completes every day of the read window and returns the periods not yet returned.
    pub fn finish(&mut self) -> Vec<PeriodRows> {
        let mut out = Vec::new();
        while !self.done {
            self.end_day(&mut out);
            match self.day.succ_opt() {
                Some(next) if self.read.contains(next) => self.day = next,
                _ => self.done = true,
            }
        }
        out
    }

    fn intern_entity(&mut self, source: &str, row: &RowRef<'_>) -> u32 {
        self.key_buf.clear();
        for part in [source, row.platform, row.account_id, row.level, row.entity_id] {
            self.key_buf.push_str(part);
            self.key_buf.push('\u{1f}');
        }
        if self.key_buf == self.last_key {
            return self.last_entity;
        }
        let id = match self.entity_index.get(self.key_buf.as_str()) {
            Some(&id) => id,
            None => {
                let account_ix = self.intern_account(source, row);
                let level_rank = self.level_rank(row.level);
                let id = u32::try_from(self.entities.len()).unwrap_or(u32::MAX);
                let account = &self.accounts[account_ix as usize];
                self.entities.push(EntityInfo {
                    source: account.source.clone(),
                    platform: account.platform.clone(),
                    account: account.account.clone(),
                    level: Label::new(row.level),
                    entity: Label::new(row.entity_id),
                    account_ix,
                    level_rank,
                });
                self.entity_index.insert(self.key_buf.as_str().into(), id);
                self.stats.entities = self.entities.len();
                id
            }
        };
        std::mem::swap(&mut self.key_buf, &mut self.last_key);
        self.last_entity = id;
        id
    }

    fn intern_account(&mut self, source: &str, row: &RowRef<'_>) -> u32 {
        let k = format!("{source}\u{1f}{}\u{1f}{}", row.platform, row.account_id);
        if let Some(&ix) = self.account_index.get(k.as_str()) {
            return ix;
        }
        let ix = u32::try_from(self.accounts.len()).unwrap_or(u32::MAX);
        self.accounts.push(AccountInfo {
            source: Label::new(source),
            platform: Label::new(row.platform),
            account: Label::new(row.account_id),
        });
        self.account_index.insert(k.into(), ix);
        ix
    }

    /// (position in [`LEVEL_ORDER`], or after it; the level's id, ordered by name among the
    /// levels not listed).
    fn level_rank(&mut self, level: &str) -> (u32, u32) {
        if let Some(p) = LEVEL_ORDER.iter().position(|l| *l == level) {
            return (p as u32, 0);
        }
        let id = match self.level_index.get(level) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.level_names.len()).unwrap_or(u32::MAX);
                self.level_names.push(level.into());
                self.level_index.insert(level.into(), id);
                id
            }
        };
        (LEVEL_ORDER.len() as u32, id)
    }

    fn level_before(&self, a: (u32, u32), b: (u32, u32)) -> bool {
        if a.0 != b.0 || a.0 < LEVEL_ORDER.len() as u32 {
            return a.0 < b.0;
        }
        self.level_names[a.1 as usize] < self.level_names[b.1 as usize]
    }

    fn intern_currency(&mut self, c: Currency) -> CurrencyId {
        if let Some(i) = self.currencies.iter().position(|x| *x == c) {
            return (i + 1) as CurrencyId;
        }
        self.currencies.push(c);
        let id = self.currencies.len() as CurrencyId;
        let rate = self.rates.as_ref().map(|r| (r.report, r.rates.get(&c).map(|d| d.units())));
        let to = match rate {
            Some((report, Some(rate))) => Some((self.intern_currency_plain(report), rate)),
            Some((report, None)) => {
                tracing::warn!(currency = %c, report = %report, "no rate for this currency: its amounts stay in it");
                None
            }
            None => None,
        };
        self.conversion.to.resize(usize::from(id) + 1, None);
        self.conversion.to[usize::from(id)] = to;
        id
    }

    fn intern_currency_plain(&mut self, c: Currency) -> CurrencyId {
        if let Some(i) = self.currencies.iter().position(|x| *x == c) {
            return (i + 1) as CurrencyId;
        }
        self.currencies.push(c);
        let id = self.currencies.len() as CurrencyId;
        self.conversion.to.resize(usize::from(id) + 1, None);
        id
    }

    /// Folds the current day into its periods and returns the periods it completes.
    fn end_day(&mut self, out: &mut Vec<PeriodRows>) {
        let date = self.day;
        self.derive();
        let catalog = self.catalog;
        // The coarsest level of each (account, term) on this day.
        let mut coarsest: FxMap<u64, (u32, u32)> = FxMap::default();
        if self.account_scope || self.platform_scope || self.all_scope {
            for &k in self.day_cells.keys() {
                let (e, t, _) = unkey(k);
                let info = &self.entities[e as usize];
                let ak = key(info.account_ix, t, 0);
                match coarsest.get(&ak) {
                    Some(&r) if !self.level_before(info.level_rank, r) => {}
                    _ => {
                        coarsest.insert(ak, info.level_rank);
                    }
                }
            }
        }
        let day_number = date.num_days_from_ce();
        let next = date.succ_opt();
        for grain in self.touched.grains().to_vec() {
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
                    entity: FxMap::default(),
                    account: FxMap::default(),
                });
                for (&k, d) in &self.day_cells {
                    let (e, t, c) = unkey(k);
                    let term = catalog.terms.get(t);
                    if is_start && !term.needs_start {
                        continue;
                    }
                    let info = &self.entities[e as usize];
                    let rollup = coarsest.get(&key(info.account_ix, t, 0)) == Some(&info.level_rank);
                    let fold = |agg: &mut Agg| {
                        if is_start {
                            agg.add_start(d.sum);
                        } else {
                            agg.add(term.additivity, day_number, d.sum, d.rows == 1, d.overflow);
                        }
                    };
                    if self.entity_scope {
                        fold(cells.entity.entry(k).or_default());
                    }
                    if rollup {
                        fold(cells.account.entry(key(info.account_ix, t, c)).or_default());
                    }
                }
            }
        }
        self.day_cells.clear();
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
                let rows = self.finalize(grain, start, cells);
                self.stats.kpi_rows += rows.len() as u64;
                out.push(PeriodRows { grain, start, end: grain.period_end(start), rows });
            }
        }
    }

    /// Computes the day values of `coalesce(...)` terms, per entity and currency.
    fn derive(&mut self) {
        let catalog = self.catalog;
        for &d in &self.derived {
            let TermKind::Coalesce(alternatives) = &catalog.terms.get(d).kind else { continue };
            let mut inputs = Vec::new();
            for a in alternatives {
                a.terms(&mut inputs);
            }
            let mut owners: Vec<(u32, CurrencyId)> = self
                .day_cells
                .keys()
                .map(|&k| unkey(k))
                .filter(|(_, t, _)| inputs.contains(t))
                .map(|(e, _, c)| (e, c))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            for (e, c) in owners {
                let cells = &self.day_cells;
                let lookup = |t: TermId, _start: bool| match cells.get(&key(e, t, c)) {
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
                self.day_cells.insert(key(e, d, c), agg);
            }
        }
    }

    /// The KPI rows of a period, ordered by KPI (catalog order), scope (entity to all), then the
    /// scope's columns and the currency: a fixed order without sorting the rows themselves.
    fn finalize(&mut self, grain: Grain, start: NaiveDate, cells: PeriodCells) -> Vec<KpiRow> {
        let end = cells.end;
        let entities = if self.entity_scope { grouped(cells.entity) } else { Vec::new() };
        let accounts = grouped(cells.account);
        // Each unit: the row it fills in and the parts it is computed over.
        let mut units: Vec<(KpiRow, Vec<&[Entry]>)> = Vec::new();
        let mut named: Vec<(&EntityInfo, &[Entry])> =
            entities.iter().map(|(o, p)| (&self.entities[*o as usize], p.as_slice())).collect();
        named.sort_by(|a, b| {
            fn key(e: &EntityInfo) -> (&str, &str, &str, &str, &str) {
                (
                    e.platform.as_str(),
                    e.source.as_str(),
                    e.account.as_str(),
                    e.level.as_str(),
                    e.entity.as_str(),
                )
            }
            key(a.0).cmp(&key(b.0))
        });
        for (info, part) in named {
            let row = KpiRow {
                platform: Some(info.platform.clone()),
                source: Some(info.source.clone()),
                account_id: Some(info.account.clone()),
                level: Some(info.level.clone()),
                entity_id: Some(info.entity.clone()),
                ..self.template(grain, start, end, Scope::Entity)
            };
            units.push((row, vec![part]));
        }
        let mut named: Vec<(&AccountInfo, &[Entry])> =
            accounts.iter().map(|(o, p)| (&self.accounts[*o as usize], p.as_slice())).collect();
        named.sort_by(|a, b| {
            (&a.0.platform, &a.0.source, &a.0.account).cmp(&(&b.0.platform, &b.0.source, &b.0.account))
        });
        if self.account_scope {
            for (info, part) in &named {
                let row = KpiRow {
                    platform: Some(info.platform.clone()),
                    source: Some(info.source.clone()),
                    account_id: Some(info.account.clone()),
                    ..self.template(grain, start, end, Scope::Account)
                };
                units.push((row, vec![*part]));
            }
        }
        if self.platform_scope {
            let mut by_platform: BTreeMap<&str, Vec<&[Entry]>> = BTreeMap::new();
            for (info, part) in &named {
                by_platform.entry(info.platform.as_str()).or_default().push(part);
            }
            for (platform, parts) in by_platform {
                let row = KpiRow {
                    platform: Some(Label::new(platform)),
                    ..self.template(grain, start, end, Scope::Platform)
                };
                units.push((row, parts));
            }
        }
        if self.all_scope && !named.is_empty() {
            units.push((
                self.template(grain, start, end, Scope::All),
                named.iter().map(|(_, p)| *p).collect(),
            ));
        }
        let present: Vec<TermSet> = units.iter().map(|(_, parts)| TermSet::of(parts)).collect();
        let mut rows = Vec::new();
        let mut outcomes = Vec::new();
        for k in 0..self.catalog.kpis.len() {
            for ((template, parts), present) in units.iter().zip(&present) {
                self.emit(k, parts, present, grain, template, &mut outcomes, &mut rows);
            }
        }
        rows
    }

    fn template(&self, grain: Grain, start: NaiveDate, end: NaiveDate, scope: Scope) -> KpiRow {
        KpiRow {
            kpi: Label::Static(""),
            grain,
            period_start: start,
            period_end: end,
            scope,
            platform: None,
            source: None,
            account_id: None,
            level: None,
            entity_id: None,
            value: None,
            numerator: None,
            denominator: None,
            unit: kpipe_core::Unit::Ratio,
            currency: None,
            stage: crate::config::Stage::Awareness,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        k: usize,
        parts: &[&[Entry]],
        present: &TermSet,
        grain: Grain,
        template: &KpiRow,
        outcomes: &mut Vec<Outcome>,
        rows: &mut Vec<KpiRow>,
    ) {
        let catalog = self.catalog;
        let kpi = &catalog.kpis[k];
        outcomes.clear();
        evaluate::evaluate(
            kpi,
            &catalog.terms,
            parts,
            present,
            grain,
            &self.conversion,
            &mut self.scratch,
            outcomes,
        );
        for o in outcomes.iter() {
            let dec = |v: Option<i128>| v.and_then(Decimal::from_units);
            let currency = match o.currency {
                0 => None,
                c => self.currencies.get(usize::from(c) - 1).copied(),
            };
            rows.push(KpiRow {
                kpi: self.kpi_names[k].clone(),
                value: dec(o.value),
                numerator: dec(o.numerator),
                denominator: dec(o.denominator),
                unit: kpi.def.unit,
                currency,
                stage: kpi.def.stage,
                ..template.clone()
            });
        }
    }
}

/// The cells of a period grouped by owner (entity or account), each group sorted by term and
/// currency.
fn grouped(cells: FxMap<u64, Agg>) -> Vec<(u32, Vec<Entry>)> {
    let mut all: Vec<(u64, Agg)> = cells.into_iter().collect();
    all.sort_unstable_by_key(|(k, _)| *k);
    let mut out: Vec<(u32, Vec<Entry>)> = Vec::new();
    for (k, agg) in all {
        let (owner, term, currency) = unkey(k);
        let entry = Entry { term, currency, agg };
        match out.last_mut() {
            Some((o, part)) if *o == owner => part.push(entry),
            _ => out.push((owner, vec![entry])),
        }
    }
    out
}

fn accepts(filter: &[(FilterKey, Vec<String>)], source: &str, row: &RowRef<'_>) -> bool {
    filter.iter().all(|(k, values)| {
        let column = match k {
            FilterKey::Platform => Some(row.platform),
            FilterKey::Source => Some(source),
            FilterKey::AccountId => Some(row.account_id),
            FilterKey::Level => Some(row.level),
            FilterKey::EntityId => Some(row.entity_id),
            FilterKey::Dimension(i) => row.dimensions.get(*i).copied().flatten(),
        };
        column.is_some_and(|c| values.iter().any(|v| v == c))
    })
}
