//! Asynchronous insights report runs (`shared/apis/facebook.md` §3): `POST /act_{id}/insights`
//! answers `{"report_run_id": "<id>"}`; `GET /{report_run_id}` reports `async_status` and
//! `async_percent_completion` (an integer), which advance one step per poll, or with the time
//! since the run was created ([`ReportRunBehaviour::run_time`]), as Meta's do; once
//! `"Job Completed"` at 100, `GET /{report_run_id}/insights` pages the rows like a synchronous
//! report. Jobs can be scripted to fail (`"Job Failed"`) or to stay running forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::insights::ReportSpec;

/// How report runs behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRunBehaviour {
    /// Polls before a job reports `"Job Completed"` (at least 1); ignored when
    /// [`ReportRunBehaviour::run_time`] is set.
    pub polls_to_complete: u32,
    /// How long a job takes on the server's clock, however often it is polled: it is
    /// `"Job Not Started"` or `"Job Started"` at first, then `"Job Running"` at the share of
    /// this time gone by, and `"Job Completed"` (its rows readable) once it has passed. `None`:
    /// jobs advance per poll ([`ReportRunBehaviour::polls_to_complete`]).
    pub run_time: Option<Duration>,
    /// Jobs (numbered from 1 in creation order on a server) that end `"Job Failed"`.
    pub failing_jobs: Vec<u64>,
    /// Jobs that stay `"Job Running"` at the same percentage forever.
    pub stuck_jobs: Vec<u64>,
}

impl Default for ReportRunBehaviour {
    fn default() -> Self {
        Self { polls_to_complete: 2, run_time: None, failing_jobs: Vec::new(), stuck_jobs: Vec::new() }
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
    /// When it was created on the server's monotonic clock: `created_at` has whole seconds only.
    created: Instant,
}

impl ReportRun {
    /// Whether its rows can be read at `now`.
    pub(crate) fn completed(&self, behaviour: &ReportRunBehaviour, now: Instant) -> bool {
        if self.fate != Fate::Completes {
            return false;
        }
        match behaviour.run_time {
            Some(run_time) => now.saturating_duration_since(self.created) >= run_time,
            None => self.polls >= behaviour.polls_to_complete.max(1),
        }
    }

    /// How far along a job that is to complete is at `now`: status and percentage.
    fn progress(&self, behaviour: &ReportRunBehaviour, now: Instant) -> (&'static str, u64, PollOutcome) {
        if self.completed(behaviour, now) {
            return ("Job Completed", 100, PollOutcome::Completed);
        }
        match behaviour.run_time {
            Some(run_time) => {
                let elapsed = now.saturating_duration_since(self.created).as_nanos();
                // Below 100 until `completed` says otherwise (`run_time` is not zero here).
                let percent = (100 * elapsed / run_time.as_nanos().max(1)).min(99);
                match u64::try_from(percent).unwrap_or(99) {
                    0 if self.polls <= 1 => ("Job Not Started", 0, PollOutcome::Running),
                    0 => ("Job Started", 0, PollOutcome::Running),
                    p => ("Job Running", p, PollOutcome::Running),
                }
            }
            None if self.polls == 1 => ("Job Started", 0, PollOutcome::Running),
            None => (
                "Job Running",
                u64::from(100 * (self.polls - 1) / behaviour.polls_to_complete.max(1)),
                PollOutcome::Running,
            ),
        }
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
    /// Starts a run at `now` (`now_unix` on the wall clock); returns its id and creation number.
    pub(crate) fn start(
        &mut self,
        account_id: &str,
        spec: ReportSpec,
        behaviour: &ReportRunBehaviour,
        now_unix: i64,
        now: Instant,
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
            created: now,
        };
        self.runs.insert(id.clone(), run);
        (id, number)
    }

    /// The run called `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&ReportRun> {
        self.runs.get(id)
    }

