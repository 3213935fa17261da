//! `kpipe schedule`: runs what `kpipe run` runs at the fire times of a cron expression, in a
//! time zone, until it is told to stop.
//!
//! - Runs never overlap. A run takes the output directory's lock ([`crate::lock`]); a tick that
//!   finds it held (another scheduler, a `kpipe run` by hand) is skipped and logged, not queued,
//!   and fire times that pass while a run is still going are dropped the same way.
//! - SIGTERM or SIGINT stops the scheduling: when idle the scheduler exits at once, during a run
//!   it lets the run finish (each source's window is committed atomically) and then exits 0. A
//!   second signal aborts the run at once, which is safe because nothing half-written is ever
//!   published; the exit code is then 130.
//!
//! The loop ([`Scheduler::run`]) takes its clock, its job and its signals as parameters, so that
//! tests drive it with a fake clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use kpipe_core::BoxFuture;
use tokio::sync::mpsc;

use crate::config::{self, Config};
use crate::lock::{LockError, RunLock};
use crate::runner::{self, Quiet, RunError, RunOptions};
use crate::summary::RunSummary;

/// Exit code: stopped by SIGTERM/SIGINT (after the run in flight finished) or after `--max-runs`
/// fire times. The outcome of each run is in the logs and the `--summary-json` files.
pub const EXIT_OK: u8 = 0;
/// Exit code: the scheduler cannot go on (no further fire time, no signal handler).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a bad cron expression, time zone, configuration or option; nothing ran.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a second signal aborted the run in flight (128 + SIGINT, as shells report it).
/// Nothing of that run was published; the next run pulls its window again.
pub const EXIT_ABORTED: u8 = 130;

/// The longest single sleep: the wall clock is looked at again at least this often, so that a
/// suspended machine or a clock step does not delay a fire time by more than this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What is wrong with a schedule.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error("`{expression}` is not a cron expression: {reason}")]
    Expression {
        /// The expression given.
        expression: String,
        /// The parser's reason.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("`{0}` is not a time zone; expected an IANA name such as UTC, Europe/Berlin or America/New_York")]
    TimeZone(String),
    /// The expression has no fire time after this one (such as `0 0 30 2 *`, February 30th).
    #[error("`{expression}` has no fire time after {after}")]
    NoFireTime {
        /// The expression.
        expression: String,
        /// The time searched from.
        after: DateTime<Utc>,
    },
}

/// The fields of a six-field expression; a five-field one has no seconds.
const FIELDS: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];

/// A cron expression in a time zone: five fields (minute hour day-of-month month day-of-week),
/// or six with seconds first.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    time_zone: Tz,
    expression: String,
}

impl CronSchedule {
    /// Parses `expression`, read in `time_zone`.
    pub fn parse(expression: &str, time_zone: Tz) -> Result<CronSchedule, ScheduleError> {
        let fail = |reason: String| ScheduleError::Expression { expression: expression.to_owned(), reason };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let names: &[&str] = match fields.len() {
            5 => &FIELDS[1..],
            6 => &FIELDS,
            n => {
                return Err(fail(format!(
                    "it has {n} field(s); expected 5 (minute hour day-of-month month day-of-week) \
                     or 6 (second first)"
                )));
            }
        };
        let cron: Cron = expression.parse().map_err(|e: croner::errors::CronError| {
            // Name the field: croner's message ("Number out of bounds") does not.
            let culprit = fields.iter().zip(names).find(|(field, name)| {
                let mut alone: Vec<&str> = names.iter().map(|_| "*").collect();
                if let Some(slot) = names.iter().position(|n| n == *name) {
                    alone[slot] = field;
                }
                alone.join(" ").parse::<Cron>().is_err()
            });
            match culprit {
                Some((field, name)) => fail(format!("{name} `{field}`: {e}")),
                None => fail(e.to_string()),
            }
        })?;
        Ok(CronSchedule { cron, time_zone, expression: expression.trim().to_owned() })
    }

    /// The first fire time strictly after `after`. In a daylight-saving gap a fixed time runs at
    /// the first valid time after the gap; in a repeated hour it runs once.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let local = after.with_timezone(&self.time_zone);
        self.cron
            .find_next_occurrence(&local, false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ScheduleError::NoFireTime { expression: self.expression.clone(), after })
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// `t` in the schedule's time zone, for messages.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }
}

