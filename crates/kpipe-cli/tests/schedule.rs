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

// --- Metrics for monitoring: `/metrics` during and after a scheduled run, `--metrics-file` ---

mod otlp;

/// Prometheus' own text-format parser (the `prometheus_client` package of the test services'
/// Python): every family with its type, help and samples, as JSON.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    })
print(json.dumps(families))
"#;

/// A parsed exposition.
#[derive(Debug)]
struct Exposition {
    families: Vec<serde_json::Value>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        use std::io::Write;
        let python = kpipe_testkit::services::python().expect("the test services' Python");
        let mut child = Command::new(python)
            .args(["-c", PARSER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("written");
        let out = child.wait_with_output().expect("python ends");
        assert!(
            out.status.success(),
            "Prometheus' parser refused the text:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let families: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        for family in &families {
            assert_ne!(family["type"], "unknown", "no TYPE line: {family}");
            assert!(family["help"].as_str().is_some_and(|h| !h.is_empty()), "no HELP line: {family}");
        }
        Exposition { families }
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name).into_iter().find_map(|sample| {
            let have = sample["labels"].as_object()?;
            let same = have.len() == labels.len()
                && labels.iter().all(|(k, v)| have.get(*k).and_then(|x| x.as_str()) == Some(*v));
            if same { sample["value"].as_f64() } else { None }
        })
    }

    /// The value, which must be there.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {:#?}", self.samples(name)))
    }

    fn samples(&self, name: &str) -> Vec<&serde_json::Value> {
        self.families
            .iter()
            .flat_map(|f| f["samples"].as_array().into_iter().flatten())
            .filter(|s| s["name"] == name)
            .collect()
    }

    fn family_type(&self, name: &str) -> Option<&str> {
        self.families.iter().find(|f| f["name"] == name).and_then(|f| f["type"].as_str())
    }
}

/// `GET http://addr/metrics`: the status line's code and the body.
fn scrape(addr: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (code, body.to_owned())
}

fn u(v: &serde_json::Value) -> f64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")) as f64
}