    /// One poll of `id` at `now` (`now_unix` on the wall clock): the `AdReportRun` object
    /// (default fields) after advancing the job.
    pub(crate) fn poll(
        &mut self,
        id: &str,
        behaviour: &ReportRunBehaviour,
        now_unix: i64,
        now: Instant,
    ) -> Option<(Value, PollOutcome)> {
        let run = self.runs.get_mut(id)?;
        run.polls = run.polls.saturating_add(1);
        let (status, percent, outcome) = match run.fate {
            Fate::Fails => ("Job Failed", 0, PollOutcome::Failed),
            Fate::Stuck => ("Job Running", 42, PollOutcome::Running),
            Fate::Completes => run.progress(behaviour, now),
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
        let behaviour = ReportRunBehaviour {
            polls_to_complete: 3,
            failing_jobs: vec![2],
            stuck_jobs: vec![3],
            ..ReportRunBehaviour::default()
        };
        let now = Instant::now();
        let mut runs = ReportRuns::default();
        let (ok, _) = runs.start("1", spec(), &behaviour, 100, now);
        let (failing, _) = runs.start("1", spec(), &behaviour, 100, now);
        let (stuck, n) = runs.start("1", spec(), &behaviour, 100, now);
        assert_eq!(n, 3);
        let statuses: Vec<(Value, Value)> = (0..3)
            .map(|_| {
                let (body, _) = runs.poll(&ok, &behaviour, 200, now).unwrap();
                (body["async_status"].clone(), body["async_percent_completion"].clone())
            })
            .collect();
        assert_eq!(statuses[0], (json!("Job Started"), json!(0)));
        assert_eq!(statuses[1], (json!("Job Running"), json!(33)));
        assert_eq!(statuses[2], (json!("Job Completed"), json!(100)));
        assert!(runs.get(&ok).unwrap().completed(&behaviour, now));
        assert_eq!(runs.poll(&failing, &behaviour, 200, now).unwrap().1, PollOutcome::Failed);
        for _ in 0..10 {
            assert_eq!(runs.poll(&stuck, &behaviour, 200, now).unwrap().1, PollOutcome::Running);
        }
        assert!(runs.poll("nope", &behaviour, 200, now).is_none());
    }

    fn status(
        runs: &mut ReportRuns,
        id: &str,
        behaviour: &ReportRunBehaviour,
        at: Instant,
    ) -> (Value, Value) {
        let (body, _) = runs.poll(id, behaviour, 200, at).unwrap();
        (body["async_status"].clone(), body["async_percent_completion"].clone())
    }

    /// With a run time, the percentage follows the clock, not the number of polls.
    #[test]
    fn timed_jobs_progress_with_the_time_since_their_creation() {
        let run_time = Duration::from_secs(2);
        let behaviour = ReportRunBehaviour {
            run_time: Some(run_time),
            polls_to_complete: 1,
            failing_jobs: vec![2],
            ..ReportRunBehaviour::default()
        };
        let created = Instant::now();
        let after = |ms| created + Duration::from_millis(ms);
        let mut runs = ReportRuns::default();
        let (id, _) = runs.start("1", spec(), &behaviour, 100, created);
        let (failing, _) = runs.start("1", spec(), &behaviour, 100, created);

        // However often it is polled, a job does not complete before its time.
        assert_eq!(status(&mut runs, &id, &behaviour, created), (json!("Job Not Started"), json!(0)));
        assert_eq!(status(&mut runs, &id, &behaviour, after(10)), (json!("Job Started"), json!(0)));
        for _ in 0..5 {
            assert_eq!(status(&mut runs, &id, &behaviour, after(19)), (json!("Job Started"), json!(0)));
        }
        assert_eq!(status(&mut runs, &id, &behaviour, after(500)), (json!("Job Running"), json!(25)));
        assert_eq!(status(&mut runs, &id, &behaviour, after(1_500)), (json!("Job Running"), json!(75)));
        assert_eq!(status(&mut runs, &id, &behaviour, after(1_999)), (json!("Job Running"), json!(99)));
        assert!(!runs.get(&id).unwrap().completed(&behaviour, after(1_999)));

        // Readable once the time has passed, polled or not.
        assert!(runs.get(&id).unwrap().completed(&behaviour, after(2_000)));
        let (body, outcome) = runs.poll(&id, &behaviour, 205, after(2_000)).unwrap();
        assert_eq!((body["async_status"].clone(), outcome), (json!("Job Completed"), PollOutcome::Completed));
        assert_eq!(
            (body["async_percent_completion"].clone(), body["time_completed"].clone()),
            (json!(100), json!(205))
        );

        // Scripted failures fail whatever the time.
        assert_eq!(runs.poll(&failing, &behaviour, 200, after(5_000)).unwrap().1, PollOutcome::Failed);
        assert!(!runs.get(&failing).unwrap().completed(&behaviour, after(5_000)));
    }

    #[test]
    fn a_timed_job_completes_once_its_run_time_has_passed_on_the_real_clock() {
        let behaviour =
            ReportRunBehaviour { run_time: Some(Duration::from_millis(5)), ..ReportRunBehaviour::default() };
        let mut runs = ReportRuns::default();
        let (id, _) = runs.start("1", spec(), &behaviour, 100, Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        assert!(runs.get(&id).unwrap().completed(&behaviour, Instant::now()));
        assert_eq!(runs.poll(&id, &behaviour, 200, Instant::now()).unwrap().1, PollOutcome::Completed);
    }
}
