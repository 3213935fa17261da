//! Asynchronous insights (report runs, `shared/apis/facebook.md` §3) for large windows:
//! `POST /act_{id}/insights` starts a run, `GET /{report_run_id}` is polled until
//! `"Job Completed"` at 100 %, then `GET /{report_run_id}/insights` is paged like a synchronous
//! report. The runs of every account and level are started together (up to
//! `async_reports.runs_in_flight`), each polled on its own and its results read as soon as it
//! completes. The first poll comes after `poll_initial_ms`; the next ones when the run's
//! `async_percent_completion` so far says it should end, never more than double the previous
//! wait. A run that fails, is skipped or outlasts the timeout is abandoned and its range split
//! in two, down to single days, which fall back to a synchronous report.

use std::time::{Duration, Instant};

use kpipe_core::{DateWindow, Emitter, SourceError};
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use crate::client::{GraphObject, scrub};
use crate::config::ReportSettings;
use crate::forked::run_forked;
use crate::listing::ADS_STREAM;
use crate::normalize::Level;
use crate::pause::sleep;
use crate::run_polls::POLL_FIELDS;
use crate::source::FacebookSource;

/// How a report run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RunEnd {
    /// Its rows can be read.
    Completed(String),
    /// It failed or stalled; why.
    Abandoned(String),
}

