//! The driver: for each scenario, starts `kpipe-bench serve` (the simulators, a process of their
//! own), writes the configuration, runs `kpipe run` under `kpipe-bench measure`, stops the
//! simulators and turns what both sides saw into figures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use crate::analysis::{CallsPerRow, QuotaBound, calls_per_row, quota_bound};
use crate::measure::Usage;
use crate::peer::{self, PeerRows};
use crate::report::{Figure, ScenarioReport, Verdict};
use crate::scenario::{Plan, Scenario, window};
use crate::serve::{Endpoints, SimStats};
use crate::summary::RunSummary;

/// What went wrong while running a scenario.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A process could not be started or waited for.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A process answered something unreadable.
    #[error("{what}: {detail}")]
    Protocol {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

pub(crate) fn protocol(what: impl Into<String>, detail: impl std::fmt::Display) -> RunError {
    RunError::Protocol { what: what.into(), detail: detail.to_string() }
}

/// How to run the scenarios.
#[derive(Debug, Clone)]
pub struct Options {
    /// `kpipe-bench` itself (for `serve` and `measure`).
    pub bench: PathBuf,
    /// The `kpipe` binary measured.
    pub kpipe: PathBuf,
    /// Smaller volumes.
    pub quick: bool,
    /// Where each scenario's files go (a directory per scenario).
    pub work_dir: PathBuf,
}

/// The simulators of one scenario, in their own process.
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Where the platforms listen.
    pub endpoints: Endpoints,
}

impl SimProcess {
    /// Starts `bench serve --scenario <scenario>` and reads where the platforms listen.
    pub fn start(bench: &Path, scenario: Scenario, quick: bool) -> Result<SimProcess, RunError> {
        let mut command = Command::new(bench);
        command.args(["serve", "--scenario", scenario.name()]);
        if quick {
            command.arg("--quick");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io(format!("cannot start {} serve", bench.display())))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| protocol("serve", "no standard output"))?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(io("reading the simulators' endpoints"))?;
        let endpoints = serde_json::from_str(&line)
            .map_err(|e| protocol("the simulators' endpoints", format!("{e}: {line:?}")))?;
        Ok(SimProcess { child, stdin, stdout, endpoints })
    }

    /// Stops the simulators and reads what they saw.
    pub fn stop(mut self) -> Result<SimStats, RunError> {
        // Closing standard input is the signal to stop.
        drop(self.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(io("reading the simulators' statistics"))?;
        let status = self.child.wait().map_err(io("waiting for the simulators"))?;
        if !status.success() {
            return Err(protocol("serve", format!("exited with {status}")));
        }
        serde_json::from_str(&line)
            .map_err(|e| protocol("the simulators' statistics", format!("{e}: {line:?}")))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Only a process that never got its stop signal is still running here.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command running under `bench measure` (see [`spawn_measured`]).
#[derive(Debug)]
pub struct MeasuredChild {
    child: Child,
    usage_file: PathBuf,
    name: String,
}

/// Starts `command` under `bench measure`, its output in `<dir>/<name>.log`, its cost to be
/// read with [`MeasuredChild::wait`]. Each has a measuring process of its own, so commands
/// started side by side are measured apart.
pub fn spawn_measured(
    bench: &Path,
    command: &[String],
    dir: &Path,
    name: &str,
) -> Result<MeasuredChild, RunError> {
    let usage_file = dir.join(format!("{name}.usage.json"));
    let log = dir.join(format!("{name}.log"));
    // In the scenario's directory: every path is absolute, and the command gets a working
    // directory that exists whatever the caller's.
    let child = Command::new(bench)
        .current_dir(dir)
        .arg("measure")
        .arg("--out")
        .arg(&usage_file)
        .arg("--log")
        .arg(&log)
        .arg("--")
        .args(command)
        .spawn()
        .map_err(io(format!("cannot start {} measure", bench.display())))?;
    Ok(MeasuredChild { child, usage_file, name: name.to_owned() })
}

impl MeasuredChild {
    /// Waits for the command and reads what it cost.
    pub fn wait(mut self) -> Result<Usage, RunError> {
        let status = self.child.wait().map_err(io(format!("waiting for {}", self.name)))?;
        if !status.success() {
            return Err(protocol(
                format!("measuring {}", self.name),
                format!("the measuring process exited with {status}"),
            ));
        }
        let text = std::fs::read_to_string(&self.usage_file)
            .map_err(io(format!("reading {}", self.usage_file.display())))?;
        serde_json::from_str(&text).map_err(|e| protocol(format!("{}", self.usage_file.display()), e))
    }
}

/// Runs `command` under `bench measure`, its output in `<dir>/<name>.log`.
pub fn measured(bench: &Path, command: &[String], dir: &Path, name: &str) -> Result<Usage, RunError> {
    spawn_measured(bench, command, dir, name)?.wait()
}

/// The last non-empty line of a log, for a one-line error message.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().chars().take(300).collect()
}

/// One measured `kpipe run` of a plan against running simulators.
#[derive(Debug)]
pub struct KpipeRun {
    /// What the process cost.
    pub usage: Usage,
    /// Its summary.
    pub summary: RunSummary,
    /// What the simulators saw.
    pub stats: SimStats,
}

/// Serves `scenario`, pulls it with kpipe (measured), stops the simulators.
pub fn pull(options: &Options, scenario: Scenario, plan: &Plan) -> Result<KpipeRun, RunError> {
    pull_into(options, scenario, plan, None, "", scenario.name())
}

/// Where a run writes, when not to a local directory: an object store's URL and the
/// `[pipeline.storage]` lines that reach it.
pub struct ObjectOutput {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// `key = "value"` lines.
    pub storage: String,
}

impl ObjectOutput {
    /// Under `prefix` of the bucket of a running S3-compatible server (moto).
    pub fn s3(server: &kpipe_testkit::services::S3Server, prefix: &str) -> ObjectOutput {
        let storage = [
            ("endpoint", server.endpoint()),
            ("access_key_id", server.access_key_id().to_owned()),
            ("secret_access_key", server.secret_access_key().to_owned()),
            ("region", server.region().to_owned()),
            ("allow_http", "true".to_owned()),
        ]
        .iter()
        .map(|(k, v)| format!("{k} = \"{v}\""))
        .collect::<Vec<_>>()
        .join("\n");
        ObjectOutput { url: server.url(prefix), storage }
    }
}

impl std::fmt::Debug for ObjectOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The storage lines hold credentials.
        f.debug_struct("ObjectOutput").field("url", &self.url).finish_non_exhaustive()
    }
}

