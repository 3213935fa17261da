//! `kpipe-fuzz [--target NAME]... [--inputs N] [--seconds S] [--seed S] [--crash-dir DIR]`:
//! runs each target in a child process of its own (`--worker`) and prints inputs, time, rate
//! and crashes per target. A child that dies (an abort, a stack overflow, memory exhausted) is
//! replayed from its last checkpoint, each input written out before it runs, to find the input;
//! the run then goes on after it. Exits 1 when any target crashed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use kpipe_fuzz::{RunOptions, RunReport, pending_path, save_crash, targets};

struct Args {
    targets: Vec<String>,
    inputs: u64,
    seconds: Option<f64>,
    seed: u64,
    crash_dir: PathBuf,
    worker: bool,
    start: u64,
    record: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        targets: Vec::new(),
        inputs: 1_000_000,
        seconds: None,
        seed: 0x006b_7069_7065,
        crash_dir: default_crash_dir(),
        worker: false,
        start: 0,
        record: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--target" => args.targets.push(value("--target")?),
            "--inputs" => args.inputs = number(&value("--inputs")?)?,
            "--seconds" => {
                let text = value("--seconds")?;
                args.seconds =
                    Some(text.parse().map_err(|_| format!("--seconds: `{text}` is not a number"))?);
            }
            "--seed" => args.seed = number(&value("--seed")?)?,
            "--crash-dir" => args.crash_dir = PathBuf::from(value("--crash-dir")?),
            "--start" => args.start = number(&value("--start")?)?,
            "--worker" => args.worker = true,
            "--record" => args.record = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: kpipe-fuzz [--target NAME]... [--inputs N] \
                     [--seconds S] [--seed S] [--crash-dir DIR]"
                ));
            }
        }
    }
    if args.targets.is_empty() {
        args.targets = targets::NAMES.iter().map(|s| (*s).to_owned()).collect();
    }
    for target in &args.targets {
        if !targets::NAMES.contains(&target.as_str()) {
            return Err(format!("unknown target `{target}`; known: {}", targets::NAMES.join(", ")));
        }
    }
    Ok(args)
}

fn number(text: &str) -> Result<u64, String> {
    text.replace('_', "").parse().map_err(|_| format!("`{text}` is not a whole number"))
}

/// `target/fuzz-crashes` of the workspace.
fn default_crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-crashes")
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("kpipe-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    if args.worker { worker(&args) } else { supervise(&args) }
}

/// One target's run in this process; progress and the result go to stdout, one line each.
fn worker(args: &Args) -> ExitCode {
    let Some(target) = args.targets.first() else { return ExitCode::from(2) };
    let options = RunOptions {
        target: target.clone(),
        seed: args.seed,
        start: args.start,
        inputs: args.inputs,
        seconds: args.seconds,
        crash_dir: args.crash_dir.clone(),
        record: args.record,
    };
    match kpipe_fuzz::run(&options, &mut |next| println!("progress {next}")) {
        Ok(r) => {
            println!("done {} {} {} {}", r.inputs, r.seconds, r.crashes, r.accepted);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kpipe-fuzz: {target}: {e}");
            ExitCode::from(2)
        }
    }
}

/// How a child run ended.
struct Child {
    report: Option<RunReport>,
    /// The number of the input after the last one known to have finished.
    checkpoint: u64,
    status: String,
}

