//! The `kpipe schedule` command line and its wiring: checks the options, starts the metrics
//! endpoint and the signal handlers, and runs the loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use super::{
    AfterRunHook, CronSchedule, EXIT_ABORTED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, RunJob, Scheduler,
    StopSignal, Stopped, SystemClock, parse_time_zone,
};
use crate::config;
use crate::run_metrics::ScheduleMetrics;

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
    /// Also write the metrics (those of the last run, counters since the start, the next fire
    /// time) to this file in Prometheus' text format, for node-exporter's textfile collector.
    /// Replaced atomically after each fire time; counters continue from the file's.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Serve the metrics on http://ADDR/metrics (such as 127.0.0.1:9464; port 0 picks a free
    /// one, printed at start), with the run in progress.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
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
    if let Some(parent) =
        args.metrics_file.as_deref().and_then(Path::parent).filter(|p| !p.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        eprintln!("error: cannot create the directory of --metrics-file {}: {e}", parent.display());
        return EXIT_USAGE;
    }
    let metrics = (args.metrics_file.is_some() || args.metrics_addr.is_some())
        .then(|| Arc::new(ScheduleMetrics::new(args.metrics_file.clone())));
    if let (Some(addr), Some(metrics)) = (&args.metrics_addr, &metrics) {
        match crate::run_metrics::serve(addr, metrics.clone()).await {
            Ok(bound) => {
                // On standard error, which logs go to too, so that whoever started the
                // process finds the port it picked.
                eprintln!("metrics: http://{bound}/metrics");
                tracing::info!(address = %bound, "serving metrics on /metrics");
            }
            Err(e) => {
                eprintln!("error: --metrics-addr {addr}: cannot listen: {e}");
                return EXIT_USAGE;
            }
        }
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
    let scheduler =
        Scheduler { schedule, run_now: args.run_now, max_runs: args.max_runs, metrics: metrics.clone() };
    let mut job = RunJob::new(args.config);
    job.summary_dir = args.summary_json;
    job.after_run = after_run;
    job.metrics = metrics;
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
                // every staged file are left to the operating system and the next run. The
                // spans exported so far are flushed first.
                crate::telemetry::shutdown();
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