fn pull_into(
    options: &Options,
    scenario: Scenario,
    plan: &Plan,
    object: Option<&ObjectOutput>,
    pipeline_extra: &str,
    name: &str,
) -> Result<KpipeRun, RunError> {
    let dir = options.work_dir.join(name);
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let sims = SimProcess::start(&options.bench, scenario, options.quick)?;
    let (usage, summary) = kpipe_against(options, plan, &sims.endpoints, &dir, object, pipeline_extra)?;
    let stats = sims.stop()?;
    Ok(KpipeRun { usage, summary, stats })
}

fn kpipe_against(
    options: &Options,
    plan: &Plan,
    endpoints: &Endpoints,
    dir: &Path,
    object: Option<&ObjectOutput>,
    pipeline_extra: &str,
) -> Result<(Usage, RunSummary), RunError> {
    let output = dir.join("out");
    // Every run starts from an empty output, as the first nightly run of a new setup does.
    if output.exists() {
        std::fs::remove_dir_all(&output).map_err(io(format!("cannot empty {}", output.display())))?;
    }
    let mut toml =
        crate::config::kpipe_toml(plan, endpoints, &output).map_err(|e| protocol("the configuration", e))?;
    if !pipeline_extra.is_empty() {
        toml = toml.replacen("[pipeline]\n", &format!("[pipeline]\n{pipeline_extra}\n"), 1);
    }
    if let Some(object) = object {
        let local = format!("output = \"{}\"", output.display().to_string().replace('\\', "\\\\"));
        toml = toml.replacen(&local, &format!("output = \"{}\"", object.url), 1);
        toml.push_str(&format!("\n[pipeline.storage]\n{}\n", object.storage));
    }
    let config = dir.join("kpipe.toml");
    std::fs::write(&config, toml).map_err(io(format!("cannot write {}", config.display())))?;
    let summary_file = dir.join("summary.json");
    let (from, to) = plan.window();
    let command: Vec<String> = vec![
        options.kpipe.display().to_string(),
        "run".into(),
        "--config".into(),
        config.display().to_string(),
        "--from".into(),
        from.to_string(),
        "--to".into(),
        to.to_string(),
        "--full-refresh".into(),
        "--summary-json".into(),
        summary_file.display().to_string(),
    ];
    let usage = measured(&options.bench, &command, dir, "kpipe")?;
    let text = std::fs::read_to_string(&summary_file).map_err(|_| {
        protocol(
            "kpipe run",
            format!("no summary (exit {:?}): {}", usage.exit_code, log_tail(&dir.join("kpipe.log"))),
        )
    })?;
    let summary = RunSummary::parse(&text).map_err(|e| protocol(summary_file.display().to_string(), e))?;
    Ok((usage, summary))
}

