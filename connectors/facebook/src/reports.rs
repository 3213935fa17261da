//! Asynchronous insights (report runs, `shared/apis/facebook.md` §3) for large windows:
//! `POST /act_{id}/insights` starts a run, `GET /{report_run_id}` is polled with a doubling wait
//! until `"Job Completed"` at 100 %, then `GET /{report_run_id}/insights` is paged like a
//! synchronous report. A run that fails, is skipped or outlasts the timeout is abandoned and
//! its range split in two, down to single days, which fall back to a synchronous report.

use std::time::Instant;

use kpipe_core::{DateWindow, Emitter, SourceError};
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use crate::client::{GraphObject, scrub};
use crate::listing::ADS_STREAM;
use crate::normalize::Level;
use crate::pause::sleep;
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

impl FacebookSource {
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
        let deadline = Instant::now() + settings.timeout;
        let mut wait = settings.poll_initial;
        loop {
            sleep(wait).await;
            let poll = ApiRequest::get(&format!("{}/{run}", self.settings.api_version))
                .query("fields", "id,async_status,async_percent_completion")
                .stream(ADS_STREAM);
            let response = account.call(&self.book, self.max_wait, poll, &self.token).await?;
            let status: Value = response.json().map_err(|e| SourceError::data(scrub(&e.to_string())))?;
            let state = status.get("async_status").and_then(Value::as_str).unwrap_or_default();
            let percent = text_of(status.get("async_percent_completion")).and_then(|p| p.parse::<f64>().ok());
            match state {
                "Job Completed" if percent.is_some_and(|p| p >= 100.0) => return Ok(RunEnd::Completed(run)),
                "Job Failed" | "Job Skipped" => return Ok(RunEnd::Abandoned(format!("run {run}: {state}"))),
                "" => {
                    return Err(SourceError::data(format!(
                        "{}: the report run's status has no `async_status`",
                        response.url
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Ok(RunEnd::Abandoned(format!(
                        "run {run} still {state:?} at {}% after {} s",
                        percent.unwrap_or(0.0),
                        settings.timeout.as_secs()
                    )));
                }
                _ => wait = (wait * 2).min(settings.poll_max),
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

    #[test]
    fn ranges_split_in_halves_down_to_a_day() {
        let (a, b) = halves(window("2026-03-01", "2026-03-05")).unwrap();
        assert_eq!((a, b), (window("2026-03-01", "2026-03-03"), window("2026-03-04", "2026-03-05")));
        let (a, b) = halves(window("2026-03-01", "2026-03-02")).unwrap();
        assert_eq!((a.num_days(), b.num_days()), (1, 1));
        assert!(halves(window("2026-03-01", "2026-03-01")).is_none());
    }
}
