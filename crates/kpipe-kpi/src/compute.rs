//! The aggregation: stored metric rows go in day by day, oldest first; the KPI rows of a period
//! come out as soon as its last day has been read. What is held in memory is one day of
//! entity-level sums and the aggregates of the open periods (a day, one or two weeks, one or two
//! months), never the rows.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
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
mod close;
mod fold;
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