/// `window` cut in two halves (the first one longer by a day when the days are odd).
fn halves(window: DateWindow) -> Option<(DateWindow, DateWindow)> {
    let days = window.num_days();
    if days < 2 {
        return None;
    }
    let first_end = window.start().checked_add_days(chrono::Days::new(days.div_ceil(2) - 1))?;
    let second_start = first_end.succ_opt()?;
    Some((
        DateWindow::new(window.start(), first_end).ok()?,
        DateWindow::new(second_start, window.end()).ok()?,
    ))
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The wait before the next poll of a run that is `percent` done (when it says) `elapsed` after
/// it started, the previous wait having been `previous`: when the run should end at the pace
/// it has kept so far, between `poll_initial` and double the previous wait (a run's
/// percentage is no promise: it may stall, so the waits still grow), at most `poll_max`.
fn next_poll_wait(
    previous: Duration,
    elapsed: Duration,
    percent: Option<f64>,
    settings: &ReportSettings,
) -> Duration {
    let doubled = previous.saturating_mul(2).min(settings.poll_max).max(settings.poll_initial);
    match percent {
        Some(p) if p > 0.0 && p < 100.0 => {
            let left = elapsed.mul_f64((100.0 - p) / p);
            left.clamp(settings.poll_initial, doubled)
        }
        _ => doubled,
    }
}

impl FacebookSource {
    /// The daily rows of every account at every level for `range`, through report runs: up to
    /// `runs_in_flight` of them started and polled at once, each one's results read as soon as
    /// it completes. `Ok(false)` when a page of results was quarantined.
    pub(crate) async fn reports_by_runs(
        &self,
        range: DateWindow,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let jobs: Vec<(usize, Level)> = (0..self.accounts.len())
            .flat_map(|account| self.settings.levels.iter().map(move |level| (account, *level)))
            .collect();
        let in_flight = usize::try_from(self.settings.reports.runs_in_flight).unwrap_or(1);
        // Runs wait side by side; their results are read a few at a time, as every listing is
        // ([`FacebookSource::readers`]).
        run_forked(out, jobs, in_flight, |(account, level), mut fork| async move {
            let read = self.report_by_runs(&self.accounts[account], level, range, &mut fork).await;
            (fork, read)
        })
        .await
    }

    /// The daily rows of one account at one level for `range`, through report runs.
    /// `Ok(false)` when a page of results could not be read and was quarantined.
    pub(crate) async fn report_by_runs(
        &self,
        account: &GraphObject,
        level: Level,
        range: DateWindow,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let mut pending = vec![range];
        let mut whole = true;
        while let Some(part) = pending.pop() {
            match self.run_report(account, level, part).await? {
                RunEnd::Completed(run) => {
                    let results = ApiRequest::get(&format!("{}/{run}/insights", self.settings.api_version));
                    whole &= self.read_insights(account, level, results, out).await?;
                }
                RunEnd::Abandoned(why) => match halves(part) {
                    Some((first, second)) => {
                        tracing::warn!(account = %account.id, level = level.label(), range = %part, %why,
                            "report run abandoned; splitting its range in two");
                        pending.push(second);
                        pending.push(first);
                    }
                    None => {
                        tracing::warn!(account = %account.id, level = level.label(), range = %part, %why,
                            "report run of one day abandoned; reading it synchronously");
                        whole &= self.sync_report(account, level, part, out).await?;
                    }
                },
            }
        }
        Ok(whole)
    }

    /// Starts a run for `range` and polls it to its end.
    async fn run_report(
        &self,
        account: &GraphObject,
        level: Level,
        range: DateWindow,
    ) -> Result<RunEnd, SourceError> {
        let mut body = json!({
            "level": level.api_name(),
            "fields": level.fields(),
            "time_increment": 1,
            "time_range": {"since": range.start().to_string(), "until": range.end().to_string()},
        });
        match &self.settings.attribution_windows {
            Some(windows) => body["action_attribution_windows"] = json!(windows),
            None => body["use_account_attribution_setting"] = json!(true),
        }
        let path = format!("{}/act_{}/insights", self.settings.api_version, account.id);
        // Starting a run only reads: sending it again after a failure is harmless.
        let start = ApiRequest::post_json(&path, body).idempotent(true).stream(ADS_STREAM);
        let response = account.call(&self.book, self.max_wait, start, &self.token).await?;
        let started: Value = response.json().map_err(|e| SourceError::data(scrub(&e.to_string())))?;
        let Some(run) = text_of(started.get("report_run_id")) else {
            return Err(SourceError::data(format!(
                "{}: the answer to starting a report run has no `report_run_id`: {}",
                response.url,
                scrub(&started.to_string()).chars().take(300).collect::<String>()
            )));
        };
        tracing::debug!(account = %account.id, level = level.label(), %range, %run, "report run started");
        let settings = self.settings.reports;
        // Polls of runs in flight together go in batches; the account's place says whose client
        // sends them.
        let index = self.accounts.iter().position(|a| a.id == account.id);
        let started_at = Instant::now();
        let deadline = started_at + settings.timeout;
        let mut wait = settings.poll_initial;
        loop {
            sleep(wait).await;
            let batched = match index {
                Some(index) => self.polls.status(self, index, &run).await,
                None => None,
            };
            let (status, location) = match batched {
                Some(status) => (status, format!("the batch poll of report run {run}")),
                None => {
                    let poll = ApiRequest::get(&format!("{}/{run}", self.settings.api_version))
                        .query("fields", POLL_FIELDS)
                        .stream(ADS_STREAM);
                    let response = account.call(&self.book, self.max_wait, poll, &self.token).await?;
                    let status: Value =
                        response.json().map_err(|e| SourceError::data(scrub(&e.to_string())))?;
                    (status, response.url)
                }
            };
            let state = status.get("async_status").and_then(Value::as_str).unwrap_or_default();
            let percent = text_of(status.get("async_percent_completion")).and_then(|p| p.parse::<f64>().ok());
            match state {
                "Job Completed" if percent.is_some_and(|p| p >= 100.0) => return Ok(RunEnd::Completed(run)),
                "Job Failed" | "Job Skipped" => return Ok(RunEnd::Abandoned(format!("run {run}: {state}"))),
                "" => {
                    return Err(SourceError::data(format!(
                        "{location}: the report run's status has no `async_status`"
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Ok(RunEnd::Abandoned(format!(
                        "run {run} still {state:?} at {}% after {} s",
                        percent.unwrap_or(0.0),
                        settings.timeout.as_secs()
                    )));
                }
                _ => wait = next_poll_wait(wait, started_at.elapsed(), percent, &settings),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn window(a: &str, b: &str) -> DateWindow {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        DateWindow::new(d(a), d(b)).unwrap()
    }

    fn settings(initial_ms: u64, max_ms: u64) -> ReportSettings {
        ReportSettings {
            after_days: 7,
            slice_days: 30,
            poll_initial: Duration::from_millis(initial_ms),
            poll_max: Duration::from_millis(max_ms),
            timeout: Duration::from_secs(900),
            runs_in_flight: 50,
        }
    }

    #[test]
    fn polls_come_when_the_run_should_end_within_double_the_last_wait() {
        let s = settings(250, 30_000);
        let ms = Duration::from_millis;
        // No percentage (or none yet): the wait doubles up to the longest.
        assert_eq!(next_poll_wait(ms(250), ms(300), None, &s), ms(500));
        assert_eq!(next_poll_wait(ms(250), ms(300), Some(0.0), &s), ms(500));
        assert_eq!(next_poll_wait(ms(20_000), ms(60_000), None, &s), ms(30_000));
        // Half done after 1 s: it should end in another second, within double the last wait.
        assert_eq!(next_poll_wait(ms(1_000), ms(1_000), Some(50.0), &s), ms(1_000));
        assert_eq!(next_poll_wait(ms(250), ms(1_000), Some(50.0), &s), ms(500));
        // Nearly done: the shortest wait.
        assert_eq!(next_poll_wait(ms(1_000), ms(2_000), Some(99.0), &s), ms(250));
        // Barely started: no more than double the last wait.
        assert_eq!(next_poll_wait(ms(500), ms(800), Some(1.0), &s), ms(1_000));
    }

    #[test]
    fn ranges_split_in_halves_down_to_a_day() {
        let (a, b) = halves(window("2026-03-01", "2026-03-05")).unwrap();
        assert_eq!((a, b), (window("2026-03-01", "2026-03-03"), window("2026-03-04", "2026-03-05")));
        let (a, b) = halves(window("2026-03-01", "2026-03-02")).unwrap();
        assert_eq!((a.num_days(), b.num_days()), (1, 1));
        assert!(halves(window("2026-03-01", "2026-03-01")).is_none());
    }
}