fn spawn(
    args: &Args,
    target: &str,
    start: u64,
    inputs: u64,
    seconds: Option<f64>,
    record: bool,
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut command = Command::new(exe);
    command
        .args(["--worker", "--target", target])
        .args(["--start", &start.to_string(), "--inputs", &inputs.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .arg("--crash-dir")
        .arg(&args.crash_dir);
    if let Some(seconds) = seconds {
        command.args(["--seconds", &seconds.to_string()]);
    }
    if record {
        command.arg("--record");
    }
    let mut child =
        command.stdout(Stdio::piped()).spawn().map_err(|e| format!("cannot start a worker: {e}"))?;
    let mut result = Child { report: None, checkpoint: start, status: String::new() };
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["progress", next] => result.checkpoint = next.parse().unwrap_or(result.checkpoint),
                ["done", inputs, seconds, crashes, accepted] => {
                    result.report = Some(RunReport {
                        inputs: inputs.parse().unwrap_or(0),
                        seconds: seconds.parse().unwrap_or(0.0),
                        crashes: crashes.parse().unwrap_or(0),
                        accepted: accepted.parse().unwrap_or(0),
                    });
                }
                _ => {}
            }
        }
    }
    let status = child.wait().map_err(|e| format!("worker: {e}"))?;
    result.status = status.to_string();
    if !status.success() {
        result.report = None;
    }
    Ok(result)
}

/// Runs a target in children until its inputs or time are used up, finding the input of any
/// child that dies.
fn run_target(args: &Args, target: &str) -> Result<RunReport, String> {
    let started = Instant::now();
    let end = args.start.saturating_add(args.inputs);
    let mut start = args.start;
    let mut total = RunReport::default();
    while start < end {
        let seconds = args.seconds.map(|s| s - started.elapsed().as_secs_f64());
        if seconds.is_some_and(|s| s <= 0.0) {
            break;
        }
        let child = spawn(args, target, start, end - start, seconds, false)?;
        if let Some(report) = child.report {
            total.inputs += report.inputs;
            total.crashes += report.crashes;
            total.accepted += report.accepted;
            break;
        }
        // The child died between its last checkpoint and the next one: replay those inputs
        // one by one, each written out first.
        eprintln!(
            "kpipe-fuzz: {target}: the worker died ({}) after input {}; replaying",
            child.status, child.checkpoint
        );
        let from = child.checkpoint;
        let replay = spawn(args, target, from, 2_000.min(end - from), None, true)?;
        let pending = pending_path(&args.crash_dir, target);
        let died_at = replay.checkpoint;
        if replay.report.is_none()
            && let Ok(input) = std::fs::read(&pending)
        {
            let reason = format!("input {died_at}: the process died ({})", replay.status);
            let path = save_crash(&args.crash_dir, target, &input, &reason);
            let _ = std::fs::remove_file(&pending);
            eprintln!("kpipe-fuzz: {target}: {reason} (written to {})", path.display());
        } else {
            // A hang's input is written by the watchdog; anything else did not happen again.
            eprintln!("kpipe-fuzz: {target}: the replay from input {from} ended ({})", replay.status);
        }
        total.crashes += 1;
        total.inputs += died_at.saturating_sub(start) + 1;
        start = died_at + 1;
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

fn supervise(args: &Args) -> ExitCode {
    let mut rows = Vec::new();
    let mut crashed = false;
    for target in &args.targets {
        match run_target(args, target) {
            Ok(r) => {
                let rate = if r.seconds > 0.0 { r.inputs as f64 / r.seconds } else { 0.0 };
                println!(
                    "{target:<9} {:>9} inputs {:>8.1} s {:>9.0} inputs/s {:>3} crashes ({:.0}% accepted)",
                    r.inputs,
                    r.seconds,
                    rate,
                    r.crashes,
                    100.0 * r.accepted as f64 / r.inputs.max(1) as f64
                );
                crashed |= r.crashes > 0;
                rows.push((target.clone(), r, rate));
            }
            Err(e) => {
                eprintln!("kpipe-fuzz: {target}: {e}");
                crashed = true;
            }
        }
    }
    // The same figures as a Markdown table, for docs/benchmarks.md.
    println!("\n| target | inputs | time | inputs/s | accepted | crashes |\n|---|---|---|---|---|---|");
    for (target, r, rate) in &rows {
        println!(
            "| {target} | {} | {:.1} s | {:.0} | {:.0}% | {} |",
            r.inputs,
            r.seconds,
            rate,
            100.0 * r.accepted as f64 / r.inputs.max(1) as f64,
            r.crashes
        );
    }
    if crashed {
        eprintln!("kpipe-fuzz: crashes written to {}", args.crash_dir.display());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