/// Runs one scenario; one that could not run is reported as failed, with why.
pub fn scenario(options: &Options, scenario: Scenario) -> ScenarioReport {
    let started = Instant::now();
    let result = match scenario {
        Scenario::Quota => quota(options),
        Scenario::Defaults => crate::defaults::run(options),
        Scenario::Cpu => throughput(options),
        Scenario::Memory1M | Scenario::Memory10M => memory(options, scenario),
        Scenario::Peer => peer_side_by_side(options),
        Scenario::S3 => object_store_side_by_side(options),
        Scenario::Delta => delta_side_by_side(options),
        Scenario::Shards5k => crate::shards::run(options),
    };
    let mut report = match result {
        Ok(report) => report,
        Err(e) => ScenarioReport::failed(scenario, e.to_string()),
    };
    report.seconds = started.elapsed().as_secs_f64();
    report
}

pub(crate) fn status_figure(summary: &RunSummary) -> Option<Figure> {
    let failed: Vec<String> = summary
        .sources
        .iter()
        .filter(|s| s.status != "succeeded")
        .map(|s| format!("{} {}: {}", s.name, s.status, s.error.as_deref().unwrap_or("")))
        .collect();
    (!failed.is_empty()).then(|| {
        Figure::new("sources not succeeded", failed.len().to_string())
            .target("0", Verdict::Missed)
            .note(failed.join("; "))
    })
}

fn quota(options: &Options) -> Result<ScenarioReport, RunError> {
    let plan = Scenario::Quota.plan(options.quick);
    let run = pull(options, Scenario::Quota, &plan)?;
    let bound = quota_bound(&plan, &run.stats, &run.summary);
    let calls = calls_per_row(&plan, &run.stats, &run.summary);
    Ok(quota_report(&run, &bound, &calls))
}

/// The figures of the quota scenario (and the calls per row it measured).
pub fn quota_report(run: &KpipeRun, bound: &QuotaBound, calls: &[CallsPerRow]) -> ScenarioReport {
    let mut report = ScenarioReport::new(Scenario::Quota);
    let minimum = bound.bound_s();
    let pull = run.summary.duration_ms as f64 / 1000.0;
    let wall = run.usage.wall_s;
    let refused = run.stats.refused_over_quota();
    if let Some(slowest) = bound.slowest() {
        report.push(Figure::new("quota-bound minimum", format!("{minimum:.1} s")).note(format!(
            "set by {}: {} requests at {}",
            slowest.platform, slowest.requests, slowest.limit
        )));
    }
    let ratio = |seconds: f64| seconds / minimum.max(f64::EPSILON);
    report.push(
        Figure::new("pull: wall / bound", format!("{pull:.1} s / {:.2}", ratio(pull)))
            .target("<= 1.10", Verdict::of(ratio(pull) <= 1.10))
            .note("every source, from the run's start to the last source's end"),
    );
    report.push(
        Figure::new("whole run: wall / bound", format!("{wall:.1} s / {:.2}", ratio(wall)))
            .target("<= 1.10", Verdict::of(ratio(wall) <= 1.10))
            .note("the kpipe process: start, pull, KPI stage, exit"),
    );
    report.push(
        Figure::new("requests refused over quota", refused.to_string())
            .target("0", Verdict::of(refused == 0)),
    );
    push_platform_bounds(&mut report, bound);
    report.push(Figure::new("metric rows", group(run.summary.rows())));
    report.push(Figure::new(
        "CPU (user + sys) / peak RSS",
        format!("{:.1} s / {:.0} MiB", run.usage.cpu_s(), run.usage.max_rss_mib()),
    ));
    report.extend(status_figure(&run.summary));
    for c in calls {
        report.push(
            Figure::new(
                format!("calls per row, {}", c.platform),
                format!("{:.5} ({} requests / {} rows)", c.per_row(), group(c.requests), group(c.rows)),
            )
            .target(
                format!("minimum {:.5} ({})", c.minimum_per_row(), group(c.minimum)),
                Verdict::of(c.requests <= c.minimum),
            )
            .note(format!("{:.2}x the minimum; {}", c.ratio(), c.basis)),
        );
    }
    report
}

