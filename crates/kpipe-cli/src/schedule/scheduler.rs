//! The cron loop: waits for each fire time, runs the job, never overlaps runs, and stops on
//! signals.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kpipe_core::BoxFuture;
use tokio::sync::mpsc;

use super::cron::{CronSchedule, ScheduleError};
use crate::run_metrics::ScheduleMetrics;

/// The longest single sleep: the wall clock is looked at again at least this often, so that a
/// suspended machine or a clock step does not delay a fire time by more than this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Where the scheduler reads the time and waits.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Returns at `deadline` or soon after.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Timers run on a monotonic clock that stops while the machine sleeps; the fire
            // time is wall-clock time, so wake up now and then and look again.
            while let Ok(left) = (deadline - Utc::now()).to_std() {
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(MAX_SLEEP)).await;
            }
        })
    }
}

/// A fire time the scheduler acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// 1 for the first.
    pub number: u64,
    /// The fire time (the start time for `--run-now`).
    pub scheduled_for: DateTime<Utc>,
}

/// How a tick ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// The pipeline ran; `exit_code` is what `kpipe run` would have exited with.
    Ran {
        /// 0, 1 or 3, as for `kpipe run`.
        exit_code: u8,
    },
    /// Not run because the output is in use by another run; not queued.
    Skipped {
        /// Who holds the lock, as the lock says.
        reason: String,
    },
    /// Not run because of an error before the run (the configuration became invalid, ...).
    Failed {
        /// Why.
        reason: String,
    },
}

/// What a tick does.
pub trait Job: Send {
    /// Runs once for `tick`. Dropping the future aborts the run.
    fn run(&mut self, tick: Tick) -> BoxFuture<'_, TickOutcome>;
}

/// A request to stop, forwarded from the operating system's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM (a service manager, `kill`, Kubernetes).
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

/// Why the scheduler stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A signal, with no run in flight or after the run in flight finished.
    Signal,
    /// `max_runs` fire times were handled.
    MaxRuns,
    /// A second signal arrived during a run, which was dropped unfinished.
    Aborted,
}

/// What the scheduler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Fire times handled (ran, skipped or failed).
    pub ticks: u64,
    /// Runs that happened.
    pub ran: u64,
    /// Ticks skipped because the output was locked.
    pub skipped: u64,
    /// Fire times that passed while a run was still going (not run, not queued).
    pub missed: u64,
    /// Ticks that could not start a run.
    pub failed: u64,
    /// Why it stopped.
    pub stopped: Stopped,
}

/// The cron loop.
#[derive(Debug, Clone)]
pub struct Scheduler {
    /// When to run.
    pub schedule: CronSchedule,
    /// Run once at start, then follow the schedule.
    pub run_now: bool,
    /// Stop after this many fire times (runs, skips and failures all count).
    pub max_runs: Option<u64>,
    /// Told about fire times and their outcomes, for `/metrics` and the metrics file.
    pub metrics: Option<Arc<ScheduleMetrics>>,
}

