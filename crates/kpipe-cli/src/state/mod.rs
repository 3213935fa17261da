//! The state store: per source, a ledger of the days written (when, by which run, for which
//! accounts and streams) and whether each is `provisional` (the platform may still restate it)
//! or `final` (pulled after the platform's restatement horizon had passed); and per (stream,
//! account) a cursor, the last day written. A run re-pulls the missing and provisional days of
//! its window and skips the final ones.
//!
//! Each source's state is one object beside the data, `.kpipe/state/<source>.json`
//! (`kpipe_sink_parquet::layout`), so that workers writing different sources never write the
//! same object. It is written with a conditional put (the version read, or "must not exist"), so
//! a writer that changed it in between is detected and reported instead of being overwritten;
//! and only after the data it describes has been committed: a crash between the two leaves the
//! ledger behind the data, which costs a re-pull, never a gap. It holds no credentials.
//!
//! Days are kept as ranges of consecutive days with the same status (`ranges`), so a state of
//! thousands of accounts over years stays a few megabytes. The single `.kpipe/state.json` of
//! earlier versions still loads; its sources move to their own objects at the next save.

mod file;
mod ledger;
mod ranges;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::NaiveDate;
use kpipe_core::{DateWindow, Shard};
use kpipe_sink_parquet::{Storage, StorageError, layout};
use kpipe_storage::Version;

pub use ledger::{Cursor, DayRecord, DayStatus, SourceState};
pub use ranges::DayRanges;

/// What can go wrong with the state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The object cannot be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The object is not state this version understands.
    #[error(
        "{path}: {reason}; `kpipe state reset --source <name>` (or moving it away) starts that source over: every day in a window will be pulled again"
    )]
    Corrupt {
        /// The object.
        path: String,
        /// What is wrong, with the line and column.
        reason: String,
    },
    /// Another process wrote the object since it was read.
    #[error(
        "{path} was changed by another process since this run read it (two runs writing one source?); this run's ledger update is not saved, its days will be pulled again"
    )]
    Conflict {
        /// The object.
        path: String,
    },
}

/// What one commit of a source published, for the ledger and the cursors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The days replaced in the output.
    pub days: BTreeSet<NaiveDate>,
    /// Rows per (day, account, stream); the stream is `None` for rows the source named none for.
    pub rows: BTreeMap<(NaiveDate, String, Option<String>), u64>,
    /// The streams the source pulled for every one of those days.
    pub streams: Vec<String>,
    /// The weeks and months whose period rows were replaced, each up to the day it covers.
    pub periods: Vec<kpipe_core::PeriodRequest>,
}

/// Days of one account in a window, as the ledger has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountDays {
    /// Days with rows of the account, final.
    pub final_days: u64,
    /// Days with rows of the account, provisional.
    pub provisional_days: u64,
}

/// What a run will do with a source's window.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayPlan {
    /// The days to pull, as contiguous windows, oldest first.
    pub pull: Vec<DateWindow>,
    /// Days never written.
    pub missing: u64,
    /// Days written but provisional.
    pub provisional: u64,
    /// Weeks and months published partial that have ended: their last day is pulled again so
    /// that they are asked for whole.
    pub periods_to_complete: u64,
    /// Days final and skipped.
    pub skipped_final: u64,
}

impl DayPlan {
    /// Days to pull.
    pub fn days_to_pull(&self) -> u64 {
        self.pull.iter().map(DateWindow::num_days).sum()
    }
}

/// Whether `day`, pulled on `pulled_on`, can no longer be restated. `None` horizon: the source
/// may change any day at any time, so nothing is ever final.
pub fn is_final(day: NaiveDate, pulled_on: NaiveDate, horizon_days: Option<u32>) -> bool {
    horizon_days.is_some_and(|h| (pulled_on - day).num_days() > i64::from(h))
}

/// One source's state and the version of its object as read.
#[derive(Debug)]
struct Held {
    state: SourceState,
    /// `None`: the object did not exist (it is created).
    version: Option<Version>,
    /// Changed since read (or moved from the single file of earlier versions).
    dirty: bool,
}

