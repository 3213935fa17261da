//! The KPI stage over stored metrics: read every period the window touches, whole, compute,
//! and replace those periods' KPI files.

use std::time::Instant;

use kpipe_core::DateWindow;
use kpipe_sink_parquet::Storage;

use crate::catalog::Catalog;
use crate::compute::{Computation, ComputeStats};
use crate::config::Settings;
use crate::error::KpiError;
use crate::input;
use crate::output::{KpiCommit, KpiWriter};

/// What a stage run did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageReport {
    /// The days asked for.
    pub window: DateWindow,
    /// The days read: the touched periods, whole, and the day before them.
    pub read_window: DateWindow,
    /// Source-day partitions read.
    pub partitions_read: usize,
    /// Rows and entities read.
    pub stats: ComputeStats,
    /// What was published.
    pub commit: KpiCommit,
    /// Wall time.
    pub duration_ms: u64,
}

/// Computes the KPIs of every period of `settings.grains` that holds a day of `window`, from the
/// metrics stored below the local directory `output`, and replaces those periods' KPI files.
/// `run_id` names the staging folder and is written to the files' metadata.
pub fn run(
    output: &std::path::Path,
    catalog: &Catalog,
    settings: &Settings,
    window: DateWindow,
    run_id: &str,
) -> Result<StageReport, KpiError> {
    run_on(&Storage::local(output), catalog, settings, window, run_id)
}

/// [`run`] on an output's storage, local or in an object store.
pub fn run_on(
    storage: &Storage,
    catalog: &Catalog,
    settings: &Settings,
    window: DateWindow,
    run_id: &str,
) -> Result<StageReport, KpiError> {
    let clock = Instant::now();
    let mut computation = Computation::new(catalog, settings, window);
    let read_window = computation.read_window();
    let format = settings.output_format;
    let partitions = input::partitions(storage, format, read_window)?;
    input::read_period_rows(storage, format, &mut computation)?;
    tracing::info!(window = %window, read = %read_window, partitions = partitions.len(), "computing KPIs");
    let mut writer = KpiWriter::open(storage, run_id, format)?;
    let mut done = Vec::new();
    for p in &partitions {
        if computation.advance(p.date, &mut done)? {
            input::read_partition(storage, p, &mut computation)?;
        }
        for period in done.drain(..) {
            writer.stage(&mut computation, period)?;
        }
    }
    for period in computation.close_all() {
        writer.stage(&mut computation, period)?;
    }
    let commit = writer.commit(computation.touched())?;
    let report = StageReport {
        window,
        read_window,
        partitions_read: partitions.len(),
        stats: computation.stats().clone(),
        commit,
        duration_ms: clock.elapsed().as_millis() as u64,
    };
    for (what, entities) in &report.stats.without_period_value {
        tracing::warn!(
            %what, entities,
            "no period value: the source wrote no week or month row of this unique metric, so KPIs over it \
             stay empty there (a sum of days would count people twice)"
        );
    }
    tracing::info!(
        rows = report.commit.rows,
        periods_written = report.commit.periods_written,
        periods_removed = report.commit.periods_removed,
        metric_rows = report.stats.rows_read,
        duration_ms = report.duration_ms,
        "KPIs written"
    );
    Ok(report)
}
