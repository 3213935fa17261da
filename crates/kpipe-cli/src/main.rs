//! `kpipe`: pull marketing metrics, normalize them, write Parquet.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kpipe_cli::backfill::{self, BackfillOptions, Order};
use kpipe_cli::demo_apis::DemoApis;
use kpipe_cli::run_progress::RunProgress;
use kpipe_cli::runner::Quiet;
use kpipe_cli::{RunObserver, RunOptions, RunSummary, SourceSummary, config, demo, redact, registry, runner};
use kpipe_core::{DateWindow, ErrorChain, NaiveDate, Shard};

mod kpis;
mod malloc;

/// Exit code for a configuration or usage error: nothing ran.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "kpipe",
    version,
    about = "Pull marketing metrics into one Parquet schema",
    max_term_width = 100
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// More log detail, one level per -v: from warnings on a terminal (its progress lines say
    /// the rest) and info elsewhere, to debug and trace. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log detail, one level per -q: warnings, then errors only, then none.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Pull every enabled source for a window of days, replace those days in the output.
    Run {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD); default: lookback_days before --to.
        #[arg(long, value_parser = date_arg)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); default: yesterday (UTC).
        #[arg(long, value_parser = date_arg)]
        to: Option<NaiveDate>,
        /// Run only this source.
        #[arg(long)]
        source: Option<String>,
        /// Re-pull every day of the window.
        #[arg(long)]
        full_refresh: bool,
        /// Also write the run summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        #[command(flatten)]
        shard: ShardArgs,
        /// Do not recompute the KPIs after the pull (a shard's run never does: `kpipe kpis`
        /// runs once every shard has published).
        #[arg(long)]
        no_kpis: bool,
    },
    /// Pull a long range as a series of runs, resuming where a quota stopped the last one.
    Backfill {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD).
        #[arg(long, value_parser = date_arg)]
        from: NaiveDate,
        /// Last day (YYYY-MM-DD); default: yesterday (UTC).
        #[arg(long, value_parser = date_arg)]
        to: Option<NaiveDate>,
        /// Days per run.
        #[arg(long, default_value_t = 28)]
        chunk_days: u32,
        /// Pull the newest chunk first instead of the oldest.
        #[arg(long)]
        newest_first: bool,
        /// Backfill only this source.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Show what a run would pull (days per source and account, missing and provisional,
    /// cursors) and the requests and daily quota it would cost, without calling any API.
    Plan {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD); default: lookback_days before --to.
        #[arg(long, value_parser = date_arg)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); default: yesterday (UTC).
        #[arg(long, value_parser = date_arg)]
        to: Option<NaiveDate>,
        /// As if with --full-refresh.
        #[arg(long)]
        full_refresh: bool,
        /// Print the plan as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The plan of shard K of N only (K from 0).
        #[arg(long, value_name = "K/N", value_parser = shard_arg, conflicts_with = "shards")]
        shard: Option<Shard>,
        /// How N shards would split the configuration: each shard's units, requests and
        /// quota-bound time, and the units too large for an even split.
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
    },
    /// Validate the configuration, check that each source could run (one cheap authenticated
    /// call), and report each credential's health, warning ahead of a refresh token's expiry.
    #[command(after_help = "Exit codes: 0 every source is ready and no credential expires soon, 1 a \
                            source's check failed or a credential has expired, 2 configuration or \
                            usage error, 3 every source is ready but a refresh token expires within \
                            the warning threshold.")]
    Check {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Warn this many days before a refresh token expires; default: 30, or 2 for refresh
        /// tokens that live at most 7 days.
        #[arg(long, value_name = "N")]
        warn_days: Option<u32>,
        /// Print the report as JSON on standard output, for monitoring.
        #[arg(long)]
        json: bool,
    },
    /// Obtain a refresh token through the platform's OAuth consent (PKCE, loopback redirect)
    /// and store it in a secrets file only you can read.
    Auth(kpipe_cli::auth::AuthArgs),
    /// Run the pipeline at the fire times of a cron expression until SIGTERM or SIGINT; runs
    /// never overlap.
    Schedule(kpipe_cli::schedule::ScheduleArgs),
    /// List the connector types this build knows.
    Connectors,
    /// Run the whole pipeline on built-in sample data (no credentials needed).
    Demo {
        /// Where to write the sample inputs and the output.
        #[arg(long, default_value = "demo-out")]
        output: PathBuf,
        /// Also write the run summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Keep the simulated APIs up after the run (until Ctrl-C or SIGTERM), so that `kpipe run
        /// -c <output>/kpipe.toml` can run against them from another terminal.
        #[arg(long)]
        serve: bool,
    },
    /// What the state says (days written, cursors), and forcing a re-pull.
    #[command(subcommand)]
    State(StateCommand),
    /// Recompute the KPIs of every period a window touches from the stored metrics.
    Kpis {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD); default: lookback_days before --to.
        #[arg(long, value_parser = date_arg)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); default: yesterday (UTC).
        #[arg(long, value_parser = date_arg)]
        to: Option<NaiveDate>,
        /// Then print the latest period of each KPI: day, week (the default) or month.
        #[arg(
            long,
            value_name = "GRAIN",
            num_args = 0..=1,
            default_missing_value = "week",
            value_parser = grain_arg
        )]
        show: Option<kpipe_kpi::Grain>,
    },
    /// For `format = "delta"`: remove the data files interrupted runs left uncommitted, and the
    /// files commits removed longer ago than the retention (time travel stays possible within it).
    Vacuum {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Keep the files a commit removed within this many hours.
        #[arg(long, default_value_t = kpipe_cli::vacuum::DEFAULT_RETENTION_HOURS)]
        retain_hours: u64,
        /// Only say how many files would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Print the ledger (days written, final or provisional) and the cursors of each source.
    Show {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Print JSON on standard output.
        #[arg(long)]
        json: bool,
        /// The state of shard K of N (each shard keeps its own).
        #[arg(long, value_name = "K/N", value_parser = shard_arg)]
        shard: Option<Shard>,
    },
    /// Forget days of a source so that the next run pulls them again.
    Reset {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// The source.
        #[arg(long)]
        source: String,
        /// Move back only this stream's cursors (the days are pulled again for every stream).
        #[arg(long)]
        stream: Option<String>,
        /// First day to forget (YYYY-MM-DD); default: the first written.
        #[arg(long, value_parser = date_arg)]
        from: Option<NaiveDate>,
        /// Last day to forget (YYYY-MM-DD); default: the last written.
        #[arg(long, value_parser = date_arg)]
        to: Option<NaiveDate>,
        /// In the state of shard K of N (each shard keeps its own).
        #[arg(long, value_name = "K/N", value_parser = shard_arg)]
        shard: Option<Shard>,
    },
}