fn throughput(options: &Options) -> Result<ScenarioReport, RunError> {
    let plan = Scenario::Cpu.plan(options.quick);
    let run = pull(options, Scenario::Cpu, &plan)?;
    let rows = run.summary.rows();
    let per_cpu = rows as f64 / run.usage.cpu_s().max(f64::EPSILON);
    let per_wall = rows as f64 / run.usage.wall_s.max(f64::EPSILON);
    let mut report = ScenarioReport::new(Scenario::Cpu);
    report.push(Figure::new("metric rows", group(rows)));
    report.push(
        Figure::new("rows per CPU second (user + sys)", group(per_cpu as u64))
            .target(">= 1,000,000", Verdict::of(per_cpu >= 1_000_000.0))
            .note(format!("{:.1} s CPU", run.usage.cpu_s())),
    );
    report.push(
        Figure::new("rows per wall second", group(per_wall as u64))
            .note(format!("{:.1} s wall", run.usage.wall_s)),
    );
    report.push(Figure::new("pull (sources) / KPI stage", stage_split(&run)));
    report.push(Figure::new("peak RSS", format!("{:.0} MiB", run.usage.max_rss_mib())));
    report.extend(pull_peak(&run));
    for (name, kind) in [("linkedin", "linkedin"), ("facebook", "facebook"), ("google", "google_analytics")] {
        let p = run.summary.platform(kind);
        if p.sources > 0 {
            report.push(Figure::new(
                format!("{name}: rows / requests"),
                format!("{} / {}", group(p.rows), group(p.requests)),
            ));
        }
    }
    report.extend(status_figure(&run.summary));
    Ok(report)
}

/// The CPU-bound pull into a local directory, then into moto's S3 server on 127.0.0.1: the
/// object store's cost in wall time and peak memory (uploads of whole day files, multipart above
/// 8 MiB, the state and the lease as objects).
fn object_store_side_by_side(options: &Options) -> Result<ScenarioReport, RunError> {
    let plan = Scenario::S3.plan(options.quick);
    let local = pull_into(options, Scenario::S3, &plan, None, "", "s3-local")?;
    let server = kpipe_testkit::services::s3_server().map_err(|e| protocol("the S3 server", e))?;
    let object = ObjectOutput::s3(&server, "bench");
    let remote = pull_into(options, Scenario::S3, &plan, Some(&object), "", "s3-remote")?;
    let mut report = ScenarioReport::new(Scenario::S3);
    let (l, r) = (local.usage.wall_s, remote.usage.wall_s);
    report.push(Figure::new(
        "metric rows (local / S3)",
        format!("{} / {}", group(local.summary.rows()), group(remote.summary.rows())),
    ));
    report.push(
        Figure::new("wall: S3 / local", format!("{r:.1} s / {l:.1} s = {:.2}", r / l.max(f64::EPSILON)))
            .target("<= 1.30", Verdict::of(r <= 1.3 * l))
            .note("the whole kpipe process, KPI stage included; moto keeps objects in memory"),
    );
    report.push(
        Figure::new(
            "peak RSS: S3 / local",
            format!("{:.0} MiB / {:.0} MiB", remote.usage.max_rss_mib(), local.usage.max_rss_mib()),
        )
        .target("< 150 MB", Verdict::of(remote.usage.max_rss_mib() * 1.048_576 < 150.0)),
    );
    report.push(Figure::new(
        "CPU (user + sys): S3 / local",
        format!("{:.1} s / {:.1} s", remote.usage.cpu_s(), local.usage.cpu_s()),
    ));
    report.extend(status_figure(&remote.summary));
    Ok(report)
}