/// The state of one output, as one shard sees it (the whole configuration's unless opened for
/// a shard): each shard keeps its own object per source, `.kpipe/state/<source>-KofN.json`.
#[derive(Debug)]
pub struct StateStore {
    storage: Storage,
    shard: Shard,
    sources: BTreeMap<String, Held>,
    /// Per source, the states other shardings of the output left (another number of shards, or
    /// none): what a shard without a state of its own starts from.
    others: BTreeMap<String, Vec<SourceState>>,
    /// The single file of earlier versions was read: removed once its sources are saved.
    legacy: bool,
}

impl StateStore {
    /// Reads the state of `storage`'s output; no state is an empty ledger.
    pub fn open(storage: &Storage) -> Result<StateStore, StateError> {
        StateStore::open_shard(storage, Shard::ALL)
    }

    /// Reads the state of `storage`'s output as `shard` keeps it.
    pub fn open_shard(storage: &Storage, shard: Shard) -> Result<StateStore, StateError> {
        let mut sources = BTreeMap::new();
        let mut others: BTreeMap<String, Vec<SourceState>> = BTreeMap::new();
        let prefix = format!("{}/", layout::state_prefix());
        for entry in storage.list(&layout::state_prefix())? {
            let Some(writer) = entry.key.strip_prefix(&prefix).and_then(|k| k.strip_suffix(".json")) else {
                continue;
            };
            let Some(object) = storage.get(&entry.key)? else { continue };
            let corrupt = |reason| StateError::Corrupt { path: storage.describe_key(&entry.key), reason };
            let (name, state) = file::decode(&object.bytes).map_err(corrupt)?;
            let Some((source, owner)) = layout::parse_writer_name(writer).filter(|(s, _)| *s == name) else {
                return Err(corrupt(format!(
                    "it holds the state of source `{name}`, not of the source it is named for"
                )));
            };
            if owner == shard {
                sources.insert(name, Held { state, version: Some(object.version), dirty: false });
            } else if owner.count() != shard.count() {
                others.entry(source.to_owned()).or_default().push(state);
            }
        }
        let legacy_key = layout::legacy_state_file();
        let mut legacy = false;
        if !shard.is_all() {
            return Ok(StateStore { storage: storage.clone(), shard, sources, others, legacy });
        }
        if let Some(object) = storage.get(&legacy_key)? {
            legacy = true;
            let old = file::decode_legacy(&object.bytes)
                .map_err(|reason| StateError::Corrupt { path: storage.describe_key(&legacy_key), reason })?;
            for (name, state) in old {
                // A source saved since has its own object, which is newer.
                sources.entry(name).or_insert(Held { state, version: None, dirty: true });
            }
        }
        Ok(StateStore { storage: storage.clone(), shard, sources, others, legacy })
    }

    /// Where `source`'s state is, for messages.
    pub fn location(&self, source: &str) -> String {
        self.storage.describe_key(&layout::state_object(&layout::writer_name(source, self.shard)))
    }

    /// The sources with a state.
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// One source's ledger.
    pub fn source(&self, name: &str) -> Option<&SourceState> {
        self.sources.get(name).map(|h| &h.state)
    }

    /// Which days of `window` a run must pull for `source`: every missing or provisional day,
    /// and with `full_refresh` every day.
    pub fn plan(&self, source: &str, window: DateWindow, full_refresh: bool) -> DayPlan {
        match self.source(source) {
            Some(state) => state.plan(window, full_refresh),
            None => self.handed_over(source).plan(window, full_refresh),
        }
    }

