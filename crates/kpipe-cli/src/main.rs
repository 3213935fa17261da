//! `kpipe`: pull marketing metrics, normalize them, write Parquet.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use kpipe_cli::backfill::{self, BackfillOptions, Order};
use kpipe_cli::demo_apis::DemoApis;
use kpipe_cli::run_progress::RunProgress;
use kpipe_cli::runner::Quiet;
use kpipe_cli::{RunObserver, RunOptions, RunSummary, config, demo, redact, registry, runner};
use kpipe_core::{ErrorChain, Shard};

mod args;
mod bars;
mod kpis;

use args::{Cli, Command, EXIT_CONFIG, LogFormat, StateCommand};
use bars::Bars;

fn main() -> ExitCode {
    kpipe_cli::malloc::tune();
    let cli = Cli::parse();
    let progress = cli.log_format == LogFormat::Text && std::io::stderr().is_terminal();
    // Dropped last, after the runtime: what is left of the spans and metrics is exported then,
    // whichever way `main` returns.
    let _telemetry = init_logging(cli.log_format, log_filter(cli.verbose, cli.quiet, progress));
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

fn init_logging(format: LogFormat, default: String) -> kpipe_cli::telemetry::Telemetry {
    use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Every event is scrubbed of registered secrets on its way to standard error. Spans are for
    // OpenTelemetry only: log lines look the same with or without them.
    let logs = tracing_subscriber::fmt::layer().with_writer(redact::LogWriter(std::io::stderr));
    let logs = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let telemetry = kpipe_cli::telemetry::Telemetry::from_env();
    let events_only = filter_fn(|metadata| metadata.is_event());
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter.and(events_only)))
        .with(telemetry.layer())
        .try_init();
    telemetry.log_setup();
    telemetry
}

async fn dispatch(command: Command, progress: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::Catalog(args) => Ok(ExitCode::from(kpipe_cli::catalog::command(&args))),
        Command::Report(args) => Ok(ExitCode::from(kpipe_cli::report::command(&args))),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "kpipe", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            man_pages(&dir)?;
            println!("man pages written to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
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
            // Scheduled runs compute the KPIs as `kpipe run` does, beside the pull.
            let kpi_stage: Arc<kpipe_cli::schedule::AfterRunHook> =
                Arc::new(|cfg: &config::Config, options: &RunOptions| {
                    let stage = Arc::new(kpis::DuringRun::new(cfg, options, Arc::new(Quiet)));
                    kpipe_cli::schedule::RunStages {
                        observer: stage.clone(),
                        finish: Box::new(move |summary: &mut RunSummary, lock: &kpipe_cli::lock::RunLock| {
                            stage.finish_under_lock(summary, lock)
                        }),
                    }
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
        Command::Run {
            config,
            from,
            to,
            source,
            full_refresh,
            summary_json,
            shard,
            no_kpis,
            metrics_file,
        } => {
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
            run_with(cfg, options, summary_json.as_deref(), progress, with_kpis, metrics_file.as_deref())
                .await
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
            // The HTML report of what the demo wrote; the demo fails if it cannot be written.
            let report_path = output.join("report.html");
            let code = match load_config(&config_path)
                .map(|cfg| kpipe_cli::report::write_report(&cfg, None, None, &report_path))
            {
                Some(Ok(outcome)) => {
                    println!("\nReport: {}", outcome.path.display());
                    code
                }
                Some(Err(e)) => {
                    eprintln!("error: no report: {}", redact::text(&e.to_string()));
                    ExitCode::FAILURE
                }
                None => ExitCode::from(EXIT_CONFIG),
            };
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

/// `kpipe man`: the page of `kpipe` and one per subcommand (`kpipe-run.1`, ...), in roff.
fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let command = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    Ok(())
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
    run_with(cfg, options, summary_json, progress, true, None).await
}

async fn run_with(
    cfg: config::Config,
    options: RunOptions,
    summary_json: Option<&Path>,
    progress: bool,
    with_kpis: bool,
    metrics_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let bars: Arc<dyn RunObserver> = if progress { Arc::new(Bars::default()) } else { Arc::new(Quiet) };
    let selected = cfg
        .sources
        .iter()
        .filter(|s| s.enabled && options.only.as_ref().is_none_or(|only| *only == s.name))
        .map(|s| s.name.clone());
    let run_progress = Arc::new(RunProgress::new(bars, selected));
    // The KPIs are computed as the sources finish, beside the pull.
    let kpi_stage = with_kpis.then(|| Arc::new(kpis::DuringRun::new(&cfg, &options, run_progress.clone())));
    let observer: Arc<dyn RunObserver> = match &kpi_stage {
        Some(stage) => stage.clone(),
        None => run_progress.clone(),
    };
    let metrics_context = metrics_file.map(|_| kpipe_cli::run_metrics::RunContext::of(&cfg));
    let outcome = tokio::select! {
        outcome = runner::run_locked(cfg, options, observer) => outcome,
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
    let kpis_ok = kpi_stage.is_none_or(|stage| stage.finish_under_lock(&mut summary, &lock));
    drop(lock);
    if let Some(path) = summary_json {
        let json = redact::summary_json(&summary)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(path), Some(context)) = (metrics_file, &metrics_context) {
        kpipe_cli::run_metrics::write_textfile(path, &summary, context)
            .with_context(|| format!("cannot write the run metrics to {}", path.display()))?;
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