/// The CPU-bound pull as Parquet files, then as Delta Lake tables: a Delta commit per source
/// (and per KPI run) must cost little beside the pull, in CPU and in memory.
fn delta_side_by_side(options: &Options) -> Result<ScenarioReport, RunError> {
    let plan = Scenario::Delta.plan(options.quick);
    let parquet = pull_into(options, Scenario::Delta, &plan, None, "", "delta-parquet")?;
    let delta = pull_into(options, Scenario::Delta, &plan, None, "format = \"delta\"", "delta-delta")?;
    let mut report = ScenarioReport::new(Scenario::Delta);
    report.push(Figure::new(
        "metric rows (Parquet / Delta)",
        format!("{} / {}", group(parquet.summary.rows()), group(delta.summary.rows())),
    ));
    let (p, d) = (parquet.usage.cpu_s(), delta.usage.cpu_s());
    report.push(
        Figure::new(
            "CPU (user + sys): Delta / Parquet",
            format!("{d:.1} s / {p:.1} s = {:.2}", d / p.max(f64::EPSILON)),
        )
        .target("<= 1.20", Verdict::of(d <= 1.2 * p))
        .note("the whole kpipe process, KPI stage included"),
    );
    report.push(Figure::new(
        "wall: Delta / Parquet",
        format!("{:.1} s / {:.1} s", delta.usage.wall_s, parquet.usage.wall_s),
    ));
    report.push(
        Figure::new(
            "peak RSS: Delta / Parquet",
            format!("{:.0} MiB / {:.0} MiB", delta.usage.max_rss_mib(), parquet.usage.max_rss_mib()),
        )
        .target("< 150 MB", Verdict::of(delta.usage.max_rss_mib() * 1.048_576 < 150.0)),
    );
    report.extend(status_figure(&delta.summary));
    Ok(report)
}

/// The pull's wall time (from the summary) and what follows it (the KPI stage, writing the
/// summary, exiting).
fn stage_split(run: &KpipeRun) -> String {
    let pull = run.summary.duration_ms as f64 / 1000.0;
    format!("{pull:.1} s / {:.1} s", (run.usage.wall_s - pull).max(0.0))
}

/// The sampled peak of the pull alone (before the KPI stage starts), MiB.
fn pull_peak_mib(run: &KpipeRun) -> Option<f64> {
    // The run starts a few milliseconds after the process; its summary times the pull.
    let pull_end = run.summary.duration_ms as f64 / 1000.0 + 0.1;
    run.usage.sampled_peak_mib_within(pull_end)
}

/// [`pull_peak_mib`] as a figure.
fn pull_peak(run: &KpipeRun) -> Option<Figure> {
    let peak = pull_peak_mib(run)?;
    Some(
        Figure::new("peak RSS of the pull (sampled)", format!("{peak:.0} MiB"))
            .note("VmRSS every 50 ms until the KPI stage"),
    )
}

fn memory(options: &Options, scenario: Scenario) -> Result<ScenarioReport, RunError> {
    let plan = scenario.plan(options.quick);
    let run = pull(options, scenario, &plan)?;
    let mib = run.usage.max_rss_mib();
    let mut report = ScenarioReport::new(scenario);
    report.push(Figure::new("metric rows", group(run.summary.rows())));
    report.push(
        Figure::new("peak RSS", format!("{mib:.0} MiB"))
            .target("< 150 MB", Verdict::of(mib * 1.048_576 < 150.0))
            .note("the whole process (getrusage)"),
    );
    report.extend(pull_peak(&run));
    report.push(Figure::new("wall / CPU", format!("{:.1} s / {:.1} s", run.usage.wall_s, run.usage.cpu_s())));
    report.push(Figure::new("pull (sources) / KPI stage", stage_split(&run)));
    report.peak_rss_mib = Some(mib);
    report.pull_peak_mib = pull_peak_mib(&run);
    report.extend(status_figure(&run.summary));
    Ok(report)
}

