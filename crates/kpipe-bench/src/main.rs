//! `kpipe-bench`: the end-to-end benchmark scenarios (`cargo xtask bench` runs them all).
//!
//! - `run --kpipe PATH [--scenario NAME]... [--quick] [--doc FILE --command TEXT]`: runs the
//!   scenarios, prints one table, appends the figures to the document.
//! - `serve --scenario NAME [--quick]`: the simulated APIs of a scenario (used by `run`).
//! - `measure --out FILE [--log FILE] -- CMD...`: CPU time and peak memory of a command (used by
//!   `run`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kpipe_bench::report::{self, Machine};
use kpipe_bench::run::{self, Options};
use kpipe_bench::scenario::Scenario;
use kpipe_bench::serve::Simulators;
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(name = "kpipe-bench", about = "End-to-end benchmarks of kpipe against the simulated platform APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and print the table.
    Run {
        /// The kpipe binary to measure (a release build).
        #[arg(long)]
        kpipe: PathBuf,
        /// Only these scenarios (default: all).
        #[arg(long, value_enum)]
        scenario: Vec<Scenario>,
        /// Small volumes: checks that everything runs, measures nothing worth keeping.
        #[arg(long)]
        quick: bool,
        /// Append the figures to this Markdown file's "End to end" section.
        #[arg(long, requires = "command")]
        doc: Option<PathBuf>,
        /// The command line to name in the document.
        #[arg(long)]
        command: Option<String>,
        /// Where the scenarios' files go (default: a temporary directory, removed at the end).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Serve the simulated APIs of a scenario until standard input closes.
    Serve {
        /// The scenario.
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Its small volumes.
        #[arg(long)]
        quick: bool,
    },
    /// Run a command and write its wall time, CPU time and peak memory as JSON.
    Measure {
        /// Where the JSON goes.
        #[arg(long)]
        out: PathBuf,
        /// Where the command's output goes (default: inherited).
        #[arg(long)]
        log: Option<PathBuf>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { scenario, quick } => serve(scenario, quick),
        Command::Measure { out, log, command } => measure(&out, log.as_deref(), &command),
        Command::Run { kpipe, scenario, quick, doc, command, work_dir } => {
            run(kpipe, scenario, quick, doc, command, work_dir)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kpipe-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(scenario: Scenario, quick: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let plan = scenario.plan(quick);
        let sims = Simulators::start(&plan).await.context("cannot start the simulators")?;
        println!("{}", serde_json::to_string(&sims.endpoints())?);
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        // Serve until the driver closes standard input (or sends a line: also a stop).
        let _ = lines.next_line().await;
        println!("{}", serde_json::to_string(&sims.stats())?);
        sims.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn measure(
    out: &std::path::Path,
    log: Option<&std::path::Path>,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let usage = kpipe_bench::measure::run_measured(command, log)?;
    std::fs::write(out, serde_json::to_string(&usage)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "rustc (unknown version)".into())
}

fn run(
    kpipe: PathBuf,
    scenarios: Vec<Scenario>,
    quick: bool,
    doc: Option<PathBuf>,
    command: Option<String>,
    work_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let bench = std::env::current_exe().context("cannot find the kpipe-bench binary")?;
    let kpipe =
        std::fs::canonicalize(&kpipe).with_context(|| format!("no kpipe binary at {}", kpipe.display()))?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let work_dir = work_dir.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;
    // Absolute: the commands run in the scenarios' directories.
    let work_dir =
        std::fs::canonicalize(&work_dir).with_context(|| format!("no directory {}", work_dir.display()))?;
    let options = Options { bench, kpipe, quick, work_dir };
    let mut scenarios = if scenarios.is_empty() { Scenario::ALL.to_vec() } else { scenarios };
    scenarios.sort();
    scenarios.dedup();
    let mut reports = Vec::new();
    for scenario in scenarios {
        eprintln!("kpipe-bench: scenario {} ...", scenario.name());
        let report = run::scenario(&options, scenario);
        let outcome = match (&report.error, &report.skipped) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(why)) => format!("skipped: {why}"),
            (None, None) => "done".to_owned(),
        };
        eprintln!("kpipe-bench: scenario {} {outcome} in {:.1} s", scenario.name(), report.seconds);
        reports.push(report);
    }
    let extra = report::memory_growth(&reports);
    println!("\n{}", report::table(&reports, &extra));
    if let (Some(doc), Some(command)) = (doc, command) {
        let when = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        let text = report::markdown(&reports, &extra, &when, &Machine::read(), &rustc_version(), &command);
        report::append_to_doc(&doc, &text).with_context(|| format!("cannot append to {}", doc.display()))?;
        println!("figures appended to {}", doc.display());
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
