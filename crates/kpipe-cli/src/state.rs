//! The state store: `<output>/.kpipe/state.json`, a ledger of every (source, day) written with
//! its rows per account and per stream, when it was pulled, and whether it is `provisional` (the
//! platform may still restate it) or `final` (pulled after the platform's restatement horizon
//! had passed); and per (source, stream, account) a cursor, the last day written. A run
//! re-pulls the missing and provisional days of its window and skips the final ones.
//!
//! The file is replaced atomically (temporary file, fsync, rename), and only after the data it
//! describes has been committed: a crash between the two leaves the ledger and the cursors
//! behind the data, which costs a re-pull, never a gap. It holds no credentials.
//!
//! Files written before the per-stream figures and the cursors existed still load: what they
//! lack starts empty and fills in with the next run.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::DateWindow;

use crate::lock::STATE_DIR;

/// The state file's format version.
const VERSION: u32 = 1;

/// What can go wrong with the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a state file this version understands.
    #[error("{path}: {reason}; move it away to start over (every day in a window will be pulled again)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        reason: String,
    },
}

/// Whether a day's numbers may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// Pulled within the restatement horizon: pulled again by every run that covers it.
    Provisional,
    /// Pulled after the horizon: not pulled again unless `--full-refresh`.
    Final,
}

/// One (source, day) of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayEntry {
    /// When the rows were committed.
    pub pulled_at: DateTime<Utc>,
    /// The run's "today", which decides finality.
    pub pulled_on: NaiveDate,
    /// The run that wrote them.
    pub run_id: String,
    /// Rows written for the day.
    pub rows: u64,
    /// Rows per account.
    pub accounts: BTreeMap<String, u64>,
    /// Rows per stream: every stream the source pulled that day, with zero rows when none came.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<String, u64>,
    /// Provisional or final.
    pub status: DayStatus,
}

/// How far one (source, stream, account) has been written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The high-water mark: the last day committed with the stream's rows of the account.
    /// Earlier days may still have holes (a backfill newest first); the ledger knows them.
    pub through: NaiveDate,
    /// The run that last moved it.
    pub run_id: String,
    /// When it moved, after the commit.
    pub advanced_at: DateTime<Utc>,
}

/// One source's part of the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceState {
    /// The ledger, by day.
    pub days: BTreeMap<NaiveDate, DayEntry>,
    /// Cursors by stream, then by account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<String, BTreeMap<String, Cursor>>,
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
}

/// Days of one account in a window, as the ledger has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountDays {
    /// Days with rows of the account, final.
    pub final_days: u64,
    /// Days with rows of the account, provisional.
    pub provisional_days: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    sources: BTreeMap<String, SourceState>,
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
    /// Days final and skipped.
    pub skipped_final: u64,
}

impl DayPlan {
    /// Days to pull.
    pub fn days_to_pull(&self) -> u64 {
        self.pull.iter().map(DateWindow::num_days).sum()
    }
}

/// The ledger of one output directory.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    sources: BTreeMap<String, SourceState>,
}

/// Whether `day`, pulled on `pulled_on`, can no longer be restated. `None` horizon: the source
/// may change any day at any time, so nothing is ever final.
pub fn is_final(day: NaiveDate, pulled_on: NaiveDate, horizon_days: Option<u32>) -> bool {
    horizon_days.is_some_and(|h| (pulled_on - day).num_days() > i64::from(h))
}

impl StateStore {
    /// The state file of `output`.
    pub fn path_in(output: &Path) -> PathBuf {
        output.join(STATE_DIR).join("state.json")
    }

