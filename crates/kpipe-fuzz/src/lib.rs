//! Mutation fuzzing of kpipe's parsers: the four API connectors' answer readers, the files
//! connector's CSV reader, the configuration loader, the KPI formula parser and the state
//! loader, each through its public entry point.
//!
//! Inputs are seeds (real-shaped bodies and files) and generated structured inputs, mutated by
//! a deterministic engine ([`engine`]). Each input runs under `catch_unwind`; a panic, or an
//! input that takes longer than [`HANG`], is written to `<crash dir>/<target>/<n>.bin`. An
//! input that never returns is written by a watchdog, which then ends the process; an abort is
//! found by the `kpipe-fuzz` binary, which runs each target in a child process and replays the
//! inputs after the child's last checkpoint one by one.

pub mod engine;
mod seeds;
pub mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// An input that takes longer than this is a hang.
pub const HANG: Duration = Duration::from_secs(1);

/// An input still running after this long ends the process (after the input is written).
pub const HARD_HANG: Duration = Duration::from_secs(20);

/// What one run of a target does.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The target's name ([`targets::NAMES`]).
    pub target: String,
    /// The seed of the run's inputs.
    pub seed: u64,
    /// The number of the first input.
    pub start: u64,
    /// Inputs to run at most.
    pub inputs: u64,
    /// Seconds to run at most.
    pub seconds: Option<f64>,
    /// Where crashes are written, a folder per target.
    pub crash_dir: PathBuf,
    /// Write each input to `<crash dir>/<target>/pending.bin` before running it: for finding
    /// an input that kills the process.
    pub record: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Inputs run.
    pub inputs: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Panics and hangs.
    pub crashes: u64,
    /// Inputs the parser accepted (reached past its checks).
    pub accepted: u64,
}

/// The last panic's message and place, taken by the run loop after `catch_unwind`.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

thread_local! {
    /// Whether this thread is running an input.
    static IN_PARSER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Replaces the default panic output (a line per panic, millions of them) with a note of the
/// message that the run loop writes beside the input.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Panics outside a parser's run (the harness's own, a test's) print as usual.
            if !IN_PARSER.with(std::cell::Cell::get) {
                return default(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = format!("panic at {place}: {message}");
            }
        }));
    });
}

/// Writes `input` as the next crash of `target` with `reason` beside it; returns its path.
pub fn save_crash(crash_dir: &Path, target: &str, input: &[u8], reason: &str) -> PathBuf {
    let dir = crash_dir.join(target);
    let _ = std::fs::create_dir_all(&dir);
    let n = (0..).find(|n| !dir.join(format!("{n}.bin")).exists()).unwrap_or(0);
    let path = dir.join(format!("{n}.bin"));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("fuzz: cannot write {}: {e}", path.display());
    }
    let _ = std::fs::write(dir.join(format!("{n}.txt")), format!("{reason}\n"));
    path
}

/// Where [`RunOptions::record`] writes the input about to run.
pub fn pending_path(crash_dir: &Path, target: &str) -> PathBuf {
    crash_dir.join(target).join("pending.bin")
}

