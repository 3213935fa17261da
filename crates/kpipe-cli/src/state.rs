//! The state store: `<output>/.kpipe/state.json`, a ledger of every (source, day) written with
//! its rows per account, when it was pulled, and whether it is `provisional` (the platform may
//! still restate it) or `final` (pulled after the platform's restatement horizon had passed).
//! A run re-pulls the missing and provisional days of its window and skips the final ones.
//!
//! The file is replaced atomically (temporary file, fsync, rename), and only after the data it
//! describes has been committed: a crash between the two leaves the ledger behind the data,
//! which costs a re-pull, never a gap. It holds no credentials.

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
    /// Provisional or final.
    pub status: DayStatus,
}

/// One source's part of the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceState {
    /// The ledger, by day.
    pub days: BTreeMap<NaiveDate, DayEntry>,
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

    /// Records committed days: `days` were replaced in the output by `run_id` with these row
    /// counts per (day, account) (a committed day without rows is recorded with zero rows).
    pub fn record(
        &mut self,
        source: &str,
        days: &BTreeSet<NaiveDate>,
        rows: &BTreeMap<(NaiveDate, String), u64>,
        run_id: &str,
        today: NaiveDate,
        horizon_days: Option<u32>,
    ) {
        let ledger = self.sources.entry(source.to_owned()).or_default();
        let pulled_at = Utc::now();
        for day in days {
            let accounts: BTreeMap<String, u64> = rows
                .range((*day, String::new())..)
                .take_while(|((d, _), _)| d == day)
                .map(|((_, a), n)| (a.clone(), *n))
                .collect();
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
                    status,
                },
            );
        }
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

    fn rows(days: &[u32]) -> BTreeMap<(NaiveDate, String), u64> {
        days.iter().flat_map(|d| [((day(*d), "a1".to_owned()), 2), ((day(*d), "a2".to_owned()), 3)]).collect()
    }

    #[test]
    fn days_turn_final_after_the_horizon_and_are_then_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(dir.path()).unwrap();
        assert_eq!(state.plan("s", window(1, 10), false).pull, [window(1, 10)]);
        // Pulled on the 11th with a 3-day horizon: days 1..=7 are more than 3 days old.
        let all: BTreeSet<NaiveDate> = window(1, 10).days().collect();
        state.record("s", &all, &rows(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "r1", day(11), Some(3));
        assert_eq!(state.counts("s"), (7, 3));
        assert_eq!(state.source("s").unwrap().days[&day(8)].accounts["a2"], 3);
        assert_eq!(state.source("s").unwrap().days[&day(8)].rows, 5);
        state.save().unwrap();

        let state = StateStore::open(dir.path()).unwrap();
        let plan = state.plan("s", window(1, 10), false);
        assert_eq!(plan.pull, [window(8, 10)]);
        assert_eq!((plan.skipped_final, plan.provisional, plan.missing), (7, 3, 0));
        assert_eq!(state.plan("s", window(1, 10), true).pull, [window(1, 10)]);
        assert!(!state.plan("other", window(1, 2), false).pull.is_empty());
    }

    #[test]
    fn holes_are_pulled_as_separate_windows_and_no_horizon_means_never_final() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::open(dir.path()).unwrap();
        let some: BTreeSet<NaiveDate> = [day(1), day(2), day(5)].into_iter().collect();
        state.record("s", &some, &rows(&[1, 2, 5]), "r1", day(30), Some(3));
        assert_eq!(state.plan("s", window(1, 6), false).pull, [window(3, 4), window(6, 6)]);
        state.record("files", &some, &rows(&[1]), "r1", day(30), None);
        assert_eq!(state.counts("files"), (0, 3));
        assert_eq!(state.source("files").unwrap().days[&day(2)].rows, 0);
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
