//! Asynchronous insights report runs (`shared/apis/facebook.md` §3): `POST /act_{id}/insights`
//! answers `{"report_run_id": "<id>"}`; `GET /{report_run_id}` reports `async_status` and
//! `async_percent_completion` (an integer), which advance one step per poll; once
//! `"Job Completed"` at 100, `GET /{report_run_id}/insights` pages the rows like a synchronous
//! report. Jobs can be scripted to fail (`"Job Failed"`) or to stay running forever.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::insights::ReportSpec;

/// How report runs behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRunBehaviour {
    /// Polls before a job reports `"Job Completed"` (at least 1).
    pub polls_to_complete: u32,
    /// Jobs (numbered from 1 in creation order on a server) that end `"Job Failed"`.
    pub failing_jobs: Vec<u64>,
    /// Jobs that stay `"Job Running"` at the same percentage forever.
    pub stuck_jobs: Vec<u64>,
}

impl Default for ReportRunBehaviour {
    fn default() -> Self {
        Self { polls_to_complete: 2, failing_jobs: Vec::new(), stuck_jobs: Vec::new() }
    }
}

/// How a job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Completes,
    Fails,
    Stuck,
}

/// One report run.
#[derive(Debug, Clone)]
pub(crate) struct ReportRun {
    pub(crate) id: String,
    pub(crate) account_id: String,
    pub(crate) spec: ReportSpec,
    fate: Fate,
    polls: u32,
    created_at: i64,
}

impl ReportRun {
    /// Whether its rows can be read.
    pub(crate) fn completed(&self, behaviour: &ReportRunBehaviour) -> bool {
        self.fate == Fate::Completes && self.polls >= behaviour.polls_to_complete.max(1)
    }
}

/// The report runs of one server.
#[derive(Debug, Default)]
pub(crate) struct ReportRuns {
    runs: HashMap<String, ReportRun>,
    created: u64,
}

/// What a poll saw, for the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    Running,
    Completed,
    Failed,
}

impl ReportRuns {
    /// Starts a run; returns its id and creation number.
    pub(crate) fn start(
        &mut self,
        account_id: &str,
        spec: ReportSpec,
        behaviour: &ReportRunBehaviour,
        now_unix: i64,
    ) -> (String, u64) {
        self.created += 1;
        let number = self.created;
        let fate = if behaviour.failing_jobs.contains(&number) {
            Fate::Fails
        } else if behaviour.stuck_jobs.contains(&number) {
            Fate::Stuck
        } else {
            Fate::Completes
        };
        let id = (6_120_000_000_000u64 + number).to_string();
        let run = ReportRun {
            id: id.clone(),
            account_id: account_id.to_owned(),
            spec,
            fate,
            polls: 0,
            created_at: now_unix,
        };
        self.runs.insert(id.clone(), run);
        (id, number)
    }

    /// The run called `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&ReportRun> {
        self.runs.get(id)
    }

    /// One poll of `id`: the `AdReportRun` object (default fields) after advancing the job.
    pub(crate) fn poll(
        &mut self,
        id: &str,
        behaviour: &ReportRunBehaviour,
        now_unix: i64,
    ) -> Option<(Value, PollOutcome)> {
        let run = self.runs.get_mut(id)?;
        run.polls = run.polls.saturating_add(1);
        let needed = behaviour.polls_to_complete.max(1);
        let (status, percent, outcome) = match run.fate {
            Fate::Fails => ("Job Failed", 0, PollOutcome::Failed),
            Fate::Stuck => ("Job Running", 42, PollOutcome::Running),
            Fate::Completes if run.polls >= needed => ("Job Completed", 100, PollOutcome::Completed),
            Fate::Completes if run.polls == 1 => ("Job Started", 0, PollOutcome::Running),
            Fate::Completes => ("Job Running", 100 * (run.polls - 1) / needed, PollOutcome::Running),
        };
        let completed = if outcome == PollOutcome::Completed { now_unix } else { 0 };
        let body = json!({
            "id": run.id,
            "account_id": run.account_id,
            "time_ref": run.created_at,
            "time_completed": completed,
            "async_status": status,
            "async_percent_completion": percent,
            "date_start": run.spec.since.to_string(),
            "date_stop": run.spec.until.to_string(),
        });
        Some((body, outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::facebook::data::InsightsLevel;
    use chrono::NaiveDate;

    fn spec() -> ReportSpec {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        ReportSpec {
            level: InsightsLevel::Ad,
            fields: vec![],
            since: d,
            until: d,
            windows: vec![],
            ranges: None,
        }
    }

    /// shared/apis/facebook.md §3: `async_status` values and an integer percentage.
    #[test]
    fn jobs_advance_per_poll_and_scripted_ones_fail_or_stall() {
        let behaviour =
            ReportRunBehaviour { polls_to_complete: 3, failing_jobs: vec![2], stuck_jobs: vec![3] };
        let mut runs = ReportRuns::default();
        let (ok, _) = runs.start("1", spec(), &behaviour, 100);
        let (failing, _) = runs.start("1", spec(), &behaviour, 100);
        let (stuck, n) = runs.start("1", spec(), &behaviour, 100);
        assert_eq!(n, 3);
        let statuses: Vec<(Value, Value)> = (0..3)
            .map(|_| {
                let (body, _) = runs.poll(&ok, &behaviour, 200).unwrap();
                (body["async_status"].clone(), body["async_percent_completion"].clone())
            })
            .collect();
        assert_eq!(statuses[0], (json!("Job Started"), json!(0)));
        assert_eq!(statuses[1], (json!("Job Running"), json!(33)));
        assert_eq!(statuses[2], (json!("Job Completed"), json!(100)));
        assert!(runs.get(&ok).unwrap().completed(&behaviour));
        assert_eq!(runs.poll(&failing, &behaviour, 200).unwrap().1, PollOutcome::Failed);
        for _ in 0..10 {
            assert_eq!(runs.poll(&stuck, &behaviour, 200).unwrap().1, PollOutcome::Running);
        }
        assert!(runs.poll("nope", &behaviour, 200).is_none());
    }
}
