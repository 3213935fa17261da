//! The KPI stage over stored metrics: read every period the window touches, whole, source by
//! source, and replace those periods' KPI files.
//!
//! Sources are read one at a time (see `compute::by_source`): at once for `kpipe kpis`, and
//! during `kpipe run` as each source commits ([`StageFeed`]), so that the stage ends shortly
//! after the last source instead of starting then.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use kpipe_core::DateWindow;
use kpipe_sink_parquet::{OutputFormat, Storage};

use crate::catalog::Catalog;
use crate::compute::{Computation, ComputeStats};
use crate::config::Settings;
use crate::error::KpiError;
use crate::input::{self, Listing};
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
    /// Wall time: from the start for a stage run on its own; from the end of the pull
    /// ([`StageFeed::finish`]) for a stage fed during a run, what it added to the run.
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
    let mut stage = SourceBySource::open(storage, catalog, settings, window, run_id)?;
    let listing = Listing::read(storage, stage.format, &stage.computation)?;
    let sources: Vec<String> = listing.sources().into_iter().map(str::to_owned).collect();
    tracing::info!(window = %window, read = %stage.computation.read_window(), partitions = listing.partitions.len(), "computing KPIs");
    for source in &sources {
        stage.read_source(source, &listing)?;
    }
    stage.finish(clock)
}

/// A stage that reads its sources as they are ready. Held by one thread at a time.
struct SourceBySource<'c> {
    storage: Storage,
    format: OutputFormat,
    window: DateWindow,
    computation: Computation<'c>,
    writer: KpiWriter,
    read: BTreeSet<String>,
    partitions_read: usize,
}

