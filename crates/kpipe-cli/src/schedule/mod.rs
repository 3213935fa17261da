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

mod command;
mod cron;
mod run_job;
mod scheduler;

pub use command::{ScheduleArgs, command};
pub use cron::{CronSchedule, ScheduleError, parse_time_zone};
pub use run_job::{AfterRunHook, EnvLookup, FinishStages, RunJob, RunStages, write_summary};
pub use scheduler::{Clock, Job, Report, Scheduler, StopSignal, Stopped, SystemClock, Tick, TickOutcome};

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