/// `--shard K/N` or `--shards N`: which shard of a configuration a process runs.
#[derive(clap::Args, Debug, Clone, Copy)]
struct ShardArgs {
    /// Run shard K of N (K from 0): only the (source, account) units a stable hash assigns to
    /// it, with its part of per-application rate limits; state and lock of its own.
    #[arg(long, value_name = "K/N", value_parser = shard_arg, conflicts_with = "shards")]
    shard: Option<Shard>,
    /// Run shard $JOB_COMPLETION_INDEX of N (a Kubernetes Indexed Job's index).
    #[arg(long, value_name = "N")]
    shards: Option<u32>,
}

impl ShardArgs {
    /// The shard to run: the whole configuration without either flag.
    fn resolve(self) -> Result<Shard, String> {
        match (self.shard, self.shards) {
            (Some(shard), _) => Ok(shard),
            (None, None) => Ok(Shard::ALL),
            (None, Some(count)) => {
                let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    format!("--shards {count}: JOB_COMPLETION_INDEX is not set (it is in a Kubernetes Indexed Job); give --shard K/{count} instead")
                })?;
                let index: u32 = index
                    .trim()
                    .parse()
                    .map_err(|_| format!("JOB_COMPLETION_INDEX `{index}` is not a whole number"))?;
                Shard::new(index, count).map_err(|e| e.to_string())
            }
        }
    }
}