    /// What a shard that has no state for `source` yet starts from, when the output was
    /// written with another number of shards (or none): the days final in every state those
    /// left, which every account of the source had pulled final whichever shard owned it. Any
    /// other day is pulled again, so that no account's day is skipped.
    fn handed_over(&self, source: &str) -> SourceState {
        let mut seeded = SourceState::default();
        let Some(others) = self.others.get(source) else { return seeded };
        let Some((first, rest)) = others.split_first() else { return seeded };
        for (from, to, record) in first.days.iter() {
            if record.status != DayStatus::Final {
                continue;
            }
            let mut day = from;
            while day <= to {
                if rest.iter().all(|s| s.day(day).is_some_and(|r| r.status == DayStatus::Final)) {
                    seeded.days.set(day, day, record.clone());
                }
                match day.succ_opt() {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        seeded
    }

    /// Records a commit: `committed.days` were replaced in the output by `run_id`, and the
    /// cursor of every (stream, account) with rows in them moves to the last of those days
    /// (never back).
    pub fn record(
        &mut self,
        source: &str,
        committed: &Committed,
        run_id: &str,
        today: NaiveDate,
        horizon_days: Option<u32>,
    ) {
        let held = self.held(source);
        held.state.record(committed, run_id, today, horizon_days);
        held.dirty = true;
    }

    /// Forgets `source`'s days in `window` (all without one), and its cursors (of `stream`
    /// only, with one), so that the next run pulls them again.
    pub fn reset(&mut self, source: &str, stream: Option<&str>, window: Option<DateWindow>) {
        let held = self.held(source);
        held.state.reset(stream, window);
        held.dirty = true;
    }

    fn held(&mut self, source: &str) -> &mut Held {
        let seeded = (!self.sources.contains_key(source)).then(|| self.handed_over(source));
        self.sources.entry(source.to_owned()).or_insert_with(|| Held {
            state: seeded.unwrap_or_default(),
            version: None,
            dirty: true,
        })
    }

    /// Per account, the days of `window` the ledger has rows of it for `source`.
    pub fn account_days(&self, source: &str, window: DateWindow) -> BTreeMap<String, AccountDays> {
        self.source(source).map(|s| s.account_days(window)).unwrap_or_default()
    }

    /// The cursors of `source`, by stream then account.
    pub fn cursors(&self, source: &str) -> BTreeMap<String, BTreeMap<String, Cursor>> {
        self.source(source).map(|s| s.cursors.clone()).unwrap_or_default()
    }

    /// Final and provisional days of `source` that recorded `stream`.
    pub fn stream_counts(&self, source: &str, stream: &str) -> (u64, u64) {
        self.source(source).map_or((0, 0), |s| s.stream_counts(stream))
    }

    /// Final and provisional days of `source`.
    pub fn counts(&self, source: &str) -> (u64, u64) {
        self.source(source).map_or((0, 0), SourceState::counts)
    }

    /// Writes `source`'s state if it changed, with a conditional put.
    pub fn save_source(&mut self, source: &str) -> Result<(), StateError> {
        let key = layout::state_object(&layout::writer_name(source, self.shard));
        let Some(held) = self.sources.get_mut(source) else { return Ok(()) };
        if !held.dirty {
            return Ok(());
        }
        let bytes = file::encode(source, &held.state).map(crate::redact::state_object).map_err(|e| {
            StateError::Corrupt { path: self.storage.describe_key(&key), reason: e.to_string() }
        })?;
        let written = match &held.version {
            Some(version) => self.storage.replace(&key, Bytes::from(bytes), version)?,
            None => self.storage.put_new(&key, Bytes::from(bytes))?,
        };
        match written {
            Ok(version) => {
                held.version = Some(version);
                held.dirty = false;
            }
            Err(_) => return Err(StateError::Conflict { path: self.storage.describe_key(&key) }),
        }
        self.retire_legacy()
    }

    /// Writes every changed source's state.
    pub fn save(&mut self) -> Result<(), StateError> {
        let names: Vec<String> = self.sources.keys().cloned().collect();
        for name in names {
            self.save_source(&name)?;
        }
        Ok(())
    }

    /// Moves every source of the single file of earlier versions to its own object, then
    /// removes the file.
    fn retire_legacy(&mut self) -> Result<(), StateError> {
        if !self.legacy {
            return Ok(());
        }
        self.legacy = false;
        let pending: Vec<String> =
            self.sources.iter().filter(|(_, h)| h.version.is_none()).map(|(n, _)| n.clone()).collect();
        for name in pending {
            if let Err(e) = self.save_source(&name) {
                self.legacy = true;
                return Err(e);
            }
        }
        self.storage.delete(&layout::legacy_state_file())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
    }

    fn window(a: u32, b: u32) -> DateWindow {
        DateWindow::new(day(a), day(b)).unwrap()
    }

    /// `committed` days, with 2 rows of account a1 and 3 of a2 on each of `with_rows`, all of
    /// stream `ads`.
    fn commit(committed: &[u32], with_rows: &[u32]) -> Committed {
        let ads = Some("ads".to_owned());
        Committed {
            days: committed.iter().map(|d| day(*d)).collect(),
            rows: with_rows
                .iter()
                .flat_map(|d| {
                    [
                        ((day(*d), "a1".to_owned(), ads.clone()), 2),
                        ((day(*d), "a2".to_owned(), ads.clone()), 3),
                    ]
                })
                .collect(),
            streams: vec!["ads".into(), "pages".into()],
            periods: Vec::new(),
        }
    }

    #[test]
    fn days_turn_final_after_the_horizon_and_are_then_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let mut state = StateStore::open(&storage).unwrap();
        assert_eq!(state.plan("s", window(1, 10), false).pull, [window(1, 10)]);
        // Pulled on the 11th with a 3-day horizon: days 1..=7 are more than 3 days old.
        let all: Vec<u32> = (1..=10).collect();
        state.record("s", &commit(&all, &all), "r1", day(11), Some(3));
        assert_eq!(state.counts("s"), (7, 3));
        let ledger = state.source("s").unwrap();
        assert_eq!(ledger.accounts_on(day(8)), BTreeSet::from(["a1", "a2"]));
        assert_eq!(ledger.streams_on(day(8)), BTreeSet::from(["ads", "pages"]));
        assert_eq!(ledger.day(day(8)).unwrap().run_id, "r1");
        assert_eq!(state.stream_counts("s", "pages"), (7, 3));
        state.save().unwrap();

        let state = StateStore::open(&storage).unwrap();
        let plan = state.plan("s", window(1, 10), false);
        assert_eq!(plan.pull, [window(8, 10)]);
        assert_eq!((plan.skipped_final, plan.provisional, plan.missing), (7, 3, 0));
        assert_eq!(state.plan("s", window(1, 10), true).pull, [window(1, 10)]);
        assert!(!state.plan("other", window(1, 2), false).pull.is_empty());
        let accounts = state.account_days("s", window(5, 12));
        assert_eq!(accounts["a1"], AccountDays { final_days: 3, provisional_days: 3 });
    }

    #[test]
    fn holes_are_pulled_as_separate_windows_and_no_horizon_means_never_final() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(&Storage::local(dir.path())).unwrap();
        state.record("s", &commit(&[1, 2, 5], &[1, 2, 5]), "r1", day(30), Some(3));
        assert_eq!(state.plan("s", window(1, 6), false).pull, [window(3, 4), window(6, 6)]);
        state.record("files", &commit(&[1, 2, 5], &[1]), "r1", day(30), None);
        assert_eq!(state.counts("files"), (0, 3));
        assert!(state.source("files").unwrap().accounts_on(day(2)).is_empty());
    }

    #[test]
    fn a_repulled_day_keeps_only_what_the_new_pull_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(&Storage::local(dir.path())).unwrap();
        state.record("s", &commit(&[1, 2, 3], &[1, 2, 3]), "r1", day(30), None);
        state.record("s", &commit(&[2], &[]), "r2", day(30), None);
        let ledger = state.source("s").unwrap();
        assert!(ledger.accounts_on(day(2)).is_empty());
        assert_eq!(ledger.accounts_on(day(3)).len(), 2);
        assert_eq!(ledger.day(day(2)).unwrap().run_id, "r2");
        assert_eq!(state.account_days("s", window(1, 3))["a1"].provisional_days, 2);
    }

