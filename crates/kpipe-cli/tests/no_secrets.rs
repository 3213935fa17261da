//! No credential appears in anything a run leaves behind: the logs at trace level, the run
//! summary, the ledger, the quarantine, the Parquet files. The run pulls the four simulated
//! platform APIs (as `kpipe demo` serves them) with their test credentials, including access
//! tokens issued and refreshed on the way.

use std::path::Path;
use std::process::Command;

use kpipe_cli::demo;
use kpipe_cli::demo_apis::DemoApis;
use kpipe_sim::platform::facebook;

#[path = "no_secrets/echo.rs"]
mod echo;

fn every_file_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("listable").flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_summary_ledger_or_output_at_trace_level() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = demo::prepare_with(dir.path(), &apis.sources_toml()).expect("a config");
    let summary = dir.path().join("summary.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    cmd.args(["-vvv", "run", "-c"])
        .arg(&config)
        .args(["--from", "2026-10-01", "--to", "2026-10-03", "--summary-json"])
        .arg(&summary)
        .env("RUST_LOG", "trace");
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("joined").expect("kpipe runs");
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{logs}");
    assert!(logs.lines().count() > 100, "trace logging is on: {} lines", logs.lines().count());

    // The configured credentials, and every access token the simulators issue ("sim-at-...").
    let secrets = ["sim-secret", "sim-refresh-token", facebook::DEMO_ACCESS_TOKEN, "sim-at-"];
    for secret in secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("a log line shows a secret: {line}");
        }
    }
    let mut checked = 0;
    for file in every_file_below(dir.path()) {
        if file == config {
            continue; // the configuration is where the user put them
        }
        let bytes = std::fs::read(&file).expect("readable");
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                file.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files written");
    assert!(dir.path().join(".kpipe/state").is_dir() && summary.exists());
    apis.shutdown().await;
}