/// An IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse::<Tz>().map_err(|_| ScheduleError::TimeZone(name.to_owned()))
}

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
            let fire_at = if run_now {
                clock.now()
            } else {
                let now = clock.now();
                let next = self.schedule.next_after(now)?;
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
            if stopping {
                report.stopped = Stopped::Signal;
                return Ok(report);
            }
            let now = clock.now();
            let missed = self.missed_between(fire_at, now);
            if let Some(first) = missed.first {
                report.missed += missed.count;
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

/// Prepared before a run (which consumes the configuration) and called with its summary while
/// the run's output lock is still held: the stages `kpipe run` runs after the pipeline.
/// Returns false when such a stage failed.
pub type AfterRunHook =
    dyn Fn(&Config, &RunOptions) -> Box<dyn FnOnce(&mut RunSummary, &RunLock) -> bool + Send> + Send + Sync;

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
        RunJob { config, summary_dir: None, after_run: None, env: Arc::new(|name| std::env::var(name).ok()) }
    }

    async fn run_once(&self) -> TickOutcome {
        let cfg = match config::load(&self.config, self.env.as_ref()) {
            Ok(c) => c,
            Err(e) => return TickOutcome::Failed { reason: format!("configuration error: {e}") },
        };
        let options = RunOptions::new(Utc::now().date_naive());
        let after = self.after_run.as_ref().map(|hook| hook(&cfg, &options));
        let (mut summary, lock) = match runner::run_locked(cfg, options, Arc::new(Quiet)).await {
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

/// `kpipe schedule`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 stopped by SIGTERM/SIGINT after the run in flight finished (or \
                        after --max-runs), 1 the schedule cannot go on, 2 bad expression, time zone or \
                        configuration (nothing ran), 130 a second signal aborted the run in flight \
                        (nothing of it was published). Each run's own result (0/1/3 as for `kpipe run`) \
                        is logged and written by --summary-json.")]
pub struct ScheduleArgs {
    /// The configuration file (read again for every run).
    #[arg(short, long)]
    pub config: PathBuf,
    /// When to run: "minute hour day-of-month month day-of-week" (such as "0 3 * * *"), or six
    /// fields with seconds first.
    #[arg(long, value_name = "EXPRESSION")]
    pub cron: String,
    /// The time zone the expression is read in (an IANA name).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub time_zone: String,
    /// Run once right away, then follow the schedule.
    #[arg(long)]
    pub run_now: bool,
    /// Write each run's summary as JSON into this directory.
    #[arg(long, value_name = "DIR")]
    pub summary_json: Option<PathBuf>,
    /// Exit 0 after this many fire times (runs and skipped ticks count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: Option<u64>,
}

/// Runs `kpipe schedule` until a signal or `--max-runs`; returns the exit code. A second
/// signal during a run ends the process at once with [`EXIT_ABORTED`].
pub async fn command(args: ScheduleArgs, after_run: Option<Arc<AfterRunHook>>) -> u8 {
    let schedule = match parse_time_zone(&args.time_zone)
        .and_then(|tz| CronSchedule::parse(&args.cron, tz))
        .and_then(|s| s.next_after(Utc::now()).map(|_| s))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    // A configuration that is wrong from the start is a usage error, not a failed run a night.
    if let Err(e) = config::load(&args.config, &|name| std::env::var(name).ok()) {
        eprintln!("configuration error:\n{e}");
        return EXIT_USAGE;
    }
    if let Some(dir) = &args.summary_json
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create the --summary-json directory {}: {e}", dir.display());
        return EXIT_USAGE;
    }
    let mut signals = match forward_signals() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("error: cannot install the SIGTERM/SIGINT handlers: {e}");
            return EXIT_FAILED;
        }
    };
    tracing::info!(
        cron = schedule.expression(),
        time_zone = %schedule.time_zone(),
        config = %args.config.display(),
        "scheduler started"
    );
    let scheduler = Scheduler { schedule, run_now: args.run_now, max_runs: args.max_runs };
    let mut job = RunJob::new(args.config);
    job.summary_dir = args.summary_json;
    job.after_run = after_run;
    match scheduler.run(&SystemClock, &mut job, &mut signals).await {
        Ok(report) => {
            tracing::info!(
                ticks = report.ticks,
                ran = report.ran,
                skipped = report.skipped,
                missed = report.missed,
                failed = report.failed,
                "scheduler stopped"
            );
            if report.stopped == Stopped::Aborted {
                // Returning would wait for the run's blocking writer threads; the lock and
                // every staged file are left to the operating system and the next run.
                std::process::exit(i32::from(EXIT_ABORTED));
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// Forwards SIGTERM and SIGINT into a channel. From here on they no longer end the process by
/// themselves.
fn forward_signals() -> std::io::Result<mpsc::Receiver<StopSignal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                Some(()) = term.recv() => StopSignal::Terminate,
                Some(()) = int.recv() => StopSignal::Interrupt,
                else => break,
            };
            if tx.send(signal).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a date").with_timezone(&Utc)
    }

    fn schedule(expression: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expression, parse_time_zone(tz).expect("zone")).expect("expression")
    }

    #[test]
    fn fire_times_are_read_in_the_time_zone_across_daylight_saving() {
        let s = schedule("0 3 * * *", "Europe/Berlin");
        // 03:00 CET is 02:00 UTC; from 2026-03-29 on, 03:00 CEST is 01:00 UTC.
        assert_eq!(s.next_after(utc("2026-03-27T12:00:00Z")).ok(), Some(utc("2026-03-28T02:00:00Z")));
        assert_eq!(s.next_after(utc("2026-03-28T12:00:00Z")).ok(), Some(utc("2026-03-29T01:00:00Z")));
        // Strictly after: the fire time itself gives the next day's.
        assert_eq!(s.next_after(utc("2026-03-29T01:00:00Z")).ok(), Some(utc("2026-03-30T01:00:00Z")));
        assert_eq!(s.local(utc("2026-03-29T01:00:00Z")), "2026-03-29 03:00:00 CEST");
        // 02:30 does not exist on 2026-03-29 in Berlin: it runs once, right after the gap.
        let gap = schedule("30 2 * * *", "Europe/Berlin");
        assert_eq!(gap.next_after(utc("2026-03-28T12:00:00Z")).ok(), Some(utc("2026-03-29T01:00:00Z")));
        assert_eq!(
            schedule("0 3 * * *", "UTC").next_after(utc("2026-03-28T12:00:00Z")).ok(),
            Some(utc("2026-03-29T03:00:00Z"))
        );
    }

    #[test]
    fn six_fields_have_seconds_and_mistakes_are_named() {
        let s = schedule("*/10 * * * * *", "UTC");
        assert_eq!(s.next_after(utc("2026-01-01T00:00:05.5Z")).ok(), Some(utc("2026-01-01T00:00:10Z")));
        let every_second = schedule("* * * * * *", "UTC");
        assert_eq!(
            every_second.next_after(utc("2026-01-01T00:00:05.5Z")).ok(),
            Some(utc("2026-01-01T00:00:06Z"))
        );
        let err = CronSchedule::parse("0 3 * *", Tz::UTC).expect_err("four fields");
        assert!(err.to_string().starts_with("`0 3 * *` is not a cron expression: "), "{err}");
        let err = CronSchedule::parse("61 3 * * *", Tz::UTC).expect_err("minute 61");
        assert!(err.to_string().contains(": minute `61`: "), "{err}");
        let err = CronSchedule::parse("0 0 3 * * 9", Tz::UTC).expect_err("day-of-week 9");
        assert!(err.to_string().contains(": day-of-week `9`: "), "{err}");
        // Seven fields (a year) would otherwise be taken, and fire hourly.
        let err = CronSchedule::parse("0 3 * * * * *", Tz::UTC).expect_err("seven fields");
        assert!(err.to_string().contains("it has 7 field(s); expected 5"), "{err}");
        assert_eq!(
            parse_time_zone("Mars/Olympus").expect_err("no such zone").to_string(),
            "`Mars/Olympus` is not a time zone; expected an IANA name such as UTC, Europe/Berlin or \
             America/New_York"
        );
        let never = schedule("0 0 30 2 *", "UTC");
        assert!(matches!(
            never.next_after(utc("2026-01-01T00:00:00Z")),
            Err(ScheduleError::NoFireTime { .. })
        ));
    }

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
        let scheduler =
            Scheduler { schedule: schedule("* * * * *", "UTC"), run_now: true, max_runs: Some(3) };
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
        let scheduler =
            Scheduler { schedule: schedule("* * * * *", "UTC"), run_now: false, max_runs: Some(4) };
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
        let scheduler = Scheduler { schedule: schedule("0 3 * * *", "UTC"), run_now: false, max_runs: None };
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
        let scheduler = Scheduler { schedule: schedule("* * * * *", "UTC"), run_now: true, max_runs: None };
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
        let scheduler = Scheduler { schedule: schedule("* * * * *", "UTC"), run_now: true, max_runs: None };
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
        let scheduler =
            Scheduler { schedule: schedule("* * * * *", "UTC"), run_now: false, max_runs: Some(2) };
        let (tx, mut rx) = no_signals();
        drop(tx);
        let report = scheduler.run(&clock, &mut job, &mut rx).await.expect("ran");
        assert_eq!(report.ran, 2);
        let at: Vec<_> = job.ticks.iter().map(|t| t.scheduled_for).collect();
        assert_eq!(at, [utc("2026-01-01T10:01:00Z"), utc("2026-01-01T10:02:00Z")]);
    }
}
