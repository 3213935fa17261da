//! `kpipe backfill`: a long range pulled as a series of runs of a few weeks each, oldest or
//! newest first. Each chunk is an ordinary run, so the ledger skips the days already final and
//! records the new ones as they are committed: when a platform's daily quota stops a chunk,
//! the backfill stops cleanly, and the next invocation of the same command resumes where it
//! left off without pulling a finished day again.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use kpipe_core::DateWindow;

use crate::config::Config;
use crate::runner::{RunError, RunObserver, RunOptions, run};
use crate::summary::{RunSummary, SourceStatus};

/// Which end of the range goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// From the oldest chunk to the newest (the default: history builds up in order).
    #[default]
    OldestFirst,
    /// From the newest chunk back (recent data is usable first).
    NewestFirst,
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// First day.
    pub from: NaiveDate,
    /// Last day; default yesterday.
    pub to: Option<NaiveDate>,
    /// Days per run (default 28).
    pub chunk_days: u32,
    /// Which end first.
    pub order: Order,
    /// Only this source.
    pub only: Option<String>,
    /// Today, UTC.
    pub today: NaiveDate,
}

/// How a backfill ended.
#[derive(Debug)]
pub struct BackfillOutcome {
    /// The summaries of the chunks run, in order.
    pub runs: Vec<RunSummary>,
    /// The chunks not run because a quota stopped the backfill.
    pub remaining: Vec<DateWindow>,
    /// Why it stopped early, if it did.
    pub stopped: Option<String>,
}

impl BackfillOutcome {
    /// 0 done, 1 a source failed, 3 partial (quarantined records, or stopped at a quota: run
    /// the same command again later).
    pub fn exit_code(&self) -> i32 {
        let worst = self.runs.iter().map(RunSummary::exit_code).max_by_key(|c| match c {
            1 => 3,
            3 => 2,
            0 => 0,
            _ => 1,
        });
        match (worst, &self.stopped) {
            (Some(1), _) => 1,
            (_, Some(_)) => 3,
            (Some(c), None) => c,
            (None, None) => 0,
        }
    }
}

/// `[from, to]` cut into chunks of `days`, in `order`.
pub fn chunks(window: DateWindow, days: u32, order: Order) -> Vec<DateWindow> {
    let mut out = window.slices(u64::from(days));
    if order == Order::NewestFirst {
        out.reverse();
    }
    out
}

/// Runs the backfill. `load` gives a fresh configuration for each chunk (a run consumes its
/// sources); `after_chunk` sees each chunk's summary as it ends.
pub async fn backfill(
    load: impl Fn() -> Result<Config, String>,
    options: &BackfillOptions,
    observer: Arc<dyn RunObserver>,
    mut after_chunk: impl FnMut(&RunSummary),
) -> Result<BackfillOutcome, BackfillError> {
    let yesterday = options.today.checked_sub_days(Days::new(1)).unwrap_or(options.today);
    let to = options.to.unwrap_or(yesterday);
    let window = DateWindow::new(options.from, to)
        .map_err(|e| BackfillError::Run(RunError::InvertedWindow { from: e.start, to: e.end }))?;
    let mut pending = chunks(window, options.chunk_days, options.order);
    let mut outcome = BackfillOutcome { runs: Vec::new(), remaining: Vec::new(), stopped: None };
    while !pending.is_empty() {
        let chunk = pending.remove(0);
        let config = load().map_err(BackfillError::Config)?;
        let mut run_options = RunOptions::new(options.today);
        run_options.from = Some(chunk.start());
        run_options.to = Some(chunk.end());
        run_options.only = options.only.clone();
        tracing::info!(chunk = %chunk, left = pending.len(), "backfill chunk");
        let summary = run(config, run_options, observer.clone()).await.map_err(BackfillError::Run)?;
        after_chunk(&summary);
        let quota = summary
            .sources
            .iter()
            .find(|s| s.quota_exhausted)
            .map(|s| format!("source `{}` stopped at its platform's quota in {chunk}", s.name));
        let failed = summary.sources.iter().any(|s| s.status == SourceStatus::Failed && !s.quota_exhausted);
        outcome.runs.push(summary);
        if let Some(reason) = quota {
            outcome.remaining = pending;
            outcome.stopped = Some(format!(
                "{reason}; the days published so far are in the ledger: run the same command again after the \
                 quota resets to continue"
            ));
            break;
        }
        if failed {
            outcome.remaining = pending;
            outcome.stopped =
                Some(format!("a source failed in {chunk}; fix it and run the same command again"));
            break;
        }
    }
    Ok(outcome)
}

/// Why a backfill could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The configuration cannot be loaded.
    #[error("{0}")]
    Config(String),
    /// A run could not start.
    #[error(transparent)]
    Run(RunError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn chunks_cover_the_range_in_either_order() {
        let w = DateWindow::new(day(1, 1), day(3, 1)).unwrap();
        let c = chunks(w, 28, Order::OldestFirst);
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].start(), c[0].end()), (day(1, 1), day(1, 28)));
        assert_eq!((c[2].start(), c[2].end()), (day(2, 26), day(3, 1)));
        assert_eq!(c.iter().map(DateWindow::num_days).sum::<u64>(), w.num_days());
        let r = chunks(w, 28, Order::NewestFirst);
        assert_eq!(r[0], c[2]);
    }
}
