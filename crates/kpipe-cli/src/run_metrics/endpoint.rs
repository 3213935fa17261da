//! The metrics of `kpipe schedule`: those of its last completed run, its counters since it
//! started, and its own (fire times by outcome, the run in progress, the next fire time), served
//! on `/metrics` and rewritten into its metrics file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use super::exposition::{Series, render};
use super::families::{self, *};
use super::snapshot::{build_info, observed_gauges, run_counters, run_gauges, unix_seconds};
use super::{Observed, RunContext, read_counters_file, write_atomically};
use crate::schedule::TickOutcome;
use crate::summary::RunSummary;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The fire-time outcomes counted by `kpipe_schedule_ticks_total`.
const TICK_OUTCOMES: [&str; 4] = ["ran", "skipped", "failed", "missed"];

/// What `kpipe schedule` exposes. Shared between the scheduler loop, its runs and the HTTP
/// endpoint.
#[derive(Debug)]
pub struct ScheduleMetrics {
    state: Mutex<State>,
    file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct State {
    /// Cumulative since the scheduler started (or since its metrics file's counters).
    counters: Series,
    /// The levels of the last completed run.
    last_run: Series,
    /// Kept across runs: a source that fails keeps its last success.
    observed: Observed,
    running_since: Option<DateTime<Utc>>,
    next_run: Option<DateTime<Utc>>,
}

impl ScheduleMetrics {
    /// Metrics that start from the counters of `file`, when it exists, and are written there.
    pub fn new(file: Option<PathBuf>) -> ScheduleMetrics {
        let mut counters = file.as_deref().map(read_counters_file).unwrap_or_default();
        for outcome in TICK_OUTCOMES {
            counters.add(&SCHEDULE_TICKS, vec![("outcome", outcome.to_owned())], 0.0);
        }
        let state = State { counters, ..State::default() };
        ScheduleMetrics { state: Mutex::new(state), file }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent at every step, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A run starts: in progress until the returned guard is dropped.
    pub fn run_started(self: &Arc<Self>, at: DateTime<Utc>) -> InProgress {
        self.state().running_since = Some(at);
        InProgress(self.clone())
    }

    /// A run completed with `summary`: its counters are added and its levels kept.
    pub fn run_finished(&self, summary: &RunSummary, context: &RunContext) {
        // The ledger is read outside the lock: a scrape does not wait for the output.
        let observed = context.observe();
        let counters = run_counters(summary);
        let gauges = run_gauges(summary, &Observed::default());
        let mut state = self.state();
        state.counters.add_all(&counters);
        state.last_run = gauges;
        for (source, at) in observed.last_success {
            let kept = state.observed.last_success.entry(source).or_insert(at);
            *kept = (*kept).max(at);
        }
        state.observed.token_expiry = observed.token_expiry;
    }

    /// A fire time was handled; the metrics file is rewritten.
    pub fn tick(&self, outcome: &TickOutcome) {
        let outcome = match outcome {
            TickOutcome::Ran { .. } => "ran",
            TickOutcome::Skipped { .. } => "skipped",
            TickOutcome::Failed { .. } => "failed",
        };
        self.state().counters.add(&SCHEDULE_TICKS, vec![("outcome", outcome.to_owned())], 1.0);
        self.write_file();
    }

    /// Fire times passed during a run.
    pub fn missed(&self, count: u64) {
        self.state().counters.add(&SCHEDULE_TICKS, vec![("outcome", "missed".to_owned())], count as f64);
    }

    /// The scheduler waits for `at`; the metrics file is rewritten.
    pub fn next_run(&self, at: DateTime<Utc>) {
        self.state().next_run = Some(at);
        self.write_file();
    }

    /// The text of `/metrics`.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut live = build_info();
        live.set(&UP, vec![], 1.0);
        live.set(&SCHEDULE_IN_PROGRESS, vec![], f64::from(u8::from(state.running_since.is_some())));
        if let Some(since) = state.running_since {
            live.set(&SCHEDULE_RUN_STARTED, vec![], unix_seconds(since));
        }
        state.render(&live)
    }

    /// The text of the metrics file: without what only a live process can say (`kpipe_up`, the
    /// run in progress), which a file would keep saying after the process died.
    pub fn render_file(&self) -> String {
        self.state().render(&build_info())
    }

    fn write_file(&self) {
        let Some(path) = &self.file else { return };
        if let Err(e) = write_atomically(path, &self.render_file()) {
            tracing::error!(file = %path.display(), error = %e, "cannot write the metrics file");
        }
    }
}

impl State {
    fn render(&self, first: &Series) -> String {
        let mut own = observed_gauges(&self.observed);
        if let Some(at) = self.next_run {
            own.set(&SCHEDULE_NEXT_RUN, vec![], unix_seconds(at));
        }
        render(families::ALL, &[first, &self.counters, &self.last_run, &own])
    }
}

/// Marks the run in progress until dropped (whatever way the run ends).
#[derive(Debug)]
pub struct InProgress(Arc<ScheduleMetrics>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.state().running_since = None;
    }
}

/// Serves `metrics` on `http://<addr>/metrics` until the runtime stops; returns the address
/// bound (port 0 picks one).
pub async fn serve(addr: &str, metrics: Arc<ScheduleMetrics>) -> std::io::Result<SocketAddr> {
    use axum::http::header;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_says_what_is_running_and_the_file_does_not() {
        let metrics = Arc::new(ScheduleMetrics::new(None));
        metrics.next_run(
            DateTime::parse_from_rfc3339("2026-01-02T03:00:00Z").expect("a time").with_timezone(&Utc),
        );
        let running = metrics.run_started(Utc::now());
        let live = metrics.render();
        assert!(live.contains("kpipe_schedule_run_in_progress 1\n"), "{live}");
        assert!(live.contains("kpipe_up 1\n"), "{live}");
        assert!(live.contains("kpipe_schedule_ticks_total{outcome=\"missed\"} 0\n"), "{live}");
        assert!(live.contains("kpipe_schedule_next_run_timestamp_seconds 1767322800\n"), "{live}");
        drop(running);
        metrics.tick(&TickOutcome::Skipped { reason: "locked".into() });
        let live = metrics.render();
        assert!(live.contains("kpipe_schedule_run_in_progress 0\n"), "{live}");
        assert!(!live.contains("kpipe_schedule_run_started_timestamp_seconds"), "{live}");
        assert!(live.contains("kpipe_schedule_ticks_total{outcome=\"skipped\"} 1\n"), "{live}");
        let file = metrics.render_file();
        assert!(!file.contains("kpipe_up") && !file.contains("in_progress"), "{file}");
    }
}
