//! `kpipe plan`: what a run would pull, from the configuration and the ledger alone, without
//! calling any API: per source the window, the days missing, provisional (pulled again) and
//! final (skipped), the windows the run would request, the days per account the ledger knows,
//! the cursors per stream and account, and the requests the run would send with the share of
//! the platform's daily quota they take.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kpipe_core::{DateWindow, NaiveDate, RequestEstimate};

use crate::config::Config;
use crate::runner::{RunError, RunOptions, run_window};
use crate::state::{AccountDays, DayPlan, StateStore};

/// One source's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourcePlan {
    /// The configured name.
    pub name: String,
    /// The connector type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The source's window after its `start_date`; `None` when the window lies before it.
    pub window: Option<DateWindow>,
    /// The restatement horizon in effect, in days; `None`: never final.
    pub restatement_days: Option<u32>,
    /// What the ledger says of the window.
    pub days: DayPlan,
    /// Per account the ledger knows for this source, the days of the window with its rows.
    /// Every account is pulled for every day to pull.
    pub accounts: BTreeMap<String, AccountDays>,
    /// Per stream and account, the last day written.
    pub cursors: BTreeMap<String, BTreeMap<String, NaiveDate>>,
    /// What pulling the windows would cost; `None` for sources that send no requests, or when
    /// nothing will be pulled.
    pub estimate: Option<RequestEstimate>,
    /// The least time the estimated requests take at the source's pace, in seconds.
    pub least_seconds: Option<f64>,
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
    let state = StateStore::open_shard(&config.pipeline.open_storage()?, config.pipeline.split.shard)?;
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
        let estimate = if skipped.is_none() { s.source.estimate_requests(&days.pull) } else { None };
        sources.push(SourcePlan {
            name: s.name.clone(),
            kind: s.kind.clone(),
            window: source_window,
            restatement_days: s.restatement_days.or_else(|| s.source.restatement_days()),
            accounts: source_window.map(|w| state.account_days(&s.name, w)).unwrap_or_default(),
            cursors: state
                .cursors(&s.name)
                .into_iter()
                .map(|(stream, accounts)| {
                    (stream, accounts.into_iter().map(|(a, c)| (a, c.through)).collect())
                })
                .collect(),
            least_seconds: estimate.as_ref().and_then(RequestEstimate::least_time).map(|d| d.as_secs_f64()),
            estimate,
            days,
            skipped,
        });
    }
    Ok(RunPlan { window, sources })
}

impl RunPlan {
    /// A table for a terminal, then each source's accounts, cursors and cost.
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
        for s in &self.sources {
            let details = s.details();
            if !details.is_empty() {
                let _ = write!(out, "\n{} ({})\n{details}", s.name, s.kind);
            }
        }
        out
    }
}

impl SourcePlan {
    fn details(&self) -> String {
        let mut out = String::new();
        if self.days.periods_to_complete > 0 {
            let _ = writeln!(
                out,
                "  {} week(s) or month(s) published partial have ended: their last day is pulled to ask for them whole",
                self.days.periods_to_complete
            );
        }
        if let Some(estimate) = &self.estimate {
            let _ = writeln!(out, "  requests: {}", cost_line(estimate, self.least_seconds));
            for note in &estimate.notes {
                let _ = writeln!(out, "    {note}");
            }
        }
        if !self.accounts.is_empty() {
            let _ = writeln!(
                out,
                "  days with rows per account in the window (every account is pulled on each day to pull):"
            );
            for (account, days) in &self.accounts {
                let _ = writeln!(
                    out,
                    "    {account:<24} {} final, {} provisional, {} to pull",
                    days.final_days,
                    days.provisional_days,
                    self.days.days_to_pull()
                );
            }
        }
        if !self.cursors.is_empty() {
            let _ = writeln!(out, "  written through (cursor per stream and account):");
            for (stream, accounts) in &self.cursors {
                for (account, through) in accounts {
                    let _ = writeln!(out, "    {stream:<24} {account:<24} {through}");
                }
            }
        }
        out
    }
}

fn cost_line(estimate: &RequestEstimate, least_seconds: Option<f64>) -> String {
    let mut line = estimate.to_string();
    if let (Some(pace), Some(seconds)) = (estimate.pace, least_seconds) {
        let _ = write!(
            line,
            ", at least {} at {} per {:.0}s",
            duration_text(seconds),
            pace.requests,
            pace.per_ms as f64 / 1000.0
        );
    }
    match &estimate.daily_quota {
        Some(q) => {
            let (min, max) = q.share_percent();
            let share = match max {
                Some(max) if (max - min).abs() < 0.0005 => format!("{min:.3} %"),
                Some(max) => format!("{min:.3} to {max:.3} %"),
                None => format!("at least {min:.3} %"),
            };
            let _ = write!(line, "; daily quota: {share} of {} {} per {}", q.limit, q.unit, q.per);
        }
        None => line.push_str("; daily quota: none known"),
    }
    line
}

fn duration_text(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.1}s")
    } else if seconds < 7_200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3_600.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kpipe_core::{Pace, QuotaCost};

    use super::*;

    #[test]
    fn the_cost_names_the_pace_and_the_share_of_the_daily_quota() {
        let estimate = RequestEstimate {
            min_requests: 120,
            max_requests: None,
            pace: Some(Pace::new(10, Duration::from_secs(10), 1)),
            daily_quota: Some(QuotaCost {
                limit: 250_000,
                unit: "requests",
                per: "portal",
                min: 120,
                max: None,
            }),
            notes: Vec::new(),
        };
        let least = estimate.least_time().map(|d| d.as_secs_f64());
        assert_eq!(
            cost_line(&estimate, least),
            "120 or more request(s), at least 2.2 min at 10 per 10s; daily quota: at least 0.048 % of 250000 \
             requests per portal"
        );
        let exact = RequestEstimate::exactly(4);
        assert_eq!(cost_line(&exact, None), "4 request(s); daily quota: none known");
    }
}
