//! `kpipe state show` and `kpipe state reset`: what the ledger and cursors say, and how to force
//! a re-pull, on any output (a directory or an object store).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::NaiveDate;
use kpipe_core::DateWindow;
use serde::Serialize;

use crate::config::Config;
use crate::lock::{LockError, RunLock};
use crate::state::{DayStatus, StateError, StateStore};

/// Why a state command failed.
#[derive(Debug, thiserror::Error)]
pub enum StateCommandError {
    /// The output cannot be opened.
    #[error("pipeline.output: {0}")]
    Output(#[from] kpipe_sink_parquet::StorageError),
    /// The state cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A run holds the output.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The source is not configured and has no state.
    #[error("--source {name}: no such source in the configuration or the state; known: {known}")]
    UnknownSource {
        /// The name asked for.
        name: String,
        /// The names known.
        known: String,
    },
    /// `--from` after `--to`.
    #[error("--from {from} is after --to {to}")]
    InvertedWindow {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
}

/// Days `from..=to` with one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySpan {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Provisional or final.
    pub status: DayStatus,
    /// The last run that wrote them.
    pub run_id: String,
    /// Its "today".
    pub pulled_on: NaiveDate,
}

/// One source's state, for people and for scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStateView {
    /// The source.
    pub source: String,
    /// Where its state is.
    pub location: String,
    /// Final days.
    pub final_days: u64,
    /// Provisional days.
    pub provisional_days: u64,
    /// The days written, as ranges.
    pub days: Vec<DaySpan>,
    /// Per stream, then account, the last day written.
    pub cursors: BTreeMap<String, BTreeMap<String, NaiveDate>>,
}

fn view(store: &StateStore, name: &str) -> SourceStateView {
    let (final_days, provisional_days) = store.counts(name);
    let days = store
        .source(name)
        .map(|s| {
            s.days
                .iter()
                .map(|(from, to, r)| DaySpan {
                    from,
                    to,
                    status: r.status,
                    run_id: r.run_id.clone(),
                    pulled_on: r.pulled_on,
                })
                .collect()
        })
        .unwrap_or_default();
    let cursors = store
        .cursors(name)
        .into_iter()
        .map(|(stream, accounts)| (stream, accounts.into_iter().map(|(a, c)| (a, c.through)).collect()))
        .collect();
    SourceStateView {
        source: name.to_owned(),
        location: store.location(name),
        final_days,
        provisional_days,
        days,
        cursors,
    }
}

/// The names of `only`, or of every configured source and every source with a state.
fn names(config: &Config, store: &StateStore, only: Option<&str>) -> Result<Vec<String>, StateCommandError> {
    let mut all: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    all.extend(store.source_names().map(str::to_owned));
    all.sort();
    all.dedup();
    match only {
        None => Ok(all),
        Some(name) if all.iter().any(|n| n == name) => Ok(vec![name.to_owned()]),
        Some(name) => Err(StateCommandError::UnknownSource { name: name.to_owned(), known: all.join(", ") }),
    }
}

/// `kpipe state show`: every source's state (or one's).
pub fn show(config: &Config, only: Option<&str>) -> Result<Vec<SourceStateView>, StateCommandError> {
    let store = StateStore::open_shard(&config.pipeline.open_storage()?, config.pipeline.split.shard)?;
    Ok(names(config, &store, only)?.iter().map(|n| view(&store, n)).collect())
}

/// The text of `kpipe state show`.
pub fn render(views: &[SourceStateView]) -> String {
    let mut out = String::new();
    for v in views {
        let _ = writeln!(
            out,
            "{}: {} final day(s), {} provisional ({})",
            v.source, v.final_days, v.provisional_days, v.location
        );
        if v.days.is_empty() {
            let _ = writeln!(out, "  no day written yet");
        }
        for d in &v.days {
            let status = match d.status {
                DayStatus::Final => "final",
                DayStatus::Provisional => "provisional",
            };
            let _ = writeln!(
                out,
                "  {}..{}  {status:<11}  pulled on {}  run {}",
                d.from, d.to, d.pulled_on, d.run_id
            );
        }
        for (stream, accounts) in &v.cursors {
            let (first, last) = (accounts.values().min(), accounts.values().max());
            if let (Some(first), Some(last)) = (first, last) {
                let _ = writeln!(
                    out,
                    "  cursor {stream}: {} account(s) through {}{}",
                    accounts.len(),
                    last,
                    if first == last {
                        String::new()
                    } else {
                        format!(" (the furthest behind through {first})")
                    }
                );
            }
        }
    }
    out
}

/// What `kpipe state reset` changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    /// The source.
    pub source: String,
    /// The stream whose cursors moved, if one was named.
    pub stream: Option<String>,
    /// The days forgotten (all when `None`).
    pub window: Option<DateWindow>,
    /// Days the ledger had and no longer has.
    pub days_forgotten: u64,
}

/// `kpipe state reset --source S [--stream X] [--from --to]`: the next run pulls those days
/// again. Takes the output's lock, so it never races a run.
pub fn reset(
    config: &Config,
    source: &str,
    stream: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<ResetReport, StateCommandError> {
    let window = match (from, to) {
        (None, None) => None,
        (from, to) => {
            let from = from.unwrap_or(NaiveDate::MIN);
            let to = to.unwrap_or(NaiveDate::MAX);
            Some(
                DateWindow::new(from, to)
                    .map_err(|e| StateCommandError::InvertedWindow { from: e.start, to: e.end })?,
            )
        }
    };
    let storage = config.pipeline.open_storage()?;
    let shard = config.pipeline.split.shard;
    let lease = Duration::from_secs(u64::from(config.pipeline.lock_lease_seconds));
    let _lock = RunLock::acquire_shard(&storage, lease, shard)?;
    let mut store = StateStore::open_shard(&storage, shard)?;
    names(config, &store, Some(source))?;
    let before = store.counts(source);
    store.reset(source, stream, window);
    let after = store.counts(source);
    store.save_source(source)?;
    Ok(ResetReport {
        source: source.to_owned(),
        stream: stream.map(str::to_owned),
        window,
        days_forgotten: (before.0 + before.1).saturating_sub(after.0 + after.1),
    })
}
