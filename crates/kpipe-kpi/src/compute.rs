//! The aggregation: stored metric rows go in day by day, oldest first; the KPI rows of a period
//! come out as soon as its last day has been read. What is held in memory is one day of
//! entity-level sums and the aggregates of the open periods (a day, one or two weeks, one or two
//! months), never the rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use kpipe_core::{Currency, DateWindow, Decimal, Label};

use crate::agg::{Agg, FxMap, Val};
use crate::catalog::Catalog;
use crate::cells::{CellIndex, grow_gently};
use crate::config::Settings;
use crate::evaluate::{self, Conversion, CurrencyId, Entry, Part, Scratch, TermSet};
use crate::period::{Grain, Scope, Touched};
use crate::plan::{FilterKey, TermId, TermKind};
use crate::row::{KpiRow, RowRef, RowSink, RowView};

mod by_source;
mod period_values;

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
    /// Period rows read (unique metrics over whole weeks and months).
    pub period_rows_read: u64,
    /// Per `<platform> <metric> <grain>`: entities with days of a unique metric in a week or
    /// month but no value for the period (their source wrote no period row): KPIs over it are
    /// empty there.
    pub without_period_value: BTreeMap<String, u64>,
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
///
/// Packed to 8-byte alignment, largest field first: there is one per cell, and 16-byte
/// alignment for `sum` would pad it from 23 bytes to 32.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(8))]
struct DayAgg {
    sum: i128,
    rows: u32,
    /// (number of dimensions set) << 8 | which ones: lower is less broken down.
    rank: u16,
    overflow: bool,
}

impl DayAgg {
    /// No row yet: any row's rank (at most 8 << 8 | 0xff) is lower.
    const EMPTY: DayAgg = DayAgg { rank: u16::MAX, rows: 0, sum: 0, overflow: false };

    fn is_empty(&self) -> bool {
        self.rank == u16::MAX
    }

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

/// A cell of the day with what folding it into a period needs.
#[derive(Debug, Clone, Copy)]
struct DayCell {
    /// Its cell id.
    id: u32,
    /// The account cell it rolls up into, if its entity is of the account's coarsest level.
    account: Option<u64>,
}

/// A completed period as it was aggregated. Periods that end on the same day are closed (see
/// [`Computation::close`]) and written one after the other, so that only one is regrouped at a
/// time.
#[derive(Debug)]
pub(crate) struct EndedPeriod {
    grain: Grain,
    start: NaiveDate,
    cells: PeriodCells,
}

/// A completed period, not yet evaluated: its aggregates grouped by owner and put in output
/// order. Its KPI rows are produced by [`Computation::emit`], in one pass, so that they can be
/// written as they come rather than held.
#[derive(Debug)]
pub(crate) struct ClosedPeriod {
    pub grain: Grain,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Every entity's aggregates, then every account's; each owner's run sorted by term and
    /// currency.
    entries: Vec<Entry>,
    /// The term of each of `entries`.
    terms: Vec<TermId>,
    /// Ranges of `entries`, one per entity (in output order), then one per account (in output
    /// order).
    parts: Vec<(u32, u32)>,
    /// What rows are computed over, in output order.
    units: Vec<Unit>,
}

/// One scope's row group of a period: the parts it is computed over.
#[derive(Debug)]
struct Unit {
    scope: Scope,
    /// The entity (entity scope) or account (account scope; any account of the platform, for the
    /// platform scope) whose columns the rows carry.
    owner: u32,
    /// Range of [`ClosedPeriod::parts`].
    parts: (u32, u32),
    present: TermSet,
}

/// Which scopes a period's units are made for.
#[derive(Debug, Clone, Copy)]
struct Scopes {
    entity: bool,
    account: bool,
    platform: bool,
    all: bool,
}

#[derive(Debug)]
struct PeriodCells {
    end: NaiveDate,
    /// The days, by cell id (see `Computation::cells`); an empty aggregate is a cell without
    /// data in the period. Dense, because nearly every entity cell has data in every day of an
    /// open period: a vector is a third of a hash map's memory and needs no hashing per period.
    /// Allocated with the period's first day, so that a period opened early for its starts
    /// only does not hold one.
    entity: Vec<Agg>,
    /// The starts, by cell id: only the cells of terms read at a period's start have one.
    entity_starts: FxMap<u32, Agg>,
    account: FxMap<u64, Agg>,
    account_starts: FxMap<u64, Agg>,
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
    /// The current day's sums, by cell id, and the ids with rows on it.
    day_sums: Vec<DayAgg>,
    day_touched: Vec<u32>,
    /// A buffer of `end_day`, kept to reuse its memory.
    coarsest: FxMap<u64, (u32, u32)>,
    /// Per entity, its position in output order.
    entity_rank: Vec<u32>,
    /// Cells (entity, term, currency), numbered from 0 in the order first seen.
    cells: CellIndex,
    /// The cell ids sorted by key, so that a period's cells come out sorted without sorting
    /// them for every period.
    cell_order: Vec<u32>,
    open: [BTreeMap<NaiveDate, PeriodCells>; 3],
    scratch: Scratch,
    stats: ComputeStats,
    period_values: period_values::PeriodValues,
    /// Sources are read one at a time (see [`Computation::begin_source`]); the platform and
    /// all-platforms scopes wait for every source, from the accounts' aggregates kept per period.
    by_source: bool,
    /// Per period closed so far, its accounts' aggregates (`by_source` only).
    kept: BTreeMap<(Grain, NaiveDate), by_source::KeptPeriod>,
    /// Entities of the sources read before the current one.
    entities_before: usize,
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
            day_sums: Vec::new(),
            day_touched: Vec::new(),
            coarsest: FxMap::default(),
            entity_rank: Vec::new(),
            cells: CellIndex::default(),
            cell_order: Vec::new(),
            open: Default::default(),
            scratch: Scratch::default(),
            stats: ComputeStats::default(),
            period_values: Default::default(),
            by_source: false,
            kept: BTreeMap::new(),
            entities_before: 0,
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
        let mut ended = Vec::new();
        let needed = self.advance(date, &mut ended)?;
        for period in ended {
            out.push(self.materialize(period));
        }
        Ok(needed)
    }

