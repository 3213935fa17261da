//! `kpipe vacuum`: removes what no version of interest references any more. Data files
//! uploaded by killed runs (the pending journals), then, with delta-rs's vacuum, files that a
//! commit removed longer ago than the retention: time travel keeps working within it.

use std::time::Duration;

use kpipe_core::SinkError;
use kpipe_storage::Storage;

use super::{DeltaTableKind, files_of, log, pending};

/// What [`vacuum`] removed from one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Files uploaded by interrupted runs and never committed.
    pub uncommitted_files: usize,
    /// Files removed from the table by a commit older than the retention.
    pub expired_files: usize,
}

/// Vacuums `table` keeping every file a version of the last `retention` needs; with
/// `dry_run`, only counts.
pub fn vacuum(
    storage: &Storage,
    table: DeltaTableKind,
    retention: Duration,
    dry_run: bool,
) -> Result<VacuumReport, SinkError> {
    let (store, url) = log::locate(storage, &table.key())?;
    let (loaded, exists) = storage
        .block_on(async move { log::load(store, url).await })
        .map_err(|e| SinkError::new("cannot read the Delta table").with_source(e))??;
    if !exists {
        return Ok(VacuumReport::default());
    }
    let active = files_of(&loaded, table)?;
    let mut report = VacuumReport::default();
    let journals = storage
        .list(&pending::journals_of(table))
        .map_err(|e| SinkError::new("cannot list the Delta pending journals").with_source(e))?;
    if !dry_run {
        for journal in journals {
            report.uncommitted_files += pending::clean_up_journal(storage, &journal.key, &active)?;
        }
    }
    let retention =
        chrono::Duration::from_std(retention).map_err(|_| SinkError::new("the retention is too long"))?;
    let result = storage
        .block_on(async move {
            loaded
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                .with_dry_run(dry_run)
                .await
                .map(|(_, metrics)| metrics.files_deleted.len())
        })
        .map_err(|e| SinkError::new("cannot vacuum the Delta table").with_source(e))?;
    report.expired_files =
        result.map_err(|e| log::delta_error(&format!("cannot vacuum {}", table.key()), e))?;
    Ok(report)
}