    /// Reads the state of `output`; a missing file is an empty ledger.
    pub fn open(output: &Path) -> Result<StateStore, StateError> {
        let path = StateStore::path_in(output);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StateStore { path, sources: BTreeMap::new() });
            }
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let file: StateFile = serde_json::from_str(&text)
            .map_err(|e| StateError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        if file.version != VERSION {
            return Err(StateError::Corrupt {
                path,
                reason: format!("version {} is not {VERSION}, the version this kpipe writes", file.version),
            });
        }
        Ok(StateStore { path, sources: file.sources })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One source's ledger.
    pub fn source(&self, name: &str) -> Option<&SourceState> {
        self.sources.get(name)
    }

    /// Which days of `window` a run must pull for `source`: every missing or provisional day,
    /// and with `full_refresh` every day.
    pub fn plan(&self, source: &str, window: DateWindow, full_refresh: bool) -> DayPlan {
        let ledger = self.sources.get(source);
        let mut plan = DayPlan::default();
        let mut run: Option<(NaiveDate, NaiveDate)> = None;
        for day in window.days() {
            let pull = match ledger.and_then(|l| l.days.get(&day)) {
                None => {
                    plan.missing += 1;
                    true
                }
                Some(e) if e.status == DayStatus::Provisional => {
                    plan.provisional += 1;
                    true
                }
                Some(_) => {
                    if !full_refresh {
                        plan.skipped_final += 1;
                    }
                    full_refresh
                }
            };
            run = match (run, pull) {
                (Some((start, _)), true) => Some((start, day)),
                (None, true) => Some((day, day)),
                (Some((start, end)), false) => {
                    plan.pull.extend(DateWindow::new(start, end).ok());
                    None
                }
                (None, false) => None,
            };
        }
        if let Some((start, end)) = run {
            plan.pull.extend(DateWindow::new(start, end).ok());
        }
        plan
    }

    /// Records a commit: `committed.days` were replaced in the output by `run_id` with these
    /// rows (a committed day without rows is recorded with zero rows), and the cursor of every
    /// (stream, account) with rows in them moves to the last of those days (never back).
    pub fn record(
        &mut self,
        source: &str,
        committed: &Committed,
        run_id: &str,
        today: NaiveDate,
        horizon_days: Option<u32>,
    ) {
        let ledger = self.sources.entry(source.to_owned()).or_default();
        let pulled_at = Utc::now();
        for day in &committed.days {
            let mut accounts: BTreeMap<String, u64> = BTreeMap::new();
            let mut streams: BTreeMap<String, u64> =
                committed.streams.iter().map(|s| (s.clone(), 0)).collect();
            let on_day =
                committed.rows.range((*day, String::new(), None)..).take_while(|((d, ..), _)| d == day);
            for ((_, account, stream), n) in on_day {
                *accounts.entry(account.clone()).or_default() += n;
                if let Some(stream) = stream {
                    *streams.entry(stream.clone()).or_default() += n;
                }
            }
            let status =
                if is_final(*day, today, horizon_days) { DayStatus::Final } else { DayStatus::Provisional };
            ledger.days.insert(
                *day,
                DayEntry {
                    pulled_at,
                    pulled_on: today,
                    run_id: run_id.to_owned(),
                    rows: accounts.values().sum(),
                    accounts,
                    streams,
                    status,
                },
            );
        }
        let Some(last) = committed.days.last() else { return };
        let written: BTreeSet<(&String, &String)> = committed
            .rows
            .iter()
            .filter(|((day, ..), n)| **n > 0 && committed.days.contains(day))
            .filter_map(|((_, account, stream), _)| Some((stream.as_ref()?, account)))
            .collect();
        for (stream, account) in written {
            let fresh = Cursor { through: *last, run_id: run_id.to_owned(), advanced_at: pulled_at };
            match ledger.cursors.entry(stream.clone()).or_default().entry(account.clone()) {
                Entry::Vacant(slot) => {
                    slot.insert(fresh);
                }
                // A backfill newest first commits older days later: the mark never moves back.
                Entry::Occupied(mut slot) => {
                    if slot.get().through < *last {
                        slot.insert(fresh);
                    }
                }
            }
        }
    }

    /// Per account, the days of `window` the ledger has rows of it for `source`.
    pub fn account_days(&self, source: &str, window: DateWindow) -> BTreeMap<String, AccountDays> {
        let mut out: BTreeMap<String, AccountDays> = BTreeMap::new();
        let Some(ledger) = self.sources.get(source) else { return out };
        for (_, entry) in ledger.days.range(window.start()..=window.end()) {
            for (account, rows) in &entry.accounts {
                if *rows == 0 {
                    continue;
                }
                let days = out.entry(account.clone()).or_default();
                match entry.status {
                    DayStatus::Final => days.final_days += 1,
                    DayStatus::Provisional => days.provisional_days += 1,
                }
            }
        }
        out
    }

    /// The cursors of `source`, by stream then account.
    pub fn cursors(&self, source: &str) -> BTreeMap<String, BTreeMap<String, Cursor>> {
        self.sources.get(source).map(|l| l.cursors.clone()).unwrap_or_default()
    }

    /// Final and provisional days of `source` that recorded `stream`.
    pub fn stream_counts(&self, source: &str, stream: &str) -> (u64, u64) {
        let Some(ledger) = self.sources.get(source) else { return (0, 0) };
        ledger.days.values().filter(|e| e.streams.contains_key(stream)).fold((0, 0), |(f, p), e| {
            match e.status {
                DayStatus::Final => (f + 1, p),
                DayStatus::Provisional => (f, p + 1),
            }
        })
    }

    /// Final and provisional days of `source`.
    pub fn counts(&self, source: &str) -> (u64, u64) {
        let Some(ledger) = self.sources.get(source) else { return (0, 0) };
        let finals = ledger.days.values().filter(|e| e.status == DayStatus::Final).count() as u64;
        (finals, ledger.days.len() as u64 - finals)
    }

    /// Writes the state atomically.
    pub fn save(&self) -> Result<(), StateError> {
        let io = |source| StateError::Io { path: self.path.clone(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = StateFile { version: VERSION, sources: self.sources.clone() };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| StateError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        let tmp = self.path.with_extension(format!("json.{}.tmp", std::process::id()));
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        out.write_all(&text).map_err(io)?;
        out.sync_all().map_err(io)?;
        drop(out);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
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
        }
    }

    #[test]
    fn days_turn_final_after_the_horizon_and_are_then_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(dir.path()).unwrap();
        assert_eq!(state.plan("s", window(1, 10), false).pull, [window(1, 10)]);
        // Pulled on the 11th with a 3-day horizon: days 1..=7 are more than 3 days old.
        let all: Vec<u32> = (1..=10).collect();
        state.record("s", &commit(&all, &all), "r1", day(11), Some(3));
        assert_eq!(state.counts("s"), (7, 3));
        let entry = &state.source("s").unwrap().days[&day(8)];
        assert_eq!((entry.accounts["a2"], entry.rows), (3, 5));
        assert_eq!((entry.streams["ads"], entry.streams["pages"]), (5, 0));
        assert_eq!(state.stream_counts("s", "pages"), (7, 3));
        state.save().unwrap();

        let state = StateStore::open(dir.path()).unwrap();
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
        let mut state = StateStore::open(dir.path()).unwrap();
        state.record("s", &commit(&[1, 2, 5], &[1, 2, 5]), "r1", day(30), Some(3));
        assert_eq!(state.plan("s", window(1, 6), false).pull, [window(3, 4), window(6, 6)]);
        state.record("files", &commit(&[1, 2, 5], &[1]), "r1", day(30), None);
        assert_eq!(state.counts("files"), (0, 3));
        assert_eq!(state.source("files").unwrap().days[&day(2)].rows, 0);
    }

    #[test]
    fn cursors_move_to_the_last_committed_day_and_never_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(dir.path()).unwrap();
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
    fn a_state_file_without_streams_and_cursors_still_loads() {
        // The layout written before per-stream rows and cursors were kept.
        let dir = tempfile::tempdir().unwrap();
        let path = StateStore::path_in(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
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
    }
  }
}"#;
        std::fs::write(&path, old).unwrap();
        let mut state = StateStore::open(dir.path()).unwrap();
        assert_eq!(state.counts("ads"), (1, 0));
        assert!(state.cursors("ads").is_empty());
        assert!(state.source("ads").unwrap().days[&day(1)].streams.is_empty());
        assert_eq!(state.plan("ads", window(1, 2), false).pull, [window(2, 2)]);
        state.record("ads", &commit(&[2], &[2]), "r2", day(30), Some(3));
        state.save().unwrap();
        let again = StateStore::open(dir.path()).unwrap();
        assert_eq!(again.cursors("ads")["ads"]["a2"].through, day(2));
        assert_eq!(again.source("ads").unwrap().days[&day(1)].accounts["a1"], 5);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = StateStore::path_in(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"version\": 1, \"sources\": {").unwrap();
        let err = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json") && err.contains("line 1"), "{err}");
    }
}