impl Scheduler {
    /// Runs `job` at each fire time until a signal arrives on `signals` or `max_runs` fire times
    /// were handled. A closed `signals` channel only means no more signals will come.
    pub async fn run(
        &self,
        clock: &dyn Clock,
        job: &mut dyn Job,
        signals: &mut mpsc::Receiver<StopSignal>,
    ) -> Result<Report, ScheduleError> {
        let mut report =
            Report { ticks: 0, ran: 0, skipped: 0, missed: 0, failed: 0, stopped: Stopped::MaxRuns };
        let mut signals_open = true;
        let mut run_now = self.run_now;
        loop {
            if self.max_runs.is_some_and(|max| report.ticks >= max) {
                tracing::info!(ticks = report.ticks, "stopping: --max-runs reached");
                return Ok(report);
            }
            // Told before the log line: whoever reads one finds the other up to date.
            let expect = |at| {
                if let Some(metrics) = &self.metrics {
                    metrics.next_run(at);
                }
            };
            let fire_at = if run_now {
                let now = clock.now();
                expect(now);
                now
            } else {
                let now = clock.now();
                let next = self.schedule.next_after(now)?;
                expect(next);
                let wait = (next - now).to_std().unwrap_or_default();
                tracing::info!(
                    next_run = %self.schedule.local(next),
                    in_seconds = wait.as_secs(),
                    "waiting for the next run"
                );
                next
            };
            let was_run_now = std::mem::replace(&mut run_now, false);
            tokio::select! {
                biased;
                signal = signals.recv(), if signals_open => match signal {
                    Some(signal) => {
                        tracing::info!(?signal, "stopping: no run in flight");
                        report.stopped = Stopped::Signal;
                        return Ok(report);
                    }
                    // No signal can come any more; the sleep below is awaited next time round.
                    None => {
                        signals_open = false;
                        run_now = was_run_now;
                        continue;
                    }
                },
                () = clock.sleep_until(fire_at) => {}
            }

            report.ticks += 1;
            let tick = Tick { number: report.ticks, scheduled_for: fire_at };
            let mut stopping = false;
            let outcome = {
                let mut run = job.run(tick);
                loop {
                    tokio::select! {
                        biased;
                        outcome = &mut run => break outcome,
                        signal = signals.recv(), if signals_open => match signal {
                            None => signals_open = false,
                            Some(signal) if stopping => {
                                tracing::warn!(
                                    ?signal,
                                    "second signal: aborting the run in flight; nothing of it is published, \
                                     the next run pulls its window again"
                                );
                                report.stopped = Stopped::Aborted;
                                return Ok(report);
                            }
                            Some(signal) => {
                                stopping = true;
                                tracing::info!(
                                    ?signal,
                                    "stopping after the run in flight finishes (a second signal aborts it)"
                                );
                            }
                        },
                    }
                }
            };
            match &outcome {
                TickOutcome::Ran { exit_code } => {
                    report.ran += 1;
                    tracing::info!(tick = tick.number, exit_code, "scheduled run finished");
                }
                TickOutcome::Skipped { reason } => {
                    report.skipped += 1;
                    tracing::warn!(tick = tick.number, %reason, "scheduled run skipped; it is not queued");
                }
                TickOutcome::Failed { reason } => {
                    report.failed += 1;
                    tracing::error!(tick = tick.number, %reason, "scheduled run could not start");
                }
            }
            if let Some(metrics) = &self.metrics {
                metrics.tick(&outcome);
            }
            if stopping {
                report.stopped = Stopped::Signal;
                return Ok(report);
            }
            let now = clock.now();
            let missed = self.missed_between(fire_at, now);
            if let Some(first) = missed.first {
                report.missed += missed.count;
                if let Some(metrics) = &self.metrics {
                    metrics.missed(missed.count);
                }
                tracing::warn!(
                    first_missed = %self.schedule.local(first),
                    missed = missed.count,
                    "the run outlasted the next fire time(s); those are skipped, not queued"
                );
            }
        }
    }
}

/// Fire times that passed during a run.
struct Missed {
    first: Option<DateTime<Utc>>,
    count: u64,
}