    /// Like [`Self::begin_day`], but the periods that ended come back unevaluated, for
    /// [`Self::emit`] to stream their rows.
    pub(crate) fn advance(
        &mut self,
        date: NaiveDate,
        out: &mut Vec<EndedPeriod>,
    ) -> Result<bool, OutOfOrder> {
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
            let id = self.cell_id(key(entity, t, currency));
            let cell = &mut self.day_sums[id as usize];
            if cell.is_empty() {
                self.day_touched.push(id);
            }
            cell.push(rank, row.value.units());
        }
    }

    /// Completes every day of the read window and returns the periods not yet returned.
    pub fn finish(&mut self) -> Vec<PeriodRows> {
        let ended = self.close_all();
        ended.into_iter().map(|period| self.materialize(period)).collect()
    }

    /// Like [`Self::finish`], but the periods come back unevaluated, for [`Self::emit`].
    pub(crate) fn close_all(&mut self) -> Vec<EndedPeriod> {
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

    fn materialize(&mut self, period: EndedPeriod) -> PeriodRows {
        let period = self.close(period);
        let mut rows = Vec::new();
        let Ok(()) = self.emit(&period, &mut rows);
        PeriodRows { grain: period.grain, start: period.start, end: period.end, rows }
    }

    /// The id of the cell `k`, numbered on first sight.
    fn cell_id(&mut self, k: u64) -> u32 {
        let (id, new) = self.cells.intern(k);
        if new {
            grow_gently(&mut self.day_sums);
            self.day_sums.push(DayAgg::EMPTY);
        }
        id
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
                grow_gently(&mut self.entities);
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
                self.stats.entities = self.entities_before + self.entities.len();
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
    fn end_day(&mut self, out: &mut Vec<EndedPeriod>) {
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

    fn clear_day(&mut self) {
        for &id in &self.day_touched {
            self.day_sums[id as usize] = DayAgg::EMPTY;
        }
        self.day_touched.clear();
    }

    /// Computes the day values of `coalesce(...)` terms, per entity and currency.
    fn derive(&mut self) {
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
    fn sort_accounts(&self, accounts: &mut [(u32, (u32, u32))]) {
        accounts.sort_by(|a, b| {
            let (a, b) = (&self.accounts[a.0 as usize], &self.accounts[b.0 as usize]);
            (&a.platform, &a.source, &a.account).cmp(&(&b.platform, &b.source, &b.account))
        });
    }

    /// The parts of a period (each entity's range of `entries`, then each account's) and the
    /// units of `scopes` computed over them.
    fn units(
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
    fn order_cells(&mut self) {
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
    fn rank_entities(&mut self) {
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

/// Appends the cells of a period to `entries`, sorted by owner (entity or account), term and
/// currency, and returns each owner's range of `entries`. Cells that come sorted cost one pass.
fn grouped(cells: impl Iterator<Item = Entry>, entries: &mut Vec<Entry>) -> Vec<(u32, (u32, u32))> {
    let first = entries.len();
    entries.extend(cells);
    entries[first..].sort_unstable_by_key(|e| e.key);
    let mut out: Vec<(u32, (u32, u32))> = Vec::new();
    for (i, e) in entries.iter().enumerate().skip(first) {
        let (owner, _, _) = unkey(e.key);
        let i = i as u32;
        match out.last_mut() {
            Some((o, range)) if *o == owner => range.1 = i + 1,
            _ => out.push((owner, (i, i + 1))),
        }
    }
    out
}

fn level_before(level_names: &[Box<str>], a: (u32, u32), b: (u32, u32)) -> bool {
    if a.0 != b.0 || a.0 < LEVEL_ORDER.len() as u32 {
        return a.0 < b.0;
    }
    level_names[a.1 as usize] < level_names[b.1 as usize]
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_day_sum_stays_small() {
        // One per cell seen, for the whole run.
        assert_eq!(std::mem::size_of::<super::DayAgg>(), 24);
    }
}
