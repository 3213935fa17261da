//! Where rows end up.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::SinkError;
use crate::period::{PeriodRequest, PeriodRow};
use crate::record::MetricBatch;
use crate::window::DateWindow;

/// What one source's pull writes: the partitions of `window` for `source`.
#[derive(Debug, Clone)]
pub struct SinkTarget {
    /// The configured source name.
    pub source: String,
    /// The days the pull covers; a commit replaces exactly these days of this source.
    pub window: DateWindow,
    /// Lineage: the run.
    pub run_id: String,
    /// Lineage: when the pull started.
    pub pulled_at: DateTime<Utc>,
}

/// A destination for metric rows.
pub trait Sink: Send + Sync {
    /// Starts writing one source's window. Nothing is visible to readers before
    /// [`SinkWriter::commit`].
    fn open(&self, target: SinkTarget) -> Result<Box<dyn SinkWriter>, SinkError>;
}

/// One source's window being written.
pub trait SinkWriter: Send {
    /// Writes rows; all of them must lie in the target window.
    fn write(&mut self, batch: &MetricBatch) -> Result<(), SinkError>;

    /// Writes rows of unique metrics over whole weeks and months, kept apart from the day rows.
    /// [`SinkWriter::commit`] publishes them, each period's file replacing that period's
    /// previous one; [`SinkWriter::commit_days`] (a pull that stopped early) drops them, as
    /// some days of their periods were not pulled. A sink that cannot store them refuses them.
    fn write_periods(&mut self, rows: &[PeriodRow]) -> Result<(), SinkError> {
        match rows.first() {
            None => Ok(()),
            Some(row) => Err(SinkError::new(format!(
                "this sink does not store period rows ({} of {})",
                row.row.metric, row.request.period
            ))),
        }
    }

    /// Makes what was written visible, replacing the window's previous data.
    fn commit(self: Box<Self>) -> Result<CommitStats, SinkError>;

    /// Makes only the days of `days` visible, each replacing that day's previous data, and
    /// throws away what was written for the other days, whose previous data stays: how a pull
    /// that stopped early publishes the days it completed.
    fn commit_days(self: Box<Self>, days: &BTreeSet<NaiveDate>) -> Result<CommitStats, SinkError>;

    /// Throws away what was written; the previous data stays as it was.
    fn abort(self: Box<Self>) -> Result<(), SinkError>;
}

/// What a commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommitStats {
    /// Rows now visible for the window.
    pub rows: u64,
    /// Day partitions written (new or replaced).
    pub partitions_written: usize,
    /// Day partitions removed because the pull found no rows for those days.
    pub partitions_removed: usize,
    /// Period rows now visible (unique metrics over weeks and months).
    pub period_rows: u64,
    /// The periods whose files the commit replaced, with the last day each value covers.
    pub periods: Vec<PeriodRequest>,
    /// The files written.
    pub files: Vec<PathBuf>,
}