/// Runs inputs `start..start + inputs` of `target` (or as many as fit in the time given),
/// calling `progress` with the number of the next input now and then (after every input when
/// recording).
pub fn run(options: &RunOptions, progress: &mut dyn FnMut(u64)) -> Result<RunReport, String> {
    quiet_panics();
    let (inputs, mut runner) = targets::target(&options.target)?;
    let started = Instant::now();
    let deadline = options.seconds.map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    // The input running (number + 1, 0 for none) and since when (ms after `started`).
    let running = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let watchdog = {
        let running = Arc::clone(&running);
        let (inputs, options) = (inputs.clone(), options.clone());
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(move || watch(&running, started, &inputs, &options))
            .map_err(|e| format!("cannot start the watchdog: {e}"))?
    };
    let mut report = RunReport::default();
    if options.record {
        let _ = std::fs::create_dir_all(options.crash_dir.join(&options.target));
    }
    for index in options.start..options.start.saturating_add(options.inputs) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let input = inputs.make(options.seed, index);
        if options.record {
            let _ = std::fs::write(pending_path(&options.crash_dir, &options.target), &input);
            progress(index);
        }
        let began = Instant::now();
        running.1.store(began.duration_since(started).as_millis() as u64, Ordering::SeqCst);
        running.0.store(index + 1, Ordering::SeqCst);
        IN_PARSER.with(|f| f.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| runner.run(&input)));
        IN_PARSER.with(|f| f.set(false));
        running.0.store(0, Ordering::SeqCst);
        let took = began.elapsed();
        report.inputs += 1;
        match outcome {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(_) => {
                let reason = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
                let path = save_crash(
                    &options.crash_dir,
                    &options.target,
                    &input,
                    &format!("input {index}: {reason}"),
                );
                eprintln!(
                    "fuzz: {}: input {index}: {reason} (written to {})",
                    options.target,
                    path.display()
                );
                report.crashes += 1;
                // A panic may leave the runner's state half-changed: start again from a new one.
                runner = targets::target(&options.target)?.1;
                continue;
            }
        }
        if took > HANG {
            // Once more, to tell a slow input from a busy machine.
            let again = Instant::now();
            IN_PARSER.with(|f| f.set(true));
            let _ = catch_unwind(AssertUnwindSafe(|| runner.run(&input)));
            IN_PARSER.with(|f| f.set(false));
            if again.elapsed() > HANG {
                let reason = format!(
                    "input {index}: hang: {:.2} s, then {:.2} s",
                    took.as_secs_f64(),
                    again.elapsed().as_secs_f64()
                );
                let path = save_crash(&options.crash_dir, &options.target, &input, &reason);
                eprintln!("fuzz: {}: {reason} (written to {})", options.target, path.display());
                report.crashes += 1;
            }
        }
        if !options.record && index % 1000 == 999 {
            progress(index + 1);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    // The watchdog ends with the run: a last input number of u64::MAX tells it so.
    running.0.store(u64::MAX, Ordering::SeqCst);
    let _ = watchdog.join();
    if options.record {
        let _ = std::fs::remove_file(pending_path(&options.crash_dir, &options.target));
    }
    Ok(report)
}

/// Writes the running input out and ends the process when it runs past [`HARD_HANG`]: a
/// parser in an endless loop cannot be stopped from its own thread.
fn watch(running: &(AtomicU64, AtomicU64), started: Instant, inputs: &targets::Inputs, options: &RunOptions) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let current = running.0.load(Ordering::SeqCst);
        if current == u64::MAX {
            return;
        }
        if current == 0 {
            continue;
        }
        let since = Duration::from_millis(running.1.load(Ordering::SeqCst));
        let elapsed = started.elapsed().saturating_sub(since);
        if elapsed > HARD_HANG && running.0.load(Ordering::SeqCst) == current {
            let index = current - 1;
            let input = inputs.make(options.seed, index);
            let reason = format!("input {index}: hang: still running after {} s", elapsed.as_secs());
            let path = save_crash(&options.crash_dir, &options.target, &input, &reason);
            eprintln!("fuzz: {}: {reason} (written to {})", options.target, path.display());
            println!("hang {index}");
            std::process::exit(3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_runs_its_inputs_without_a_crash() {
        let crash_dir = std::env::temp_dir().join(format!("kpipe-fuzz-test-{}", std::process::id()));
        // The engine makes each input again from its number alone.
        let (inputs, _) = targets::target("linkedin").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inputs.make(7, 12_345), inputs.make(7, 12_345));
        for name in targets::NAMES {
            let options = RunOptions {
                target: (*name).to_owned(),
                seed: 1,
                start: 0,
                inputs: 300,
                seconds: None,
                crash_dir: crash_dir.clone(),
                record: false,
            };
            let report = run(&options, &mut |_| ()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((report.inputs, report.crashes), (300, 0), "{name}");
            // The seeds and generated inputs reach past the parser's first checks.
            assert!(report.accepted > 0, "{name}: no input accepted");
        }
        let _ = std::fs::remove_dir_all(&crash_dir);
    }
}
