//! The pipeline: every selected source runs concurrently, its rows stream through a bounded
//! channel into its own sink writer on a blocking thread, and its window is committed only if the
//! whole pull succeeded. A failing source does not stop the others and never touches what is
//! already published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use kpipe_core::{
    DateWindow, DynSource, Emitter, ErrorChain, ErrorKind, MetricBatch, PullRequest, Sink, SinkTarget,
    SinkWriter, SourceError, SourceEvent, Transform,
};
use kpipe_sink_parquet::{ParquetSink, Storage};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::config::{Config, SourceConfig};
use crate::quarantine::QuarantineWriter;
use crate::row_tally::{RowCounts, RowTally};
use crate::state::{Committed, DayPlan, StateError, StateStore};
use crate::summary::{RunSummary, SourceStatus, SourceSummary, StreamSummary};

/// Batches that may wait between a source and its sink writer. With
/// [`Emitter::DEFAULT_BATCH_ROWS`] rows each, that is under 2 MB per source: enough for the
/// writer never to wait on a source that is producing, and no more, since every source of a run
/// holds this much at once.
const CHANNEL_BATCHES: usize = 2;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// First day; default: `lookback_days` before `to`.
    pub from: Option<NaiveDate>,
    /// Last day; default: yesterday (UTC).
    pub to: Option<NaiveDate>,
    /// Only this source.
    pub only: Option<String>,
    /// Re-pull everything in the window.
    pub full_refresh: bool,
    /// Today, UTC (a parameter so that tests can fix it).
    pub today: NaiveDate,
}

