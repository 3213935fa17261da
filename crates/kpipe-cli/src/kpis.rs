//! `kpipe kpis`: the KPI stage over the stored metrics, and the same stage at the end of
//! `kpipe run`, over the run's window.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use kpipe_cli::config::{Config, KpiConfig};
use kpipe_cli::lock::RunLock;
use kpipe_cli::runner::{RunObserver, run_window};
use kpipe_cli::summary::{KpiStageStatus, KpiStageSummary};
use kpipe_cli::{RunOptions, RunSummary, SourceStatus};
use kpipe_core::{DateWindow, ErrorChain, NaiveDate};
use kpipe_kpi::{Grain, KpiRow, Scope, StageFeed, StageReport};
use kpipe_sink_parquet::{Storage, layout};
use kpipe_storage::{OutputLocation, StorageOptions};

/// Exit code for a usage error: nothing ran.
const EXIT_USAGE: u8 = 2;

/// Periods read back for `--show`, newest first: enough for KPIs whose data is not daily.
const SHOW_PERIODS: usize = 12;

/// `kpipe kpis -c FILE [--from --to] [--show]`.
pub fn command(
    cfg: &Config,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    show: Option<Grain>,
) -> ExitCode {
    let mut options = RunOptions::new(chrono::Utc::now().date_naive());
    options.from = from;
    options.to = to;
    let window = match run_window(&options, cfg.pipeline.lookback_days) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let storage = match cfg.pipeline.open_storage() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: pipeline.output: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let lease = std::time::Duration::from_secs(u64::from(cfg.pipeline.lock_lease_seconds));
    let _lock = match RunLock::acquire(&storage, lease) {
        Ok(l) => l,
        Err(e) => {
            // As `kpipe run` refused by the lock: nothing ran.
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = kpipe_sink_parquet::migrate::to_current_layout(&storage) {
        eprintln!("error: cannot move the output's files to layout version {}: {e}", layout::LAYOUT_VERSION);
        return ExitCode::FAILURE;
    }
    let output = &storage;
    let run_id = uuid::Uuid::now_v7().to_string();
    match stage(output, &cfg.kpis, window, &run_id) {
        Ok(report) => println!("{}", report_line(&report)),
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(grain) = show {
        match table(output, &cfg.kpis, grain) {
            Ok(t) => print!("\n{t}"),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The KPI stage of `kpipe run`: prepared before the run (which consumes the configuration),
/// run after it.
#[derive(Debug)]
struct AfterRun {
    output: OutputLocation,
    storage: StorageOptions,
    kpis: KpiConfig,
    window: Option<DateWindow>,
}

impl AfterRun {
    /// The stage over the window `options` give.
    pub fn new(cfg: &Config, options: &RunOptions) -> AfterRun {
        let window =
            run_window(options, cfg.pipeline.lookback_days).ok().filter(|_| cfg.kpis.settings.enabled);
        AfterRun {
            output: cfg.pipeline.output.clone(),
            storage: cfg.pipeline.storage.clone(),
            kpis: cfg.kpis.clone(),
            window,
        }
    }

    /// Recomputes the KPIs of the periods the run touched, when a source wrote something; the
    /// caller still holds the output's lock from the run (`runner::run_locked`), so no other run
    /// can start in between. What it did goes into `summary.kpis`. Returns false when the stage
    /// failed (the run's metrics stay published; the KPI files stay as they were).
    pub fn run_under_lock(&self, summary: &mut RunSummary, _held: &RunLock) -> bool {
        let Some(window) = self.window else { return true };
        if !wrote_something(summary) {
            return true;
        }
        let span = kpipe_cli::telemetry::kpi_span(&summary.run_id);
        let _in_span = span.enter();
        let clock = std::time::Instant::now();
        let result = Storage::open(&self.output, &self.storage)
            .map_err(|e| format!("pipeline.output: {e}"))
            .and_then(|storage| stage(&storage, &self.kpis, window, &summary.run_id));
        record(summary, window, clock, result, &span)
    }
}

/// The KPI stage of `kpipe run`, computed during the pull: each source's rows are read as soon as
/// it is done, on a thread of the stage's own, so that the stage ends shortly after the last
/// source. Observes the run for that, and hands what it observes on to `inner`.
pub struct DuringRun {
    after: AfterRun,
    inner: Arc<dyn RunObserver>,
    feed: Mutex<Option<Result<StageFeed, String>>>,
}

impl DuringRun {
    /// The stage over the window `options` give, fed by the run that `self` observes.
    pub fn new(cfg: &Config, options: &RunOptions, inner: Arc<dyn RunObserver>) -> DuringRun {
        DuringRun { after: AfterRun::new(cfg, options), inner, feed: Mutex::new(None) }
    }

    fn start(&self, run_id: &str, sources: &[String]) -> Result<StageFeed, String> {
        let a = &self.after;
        let storage = Storage::open(&a.output, &a.storage).map_err(|e| format!("pipeline.output: {e}"))?;
        let window = a.window.ok_or("no KPI stage")?;
        StageFeed::start(
            storage,
            a.kpis.catalog.clone(),
            a.kpis.settings.clone(),
            window,
            run_id.to_owned(),
            sources.to_vec(),
        )
        .map_err(|e| ErrorChain(&e).to_string())
    }

    /// Ends the stage after the run, as [`AfterRun::run_under_lock`] does; a stage that did
    /// not start with the run runs now.
    pub fn finish_under_lock(&self, summary: &mut RunSummary, held: &RunLock) -> bool {
        let feed = self.feed.lock().ok().and_then(|mut f| f.take());
        let Some(window) = self.after.window else { return true };
        if !wrote_something(summary) {
            // Dropped: the stage stops and publishes nothing.
            drop(feed);
            return true;
        }
        let Some(feed) = feed else { return self.after.run_under_lock(summary, held) };
        let span = kpipe_cli::telemetry::kpi_span(&summary.run_id);
        let _in_span = span.enter();
        let clock = std::time::Instant::now();
        kpipe_cli::malloc::trim();
        let result = feed.and_then(|f| f.finish().map_err(|e| ErrorChain(&e).to_string()));
        record(summary, window, clock, result, &span)
    }
}

impl RunObserver for DuringRun {
    fn started(&self, source: &str, window: DateWindow) {
        self.inner.started(source, window);
    }

    fn rows(&self, source: &str, rows: u64) {
        self.inner.rows(source, rows);
    }

    fn finished(&self, summary: &kpipe_cli::SourceSummary) {
        self.inner.finished(summary);
    }

    fn run_started(&self, run_id: &str, sources: &[String]) {
        if self.after.window.is_some()
            && let Ok(mut feed) = self.feed.lock()
        {
            *feed = Some(self.start(run_id, sources));
        }
        self.inner.run_started(run_id, sources);
    }

    fn source_done(&self, source: &str) {
        if let Ok(feed) = self.feed.lock()
            && let Some(Ok(feed)) = feed.as_ref()
        {
            feed.source_done(source);
        }
        self.inner.source_done(source);
    }
}

fn wrote_something(summary: &RunSummary) -> bool {
    summary.sources.iter().any(|s| matches!(s.status, SourceStatus::Succeeded | SourceStatus::Partial))
}

/// Prints what the stage did and records it in `summary.kpis`; false when it failed.
fn record(
    summary: &mut RunSummary,
    window: DateWindow,
    clock: std::time::Instant,
    result: Result<StageReport, String>,
    span: &tracing::Span,
) -> bool {
    let ok = match result {
        Ok(report) => {
            println!("{}", report_line(&report));
            summary.kpis = Some(KpiStageSummary {
                status: KpiStageStatus::Succeeded,
                window: report.window,
                read_window: Some(report.read_window),
                metric_rows_read: report.stats.rows_read,
                without_period_value: report.stats.without_period_value.clone(),
                rows_written: report.commit.rows,
                periods_written: report.commit.periods_written,
                periods_removed: report.commit.periods_removed,
                duration_ms: report.duration_ms,
                error: None,
            });
            true
        }
        Err(message) => {
            eprintln!("error: KPIs not updated: {message}");
            summary.kpis = Some(KpiStageSummary {
                status: KpiStageStatus::Failed,
                window,
                read_window: None,
                metric_rows_read: 0,
                without_period_value: Default::default(),
                rows_written: 0,
                periods_written: 0,
                periods_removed: 0,
                duration_ms: clock.elapsed().as_millis() as u64,
                error: Some(message),
            });
            false
        }
    };
    kpipe_cli::telemetry::kpis_finished(span, summary.kpis.as_ref());
    ok
}

fn stage(
    output: &Storage,
    kpis: &KpiConfig,
    window: DateWindow,
    run_id: &str,
) -> Result<StageReport, String> {
    // The pull's freed memory goes back to the system rather than stay resident under the
    // stage's own peak.
    kpipe_cli::malloc::trim();
    kpipe_kpi::run_on(output, &kpis.catalog, &kpis.settings, window, run_id)
        .map_err(|e| ErrorChain(&e).to_string())
}

/// One line about what the stage did.
pub fn report_line(r: &StageReport) -> String {
    let mut empty = String::new();
    for (what, entities) in &r.stats.without_period_value {
        let mut parts = what.splitn(3, ' ');
        let (platform, metric, grain) = (parts.next(), parts.next(), parts.next());
        empty.push_str(&format!(
            "\n  {} {} by {}: no period value from the platform for {entities} entity-period(s); KPIs over it stay empty there",
            platform.unwrap_or_default(),
            metric.unwrap_or_default(),
            grain.unwrap_or_default(),
        ));
    }
    format!(
        "kpis {}..{}: {} row(s) in {} period file(s), {} removed (from {} metric rows of {}..{}) in {:.1}s",
        r.window.start(),
        r.window.end(),
        r.commit.rows,
        r.commit.periods_written,
        r.commit.periods_removed,
        r.stats.rows_read,
        r.read_window.start(),
        r.read_window.end(),
        r.duration_ms as f64 / 1000.0,
    ) + &empty
}

/// The terminal table of the latest `grain` period per KPI, over all platforms and per platform.
pub fn table(output: &Storage, kpis: &KpiConfig, grain: Grain) -> Result<String, String> {
    let rows =
        latest_rows(output, kpis.settings.output_format, grain).map_err(|e| ErrorChain(&e).to_string())?;
    let order: Vec<&str> = kpis.catalog.definitions().map(|d| d.name.as_str()).collect();
    Ok(kpipe_kpi::render_table(&rows, grain, &order))
}

/// The platform and all-platforms rows of the latest periods of `grain`.
fn latest_rows(
    output: &Storage,
    format: kpipe_sink_parquet::OutputFormat,
    grain: Grain,
) -> Result<Vec<KpiRow>, kpipe_kpi::KpiError> {
    let periods = kpipe_kpi::stored_periods(output, format, Some(grain))?;
    let latest: Vec<String> = periods.into_iter().rev().take(SHOW_PERIODS).map(|(_, key)| key).collect();
    let read = kpipe_kpi::read_stored_kpi_files(output, &latest)?;
    let rows = read.into_iter().filter(|r| matches!(r.scope, Scope::All | Scope::Platform)).collect();
    Ok(rows)
}
