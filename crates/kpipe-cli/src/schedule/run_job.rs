//! What each fire time of `kpipe schedule` runs: the pipeline of `kpipe run`, and the
//! stages after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use kpipe_core::BoxFuture;

use super::scheduler::{Job, Tick, TickOutcome};
use crate::config::{self, Config};
use crate::lock::{LockError, RunLock};
use crate::run_metrics::{RunContext, ScheduleMetrics};
use crate::runner::{self, Quiet, RunError, RunObserver, RunOptions};
use crate::summary::RunSummary;

/// Ends a run's later stages, with the run's summary, while the run's output lock is still held;
/// false when such a stage failed.
pub type FinishStages = Box<dyn FnOnce(&mut RunSummary, &RunLock) -> bool + Send>;

/// The stages `kpipe run` runs beside and after the pipeline (the KPIs), prepared before a run
/// (which consumes the configuration).
pub struct RunStages {
    /// Observes the run: the stages start with it and take each source as it is done.
    pub observer: Arc<dyn RunObserver>,
    /// Ends them.
    pub finish: FinishStages,
}

impl std::fmt::Debug for RunStages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStages").finish_non_exhaustive()
    }
}

/// Makes the [`RunStages`] of a run.
pub type AfterRunHook = dyn Fn(&Config, &RunOptions) -> RunStages + Send + Sync;

/// Where `${NAME}` values of the configuration come from.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The job of `kpipe schedule`: what `kpipe run -c FILE` does, with default options. The
/// configuration is read again for every run, so that edits and rotated secrets take effect.
pub struct RunJob {
    /// The configuration file.
    pub config: PathBuf,
    /// Where each run's summary goes as JSON, if anywhere.
    pub summary_dir: Option<PathBuf>,
    /// Stages after the pipeline, as `kpipe run` has them.
    pub after_run: Option<Arc<AfterRunHook>>,
    /// Where `${NAME}` values come from.
    pub env: Arc<EnvLookup>,
    /// Told when a run starts and what it did, for `/metrics` and the metrics file.
    pub metrics: Option<Arc<ScheduleMetrics>>,
}

impl std::fmt::Debug for RunJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunJob")
            .field("config", &self.config)
            .field("summary_dir", &self.summary_dir)
            .finish_non_exhaustive()
    }
}

impl RunJob {
    /// The job of `kpipe run -c config`, reading the process environment.
    pub fn new(config: PathBuf) -> RunJob {
        RunJob {
            config,
            summary_dir: None,
            after_run: None,
            env: Arc::new(|name| std::env::var(name).ok()),
            metrics: None,
        }
    }

    async fn run_once(&self) -> TickOutcome {
        let (cfg, records) = match config::load_with_token_records(&self.config, self.env.as_ref()) {
            Ok(loaded) => loaded,
            Err(e) => return TickOutcome::Failed { reason: format!("configuration error: {e}") },
        };
        let options = RunOptions::new(Utc::now().date_naive());
        let stages = self.after_run.as_ref().map(|hook| hook(&cfg, &options));
        let observer: Arc<dyn RunObserver> = match &stages {
            Some(stages) => stages.observer.clone(),
            None => Arc::new(Quiet),
        };
        let after = stages.map(|stages| stages.finish);
        let metrics = self.metrics.as_ref().map(|m| (m, RunContext::new(&cfg, &records)));
        let _in_progress = metrics.as_ref().map(|(m, _)| m.run_started(Utc::now()));
        let (mut summary, lock) = match runner::run_locked(cfg, options, observer).await {
            Ok(s) => s,
            Err(RunError::Locked(e @ LockError::Busy { .. })) => {
                return TickOutcome::Skipped { reason: e.to_string() };
            }
            Err(e) => return TickOutcome::Failed { reason: e.to_string() },
        };
        print!("{}", crate::redact::text(&summary.render()));
        let after_ok = after.is_none_or(|after| after(&mut summary, &lock));
        drop(lock);
        if let Some(dir) = &self.summary_dir {
            match write_summary(dir, &summary) {
                Ok(path) => tracing::info!(file = %path.display(), "run summary written"),
                Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot write the run summary"),
            }
        }
        if let Some((metrics, context)) = &metrics {
            metrics.run_finished(&summary, context);
        }
        // The same rule as `kpipe run`: a failed later stage turns a clean run into exit 1.
        let code = if after_ok || summary.exit_code() != 0 { summary.exit_code() } else { 1 };
        TickOutcome::Ran { exit_code: u8::try_from(code).unwrap_or(1) }
    }
}

impl Job for RunJob {
    fn run(&mut self, _tick: Tick) -> BoxFuture<'_, TickOutcome> {
        Box::pin(self.run_once())
    }
}

/// Writes `summary` as `<dir>/run-<start time>-<run id>.json`, whole or not at all (a temporary
/// file renamed into place), and returns its path.
pub fn write_summary(dir: &Path, summary: &RunSummary) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = format!("run-{}-{}.json", summary.started_at.format("%Y%m%dT%H%M%SZ"), summary.run_id);
    let path = dir.join(&name);
    let temp = dir.join(format!(".{name}.tmp"));
    let json = crate::redact::summary_json(summary).map_err(std::io::Error::other)?;
    std::fs::write(&temp, json)?;
    std::fs::rename(&temp, &path)?;
    Ok(path)
}
