//! `kpipe vacuum`: for an output of `format = "delta"`, removes the data files interrupted runs
//! uploaded and never committed, and the files commits removed longer ago than the retention
//! (7 days by default, Delta Lake's own default: time travel keeps working within it).

use std::process::ExitCode;
use std::time::Duration;

use kpipe_sink_parquet::OutputFormat;
use kpipe_sink_parquet::delta::{DeltaTableKind, VacuumReport, vacuum};

use crate::config::Config;
use crate::lock::RunLock;

/// What `kpipe vacuum` was asked.
#[derive(Debug, Clone)]
pub struct VacuumOptions {
    /// Files a commit removed less than this long ago stay.
    pub retention: Duration,
    /// Only count what would go.
    pub dry_run: bool,
}

/// The default retention: 7 days.
pub const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;

/// Vacuums every Delta table of the output, under the run lock (a run's uploads in progress
/// are not yet committed: they must not be taken for an interrupted run's).
pub fn command(config: &Config, options: &VacuumOptions) -> ExitCode {
    if config.pipeline.format != OutputFormat::Delta {
        eprintln!(
            "error: {} has [pipeline] format = \"{}\"; vacuum applies to format = \"delta\"",
            config.path.display(),
            config.pipeline.format.name()
        );
        return ExitCode::from(2);
    }
    match run(config, options) {
        Ok(reports) => {
            for (table, report) in reports {
                println!(
                    "{:<22} {} uncommitted file(s) removed, {} file(s) {} (retention {} h)",
                    table.key(),
                    report.uncommitted_files,
                    report.expired_files,
                    if options.dry_run { "would be removed" } else { "removed" },
                    options.retention.as_secs() / 3600,
                );
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            // Store errors may quote what the server answered.
            eprintln!("error: {}", crate::redact::text(&message));
            ExitCode::from(1)
        }
    }
}

fn run(config: &Config, options: &VacuumOptions) -> Result<Vec<(DeltaTableKind, VacuumReport)>, String> {
    let storage = config.pipeline.open_storage().map_err(|e| e.to_string())?;
    let lease = Duration::from_secs(u64::from(config.pipeline.lock_lease_seconds));
    let _lock = RunLock::acquire(&storage, lease).map_err(|e| e.to_string())?;
    let mut reports = Vec::new();
    for table in DeltaTableKind::ALL {
        let report = vacuum(&storage, table, options.retention, options.dry_run)
            .map_err(|e| format!("{}: {}", table.key(), kpipe_core::ErrorChain(&e)))?;
        reports.push((table, report));
    }
    Ok(reports)
}
