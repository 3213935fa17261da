//! Sources read one at a time. An entity and an account belong to one source (their keys
//! include it), so the entity and account scopes of a source are complete once its rows are
//! read: they are written then, and its per-entity state is dropped before the next source.
//! The platform and all-platforms scopes add up accounts of every source: each closed period's
//! account aggregates are kept (a few per account and term) until every source is read.
//!
//! This is what lets `kpipe run` compute a source's KPIs as soon as the source commits, while
//! the others still pull: what is left after the last source is that source's own share and
//! the scopes over all of them.

use chrono::NaiveDate;

use super::{BTreeMap, CellIndex, ClosedPeriod, Computation, Entry, FxMap, Grain, HashMap, Scopes, grouped};
use crate::catalog::Catalog;
use crate::config::Settings;
use kpipe_core::DateWindow;

/// The account aggregates of a period, from every source closed so far.
#[derive(Debug)]
pub(super) struct KeptPeriod {
    end: NaiveDate,
    entries: Vec<Entry>,
}

impl<'c> Computation<'c> {
    /// A computation that reads sources one after the other: each source's rows are added
    /// between a [`Computation::begin_source`] and the closing of all its periods
    /// ([`Computation::close_all`]); [`Computation::close_kept`] then gives the periods of the
    /// platform and all-platforms scopes.
    pub(crate) fn by_source(
        catalog: &'c Catalog,
        settings: &Settings,
        window: DateWindow,
    ) -> Computation<'c> {
        let mut c = Computation::new(catalog, settings, window);
        c.by_source = true;
        c
    }

    /// Starts the next source: the days are read again from the first, and what was held per
    /// entity of the source before is dropped. Accounts, currencies and the periods' account
    /// aggregates stay.
    pub(crate) fn begin_source(&mut self) {
        debug_assert!(self.by_source, "a computation over every source at once");
        debug_assert!(self.open.iter().all(BTreeMap::is_empty), "the previous source's periods are closed");
        self.entities_before += self.entities.len();
        self.day = self.read.start();
        self.done = false;
        self.last_key.clear();
        self.last_entity = u32::MAX;
        self.entity_index = HashMap::new();
        self.entities = Vec::new();
        self.day_sums = Vec::new();
        self.day_touched = Vec::new();
        self.coarsest = FxMap::default();
        self.entity_rank = Vec::new();
        self.cells = CellIndex::default();
        self.cell_order = Vec::new();
        self.open = Default::default();
        self.period_values = Default::default();
    }

    /// Keeps a closed period's account aggregates for the scopes over every source.
    pub(super) fn keep(&mut self, grain: Grain, start: NaiveDate, end: NaiveDate, accounts: &[Entry]) {
        let kept = self.kept.entry((grain, start)).or_insert_with(|| KeptPeriod { end, entries: Vec::new() });
        kept.entries.extend_from_slice(accounts);
    }

    /// The periods with account aggregates kept, in order.
    pub(crate) fn kept_periods(&self) -> Vec<(Grain, NaiveDate)> {
        self.kept.keys().copied().collect()
    }

    /// The platform and all-platforms scopes of a period, over the accounts of every source
    /// read; `None` when no source had an account in it.
    pub(crate) fn close_kept(&mut self, grain: Grain, start: NaiveDate) -> Option<ClosedPeriod> {
        let KeptPeriod { end, entries: kept } = self.kept.remove(&(grain, start))?;
        let mut entries = Vec::with_capacity(kept.len());
        let mut accounts = grouped(kept.into_iter(), &mut entries);
        self.sort_accounts(&mut accounts);
        let scopes =
            Scopes { entity: false, account: false, platform: self.platform_scope, all: self.all_scope };
        let (parts, units) = self.units(&[], &accounts, &entries, scopes);
        let terms = entries.iter().map(Entry::term).collect();
        Some(ClosedPeriod { grain, start, end, entries, terms, parts, units })
    }
}

impl ClosedPeriod {
    /// Whether no row is computed over it.
    pub(crate) fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}
