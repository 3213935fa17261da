//! The command line: every subcommand, its flags and its help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use kpipe_cli::config;
use kpipe_core::{NaiveDate, Shard};

/// Exit code for a configuration or usage error: nothing ran.
pub(crate) const EXIT_CONFIG: u8 = 2;

/// The exit codes each subcommand's `--help` lists (docs/scheduling.md has the same tables).
const ROOT_EXIT_CODES: &str = "Exit codes (each command's --help lists its own):\n  0    done\n  1    a source, a check or the work failed\n  2    configuration or usage error: nothing ran\n  3    done in part: records quarantined, a quota reached, or a token expiring soon (run, backfill, check)";
const RUN_EXIT_CODES: &str = "Exit codes:\n  0    every source succeeded\n  1    a source failed (its earlier data is untouched), or the KPI stage failed\n  2    configuration or usage error, or another run holds the output: nothing ran\n  3    every source ran, but records were quarantined or a daily quota stopped a source after it published the days it completed\n  130  stopped by SIGINT, 143 by SIGTERM: published windows stay, the interrupted one is pulled again next time";
const CHECK_EXIT_CODES: &str = "Exit codes:\n  0    every source is ready and no credential expires soon\n  1    a source's check failed, a credential has expired, or the output cannot be written\n  2    configuration or usage error\n  3    every source is ready but a refresh token expires within the warning threshold";
const BACKFILL_EXIT_CODES: &str = "Exit codes:\n  0    every chunk ran and succeeded\n  1    a source failed in a chunk\n  2    configuration or usage error: nothing ran\n  3    records were quarantined, or a quota stopped the backfill: run the same command again later to resume";
const PLAN_EXIT_CODES: &str = "Exit codes:\n  0    the plan was printed\n  1    the plan could not be printed\n  2    configuration or usage error, or the state could not be read";
const AUTH_EXIT_CODES: &str = "Exit codes:\n  0    the refresh token was stored (or printed)\n  1    the consent or the exchange failed (refused, state mismatch, timeout, token endpoint error) or the file could not be written\n  2    configuration or usage error: nothing was sent";
const SCHEDULE_EXIT_CODES: &str = "Exit codes:\n  0    stopped by a signal (after the run in flight finished), or --max-runs reached\n  1    the schedule cannot go on (no further fire time, no signal handler)\n  2    bad expression, time zone, configuration or option: nothing ran\n  130  a second signal aborted the run in flight\nEach run's own outcome (0, 1 or 3 as for `kpipe run`) is in the logs, the --summary-json files and the run metrics.";
const DEMO_EXIT_CODES: &str = "Exit codes:\n  0    the demo ran and wrote its output and report\n  1    a source or the KPI stage failed, the report could not be written, or the simulated APIs could not start\n  2    the demo's inputs or configuration could not be written or read\n  3    records were quarantined (the summary says which and where)";
const KPIS_EXIT_CODES: &str = "Exit codes:\n  0    the KPIs were recomputed (and printed with --show)\n  1    reading the metrics or writing the KPIs failed\n  2    configuration or usage error, or a run holds the output: nothing ran";
const REPORT_EXIT_CODES: &str = "Exit codes:\n  0    the report was written\n  1    nothing to report (no KPIs in the window), or a file could not be read or written\n  2    configuration or usage error, or the output cannot be opened";
const CATALOG_EXIT_CODES: &str =
    "Exit codes:\n  0    the catalog was printed\n  2    unknown connector or usage error";
const STATE_EXIT_CODES: &str = "Exit codes:\n  0    done\n  1    the state could not be read or written\n  2    configuration or usage error";
const VACUUM_EXIT_CODES: &str = "Exit codes:\n  0    done (or, with --dry-run, counted)\n  1    listing or removing files failed\n  2    configuration or usage error, or the output is not a Delta output";
const PLAIN_EXIT_CODES: &str = "Exit codes:\n  0    printed\n  2    usage error";