    #[test]
    fn cursors_move_to_the_last_committed_day_and_never_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(&Storage::local(dir.path())).unwrap();
        // Rows only on the 3rd, but the 1st..=5th were all pulled: the mark is the 5th.
        state.record("s", &commit(&[1, 2, 3, 4, 5], &[3]), "r1", day(30), None);
        let cursors = state.cursors("s");
        assert_eq!(cursors["ads"]["a1"].through, day(5));
        assert_eq!(cursors["ads"]["a2"].run_id, "r1");
        // Streams and accounts without rows get no cursor.
        assert!(!cursors.contains_key("pages"));
        // An older chunk (a backfill newest first) leaves the mark where it is.
        state.record("s", &commit(&[1], &[1]), "r2", day(30), None);
        assert_eq!(state.cursors("s")["ads"]["a1"].through, day(5));
        state.record("s", &commit(&[9], &[9]), "r3", day(30), None);
        assert_eq!(state.cursors("s")["ads"]["a1"].through, day(9));
        // Nothing committed moves nothing.
        state.record("s", &Committed::default(), "r4", day(30), None);
        assert_eq!(state.cursors("s")["ads"]["a1"].run_id, "r3");
    }

    #[test]
    fn reset_forgets_days_and_moves_cursors_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let mut state = StateStore::open(&storage).unwrap();
        let all: Vec<u32> = (1..=10).collect();
        state.record("s", &commit(&all, &all), "r1", day(30), Some(3));
        state.reset("s", Some("ads"), Some(window(6, 10)));
        assert_eq!(state.plan("s", window(1, 10), false).pull, [window(6, 10)]);
        assert_eq!(state.cursors("s")["ads"]["a1"].through, day(5));
        state.save().unwrap();
        let mut state = StateStore::open(&storage).unwrap();
        state.reset("s", None, None);
        assert_eq!(state.counts("s"), (0, 0));
        assert!(state.cursors("s").is_empty());
    }

    #[test]
    fn a_version_1_file_loads_moves_to_per_source_objects_and_is_removed() {
        // The layout written before per-stream rows and cursors were kept.
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let old = r#"{
  "version": 1,
  "sources": {
    "ads": {
      "days": {
        "2026-10-01": {
          "pulled_at": "2026-11-20T03:00:00Z",
          "pulled_on": "2026-11-20",
          "run_id": "0193a0c4-0000-7000-8000-000000000001",
          "rows": 5,
          "accounts": { "a1": 5 },
          "status": "final"
        }
      }
    },
    "other": { "days": {} }
  }
}"#;
        storage.put(&layout::legacy_state_file(), Bytes::from(old)).unwrap();
        let mut state = StateStore::open(&storage).unwrap();
        assert_eq!(state.counts("ads"), (1, 0));
        assert!(state.cursors("ads").is_empty());
        assert!(state.source("ads").unwrap().streams_on(day(1)).is_empty());
        assert_eq!(state.plan("ads", window(1, 2), false).pull, [window(2, 2)]);
        state.record("ads", &commit(&[2], &[2]), "r2", day(30), Some(3));
        state.save_source("ads").unwrap();
        assert!(storage.get(&layout::legacy_state_file()).unwrap().is_none());
        assert!(storage.get(&layout::state_object("other")).unwrap().is_some());
        let again = StateStore::open(&storage).unwrap();
        assert_eq!(again.cursors("ads")["ads"]["a2"].through, day(2));
        assert_eq!(again.source("ads").unwrap().accounts_on(day(1)), BTreeSet::from(["a1"]));
    }

    #[test]
    fn a_concurrent_writer_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let mut first = StateStore::open(&storage).unwrap();
        let mut second = StateStore::open(&storage).unwrap();
        first.record("s", &commit(&[1], &[1]), "r1", day(30), None);
        second.record("s", &commit(&[2], &[2]), "r2", day(30), None);
        first.save_source("s").unwrap();
        let err = second.save_source("s").unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("s.json"), "{err}");
        // And again once the first had saved it: the version read is stale.
        let mut third = StateStore::open(&storage).unwrap();
        first.record("s", &commit(&[3], &[3]), "r3", day(30), None);
        first.save_source("s").unwrap();
        third.record("s", &commit(&[4], &[4]), "r4", day(30), None);
        assert!(matches!(third.save_source("s"), Err(StateError::Conflict { .. })));
    }

    #[test]
    fn nightly_windows_merge_into_few_ranges_per_account() {
        // 100 accounts with rows every day, pulled in 28-day windows for a year, each run
        // on the day after its window with a 3-day horizon.
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(&Storage::local(dir.path())).unwrap();
        let mut first = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        for _ in 0..13 {
            let last = first + chrono::Days::new(27);
            let mut committed = Committed { streams: vec!["ads".into()], ..Committed::default() };
            for day in DateWindow::new(first, last).unwrap().days() {
                committed.days.insert(day);
                for a in 0..100 {
                    committed.rows.insert((day, format!("a{a}"), Some("ads".into())), 1);
                }
            }
            state.record("li", &committed, "r", last + chrono::Days::new(1), Some(3));
            first = last + chrono::Days::new(1);
        }
        let ledger = state.source("li").unwrap();
        for ranges in ledger.accounts.values().chain(ledger.streams.values()) {
            // Final up to 3 days before each run, provisional after: alternating ranges.
            assert!(ranges.iter().count() <= 26, "{:?}", ranges.iter().count());
        }
        assert_eq!(state.counts("li"), (13 * 28 - 13 * 3, 13 * 3));
    }

    #[test]
    fn years_of_days_for_thousands_of_accounts_stay_small() {
        // 5,000 accounts x 3 years x 3 streams, as nightly runs leave them: one day record per
        // day (each made final by another run), each account and stream final for all but the
        // last days.
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        let recent = end - chrono::Days::new(30);
        let mut ledger = SourceState::default();
        for day in DateWindow::new(start, end).unwrap().days() {
            let status = if day < recent { DayStatus::Final } else { DayStatus::Provisional };
            let record = DayRecord {
                status,
                pulled_on: day + chrono::Days::new(31),
                pulled_at: chrono::Utc::now(),
                run_id: uuid::Uuid::now_v7().to_string(),
            };
            ledger.days.set(day, day, record);
        }
        let mut status_ranges = DayRanges::default();
        status_ranges.set(start, recent - chrono::Days::new(1), DayStatus::Final);
        status_ranges.set(recent, end, DayStatus::Provisional);
        for a in 0..5000 {
            ledger.accounts.insert(format!("50800{a:04}"), status_ranges.clone());
        }
        for stream in ["ads", "creatives", "pages"] {
            ledger.streams.insert(stream.into(), status_ranges.clone());
            let cursor = Cursor { through: end, run_id: "r".into(), advanced_at: chrono::Utc::now() };
            let accounts = (0..5000).map(|a| (format!("50800{a:04}"), cursor.clone())).collect();
            ledger.cursors.insert(stream.into(), accounts);
        }
        let bytes = file::encode("li", &ledger).unwrap();
        assert!(bytes.len() < 5 << 20, "{} bytes", bytes.len());
        storage.put(&layout::state_object("li"), Bytes::from(bytes)).unwrap();
        let loaded = StateStore::open(&storage).unwrap();
        assert_eq!(loaded.source("li"), Some(&ledger));
    }

    #[test]
    fn a_damaged_object_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        storage.put(&layout::state_object("s"), Bytes::from("{\"version\": 2, \"source\": ")).unwrap();
        let err = StateStore::open(&storage).unwrap_err().to_string();
        assert!(err.contains("s.json") && err.contains("line 1"), "{err}");
        storage.delete(&layout::state_object("s")).unwrap();
        storage.put(&layout::legacy_state_file(), Bytes::from("{\"version\": 1, \"sources\": {")).unwrap();
        let err = StateStore::open(&storage).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