impl Scheduler {
    /// The fire times after `fired` and before `now` (counted up to a bound: a schedule every
    /// second and a run of days must not make the count take as long).
    fn missed_between(&self, fired: DateTime<Utc>, now: DateTime<Utc>) -> Missed {
        const COUNT_AT_MOST: u64 = 100_000;
        let mut missed = Missed { first: None, count: 0 };
        let mut at = fired;
        while missed.count < COUNT_AT_MOST {
            match self.schedule.next_after(at) {
                Ok(next) if next < now => {
                    missed.first.get_or_insert(next);
                    missed.count += 1;
                    at = next;
                }
                _ => break,
            }
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::schedule::cron::tests::{schedule, utc};

    /// A clock whose sleeps return at once, having moved time to the deadline.
    struct FakeClock(Mutex<DateTime<Utc>>);

    impl FakeClock {
        fn at(text: &str) -> FakeClock {
            FakeClock(Mutex::new(utc(text)))
        }
        fn advance(&self, by: chrono::Duration) {
            let mut now = self.0.lock().expect("clock");
            *now += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("clock")
        }
        fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
            // Time moves when the sleep is awaited, not when it is created: `select!` creates
            // sleeps it then drops.
            Box::pin(async move {
                let mut now = self.0.lock().expect("clock");
                *now = (*now).max(deadline);
            })
        }
    }

    /// A clock that never reaches the next fire time.
    struct StoppedClock;

    impl Clock for StoppedClock {
        fn now(&self) -> DateTime<Utc> {
            utc("2026-01-01T00:00:00Z")
        }
        fn sleep_until(&self, _deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
    }

    /// Records its ticks and answers each with the next scripted outcome, optionally taking
    /// `run_time` of fake time.
    struct ScriptedJob<'c> {
        clock: &'c FakeClock,
        run_time: chrono::Duration,
        outcomes: Vec<TickOutcome>,
        ticks: Vec<Tick>,
    }

    impl Job for ScriptedJob<'_> {
        fn run(&mut self, tick: Tick) -> BoxFuture<'_, TickOutcome> {
            self.ticks.push(tick);
            self.clock.advance(self.run_time);
            let outcome = if self.outcomes.is_empty() {
                TickOutcome::Ran { exit_code: 0 }
            } else {
                self.outcomes.remove(0)
            };
            Box::pin(async move { outcome })
        }
    }

    fn no_signals() -> (mpsc::Sender<StopSignal>, mpsc::Receiver<StopSignal>) {
        mpsc::channel(4)
    }

    #[tokio::test]
    async fn run_now_then_each_fire_time_until_max_runs() {
        let clock = FakeClock::at("2026-01-01T10:00:30Z");
        let mut job = ScriptedJob {
            clock: &clock,
            run_time: chrono::Duration::seconds(5),
            outcomes: vec![],
            ticks: vec![],
        };
        let scheduler = Scheduler {
            schedule: schedule("* * * * *", "UTC"),
            run_now: true,
            max_runs: Some(3),
            metrics: None,
        };
        let (_tx, mut rx) = no_signals();
        let report = scheduler.run(&clock, &mut job, &mut rx).await.expect("ran");
        assert_eq!(
            report,
            Report { ticks: 3, ran: 3, skipped: 0, missed: 0, failed: 0, stopped: Stopped::MaxRuns }
        );
        let at: Vec<_> = job.ticks.iter().map(|t| t.scheduled_for).collect();
        assert_eq!(
            at,
            [utc("2026-01-01T10:00:30Z"), utc("2026-01-01T10:01:00Z"), utc("2026-01-01T10:02:00Z")]
        );
        assert_eq!(job.ticks.iter().map(|t| t.number).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_skipped_tick_is_not_queued_and_a_long_run_drops_the_fire_times_it_covers() {
        let clock = FakeClock::at("2026-01-01T10:00:30Z");
        let skipped = TickOutcome::Skipped { reason: "another kpipe run is using out".into() };
        let mut job = ScriptedJob {
            clock: &clock,
            // Each run takes two and a half periods.
            run_time: chrono::Duration::seconds(150),
            outcomes: vec![skipped.clone(), TickOutcome::Ran { exit_code: 3 }, skipped],
            ticks: vec![],
        };
        let scheduler = Scheduler {
            schedule: schedule("* * * * *", "UTC"),
            run_now: false,
            max_runs: Some(4),
            metrics: None,
        };
        let (_tx, mut rx) = no_signals();
        let report = scheduler.run(&clock, &mut job, &mut rx).await.expect("ran");
        // Each of the four ticks took 150 s and covered the next two fire times: 8 missed.
        assert_eq!(
            report,
            Report { ticks: 4, ran: 2, skipped: 2, missed: 8, failed: 0, stopped: Stopped::MaxRuns }
        );
        // 10:01 skipped (taking 150 s: now 10:03:30), so the next is 10:04, not a catch-up of
        // 10:02 and 10:03; and so on.
        let at: Vec<_> = job.ticks.iter().map(|t| t.scheduled_for).collect();
        assert_eq!(
            at,
            [
                utc("2026-01-01T10:01:00Z"),
                utc("2026-01-01T10:04:00Z"),
                utc("2026-01-01T10:07:00Z"),
                utc("2026-01-01T10:10:00Z")
            ]
        );
    }

    #[tokio::test]
    async fn a_signal_while_idle_stops_without_running() {
        let fake = FakeClock::at("2026-01-01T00:00:00Z");
        let mut job =
            ScriptedJob { clock: &fake, run_time: chrono::Duration::zero(), outcomes: vec![], ticks: vec![] };
        let scheduler = Scheduler {
            schedule: schedule("0 3 * * *", "UTC"),
            run_now: false,
            max_runs: None,
            metrics: None,
        };
        let (tx, mut rx) = no_signals();
        tx.send(StopSignal::Terminate).await.expect("sent");
        let report = scheduler.run(&StoppedClock, &mut job, &mut rx).await.expect("stopped");
        assert_eq!(
            report,
            Report { ticks: 0, ran: 0, skipped: 0, missed: 0, failed: 0, stopped: Stopped::Signal }
        );
        assert!(job.ticks.is_empty());
    }

    /// A run that waits until the test lets it finish, and says whether it did.
    struct GatedJob {
        release: Option<tokio::sync::oneshot::Receiver<()>>,
        started: Option<tokio::sync::oneshot::Sender<()>>,
        finished: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Job for GatedJob {
        fn run(&mut self, _tick: Tick) -> BoxFuture<'_, TickOutcome> {
            let release = self.release.take();
            let started = self.started.take();
            let finished = self.finished.clone();
            Box::pin(async move {
                if let Some(s) = started {
                    let _ = s.send(());
                }
                if let Some(r) = release {
                    let _ = r.await;
                }
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
                TickOutcome::Ran { exit_code: 0 }
            })
        }
    }

    fn gated() -> (GatedJob, tokio::sync::oneshot::Sender<()>, tokio::sync::oneshot::Receiver<()>) {
        let (release_tx, release_rx) = tokio::sync::oneshot::channel();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let job = GatedJob {
            release: Some(release_rx),
            started: Some(started_tx),
            finished: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        (job, release_tx, started_rx)
    }

    #[tokio::test]
    async fn a_signal_during_a_run_lets_it_finish_then_stops() {
        let (mut job, release, started) = gated();
        let finished = job.finished.clone();
        let (tx, mut rx) = no_signals();
        let scheduler = Scheduler {
            schedule: schedule("* * * * *", "UTC"),
            run_now: true,
            max_runs: None,
            metrics: None,
        };
        let driver = tokio::spawn(async move {
            let clock = FakeClock::at("2026-01-01T00:00:00Z");
            scheduler.run(&clock, &mut job, &mut rx).await
        });
        started.await.expect("the run started");
        tx.send(StopSignal::Terminate).await.expect("sent");
        // The scheduler has the signal and still waits for the run.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!driver.is_finished());
        release.send(()).expect("released");
        let report = driver.await.expect("joined").expect("stopped");
        assert_eq!(
            report,
            Report { ticks: 1, ran: 1, skipped: 0, missed: 0, failed: 0, stopped: Stopped::Signal }
        );
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_second_signal_aborts_the_run() {
        let (mut job, _release, started) = gated();
        let finished = job.finished.clone();
        let (tx, mut rx) = no_signals();
        let scheduler = Scheduler {
            schedule: schedule("* * * * *", "UTC"),
            run_now: true,
            max_runs: None,
            metrics: None,
        };
        let driver = tokio::spawn(async move {
            let clock = FakeClock::at("2026-01-01T00:00:00Z");
            scheduler.run(&clock, &mut job, &mut rx).await
        });
        started.await.expect("the run started");
        tx.send(StopSignal::Terminate).await.expect("sent");
        tx.send(StopSignal::Interrupt).await.expect("sent");
        let report = driver.await.expect("joined").expect("stopped");
        assert_eq!(report.stopped, Stopped::Aborted);
        assert_eq!(report.ran, 0);
        assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_closed_signal_channel_does_not_stop_the_schedule() {
        let clock = FakeClock::at("2026-01-01T10:00:00Z");
        let mut job = ScriptedJob {
            clock: &clock,
            run_time: chrono::Duration::zero(),
            outcomes: vec![],
            ticks: vec![],
        };
        let scheduler = Scheduler {
            schedule: schedule("* * * * *", "UTC"),
            run_now: false,
            max_runs: Some(2),
            metrics: None,
        };
        let (tx, mut rx) = no_signals();
        drop(tx);
        let report = scheduler.run(&clock, &mut job, &mut rx).await.expect("ran");
        assert_eq!(report.ran, 2);
        let at: Vec<_> = job.ticks.iter().map(|t| t.scheduled_for).collect();
        assert_eq!(at, [utc("2026-01-01T10:01:00Z"), utc("2026-01-01T10:02:00Z")]);
    }
}
