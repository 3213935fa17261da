//! `kpipe-bench measure -- CMD ARGS...`: runs a command as the only child of a fresh process and
//! reports its wall time, CPU time (user and system) and peak resident memory, from the kernel's
//! accounting of that child (`getrusage(RUSAGE_CHILDREN)` once it has been waited for). Being
//! the only child is what makes the figures the command's alone: the simulators run in another
//! process, and no earlier child's peak can leak into the maximum.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

/// What one process cost.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Wall time from spawn to exit, seconds.
    pub wall_s: f64,
    /// User CPU time, seconds.
    pub user_s: f64,
    /// System CPU time, seconds.
    pub sys_s: f64,
    /// Peak resident set size, KiB.
    pub max_rss_kib: u64,
    /// The exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Resident memory while it ran, sampled every [`SAMPLE_EVERY`]: seconds since spawn and
    /// KiB (`VmRSS`). What the kernel's peak cannot say: when the peak was.
    #[serde(default)]
    pub rss_samples: Vec<(f64, u64)>,
}

impl Usage {
    /// User and system CPU time, seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// Peak resident set size, MiB.
    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    /// The largest sample of the first `seconds`, MiB.
    pub fn sampled_peak_mib_within(&self, seconds: f64) -> Option<f64> {
        self.rss_samples
            .iter()
            .filter(|(t, _)| *t <= seconds)
            .map(|(_, kib)| *kib as f64 / 1024.0)
            .reduce(f64::max)
    }
}

/// How often resident memory is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// `VmRSS` of `pid` in KiB, while it runs.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Samples `pid`'s resident memory until `stop` is set.
fn sample(pid: u32, started: Instant, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(f64, u64)>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(kib) = resident_kib(pid) {
                samples.push((started.elapsed().as_secs_f64(), kib));
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        samples
    })
}

/// A command that could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// It did not start.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("cannot wait for {program}: {source}")]
    Wait {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel's accounting could not be read.
    #[error("getrusage: {0}")]
    Rusage(#[from] nix::Error),
    /// The command line is empty.
    #[error("no command to measure")]
    NoCommand,
}

fn seconds(tv: nix::sys::time::TimeVal) -> f64 {
    tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6
}

/// Runs `command` (program and arguments) with its output going to `log` (or inherited) and
/// measures it. Meant to be called in a process with no other children (see the module docs).
pub fn run_measured(command: &[String], log: Option<&Path>) -> Result<Usage, MeasureError> {
    let (program, args) = command.split_first().ok_or(MeasureError::NoCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    if let Some(log) = log {
        let file = std::fs::File::create(log)
            .map_err(|source| MeasureError::Spawn { program: program.clone(), source })?;
        let copy =
            file.try_clone().map_err(|source| MeasureError::Spawn { program: program.clone(), source })?;
        cmd.stdout(file).stderr(copy);
    }
    let before = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| MeasureError::Spawn { program: program.clone(), source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(child.id(), started, Arc::clone(&stop));
    let status = child.wait().map_err(|source| MeasureError::Wait { program: program.clone(), source })?;
    let wall_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let rss_samples = sampler.join().unwrap_or_default();
    let after = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    Ok(Usage {
        wall_s,
        user_s: seconds(after.user_time()) - seconds(before.user_time()),
        sys_s: seconds(after.system_time()) - seconds(before.system_time()),
        // Linux reports kilobytes (KiB) for ru_maxrss.
        max_rss_kib: u64::try_from(after.max_rss()).unwrap_or(0),
        exit_code: status.code(),
        rss_samples,
    })
}
