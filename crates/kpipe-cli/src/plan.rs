//! `kpipe plan`: what a run would pull, from the configuration and the ledger alone, without
//! calling any API: per source the window, the days missing, provisional (pulled again) and
//! final (skipped), and the windows the run would request.

use std::fmt::Write as _;

use kpipe_core::DateWindow;

use crate::config::Config;
use crate::runner::{RunError, RunOptions, run_window};
use crate::state::{DayPlan, StateStore};

/// One source's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourcePlan {
    /// The configured name.
    pub name: String,
    /// The connector type.
    pub kind: String,
    /// The source's window after its `start_date`; `None` when the window lies before it.
    pub window: Option<DateWindow>,
    /// The restatement horizon in effect, in days; `None`: never final.
    pub restatement_days: Option<u32>,
    /// What the ledger says of the window.
    pub days: DayPlan,
    /// Why it will not run, if it will not.
    pub skipped: Option<String>,
}

/// A whole run's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunPlan {
    /// The run's window.
    pub window: DateWindow,
    /// Per source, in name order.
    pub sources: Vec<SourcePlan>,
}

/// The plan of a run of `config` with `options`.
pub fn plan(config: &Config, options: &RunOptions) -> Result<RunPlan, RunError> {
    let window = run_window(options, config.pipeline.lookback_days)?;
    let state = StateStore::open(&config.pipeline.output)?;
    let mut sources = Vec::new();
    for s in &config.sources {
        if options.only.as_ref().is_some_and(|o| o != &s.name) {
            continue;
        }
        let floor = s.start_date.or(config.pipeline.start_date);
        let source_window = floor.map_or(Some(window), |f| window.clamp_start(f));
        let days = source_window.map(|w| state.plan(&s.name, w, options.full_refresh)).unwrap_or_default();
        let skipped = if !s.enabled {
            Some("disabled".to_owned())
        } else if source_window.is_none() {
            Some("the window ends before its start_date".to_owned())
        } else if days.pull.is_empty() {
            Some("every day is final".to_owned())
        } else {
            None
        };
        sources.push(SourcePlan {
            name: s.name.clone(),
            kind: s.kind.clone(),
            window: source_window,
            restatement_days: s.restatement_days.or_else(|| s.source.restatement_days()),
            days,
            skipped,
        });
    }
    Ok(RunPlan { window, sources })
}

impl RunPlan {
    /// A table for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "a run now would cover {}", self.window);
        let _ = writeln!(
            out,
            "{:<16} {:<16} {:>8} {:>8} {:>11} {:>8}  windows to pull",
            "source", "type", "horizon", "missing", "provisional", "final"
        );
        for s in &self.sources {
            let horizon = s.restatement_days.map_or_else(|| "never".to_owned(), |d| format!("{d}d"));
            let windows = match &s.skipped {
                Some(why) => format!("none: {why}"),
                None => s.days.pull.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            };
            let _ = writeln!(
                out,
                "{:<16} {:<16} {:>8} {:>8} {:>11} {:>8}  {windows}",
                s.name, s.kind, horizon, s.days.missing, s.days.provisional, s.days.skipped_final
            );
        }
        out
    }
}
