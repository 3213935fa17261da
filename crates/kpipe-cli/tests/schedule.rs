//! `kpipe schedule` as a service manager sees it: the built binary, real signals, the real
//! output lock. Each test finishes in a few seconds by using the six-field expression
//! `* * * * * *` (every second) and `--max-runs`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Timelike, Utc};
use kpipe_cli::lock::RunLock;

/// The tests measure timing between processes: one at a time, so they do not slow each other.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A configuration with one files source of `rows` metric rows over the last 20 days (inside
/// the default 28-day window). KPIs are off: these tests are about the runs, not the stage after.
fn setup(rows_per_day: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    let mut csv = String::from("date,platform,account,level,entity,metric,value,currency\n");
    let today = Utc::now().date_naive();
    for back in 1..=20u64 {
        let day = today.checked_sub_days(Days::new(back)).expect("a day");
        for e in 0..rows_per_day {
            csv.push_str(&format!("{day},linkedin,508,campaign,c{e},impressions,{e},\n"));
        }
    }
    std::fs::write(dir.path().join("data/m.csv"), csv).expect("write");
    std::fs::write(
        dir.path().join("kpipe.toml"),
        "[pipeline]\noutput = \"out\"\n\n[sources.sheet]\ntype = \"files\"\nkind = \"metrics\"\n\
         path = \"data/*.csv\"\n\n[kpis_settings]\nenabled = false\n",
    )
    .expect("write");
    dir
}

/// A running `kpipe schedule` whose standard error is read line by line as it comes.
struct Scheduler {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scheduler {
    fn spawn(dir: &Path, args: &[&str]) -> Scheduler {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kpipe"))
            .args(["schedule", "-c", "kpipe.toml"])
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kpipe");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().expect("log").push(line.clone());
                let _ = tx.send(line);
            }
        });
        Scheduler { child, lines, log }
    }

    /// Waits for a line containing `needle`.
    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("no line with `{needle}` within {timeout:?}; log:\n{}", self.text())
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kpipe schedule did not exit within {timeout:?}; log:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log.lock().expect("log").iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines_with(needle).len()
    }

    /// The position of the first line containing `needle`.
    fn position(&self, needle: &str) -> usize {
        let log = self.log.lock().expect("log");
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{}", log.join("\n")))
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Only a test that failed half-way leaves one running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A run as its summary file tells it.
#[derive(Debug)]
struct Run {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    status: String,
}

fn summaries(dir: &Path) -> Vec<Run> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut runs: Vec<Run> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            let start: DateTime<Utc> =
                json["started_at"].as_str().expect("started_at").parse().expect("time");
            let ms = json["duration_ms"].as_i64().expect("duration_ms");
            Run {
                start,
                end: start + chrono::Duration::milliseconds(ms),
                status: json["status"].as_str().expect("status").to_owned(),
            }
        })
        .collect();
    runs.sort_by_key(|r| r.start);
    runs
}