/// Every counter of `source` in the summary JSON equals the metric's.
fn assert_source_counters(metrics: &Exposition, source: &serde_json::Value, runs: f64) {
    let name = source["name"].as_str().expect("name");
    let kind = source["type"].as_str().expect("type");
    let labels = [("source", name), ("kind", kind)];
    assert_eq!(metrics.get("kpipe_rows_written_total", &labels), u(&source["rows_written"]), "{name}");
    assert_eq!(metrics.get("kpipe_quarantined_total", &labels), u(&source["quarantined"]), "{name}");
    assert_eq!(metrics.get("kpipe_days_pulled_total", &labels), u(&source["days_pulled"]), "{name}");
    let status = source["status"].as_str().expect("status");
    assert_eq!(metrics.get("kpipe_run_status", &[("source", name), ("kind", kind), ("status", status)]), 1.0);
    let other = if status == "failed" { "succeeded" } else { "failed" };
    assert_eq!(metrics.get("kpipe_run_status", &[("source", name), ("kind", kind), ("status", other)]), 0.0);
    assert_eq!(
        metrics.get("kpipe_source_runs_total", &[("source", name), ("kind", kind), ("status", status)]),
        runs
    );
    let http = &source["http"];
    assert_eq!(metrics.get("kpipe_requests_total", &labels), u(&http["requests"]), "{name}");
    assert_eq!(metrics.get("kpipe_throttle_waits_total", &labels), u(&http["throttle_waits"]), "{name}");
    assert_eq!(
        metrics.get("kpipe_throttle_wait_seconds_total", &labels),
        u(&http["throttle_wait_ms"]) / 1000.0,
        "{name}"
    );
    for (reason, n) in http["retries"].as_object().expect("retries") {
        let with_reason = [("source", name), ("kind", kind), ("reason", reason.as_str())];
        assert_eq!(metrics.get("kpipe_retries_total", &with_reason), u(n), "{name} {reason}");
    }
    for (stream, figures) in source["streams"].as_object().expect("streams") {
        let with_stream = [("source", name), ("kind", kind), ("stream", stream.as_str())];
        assert_eq!(metrics.get("kpipe_stream_rows_written_total", &with_stream), u(&figures["rows_written"]));
        assert_eq!(metrics.get("kpipe_stream_requests_total", &with_stream), u(&figures["requests"]));
    }
    for (account, left) in source["quota_left"].as_object().expect("quota left") {
        for (quota, value) in left.as_object().expect("a quota") {
            let with_quota =
                [("source", name), ("kind", kind), ("account", account.as_str()), ("quota", quota.as_str())];
            match quota.as_str() {
                "used_percent" => {
                    let used = metrics.get("kpipe_quota_used_ratio", &with_quota[..3]);
                    assert!((used * 100.0 - value.as_f64().expect("a percent")).abs() < 1e-9, "{name}");
                }
                "daily_requests_limit" => {
                    let daily = [
                        ("source", name),
                        ("kind", kind),
                        ("account", account.as_str()),
                        ("quota", "daily_requests"),
                    ];
                    assert_eq!(metrics.get("kpipe_quota_limit", &daily), u(value), "{name}");
                }
                _ => assert_eq!(metrics.get("kpipe_quota_left", &with_quota), u(value), "{name} {quota}"),
            }
        }
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("JSON")
}

/// A HubSpot private app's token: the simulator accepts it without a token endpoint.
const HUBSPOT_TOKEN: &str = "pat-na1-00000000-0000-4000-8000-000000000001";

#[test]
fn metrics_are_served_during_a_scheduled_run_and_match_its_summary_after_it() {
    use kpipe_sim::platform::hubspot::{self, HubSpotApi};
    use kpipe_sim::{AuthConfig, Latency, SimConfig, SimServer};
    let _serial = serial();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // Every answer takes 150 ms: the run lasts while the test scrapes it.
    let api = HubSpotApi { private_app_tokens: vec![HUBSPOT_TOKEN.to_owned()], ..HubSpotApi::default() };
    let auth = AuthConfig { static_tokens: vec![HUBSPOT_TOKEN.to_owned()], ..hubspot::auth_config() };
    let sim = runtime
        .block_on(SimServer::start(
            SimConfig::new(7)
                .with_latency(Latency::fixed_ms(150))
                .with_auth(auth)
                .with_platform(Arc::new(api)),
        ))
        .expect("the simulator starts");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kpipe.toml"),
        format!(
            "[pipeline]\noutput = \"out\"\nlookback_days = 3\n\n[sources.crm]\ntype = \"hubspot\"\n\
             access_token = \"{HUBSPOT_TOKEN}\"\nbase_url = \"{}\"\nstreams = [\"deals\", \"forms\"]\n\
             portal_tier = \"professional\"\n",
            sim.base_url()
        ),
    )
    .expect("write");
    let summaries_dir = dir.path().join("summaries");
    let metrics_file = dir.path().join("textfile/kpipe.prom");
    let mut scheduler = Scheduler::spawn(
        dir.path(),
        &[
            "--cron",
            "0 3 * * *",
            "--run-now",
            "--summary-json",
            summaries_dir.to_str().expect("utf-8"),
            "--metrics-addr",
            "127.0.0.1:0",
            "--metrics-file",
            metrics_file.to_str().expect("utf-8"),
        ],
    );
    let line = scheduler.wait_for("metrics: http://", Duration::from_secs(10));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .expect("the address")
        .to_owned();

    scheduler.wait_for("run started", Duration::from_secs(10));
    let (code, during) = scrape(&addr);
    assert_eq!(code, 200);
    let during = Exposition::parse(&during);
    assert_eq!(during.get("kpipe_schedule_run_in_progress", &[]), 1.0, "{during:#?}");
    assert!(during.get("kpipe_schedule_run_started_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(during.get("kpipe_up", &[]), 1.0);
    assert_eq!(during.get("kpipe_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert_eq!(during.get("kpipe_schedule_ticks_total", &[("outcome", "ran")]), 0.0);
    assert_eq!(during.family_type("kpipe_schedule_ticks"), Some("counter"));
    assert!(during.value("kpipe_rows_written_total", &[("source", "crm"), ("kind", "hubspot")]).is_none());

    scheduler.wait_for("scheduled run finished", Duration::from_secs(60));
    scheduler.wait_for("waiting for the next run", Duration::from_secs(10));
    let (_, after_text) = scrape(&addr);
    let after = Exposition::parse(&after_text);
    let files: Vec<_> =
        std::fs::read_dir(&summaries_dir).expect("summaries").flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let summary = read_json(&files[0]);
    let crm = &summary["sources"][0];
    assert_eq!(crm["status"], "succeeded", "{summary}");
    assert!(u(&crm["rows_written"]) > 0.0 && u(&crm["http"]["requests"]) > 0.0, "{summary}");
    assert_eq!(after.get("kpipe_schedule_run_in_progress", &[]), 0.0);
    assert!(after.value("kpipe_schedule_run_started_timestamp_seconds", &[]).is_none());
    assert_eq!(after.get("kpipe_schedule_ticks_total", &[("outcome", "ran")]), 1.0);
    assert_eq!(after.get("kpipe_runs_total", &[("status", "succeeded")]), 1.0);
    assert_eq!(after.family_type("kpipe_rows_written"), Some("counter"));
    assert_eq!(after.family_type("kpipe_run_last_success_timestamp_seconds"), Some("gauge"));
    assert_source_counters(&after, crm, 1.0);
    assert_eq!(after.get("kpipe_run_duration_seconds", &[]), u(&summary["duration_ms"]) / 1000.0);
    let started: DateTime<Utc> = summary["started_at"].as_str().expect("started_at").parse().expect("a time");
    assert_eq!(
        after.get("kpipe_run_started_timestamp_seconds", &[]),
        started.timestamp_millis() as f64 / 1000.0
    );
    let last_success = after.get("kpipe_run_last_success_timestamp_seconds", &[("source", "crm")]);
    assert!(last_success >= started.timestamp() as f64, "{last_success} before {started}");
    assert!(after.get("kpipe_schedule_next_run_timestamp_seconds", &[]) > Utc::now().timestamp() as f64);
    if let Some(kpis) = summary["kpis"].as_object() {
        let status = kpis["status"].as_str().expect("status");
        assert_eq!(after.get("kpipe_kpi_status", &[("status", status)]), 1.0);
        assert_eq!(after.get("kpipe_kpi_rows_written_total", &[]), u(&kpis["rows_written"]));
    }
    assert!(!after_text.contains(HUBSPOT_TOKEN), "{after_text}");

    // The metrics file has the same run, without what only the live process can say.
    let file_text = std::fs::read_to_string(&metrics_file).expect("the metrics file");
    let file = Exposition::parse(&file_text);
    assert_source_counters(&file, crm, 1.0);
    assert!(
        file.value("kpipe_up", &[]).is_none() && file.value("kpipe_schedule_run_in_progress", &[]).is_none()
    );
    assert_eq!(file.get("kpipe_schedule_ticks_total", &[("outcome", "ran")]), 1.0);

    scheduler.signal("TERM");
    assert_eq!(scheduler.wait(Duration::from_secs(30)).code(), Some(0), "{}", scheduler.text());
    runtime.block_on(sim.shutdown());
}

#[test]
fn run_writes_a_metrics_file_whose_counters_continue_across_runs() {
    use kpipe_cli::demo_apis::DemoApis;
    let _serial = serial();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let apis = runtime.block_on(DemoApis::start()).expect("the simulators start");
    let dir = tempfile::tempdir().expect("tempdir");
    // LinkedIn's refresh token comes from a secrets file with the expiry `kpipe auth` records.
    let sources = apis.sources_toml().replacen(
        "refresh_token = \"sim-refresh-token\"\n",
        "secrets_file = \".kpipe-secrets/linkedin.toml\"\n",
        1,
    );
    std::fs::create_dir_all(dir.path().join(".kpipe-secrets")).expect("mkdir");
    std::fs::write(
        dir.path().join(".kpipe-secrets/linkedin.toml"),
        "refresh_token = \"sim-refresh-token\"\nrefresh_token_issued_at = 2026-01-31T09:00:00Z\n\
         refresh_token_expires_at = 2027-01-31T09:00:00Z\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("kpipe.toml"), format!("[pipeline]\noutput = \"out\"\n{sources}"))
        .expect("write");
    let run = |summary: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kpipe"))
            .args(["run", "-c", "kpipe.toml", "--from", "2026-10-01", "--to", "2026-10-02"])
            .args(["--summary-json", summary, "--metrics-file", "textfile/kpipe.prom"])
            .args(extra)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("kpipe runs");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        read_json(&dir.path().join(summary))
    };
    let first = run("first.json", &[]);
    let text = std::fs::read_to_string(dir.path().join("textfile/kpipe.prom")).expect("the metrics file");
    let metrics = Exposition::parse(&text);
    let sources = first["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 4);
    for source in sources {
        assert_source_counters(&metrics, source, 1.0);
        let name = source["name"].as_str().expect("name");
        assert!(metrics.get("kpipe_run_last_success_timestamp_seconds", &[("source", name)]) > 1.7e9);
    }
    assert_eq!(metrics.get("kpipe_runs_total", &[("status", "succeeded")]), 1.0);
    let expiry = DateTime::parse_from_rfc3339("2027-01-31T09:00:00Z").expect("a time").timestamp() as f64;
    assert_eq!(
        metrics.get("kpipe_refresh_token_expiry_timestamp_seconds", &[("source", "linkedin_ads")]),
        expiry
    );
    assert!(
        metrics.value("kpipe_refresh_token_expiry_timestamp_seconds", &[("source", "hubspot_crm")]).is_none()
    );
    for secret in ["sim-secret", "sim-refresh-token", kpipe_sim::platform::facebook::DEMO_ACCESS_TOKEN] {
        assert!(!text.contains(secret), "`{secret}` in the metrics file:\n{text}");
    }

    // A second run adds to the counters of the file it replaces.
    let second = run("second.json", &["--full-refresh"]);
    let metrics =
        Exposition::parse(&std::fs::read_to_string(dir.path().join("textfile/kpipe.prom")).expect("read"));
    assert_eq!(metrics.get("kpipe_runs_total", &[("status", "succeeded")]), 2.0);
    for (one, two) in sources.iter().zip(second["sources"].as_array().expect("sources")) {
        let name = one["name"].as_str().expect("name");
        let labels = [("source", name), ("kind", one["type"].as_str().expect("type"))];
        assert_eq!(
            metrics.get("kpipe_rows_written_total", &labels),
            u(&one["rows_written"]) + u(&two["rows_written"])
        );
        assert_eq!(
            metrics.get("kpipe_requests_total", &labels),
            u(&one["http"]["requests"]) + u(&two["http"]["requests"])
        );
        assert_eq!(metrics.get("kpipe_run_duration_seconds", &[]), u(&second["duration_ms"]) / 1000.0);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("textfile"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["kpipe.prom"]);
    runtime.block_on(apis.shutdown());
}