fn shard_arg(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

fn date_arg(text: &str) -> Result<NaiveDate, String> {
    config::parse_date(text)
}

fn grain_arg(text: &str) -> Result<kpipe_kpi::Grain, String> {
    kpipe_kpi::Grain::from_name(text)
        .ok_or_else(|| format!("`{text}` is not a grain; expected day, week or month"))
}

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse();
    let progress = cli.log_format == LogFormat::Text && std::io::stderr().is_terminal();
    init_logging(cli.log_format, log_filter(cli.verbose, cli.quiet, progress));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, progress)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redact::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// The log filter of `-v`/`-q`: kpipe's own events at the chosen level, other crates' (HTTP,
/// TLS, object store) at warnings until trace, where their detail is what is asked for.
fn log_filter(verbose: u8, quiet: u8, progress: bool) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let base: i32 = if progress { 2 } else { 3 };
    let at = (base + i32::from(verbose) - i32::from(quiet)).clamp(0, 5) as usize;
    match LEVELS[at] {
        "trace" => "trace".to_owned(),
        level if at <= 2 => level.to_owned(),
        level => format!("warn,kpipe={level}"),
    }
}

fn init_logging(format: LogFormat, default: String) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Every event is scrubbed of registered secrets on its way to standard error.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(redact::LogWriter(std::io::stderr));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

async fn dispatch(command: Command, progress: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::Connectors => {
            for c in registry::connectors() {
                println!("{:<18} {}", c.kind, c.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, warn_days, json } => check(&config, warn_days, json).await,
        Command::State(command) => Ok(state_command(command)),
        Command::Auth(args) => Ok(ExitCode::from(kpipe_cli::auth::command(args).await)),
        Command::Schedule(args) => {
            // Scheduled runs end with the same KPI stage as `kpipe run`.
            let kpi_stage: Arc<kpipe_cli::schedule::AfterRunHook> =
                Arc::new(|cfg: &config::Config, options: &RunOptions| {
                    let stage = kpis::AfterRun::new(cfg, options);
                    Box::new(move |summary: &mut RunSummary, lock: &kpipe_cli::lock::RunLock| {
                        stage.run_under_lock(summary, lock)
                    })
                        as Box<dyn FnOnce(&mut RunSummary, &kpipe_cli::lock::RunLock) -> bool + Send>
                });
            Ok(ExitCode::from(kpipe_cli::schedule::command(args, Some(kpi_stage)).await))
        }
        Command::Backfill { config, from, to, chunk_days, newest_first, source, shard } => {
            let shard = match shard.resolve() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let options = BackfillOptions {
                from,
                to,
                chunk_days,
                order: if newest_first { Order::NewestFirst } else { Order::OldestFirst },
                only: source,
                today: chrono::Utc::now().date_naive(),
            };
            backfill_command(&config, shard, &options, progress).await
        }
        Command::Plan { config, from, to, full_refresh, json, shard, shards } => {
            let mut options = RunOptions::new(chrono::Utc::now().date_naive());
            options.from = from;
            options.to = to;
            options.full_refresh = full_refresh;
            if let Some(count) = shards {
                return plan_split(&config, count, &options, json);
            }
            let Some(cfg) = load_config_shard(&config, shard.unwrap_or(Shard::ALL)) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            match kpipe_cli::plan::plan(&cfg, &options) {
                Ok(plan) if json => {
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                    Ok(ExitCode::SUCCESS)
                }
                Ok(plan) => {
                    print!("{}", plan.render());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(EXIT_CONFIG))
                }
            }
        }
        Command::Run { config, from, to, source, full_refresh, summary_json, shard, no_kpis } => {
            let shard = match shard.resolve() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let Some(cfg) = load_config_shard(&config, shard) else { return Ok(ExitCode::from(EXIT_CONFIG)) };
            if !shard.is_all() && !no_kpis {
                tracing::info!(shard = %shard, "a shard's run does not compute KPIs: run `kpipe kpis` once every shard has published");
            }
            let mut options = RunOptions::new(chrono::Utc::now().date_naive());
            options.from = from;
            options.to = to;
            options.only = source;
            options.full_refresh = full_refresh;
            let with_kpis = shard.is_all() && !no_kpis;
            run_with(cfg, options, summary_json.as_deref(), progress, with_kpis).await
        }
        Command::Demo { output, summary_json, serve } => {
            let apis = DemoApis::start().await.context("cannot start the simulated platform APIs")?;
            let config_path = demo::prepare_with(&output, &apis.sources_toml())
                .with_context(|| format!("cannot write the demo inputs to {}", output.display()))?;
            let Some(cfg) = load_config(&config_path) else { return Ok(ExitCode::from(EXIT_CONFIG)) };
            let (from, to) = demo::window();
            let mut options = RunOptions::new(chrono::Utc::now().date_naive());
            options.from = Some(from);
            options.to = Some(to);
            // Every run of the demo pulls its whole window again.
            options.full_refresh = true;
            let code = run(cfg, options, summary_json.as_deref(), progress).await?;
            println!(
                "\nThe simulated LinkedIn, Facebook, HubSpot and Google Analytics APIs answered {} request(s), \
                 {} over their quotas.",
                apis.requests(),
                apis.over_quota()
            );
            print!("\n{}", demo::kpi_table(&output));
            println!("\n{}", demo::next_steps(&output));
            if serve {
                let (from, to) = demo::window();
                println!(
                    "The simulated APIs stay up until Ctrl-C. From another terminal:\n  kpipe run -c {} --from {from} --to {to}",
                    config_path.display()
                );
                use std::io::Write;
                let _ = std::io::stdout().flush();
                let _ = wait_for_stop().await;
            }
            apis.shutdown().await;
            Ok(code)
        }
        Command::Kpis { config, from, to, show } => {
            let Some(cfg) = load_config(&config) else { return Ok(ExitCode::from(EXIT_CONFIG)) };
            Ok(kpis::command(&cfg, from, to, show))
        }
        Command::Vacuum { config, retain_hours, dry_run } => {
            let Some(cfg) = load_config(&config) else { return Ok(ExitCode::from(EXIT_CONFIG)) };
            let options = kpipe_cli::vacuum::VacuumOptions {
                retention: std::time::Duration::from_secs(retain_hours.saturating_mul(3600)),
                dry_run,
            };
            Ok(kpipe_cli::vacuum::command(&cfg, &options))
        }
    }
}