fn published_days(out: &Path) -> usize {
    let files =
        std::fs::read_dir(out.join("metrics")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    files.iter().filter(|f| f.file_name().to_string_lossy().starts_with("sheet.")).count()
}

const SKIPPED: &str = "scheduled run skipped";

#[test]
fn two_schedulers_on_one_output_never_overlap() {
    let _serial = serial();
    // About 150 ms per run: both schedulers fire on the same second, one of them finds the lock.
    let dir = setup(250);
    let a = dir.path().join("summaries-a");
    let b = dir.path().join("summaries-b");
    let mut first = Scheduler::spawn(
        dir.path(),
        &["--cron", "* * * * * *", "--max-runs", "3", "--summary-json", a.to_str().expect("utf-8")],
    );
    let mut second = Scheduler::spawn(
        dir.path(),
        &["--cron", "* * * * * *", "--max-runs", "3", "--summary-json", b.to_str().expect("utf-8")],
    );
    assert_eq!(first.wait(Duration::from_secs(30)).code(), Some(0), "{}", first.text());
    assert_eq!(second.wait(Duration::from_secs(30)).code(), Some(0), "{}", second.text());

    let mut runs = summaries(&a);
    runs.extend(summaries(&b));
    runs.sort_by_key(|r| r.start);
    for pair in runs.windows(2) {
        assert!(pair[0].end <= pair[1].start, "runs overlap: {:?} and {:?}", pair[0], pair[1]);
    }
    assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
    let skipped = first.count(SKIPPED) + second.count(SKIPPED);
    // Every fire time either ran or was skipped; none was queued behind the other scheduler.
    assert_eq!(runs.len() + skipped, 6, "{runs:?}\n{}\n{}", first.text(), second.text());
    assert!(skipped >= 1, "the schedulers never met:\n{}\n{}", first.text(), second.text());
    let skip_lines: Vec<String> = [&first, &second].iter().flat_map(|s| s.lines_with(SKIPPED)).collect();
    assert!(skip_lines.iter().all(|l| l.contains("another kpipe run is using")), "{skip_lines:?}");
}

#[test]
fn a_held_lock_skips_fire_times_without_queueing_them() {
    let _serial = serial();
    let dir = setup(5);
    let summaries_dir = dir.path().join("summaries");
    // As a `kpipe run` by hand would hold it.
    let lock = RunLock::acquire(
        &kpipe_sink_parquet::Storage::local(dir.path().join("out")),
        std::time::Duration::from_secs(60),
    )
    .expect("lock");
    let mut scheduler = Scheduler::spawn(
        dir.path(),
        &[
            "--cron",
            "* * * * * *",
            "--max-runs",
            "3",
            "--summary-json",
            summaries_dir.to_str().expect("utf-8"),
        ],
    );
    scheduler.wait_for(SKIPPED, Duration::from_secs(10));
    scheduler.wait_for(SKIPPED, Duration::from_secs(5));
    // Release half-way between two fire times: a queued run would start right away.
    let now = Utc::now();
    let half = now.with_nanosecond(500_000_000).expect("a time");
    let release_at = if half > now { half } else { half + chrono::Duration::seconds(1) };
    std::thread::sleep((release_at - now).to_std().unwrap_or_default());
    let released = Utc::now();
    drop(lock);

    assert_eq!(scheduler.wait(Duration::from_secs(10)).code(), Some(0), "{}", scheduler.text());
    let runs = summaries(&summaries_dir);
    assert_eq!(runs.len(), 1, "{runs:?}\n{}", scheduler.text());
    assert_eq!(scheduler.count(SKIPPED), 2, "{}", scheduler.text());
    let run = &runs[0];
    assert!(run.start > released, "{run:?} began before the lock was released at {released}");
    // It began at the next fire time (a whole second), not when the lock came free.
    assert!(run.start.nanosecond() < 400_000_000, "{run:?} released at {released}");
    assert!(published_days(&dir.path().join("out")) > 0);
}

#[test]
fn sigterm_lets_the_run_in_flight_finish_and_exits_0() {
    let _serial = serial();
    // Several hundred milliseconds of run, so the signal lands while it is in flight.
    let dir = setup(1000);
    let summaries_dir = dir.path().join("summaries");
    let mut scheduler = Scheduler::spawn(
        dir.path(),
        &["--cron", "0 3 * * *", "--run-now", "--summary-json", summaries_dir.to_str().expect("utf-8")],
    );
    scheduler.wait_for("run started", Duration::from_secs(10));
    scheduler.signal("TERM");
    let status = scheduler.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", scheduler.text());

    // The signal was taken during the run, and the run went on to the end.
    let stopping = scheduler.position("stopping after the run in flight finishes");
    assert!(scheduler.position("run started") < stopping, "{}", scheduler.text());
    assert!(stopping < scheduler.position("run finished"), "{}", scheduler.text());
    let runs = summaries(&summaries_dir);
    assert_eq!(runs.len(), 1, "{}", scheduler.text());
    assert_eq!(runs[0].status, "succeeded");
    assert_eq!(published_days(&dir.path().join("out")), 20);
    // It did not wait for the next fire time.
    assert!(!scheduler.text().contains("waiting for the next run"), "{}", scheduler.text());
}

#[test]
fn sigterm_while_idle_exits_0_at_once() {
    let _serial = serial();
    let dir = setup(1);
    let mut scheduler =
        Scheduler::spawn(dir.path(), &["--cron", "0 3 * * *", "--time-zone", "Europe/Berlin"]);
    let line = scheduler.wait_for("waiting for the next run", Duration::from_secs(10));
    assert!(line.contains("03:00:00 CE"), "the next run is shown in the time zone: {line}");
    let sent = Instant::now();
    scheduler.signal("INT");
    assert_eq!(scheduler.wait(Duration::from_secs(10)).code(), Some(0), "{}", scheduler.text());
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert!(!dir.path().join("out/metrics").exists());
}

#[test]
fn a_second_signal_aborts_the_run_and_publishes_nothing() {
    let _serial = serial();
    let dir = setup(1000);
    let summaries_dir = dir.path().join("summaries");
    let mut scheduler = Scheduler::spawn(
        dir.path(),
        &["--cron", "0 3 * * *", "--run-now", "--summary-json", summaries_dir.to_str().expect("utf-8")],
    );
    scheduler.wait_for("run started", Duration::from_secs(10));
    scheduler.signal("TERM");
    scheduler.wait_for("stopping after the run in flight finishes", Duration::from_secs(10));
    scheduler.signal("TERM");
    let status = scheduler.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", scheduler.text());
    assert!(scheduler.text().contains("second signal: aborting the run in flight"), "{}", scheduler.text());
    assert_eq!(published_days(&dir.path().join("out")), 0, "{}", scheduler.text());
    assert!(summaries(&summaries_dir).is_empty());
    // The lock died with the process: a run by hand goes ahead.
    RunLock::acquire(
        &kpipe_sink_parquet::Storage::local(dir.path().join("out")),
        std::time::Duration::from_secs(60),
    )
    .expect("the lock is free");
}

#[test]
fn bad_expressions_zones_and_configurations_are_usage_errors() {
    let _serial = serial();
    let dir = setup(1);
    for (args, needle) in [
        (&["--cron", "0 3 * *"][..], "is not a cron expression"),
        (&["--cron", "0 3 * * *", "--time-zone", "Europe/Nowhere"][..], "is not a time zone"),
        (&["--cron", "0 0 30 2 *"][..], "has no fire time"),
    ] {
        let mut s = Scheduler::spawn(dir.path(), args);
        assert_eq!(s.wait(Duration::from_secs(10)).code(), Some(2), "{args:?}: {}", s.text());
        assert!(s.text().contains(needle), "{args:?}: {}", s.text());
    }
    std::fs::write(dir.path().join("kpipe.toml"), "[pipeline]\noutput = \"out\"\n").expect("write");
    let mut s = Scheduler::spawn(dir.path(), &["--cron", "0 3 * * *"]);
    assert_eq!(s.wait(Duration::from_secs(10)).code(), Some(2), "{}", s.text());
    assert!(s.text().contains("kpipe.toml: sources: missing"), "{}", s.text());
    assert!(!dir.path().join("out").exists());
}