fn peer_side_by_side(options: &Options) -> Result<ScenarioReport, RunError> {
    let mut report = ScenarioReport::new(Scenario::Peer);
    let python = match peer::python() {
        Ok(python) => python,
        Err(e) => {
            report.skipped = Some(e.to_string());
            return Ok(report);
        }
    };
    let plan = Scenario::Peer.plan(options.quick);
    let Some(facebook) = plan.facebook else {
        return Err(protocol("the peer scenario", "pulls no Facebook accounts"));
    };
    let dir = options.work_dir.join(Scenario::Peer.name());
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let sims = SimProcess::start(&options.bench, Scenario::Peer, options.quick)?;
    let (kpipe, summary) = kpipe_against(options, &plan, &sims.endpoints, &dir, None, "")?;
    let endpoint =
        sims.endpoints.facebook.clone().ok_or_else(|| protocol("serve", "no Facebook endpoint"))?;
    let script = dir.join("facebook_insights.py");
    std::fs::write(&script, peer::SCRIPT).map_err(io(format!("cannot write {}", script.display())))?;
    let output = dir.join("dlt-out");
    if output.exists() {
        std::fs::remove_dir_all(&output).map_err(io(format!("cannot empty {}", output.display())))?;
    }
    std::fs::create_dir_all(&output).map_err(io(format!("cannot create {}", output.display())))?;
    let (from, to) = window();
    let command: Vec<String> = vec![
        python.display().to_string(),
        script.display().to_string(),
        endpoint.base_url,
        sims.endpoints.facebook_token.clone(),
        facebook.account_ids().join(","),
        from.to_string(),
        to.to_string(),
        facebook.page_size.to_string(),
        output.display().to_string(),
    ];
    let dlt = measured(&options.bench, &command, &dir, "dlt")?;
    let stats = sims.stop()?;
    let log = dir.join("dlt.log");
    let rows = PeerRows::parse(&std::fs::read_to_string(&log).unwrap_or_default());
    let Some(rows) = rows.filter(|_| dlt.exit_code == Some(0)) else {
        report.skipped =
            Some(format!("the dlt pipeline failed (exit {:?}): {}", dlt.exit_code, log_tail(&log)));
        return Ok(report);
    };
    let requests = stats.platforms.get("facebook").map(crate::analysis::api_requests).unwrap_or(0);
    let ratio = dlt.wall_s / kpipe.wall_s.max(f64::EPSILON);
    let insights = summary_insights_rows(&plan);
    report.push(
        Figure::new(
            "kpipe: wall / CPU / peak RSS",
            format!("{:.1} s / {:.1} s / {:.0} MiB", kpipe.wall_s, kpipe.cpu_s(), kpipe.max_rss_mib()),
        )
        .note("Facebook source, ad level, KPI stage off; Parquet by day"),
    );
    report.push(
        Figure::new(
            "dlt: wall / CPU / peak RSS",
            format!("{:.1} s / {:.1} s / {:.0} MiB", dlt.wall_s, dlt.cpu_s(), dlt.max_rss_mib()),
        )
        .note("rest_api source (paging.next), filesystem destination, Parquet"),
    );
    report.push(
        Figure::new(
            "rows written: kpipe / dlt",
            format!("{} / {}", group(summary.rows()), group(rows.all_rows())),
        )
        .note(format!(
            "the same {} insights rows: kpipe one row per metric, dlt {} table rows and {} in the actions tables",
            group(insights),
            group(rows.insights_rows()),
            group(rows.all_rows().saturating_sub(rows.insights_rows()))
        )),
    );
    report.push(
        Figure::new("dlt wall / kpipe wall", format!("{ratio:.1}"))
            .note(format!("{requests} requests to the simulator by both together")),
    );
    report.extend(status_figure(&summary));
    Ok(report)
}

/// The insights rows the simulator holds for the peer scenario (what both tools pull).
fn summary_insights_rows(plan: &Plan) -> u64 {
    let Some(p) = &plan.facebook else { return 0 };
    let graph = crate::serve::facebook_graph(plan, p);
    let (since, until) = window();
    p.account_ids()
        .iter()
        .map(|id| {
            graph
                .insights(
                    crate::scenario::SEED,
                    id,
                    kpipe_sim::platform::facebook::InsightsLevel::Ad,
                    since,
                    until,
                )
                .len() as u64
        })
        .sum()
}

/// `1234567` as `1,234,567`.
/// Per platform, its quota-bound time against the time its pull took.
pub(crate) fn push_platform_bounds(report: &mut ScenarioReport, bound: &QuotaBound) {
    for p in &bound.platforms {
        report.push(
            Figure::new(
                format!("{}: bound / pulled", p.platform),
                format!("{:.1} s / {:.1} s", p.bound_s, p.pulled_s),
            )
            .note(format!("{} requests; {}", group(p.requests), p.limit)),
        );
    }
}

pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(12_345_678), "12,345,678");
    }
}
