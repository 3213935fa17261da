//! `kpipe demo` runs every connector against the built-in simulator of the four platform APIs
//! and the files connector against the shipped CSVs: all succeed, none goes over a quota.

use std::process::Command;

#[test]
fn the_demo_pulls_all_four_simulated_apis_and_the_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let summary = dir.path().join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["demo", "--output"])
        .arg(dir.path().join("demo"))
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .expect("kpipe runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" 0 over their quotas"), "{stdout}");
    assert!(stdout.contains("KPIs of the month"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("a summary")).expect("json");
    let sources = json["sources"].as_array().expect("sources");
    let mut kinds: Vec<&str> = sources.iter().filter_map(|s| s["type"].as_str()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["facebook", "files", "google_analytics", "hubspot", "linkedin"]);
    for s in sources {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["rows_written"].as_u64().is_some_and(|n| n > 0), "{s}");
        if s["type"] != "files" {
            assert!(s["http"]["requests"].as_u64().is_some_and(|n| n > 0), "{s}");
            assert!(s["requests_per_row"].as_f64().is_some_and(|r| r > 0.0 && r < 0.1), "{s}");
        }
    }
    // The KPI stage that followed is in the summary too, with what it read and wrote.
    let kpis = &json["kpis"];
    assert_eq!(kpis["status"], "succeeded", "{kpis}");
    let read = kpis["metric_rows_read"].as_u64().unwrap_or(0);
    let written: u64 = sources.iter().filter_map(|s| s["rows_written"].as_u64()).sum();
    assert!(read >= written, "the stage read {read} rows, the sources wrote {written}: {kpis}");
    assert!(kpis["rows_written"].as_u64().is_some_and(|n| n > 0), "{kpis}");
    assert!(kpis["periods_written"].as_u64().is_some_and(|n| n > 0), "{kpis}");
    // The written configuration names no real credential.
    let config = std::fs::read_to_string(dir.path().join("demo/kpipe.toml")).expect("a config");
    assert!(config.contains("127.0.0.1") && config.contains("type = \"linkedin\""));
}