impl<'c> SourceBySource<'c> {
    fn open(
        storage: &Storage,
        catalog: &'c Catalog,
        settings: &Settings,
        window: DateWindow,
        run_id: &str,
    ) -> Result<SourceBySource<'c>, KpiError> {
        let format = settings.output_format;
        Ok(SourceBySource {
            storage: storage.clone(),
            format,
            window,
            computation: Computation::by_source(catalog, settings, window),
            writer: KpiWriter::open(storage, run_id, format)?,
            read: BTreeSet::new(),
            partitions_read: 0,
        })
    }

    /// Reads `source`'s stored rows as `listing` lists them and writes its entity and account
    /// rows; a source already read is not read again.
    fn read_source(&mut self, source: &str, listing: &Listing) -> Result<(), KpiError> {
        if !self.read.insert(source.to_owned()) {
            return Ok(());
        }
        let mut partitions = listing.partitions_of(source).peekable();
        let has_periods = listing.period_files.iter().any(|f| f.source == source);
        if partitions.peek().is_none() && !has_periods {
            return Ok(());
        }
        let clock = Instant::now();
        let rows_before = self.computation.stats().rows_read;
        let (c, w) = (&mut self.computation, &mut self.writer);
        c.begin_source();
        input::read_period_rows(&self.storage, listing, source, c)?;
        let mut done = Vec::new();
        for p in partitions {
            if c.advance(p.date, &mut done)? {
                input::read_partition(&self.storage, p, c)?;
                self.partitions_read += 1;
            }
            for period in done.drain(..) {
                w.stage(c, period)?;
            }
        }
        for period in c.close_all() {
            w.stage(c, period)?;
        }
        tracing::debug!(
            source,
            metric_rows = c.stats().rows_read - rows_before,
            ms = clock.elapsed().as_millis() as u64,
            "a source's KPIs computed"
        );
        Ok(())
    }

    /// Writes the scopes over every source and publishes the files.
    fn finish(mut self, clock: Instant) -> Result<StageReport, KpiError> {
        for (grain, start) in self.computation.kept_periods() {
            if let Some(period) = self.computation.close_kept(grain, start) {
                self.writer.stage_closed(&mut self.computation, period)?;
            }
        }
        let commit = self.writer.commit(self.computation.touched())?;
        let report = StageReport {
            window: self.window,
            read_window: self.computation.read_window(),
            partitions_read: self.partitions_read,
            stats: self.computation.stats().clone(),
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
}

/// What the stage's thread is told.
enum Feed {
    /// This source writes nothing more in the run: its rows can be read.
    SourceDone(String),
    /// Every source is done: read what was not, and publish.
    Finish(Instant),
}

/// The KPI stage of a run, on a thread of its own, fed as the run's sources commit: each
/// source's rows are read and its entity and account rows written while the others pull.
/// Dropped without [`StageFeed::finish`], it stops and publishes nothing.
#[derive(Debug)]
pub struct StageFeed {
    feed: Option<Sender<Feed>>,
    thread: Option<JoinHandle<Result<StageReport, KpiError>>>,
}

impl StageFeed {
    /// Starts the stage over the periods `window` touches. `pulling` names the sources the
    /// run writes to: each is read once [`StageFeed::source_done`] names it (or at the
    /// finish). Every other source stored in the read window is read at once. The run must
    /// hold the output's lock: the stage reads what it publishes.
    pub fn start(
        storage: Storage,
        catalog: Catalog,
        settings: Settings,
        window: DateWindow,
        run_id: String,
        pulling: Vec<String>,
    ) -> Result<StageFeed, KpiError> {
        let (feed, received) = channel();
        let thread = std::thread::Builder::new()
            .name("kpi-stage".to_owned())
            .spawn(move || fed(&storage, &catalog, &settings, window, &run_id, &pulling, &received))
            .map_err(|e| KpiError::Write { path: "kpis".into(), message: e.to_string() })?;
        Ok(StageFeed { feed: Some(feed), thread: Some(thread) })
    }

    /// `source` writes nothing more in this run.
    pub fn source_done(&self, source: &str) {
        if let Some(feed) = &self.feed {
            // A stage that stopped on an error says so at the finish.
            let _ = feed.send(Feed::SourceDone(source.to_owned()));
        }
    }

    /// Reads the sources not read yet, writes the scopes over every source and publishes.
    pub fn finish(mut self) -> Result<StageReport, KpiError> {
        if let Some(feed) = self.feed.take() {
            let _ = feed.send(Feed::Finish(Instant::now()));
        }
        let thread = self.thread.take().ok_or_else(|| stopped("the KPI stage was finished twice"))?;
        thread.join().unwrap_or_else(|_| Err(stopped("the KPI stage panicked")))
    }
}

impl Drop for StageFeed {
    fn drop(&mut self) {
        // The thread sees its feed close without a finish, and throws its staged files away.
        self.feed.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped(message: &str) -> KpiError {
    KpiError::Write { path: "kpis".into(), message: message.to_owned() }
}

/// The stage's thread.
fn fed(
    storage: &Storage,
    catalog: &Catalog,
    settings: &Settings,
    window: DateWindow,
    run_id: &str,
    pulling: &[String],
    feed: &Receiver<Feed>,
) -> Result<StageReport, KpiError> {
    let mut stage = SourceBySource::open(storage, catalog, settings, window, run_id)?;
    let pulling: BTreeSet<&str> = pulling.iter().map(String::as_str).collect();
    let listing = Listing::read(storage, stage.format, &stage.computation)?;
    let stored: Vec<String> =
        listing.sources().into_iter().filter(|s| !pulling.contains(s)).map(str::to_owned).collect();
    tracing::info!(window = %window, read = %stage.computation.read_window(), stored = stored.len(), pulling = pulling.len(), "computing KPIs as sources finish");
    for source in &stored {
        stage.read_source(source, &listing)?;
    }
    loop {
        match feed.recv() {
            Ok(Feed::SourceDone(source)) => {
                if pulling.contains(source.as_str()) && !stage.read.contains(&source) {
                    let listing = Listing::read(storage, stage.format, &stage.computation)?;
                    stage.read_source(&source, &listing)?;
                }
            }
            Ok(Feed::Finish(since)) => {
                let left: Vec<&str> = pulling.iter().copied().filter(|s| !stage.read.contains(*s)).collect();
                if !left.is_empty() {
                    let listing = Listing::read(storage, stage.format, &stage.computation)?;
                    for source in left {
                        stage.read_source(source, &listing)?;
                    }
                }
                return stage.finish(since);
            }
            // Dropped: the run was stopped. The writer's staged files go with it.
            Err(_) => return Err(stopped("the run stopped before its KPI stage finished")),
        }
    }
}