impl RunOptions {
    /// Defaults: the lookback window ending yesterday, every enabled source.
    pub fn new(today: NaiveDate) -> RunOptions {
        RunOptions { from: None, to: None, only: None, full_refresh: false, today }
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--source` names no configured source.
    #[error("--source {name}: no such source; configured: {known}")]
    UnknownSource {
        /// The name given.
        name: String,
        /// The configured names.
        known: String,
    },
    /// Another run is using the output directory.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
    /// The state file cannot be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// A source task panicked while holding the state.
    #[error("the state store was left inconsistent by a failed task")]
    StatePoisoned,
    /// The output cannot be used.
    #[error("pipeline.output: {0}")]
    Output(#[from] kpipe_sink_parquet::StorageError),
    /// The files of an earlier layout cannot be moved to the current one.
    #[error("cannot move the output's files to layout version {version}: {source}")]
    Layout {
        /// The current layout version.
        version: u32,
        /// What failed.
        source: kpipe_sink_parquet::StorageError,
    },
    /// `--from` or `--to` is a day that has begun nowhere yet.
    #[error("{flag} {day} is in the future: no account's day after {latest} has begun")]
    FutureDay {
        /// The option.
        flag: &'static str,
        /// Its day.
        day: NaiveDate,
        /// Today in the time zone furthest ahead.
        latest: NaiveDate,
    },
    /// `--from` is after `--to`.
    #[error("--from {from} is after --to {to}")]
    InvertedWindow {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
}

/// Told about progress, for a terminal display.
pub trait RunObserver: Send + Sync {
    /// A source started pulling.
    fn started(&self, _source: &str, _window: DateWindow) {}
    /// A source has written `rows` rows so far.
    fn rows(&self, _source: &str, _rows: u64) {}
    /// A source is done with a window.
    fn finished(&self, _summary: &SourceSummary) {}
    /// The run holds the output (its lock taken, its layout current) and is about to pull
    /// `sources`; nothing of theirs is written yet.
    fn run_started(&self, _run_id: &str, _sources: &[String]) {}
    /// A source of [`RunObserver::run_started`] writes nothing more in this run: its last
    /// window is committed, or it stopped.
    fn source_done(&self, _source: &str) {}
}

/// An observer that ignores everything.
#[derive(Debug)]
pub struct Quiet;

impl RunObserver for Quiet {}

/// The window a run covers before each source's `start_date` is applied.
pub fn run_window(options: &RunOptions, lookback_days: u32) -> Result<DateWindow, RunError> {
    // Today (UTC) is at most a day behind the earliest time zone (UTC+14): a later day has not
    // begun for any account, and pulling it would record it as pulled.
    let latest = options.today.checked_add_days(Days::new(1)).unwrap_or(options.today);
    for (flag, day) in [("--from", options.from), ("--to", options.to)] {
        if let Some(day) = day.filter(|d| *d > latest) {
            return Err(RunError::FutureDay { flag, day, latest });
        }
    }
    let yesterday = options.today.checked_sub_days(Days::new(1)).unwrap_or(options.today);
    let window = match (options.from, options.to) {
        (Some(from), Some(to)) => DateWindow::new(from, to),
        (Some(from), None) => DateWindow::new(from, yesterday.max(from)),
        (None, Some(to)) => Ok(DateWindow::lookback(to, lookback_days)),
        (None, None) => Ok(DateWindow::lookback(yesterday, lookback_days)),
    };
    window.map_err(|e| RunError::InvertedWindow { from: e.start, to: e.end })
}

/// Runs the pipeline.
pub async fn run(
    config: Config,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
) -> Result<RunSummary, RunError> {
    run_locked(config, options, observer).await.map(|(summary, _lock)| summary)
}

/// Runs the pipeline and hands back the output's lock still held, so that the stages after it
/// (the KPIs) run before another run can start.
pub async fn run_locked(
    config: Config,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
) -> Result<(RunSummary, crate::lock::RunLock), RunError> {
    let span = crate::telemetry::run_span();
    let outcome = pull_sources(config, options, observer).instrument(span.clone()).await;
    match &outcome {
        Ok((summary, _)) => crate::telemetry::run_finished(&span, summary),
        Err(_) => crate::telemetry::run_not_started(&span),
    }
    outcome
}

/// What [`run_locked`] does, inside the run's span.
async fn pull_sources(
    config: Config,
    options: RunOptions,
    observer: Arc<dyn RunObserver>,
) -> Result<(RunSummary, crate::lock::RunLock), RunError> {
    if let Some(only) = &options.only
        && !config.sources.iter().any(|s| &s.name == only)
    {
        let known = config.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(RunError::UnknownSource { name: only.clone(), known });
    }
    let window = run_window(&options, config.pipeline.lookback_days)?;
    // Held until the run and its later stages end: a second run of this output fails at once.
    let storage = config.pipeline.open_storage()?;
    let lease = std::time::Duration::from_secs(u64::from(config.pipeline.lock_lease_seconds));
    let shard = config.pipeline.split.shard;
    let lock = crate::lock::RunLock::acquire_shard(&storage, lease, shard)?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let output = storage.describe();
    if shard.is_all() {
        // Earlier versions' leftovers and layout, moved by the run that holds the whole
        // output (shards run side by side, and would race to move the same files).
        remove_legacy_staging(&storage);
        kpipe_sink_parquet::migrate::to_current_layout(&storage).map_err(|source| RunError::Layout {
            version: kpipe_sink_parquet::layout::LAYOUT_VERSION,
            source,
        })?;
    }
    let whole_sources = config.pipeline.split.units.iter().filter(|(_, u)| u.whole()).map(|(s, _)| s.clone());
    let sink = Arc::new(
        ParquetSink::on(storage.clone())
            .with_format(config.pipeline.format)
            .with_shard(shard, whole_sources.collect()),
    );
    let state = Arc::new(Mutex::new(StateStore::open_shard(&storage, shard)?));
    tracing::info!(run_id = %run_id, window = %window, output = %output, shard = %shard, "run started");
    crate::telemetry::run_started(&tracing::Span::current(), &run_id, window, shard);
    let split = &config.pipeline.split;
    let shard_summary = (!shard.is_all()).then(|| crate::summary::ShardSummary {
        shard: shard.to_string(),
        units: split.units.values().map(|u| if u.whole() { 1 } else { u.here.len() }).sum(),
        sources_elsewhere: split.elsewhere.clone(),
        rate_share: split.rate_share,
    });

    let mut tasks = tokio::task::JoinSet::new();
    let mut pulls = Vec::new();
    let mut summaries = Vec::new();
    for source in config.sources {
        let mut summary = SourceSummary::new(&source.name, &source.kind);
        if !source.enabled {
            summary.error = Some("disabled in the configuration".into());
            summaries.push(summary);
            continue;
        }
        if options.only.as_ref().is_some_and(|o| o != &source.name) {
            continue;
        }
        let floor = source.start_date.or(config.pipeline.start_date);
        let Some(source_window) = floor.map_or(Some(window), |f| window.clamp_start(f)) else {
            summary.error = Some(format!("the window {window} ends before its start_date"));
            summaries.push(summary);
            continue;
        };
        if let Some(history) = source.source.history()
            && let Some(oldest) = options.today.checked_sub_days(Days::new(u64::from(history.days)))
            && source_window.start() < oldest
        {
            tracing::warn!(
                source = %source.name,
                window = %source_window,
                oldest = %oldest,
                "{}: the days before {oldest} will come back empty",
                history.rule
            );
        }
        let plan = match state.lock() {
            Ok(state) => state.plan(&source.name, source_window, options.full_refresh),
            Err(_) => return Err(RunError::StatePoisoned),
        };
        if plan.pull.is_empty() {
            summary.window = Some(source_window);
            summary.days_skipped_final = plan.skipped_final;
            summary.error = Some(format!(
                "all {} day(s) of {source_window} are final; --full-refresh pulls them again",
                plan.skipped_final
            ));
            summaries.push(summary);
            continue;
        }
        let context = SourceContext {
            run_id: run_id.clone(),
            full_refresh: options.full_refresh,
            today: options.today,
            sink: sink.clone(),
            storage: storage.clone(),
            observer: observer.clone(),
            state: state.clone(),
        };
        let span = crate::telemetry::source_span(&source.name, &source.kind);
        pulls.push((context, source, plan, span));
    }
    let pulling: Vec<String> = pulls.iter().map(|(_, source, _, _)| source.name.clone()).collect();
    observer.run_started(&run_id, &pulling);
    for (context, source, plan, span) in pulls {
        tasks.spawn(context.run(source, plan).instrument(span));
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(summary) => summaries.push(summary),
            Err(e) => {
                // A panic in a connector: reported, never silent. Its writer was dropped, so
                // nothing of it was published.
                let mut s = SourceSummary::new("?", "?");
                s.status = SourceStatus::Failed;
                s.error = Some(format!("a source task panicked: {e}"));
                summaries.push(s);
            }
        }
    }
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
    let status = RunSummary::overall(&summaries);
    let summary = RunSummary {
        run_id,
        started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
        output,
        status,
        sources: summaries,
        kpis: None,
        shard: shard_summary,
    };
    tracing::info!(run_id = %summary.run_id, status = ?summary.status, duration_ms = summary.duration_ms, "run finished");
    Ok((summary, lock))
}

/// Removes the staging folder of earlier versions (`<output>/.staging`), which only a killed
/// run of such a version leaves behind; runs of a local output never overlap (its lock).
fn remove_legacy_staging(storage: &Storage) {
    if let Some(dir) = storage.local_path(kpipe_sink_parquet::layout::LEGACY_STAGING)
        && dir.is_dir()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove files staged by an earlier version");
    }
}

/// What every window of one source's run shares.
struct SourceContext {
    run_id: String,
    full_refresh: bool,
    today: NaiveDate,
    sink: Arc<ParquetSink>,
    storage: Storage,
    observer: Arc<dyn RunObserver>,
    state: Arc<Mutex<StateStore>>,
}

impl SourceContext {
    /// Pulls the planned windows one after the other, recording each committed one in the
    /// ledger; stops at the first that fails or stops early.
    async fn run(self, source: SourceConfig, plan: DayPlan) -> SourceSummary {
        let horizon = source.restatement_days.or_else(|| source.source.restatement_days());
        let mut total: Option<SourceSummary> = None;
        for window in &plan.pull {
            let job = SourceJob {
                request: PullRequest {
                    window: *window,
                    run_id: self.run_id.clone(),
                    full_refresh: self.full_refresh,
                },
                sink: self.sink.clone(),
                storage: self.storage.clone(),
                observer: self.observer.clone(),
            };
            let (mut summary, committed) = job.run(&source).await;
            // On failure the data is published and only the ledger is behind, so those days
            // are pulled again next time.
            if let Some(committed) = committed
                && let Err(e) = self.record(&source.name, &committed, horizon)
            {
                tracing::error!(source = %source.name, error = %e, "cannot update the state file");
                summary.error =
                    Some(format!("the rows were written but the state file was not updated: {e}"));
                summary.status = SourceStatus::Partial;
            }
            let stop = summary.status == SourceStatus::Failed || summary.error.is_some();
            total = Some(match total {
                None => summary,
                Some(t) => t.merge(summary),
            });
            if stop {
                break;
            }
        }
        let mut total = total.unwrap_or_else(|| SourceSummary::new(&source.name, &source.kind));
        total.days_skipped_final = plan.skipped_final;
        for stream in source.source.streams() {
            total.streams.entry(stream.name.to_owned()).or_default();
        }
        if let Ok(state) = self.state.lock() {
            (total.ledger_final, total.ledger_provisional) = state.counts(&source.name);
            let cursors = state.cursors(&source.name);
            for (name, stream) in &mut total.streams {
                (stream.ledger_final, stream.ledger_provisional) = state.stream_counts(&source.name, name);
                if let Some(accounts) = cursors.get(name) {
                    stream.cursors = accounts.iter().map(|(a, c)| (a.clone(), c.through)).collect();
                }
            }
        }
        crate::telemetry::source_finished(&tracing::Span::current(), &total);
        self.observer.source_done(&source.name);
        total
    }

    fn record(&self, source: &str, committed: &Committed, horizon: Option<u32>) -> Result<(), String> {
        let mut state = self.state.lock().map_err(|_| "the state store is poisoned".to_owned())?;
        state.record(source, committed, &self.run_id, self.today, horizon);
        state.save_source(source).map_err(|e| e.to_string())
    }
}

struct SourceJob {
    request: PullRequest,
    sink: Arc<ParquetSink>,
    storage: Storage,
    observer: Arc<dyn RunObserver>,
}

/// What the sink side of one source ended with.
struct Drained {
    writer: Box<dyn SinkWriter>,
    quarantine: QuarantineWriter,
    rows: u64,
    counts: RowCounts,
    /// Records quarantined per stream.
    quarantined_by_stream: BTreeMap<String, u64>,
    completed: BTreeSet<NaiveDate>,
    outside_window: u64,
    skipped: BTreeMap<String, u64>,
    error: Option<String>,
}

impl Drained {
    fn rows_by_metric(&self, days: Option<&BTreeSet<NaiveDate>>) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((day, _, _, metric), n) in &self.counts {
            if days.is_none_or(|d| d.contains(day)) {
                *out.entry(metric.clone()).or_default() += n;
            }
        }
        out
    }
}

/// What the ledger records of the committed `days`: rows per (day, account, stream).
fn committed_rows(counts: &RowCounts, days: BTreeSet<NaiveDate>, streams: Vec<String>) -> Committed {
    let mut rows = BTreeMap::new();
    for ((day, account, stream, _), n) in counts {
        if days.contains(day) {
            let stream = stream.as_deref().map(str::to_owned);
            *rows.entry((*day, account.clone(), stream)).or_default() += n;
        }
    }
    Committed { days, rows, streams, periods: Vec::new() }
}

/// Per stream, what a commit holds: days pulled, rows written, and the records quarantined.
/// Every stream the source declares was pulled on every committed day; a stream it did not
/// declare counts the days it has rows on.
fn stream_summaries(
    committed: &Committed,
    quarantined: &BTreeMap<String, u64>,
) -> BTreeMap<String, StreamSummary> {
    let mut out: BTreeMap<String, StreamSummary> = BTreeMap::new();
    let days = committed.days.len() as u64;
    for name in &committed.streams {
        out.entry(name.clone()).or_default().days_pulled = days;
    }
    let mut undeclared_days: BTreeSet<(&str, NaiveDate)> = BTreeSet::new();
    for ((day, _, stream), n) in &committed.rows {
        let Some(stream) = stream else { continue };
        out.entry(stream.clone()).or_default().rows_written += n;
        if !committed.streams.contains(stream) {
            undeclared_days.insert((stream, *day));
        }
    }
    for (stream, _) in undeclared_days {
        out.entry(stream.to_owned()).or_default().days_pulled += 1;
    }
    for (stream, n) in quarantined {
        out.entry(stream.clone()).or_default().quarantined += n;
    }
    out
}

impl SourceJob {
    async fn run(&self, source: &SourceConfig) -> (SourceSummary, Option<Committed>) {
        let clock = Instant::now();
        let name = source.name.clone();
        let mut summary = SourceSummary::new(&source.name, &source.kind);
        summary.window = Some(self.request.window);
        self.observer.started(&name, self.request.window);

        let target = SinkTarget {
            source: name.clone(),
            window: self.request.window,
            run_id: self.request.run_id.clone(),
            pulled_at: Utc::now(),
        };
        let sink = self.sink.clone();
        let storage = self.storage.clone();
        let opened = move || {
            QuarantineWriter::clean_up_interrupted(&storage, &target.source, sink.shard()).map_err(|e| {
                kpipe_core::SinkError::new("cannot clean up an interrupted upload").with_source(e)
            })?;
            sink.open(target)
        };
        let writer = match tokio::task::spawn_blocking(opened).await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                return (
                    self.failed(summary, clock, format!("cannot open the output: {}", ErrorChain(&e))),
                    None,
                );
            }
            Err(e) => return (self.failed(summary, clock, format!("cannot open the output: {e}")), None),
        };
        let (mut emitter, rx) = Emitter::channel(CHANNEL_BATCHES, Emitter::DEFAULT_BATCH_ROWS);
        let streams: Vec<String> = source.source.streams().iter().map(|s| s.name.to_owned()).collect();
        // A source with one stream need not name it: its rows are that stream's.
        if let [only] = streams.as_slice() {
            emitter.set_stream(only);
        }
        let quarantine = QuarantineWriter::new(&self.storage, &name, self.sink.shard(), &self.request.run_id);
        let window = self.request.window;
        let observer = self.observer.clone();
        let drain_name = name.clone();
        let drain = tokio::task::spawn_blocking(move || {
            drain(rx, writer, Vec::new(), quarantine, window, observer.as_ref(), &drain_name)
        });

        let pulled = pull(source.source.as_ref(), &self.request, &mut emitter).await;
        drop(emitter);
        let http = source.source.telemetry();
        let drained = match drain.await {
            Ok(d) => d,
            Err(e) => return (self.failed(summary, clock, format!("the writer thread failed: {e}")), None),
        };
        summary.rows_outside_window = drained.outside_window;
        summary.lines_skipped = drained.skipped.clone();
        summary.quarantined = drained.quarantine.count();
        let rows_by_metric = drained.rows_by_metric(None);
        let rows_by_metric_completed = drained.rows_by_metric(Some(&drained.completed));
        let Drained {
            writer,
            quarantine,
            rows,
            counts,
            quarantined_by_stream,
            completed,
            error: sink_error,
            ..
        } = drained;
        match tokio::task::spawn_blocking(move || quarantine.finish()).await {
            Ok(Ok(file)) => summary.quarantine_file = file,
            Ok(Err(e)) => tracing::error!(error = %e, "cannot write the quarantine file"),
            Err(e) => tracing::error!(error = %e, "cannot write the quarantine file"),
        }
        // The sink's error explains a source's "cancelled", so it goes first.
        let pull_error = pulled.err();
        summary.quota_exhausted =
            pull_error.as_ref().is_some_and(|e| matches!(e.kind(), ErrorKind::QuotaExhausted { .. }));
        // A pull stopped by the platform's quota still publishes the days it completed.
        let stopped_at_quota = sink_error.is_none()
            && !completed.is_empty()
            && pull_error.as_ref().is_some_and(|e| matches!(e.kind(), ErrorKind::QuotaExhausted { .. }));
        let error =
            sink_error.or_else(|| pull_error.map(|e| format!("{} error: {}", e.kind(), ErrorChain(&e))));
        if let Some(error) = error.clone().filter(|_| !stopped_at_quota) {
            if let Err(e) = tokio::task::spawn_blocking(move || writer.abort()).await {
                tracing::warn!(error = %e, "cannot discard staged files");
            }
            summary.set_http(http);
            return (self.failed(summary, clock, error), None);
        }
        let commit_only = error.filter(|_| stopped_at_quota);
        let days = commit_only.as_ref().map(|_| completed.clone());
        summary.rows_by_metric = if days.is_some() { rows_by_metric_completed } else { rows_by_metric };
        let to_record =
            committed_rows(&counts, days.clone().unwrap_or_else(|| window.days().collect()), streams);
        summary.streams = stream_summaries(&to_record, &quarantined_by_stream);
        // What the source's writer freed is handed back before the sources still pulling, or
        // the KPI stage, need memory.
        let days_to_commit = days.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let committed = match days_to_commit {
                Some(days) => writer.commit_days(&days),
                None => writer.commit(),
            };
            crate::malloc::trim();
            committed
        })
        .await;
        let mut to_record = to_record;
        match committed {
            Ok(Ok(stats)) => {
                to_record.periods.clone_from(&stats.periods);
                if days.is_none() {
                    debug_assert_eq!(stats.rows, rows);
                }
                summary.rows_written = stats.rows;
                summary.period_rows_written = stats.period_rows;
                summary.partitions_written = stats.partitions_written;
                summary.partitions_removed = stats.partitions_removed;
                summary.set_http(http);
                summary.status = if summary.quarantined > 0 || commit_only.is_some() {
                    SourceStatus::Partial
                } else {
                    SourceStatus::Succeeded
                };
                if let (Some(quota), Some(days)) = (commit_only, &days) {
                    let (first, last) = (days.first(), days.last());
                    summary.error = Some(format!(
                        "{quota}; published the {} completed day(s) {}..{}, the other days keep their \
                         earlier data: run again after the reset",
                        days.len(),
                        first.map(ToString::to_string).unwrap_or_default(),
                        last.map(ToString::to_string).unwrap_or_default(),
                    ));
                }
            }
            Ok(Err(e)) => {
                return (self.failed(summary, clock, format!("cannot commit: {}", ErrorChain(&e))), None);
            }
            Err(e) => return (self.failed(summary, clock, format!("cannot commit: {e}")), None),
        }
        summary.duration_ms = clock.elapsed().as_millis() as u64;
        tracing::info!(source = %name, rows = summary.rows_written, quarantined = summary.quarantined, "source done");
        self.observer.finished(&summary);
        summary.days_pulled = to_record.days.len() as u64;
        (summary, Some(to_record))
    }

    fn failed(&self, mut summary: SourceSummary, clock: Instant, error: String) -> SourceSummary {
        tracing::error!(source = %summary.name, error = %error, "source failed; its earlier data is untouched");
        summary.status = SourceStatus::Failed;
        summary.error = Some(error);
        summary.duration_ms = clock.elapsed().as_millis() as u64;
        self.observer.finished(&summary);
        summary
    }
}

async fn pull(source: &dyn DynSource, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
    source.pull(request, out).await?;
    out.flush().await
}

fn drain(
    mut rx: mpsc::Receiver<SourceEvent>,
    mut writer: Box<dyn SinkWriter>,
    mut transforms: Vec<Box<dyn Transform>>,
    mut quarantine: QuarantineWriter,
    window: DateWindow,
    observer: &dyn RunObserver,
    source: &str,
) -> Drained {
    let mut rows = 0u64;
    let mut tally = RowTally::default();
    let mut quarantined_by_stream: BTreeMap<String, u64> = BTreeMap::new();
    let mut completed = BTreeSet::new();
    let mut outside_window = 0u64;
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut error = None;
    while let Some(event) = rx.blocking_recv() {
        match event {
            SourceEvent::Skipped { reason, count } => *skipped.entry(reason).or_default() += count,
            SourceEvent::Completed(days) => completed.extend(days.days().filter(|d| window.contains(*d))),
            SourceEvent::Quarantined(record) => {
                tracing::debug!(location = %record.location, reason = %record.reason, "record quarantined");
                *quarantined_by_stream.entry(record.stream.clone()).or_default() += 1;
                if let Err(e) = quarantine.write(&record) {
                    error = Some(format!("cannot write the quarantine file: {e}"));
                    break;
                }
            }
            SourceEvent::PeriodRows(period_rows) => {
                if let Err(e) = writer.write_periods(&period_rows) {
                    error = Some(format!("cannot write: {}", ErrorChain(&e)));
                    break;
                }
            }
            SourceEvent::Rows(mut batch) => {
                // Transforms make new batches; the stream stays the source's.
                let stream = batch.stream.take();
                let before = batch.len();
                batch.rows.retain(|r| window.contains(r.date));
                outside_window += (before - batch.len()) as u64;
                match apply(&mut transforms, batch) {
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                    Ok(batch) => {
                        tally.add(&batch, stream.as_ref());
                        if let Err(e) = writer.write(&batch) {
                            error = Some(format!("cannot write: {}", ErrorChain(&e)));
                            break;
                        }
                        rows += batch.len() as u64;
                        observer.rows(source, rows);
                    }
                }
            }
        }
    }
    // Closing the channel tells the source to stop if we stopped early.
    drop(rx);
    let counts = tally.into_counts();
    Drained {
        writer,
        quarantine,
        rows,
        counts,
        quarantined_by_stream,
        completed,
        outside_window,
        skipped,
        error,
    }
}

fn apply(transforms: &mut [Box<dyn Transform>], mut batch: MetricBatch) -> Result<MetricBatch, String> {
    for t in transforms.iter_mut() {
        batch = t.apply(batch).map_err(|e| e.to_string())?;
    }
    Ok(batch)
}