#[derive(Parser)]
#[command(
    name = "kpipe",
    version,
    about = "Pull marketing metrics into one Parquet schema",
    max_term_width = 100,
    after_help = ROOT_EXIT_CODES
)]
pub(crate) struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
    /// More log detail, one level per -v: from warnings on a terminal (its progress lines say
    /// the rest) and info elsewhere, to debug and trace. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Less log detail, one level per -q: warnings, then errors only, then none.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Pull every enabled source for a window of days, replace those days in the output.
    #[command(after_help = RUN_EXIT_CODES)]
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
        /// Also write the run's metrics (rows, requests, retries, throttling, quota left, status
        /// per source and stream, last success) to this file in Prometheus' text format, for
        /// node-exporter's textfile collector. Replaced atomically at the end of the run.
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
    },
    /// Pull a long range as a series of runs, resuming where a quota stopped the last one.
    #[command(after_help = BACKFILL_EXIT_CODES)]
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
    #[command(after_help = PLAN_EXIT_CODES)]
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
    #[command(after_help = CHECK_EXIT_CODES)]
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
    #[command(after_help = AUTH_EXIT_CODES)]
    Auth(kpipe_cli::auth::AuthArgs),
    /// Run the pipeline at the fire times of a cron expression until SIGTERM or SIGINT; runs
    /// never overlap.
    #[command(after_help = SCHEDULE_EXIT_CODES)]
    Schedule(kpipe_cli::schedule::ScheduleArgs),
    /// List the connector types this build knows.
    #[command(after_help = PLAIN_EXIT_CODES)]
    Connectors,
    /// What each connector can pull: its streams, the metrics each yields (unit, additivity,
    /// platform field), its dimensions, its configuration keys (a JSON Schema, secrets marked)
    /// and the KPIs computable from them.
    #[command(after_help = CATALOG_EXIT_CODES)]
    Catalog(kpipe_cli::catalog::CatalogArgs),
    /// Write a self-contained HTML report of the stored KPIs: trends by week and month,
    /// platforms side by side, the funnels, spend and ROI.
    #[command(after_help = REPORT_EXIT_CODES)]
    Report(kpipe_cli::report::ReportArgs),
    /// Print a shell completion script: `kpipe completions bash > /etc/bash_completion.d/kpipe`.
    #[command(after_help = PLAIN_EXIT_CODES)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (kpipe.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man {
        /// The directory to write into.
        #[arg(long, default_value = "target/man")]
        dir: PathBuf,
    },
    /// Run the whole pipeline on built-in sample data (no credentials needed).
    #[command(after_help = DEMO_EXIT_CODES)]
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
    #[command(subcommand, after_help = STATE_EXIT_CODES)]
    State(StateCommand),
    /// Recompute the KPIs of every period a window touches from the stored metrics.
    #[command(after_help = KPIS_EXIT_CODES)]
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
    #[command(after_help = VACUUM_EXIT_CODES)]
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
pub(crate) enum StateCommand {
    /// Print the ledger (days written, final or provisional) and the cursors of each source.
    #[command(after_help = STATE_EXIT_CODES)]
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
    #[command(after_help = STATE_EXIT_CODES)]
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
pub(crate) struct ShardArgs {
    /// Run shard K of N (K from 0): only the (source, account) units a stable hash assigns to
    /// it, with its part of per-application rate limits; state and lock of its own.
    #[arg(long, value_name = "K/N", value_parser = shard_arg, conflicts_with = "shards")]
    pub(crate) shard: Option<Shard>,
    /// Run shard $JOB_COMPLETION_INDEX of N (a Kubernetes Indexed Job's index).
    #[arg(long, value_name = "N")]
    pub(crate) shards: Option<u32>,
}

impl ShardArgs {
    /// The shard to run: the whole configuration without either flag.
    pub(crate) fn resolve(self) -> Result<Shard, String> {
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Schedulers branch on exit codes, so every command's help says what each one means.
    #[test]
    fn every_subcommand_help_lists_its_exit_codes() {
        let mut missing = Vec::new();
        let mut root = Cli::command();
        root.build();
        let mut stack: Vec<(String, clap::Command)> =
            root.get_subcommands().map(|c| (c.get_name().to_owned(), c.clone())).collect();
        while let Some((path, command)) = stack.pop() {
            if command.is_hide_set() || path.split(' ').any(|part| part == "help") {
                continue;
            }
            let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !help.starts_with("Exit codes:") {
                missing.push(path.clone());
            }
            stack.extend(command.get_subcommands().map(|c| (format!("{path} {}", c.get_name()), c.clone())));
        }
        assert!(missing.is_empty(), "subcommands whose --help lists no exit codes: {missing:?}");
    }
}