/// A signal that asks kpipe to stop, and the exit code a process ended by it reports.
#[derive(Debug, Clone, Copy)]
struct Stop {
    name: &'static str,
    code: u8,
}

/// Returns on Ctrl-C (SIGINT) or SIGTERM.
async fn wait_for_stop() -> Stop {
    const SIGINT: Stop = Stop { name: "SIGINT", code: 130 };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => SIGINT,
                _ = term.recv() => Stop { name: "SIGTERM", code: 143 },
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    SIGINT
}

/// `kpipe plan --shards N`.
fn plan_split(path: &Path, count: u32, options: &RunOptions, json: bool) -> anyhow::Result<ExitCode> {
    let load = |shard| config::load_shard(path, &|name| std::env::var(name).ok(), shard);
    match kpipe_cli::plan_split::split(load, count, options) {
        Ok(split) if json => println!("{}", serde_json::to_string_pretty(&split)?),
        Ok(split) => print!("{}", split.render()),
        Err(e) => {
            eprintln!("error: {}", redact::text(&e));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(path: &Path) -> Option<config::Config> {
    load_config_shard(path, Shard::ALL)
}

fn load_config_shard(path: &Path, shard: Shard) -> Option<config::Config> {
    match config::load_shard(path, &|name| std::env::var(name).ok(), shard) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("configuration error:\n{}", redact::text(&e.to_string()));
            None
        }
    }
}

async fn run(
    cfg: config::Config,
    options: RunOptions,
    summary_json: Option<&Path>,
    progress: bool,
) -> anyhow::Result<ExitCode> {
    run_with(cfg, options, summary_json, progress, true).await
}

async fn run_with(
    cfg: config::Config,
    options: RunOptions,
    summary_json: Option<&Path>,
    progress: bool,
    with_kpis: bool,
) -> anyhow::Result<ExitCode> {
    let bars: Arc<dyn RunObserver> = if progress { Arc::new(Bars::default()) } else { Arc::new(Quiet) };
    let selected = cfg
        .sources
        .iter()
        .filter(|s| s.enabled && options.only.as_ref().is_none_or(|only| *only == s.name))
        .map(|s| s.name.clone());
    let run_progress = Arc::new(RunProgress::new(bars, selected));
    let kpi_stage = with_kpis.then(|| kpis::AfterRun::new(&cfg, &options));
    let outcome = tokio::select! {
        outcome = runner::run_locked(cfg, options, run_progress.clone()) => outcome,
        stop = wait_for_stop() => {
            // Dropping the run aborts its sources: their writers see their channels close and
            // throw their staged files away (the runtime waits for them before the process
            // ends), and the lock is released. A source that had committed keeps its days.
            tracing::warn!(signal = stop.name, "run interrupted");
            eprint!(
                "kpipe run: {} received, stopping. Published windows are in the output and the state; \
                 an interrupted window publishes nothing of this run (its staged files are removed) \
                 and the next run pulls it.\n{}",
                stop.name,
                redact::text(&run_progress.report())
            );
            return Ok(ExitCode::from(stop.code));
        }
    };
    let (mut summary, lock): (RunSummary, _) = match outcome {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", redact::text(&e.to_string()));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    print!("{}", redact::text(&summary.render()));
    let kpis_ok = kpi_stage.is_none_or(|stage| stage.run_under_lock(&mut summary, &lock));
    drop(lock);
    if let Some(path) = summary_json {
        let json = redact::summary_json(&summary)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let code = if kpis_ok || summary.exit_code() != 0 { summary.exit_code() } else { 1 };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

async fn backfill_command(
    path: &Path,
    shard: Shard,
    options: &BackfillOptions,
    progress: bool,
) -> anyhow::Result<ExitCode> {
    // Checked once up front so that a mistake is reported before anything runs.
    if load_config_shard(path, shard).is_none() {
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let load =
        || config::load_shard(path, &|name| std::env::var(name).ok(), shard).map_err(|e| e.to_string());
    let observer: Arc<dyn RunObserver> = if progress { Arc::new(Bars::default()) } else { Arc::new(Quiet) };
    let outcome = match backfill::backfill(load, options, observer, |summary| {
        print!("{}", redact::text(&summary.render()))
    })
    .await
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}", redact::text(&e.to_string()));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if let Some(reason) = &outcome.stopped {
        println!("backfill stopped: {}", redact::text(reason));
        if let (Some(first), Some(last)) = (outcome.remaining.first(), outcome.remaining.last()) {
            println!("  {} chunk(s) left, {} .. {}", outcome.remaining.len(), first, last);
        }
    } else {
        println!("backfill done: {} run(s)", outcome.runs.len());
    }
    Ok(ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1)))
}

/// The environment variable that sets the time `kpipe check` judges expiry dates at (RFC 3339),
/// to rehearse what a monitoring job will report on a later day.
const CHECK_TIME_VARIABLE: &str = "KPIPE_NOW";

async fn check(path: &Path, warn_days: Option<u32>, json: bool) -> anyhow::Result<ExitCode> {
    use kpipe_cli::token_health::{self, CheckReport, SourceCheck, TokenInputs};
    let judged_at = match std::env::var(CHECK_TIME_VARIABLE) {
        Err(_) => None,
        Ok(text) if text.trim().is_empty() => None,
        Ok(text) => match token_health::parse_rfc3339_or_date(text.trim()) {
            Some(at) => Some(at),
            None => {
                eprintln!(
                    "error: {CHECK_TIME_VARIABLE}: `{text}` is not an RFC 3339 date-time such as 2027-01-31T09:00:00Z"
                );
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
    };
    let (cfg, records) = match config::load_with_token_records(path, &|name| std::env::var(name).ok()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("configuration error:\n{}", redact::text(&e.to_string()));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let shown = path.display().to_string();
    if !json {
        println!("{shown}: configuration is valid ({} source(s))", cfg.sources.len());
    }
    let mut checks = Vec::with_capacity(cfg.sources.len());
    for s in &cfg.sources {
        let checked = if s.enabled {
            let outcome = s.source.check().await.map_err(|e| ErrorChain(&e).to_string());
            let observed_at = chrono::Utc::now();
            let token = token_health::assess(&TokenInputs {
                source: &s.name,
                config: &shown,
                platform: kpipe_cli::auth::platform(&s.kind),
                facts: s.source.token_facts(),
                record: records.get(&s.name),
                observed_at,
                now: judged_at.unwrap_or(observed_at),
                warn_days,
            });
            SourceCheck::checked(&s.name, &s.kind, outcome, token)
        } else {
            SourceCheck::skipped(&s.name, &s.kind)
        };
        if !json {
            print!("{}", redact::text(&checked.render()));
        }
        checks.push(checked);
    }
    let output = check_output(&cfg, &shown);
    if !json {
        print!("{}", redact::text(&output.render()));
    }
    let report =
        CheckReport::new(&shown, judged_at.unwrap_or_else(chrono::Utc::now), checks).with_output(output);
    if json {
        println!("{}", serde_json::to_string_pretty(&redact::json(&report)?)?);
    } else {
        println!("{}", redact::text(&report.tally()));
    }
    Ok(ExitCode::from(report.exit_code))
}

fn state_command(command: StateCommand) -> ExitCode {
    use kpipe_cli::state_cmd;
    match command {
        StateCommand::Show { config, source, json, shard } => {
            let Some(cfg) = load_config_shard(&config, shard.unwrap_or(Shard::ALL)) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            match state_cmd::show(&cfg, source.as_deref()) {
                Ok(views) if json => match serde_json::to_string_pretty(&views) {
                    Ok(text) => {
                        println!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                },
                Ok(views) => {
                    print!("{}", state_cmd::render(&views));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        StateCommand::Reset { config, source, stream, from, to, shard } => {
            let Some(cfg) = load_config_shard(&config, shard.unwrap_or(Shard::ALL)) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            match state_cmd::reset(&cfg, &source, stream.as_deref(), from, to) {
                Ok(report) => {
                    let what = match (from, to) {
                        (None, None) => "every day".to_owned(),
                        (Some(from), None) => format!("the days from {from}"),
                        (None, Some(to)) => format!("the days through {to}"),
                        (Some(from), Some(to)) => format!("the days {from} to {to}"),
                    };
                    println!(
                        "{}: forgot {} written day(s) of {what}{}; the next run pulls them again",
                        report.source,
                        report.days_forgotten,
                        report
                            .stream
                            .map(|s| format!(", and moved back the cursors of stream {s}"))
                            .unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Whether `pipeline.output` can be written: a probe object listed, written, read back and
/// removed (a directory is created if missing); for Delta tables, also that a second
/// create-only write of it is refused.
fn check_output(cfg: &kpipe_cli::Config, config_file: &str) -> kpipe_cli::token_health::OutputCheck {
    let location = cfg.pipeline.output.to_string();
    let probed = cfg.pipeline.open_storage().and_then(|storage| {
        let key = kpipe_sink_parquet::layout::probe_object(&uuid::Uuid::now_v7().simple().to_string());
        storage.probe(&key)?;
        if cfg.pipeline.format == kpipe_sink_parquet::OutputFormat::Delta {
            storage.probe_conditional_writes(&key)?;
        }
        Ok(())
    });
    match probed {
        Ok(()) => kpipe_cli::token_health::OutputCheck { location, ok: true, error: None },
        Err(e) => kpipe_cli::token_health::OutputCheck {
            error: Some(format!("{config_file}: pipeline.output = {location}: {e}")),
            location,
            ok: false,
        },
    }
}

/// Spinners on a terminal, one per source.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl Bars {
    fn bar(&self, source: &str) -> Option<ProgressBar> {
        let bars = self.bars.lock().ok()?;
        bars.iter().find(|(n, _)| n == source).map(|(_, b)| b.clone())
    }
}

impl RunObserver for Bars {
    fn started(&self, source: &str, window: DateWindow) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:<16} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(source.to_owned());
        bar.set_message(format!("pulling {window}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.push((source.to_owned(), bar));
        }
    }

    fn rows(&self, source: &str, rows: u64) {
        if let Some(bar) = self.bar(source) {
            bar.set_message(format!("{rows} rows written"));
        }
    }

    fn finished(&self, summary: &SourceSummary) {
        if let Some(bar) = self.bar(&summary.name) {
            bar.finish_with_message(
                format!("{:?}: {} rows", summary.status, summary.rows_written).to_lowercase(),
            );
        }
    }
}
