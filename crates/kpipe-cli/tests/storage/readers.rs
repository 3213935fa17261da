//! The trees kpipe writes, read by the readers warehouses and analysts use, each with its
//! default options: pandas, pyarrow, Polars, DuckDB and Spark (`check_readers.py`, run with the
//! test services' Python, which carries them all and pyspark). The output is the demo's
//! pipeline, once on local disk and once on the S3 server; every reader must get kpipe's own
//! row counts and exact sums of `value` per metric and per KPI.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kpipe_cli::demo_apis::DemoApis;
use kpipe_core::Decimal;
use kpipe_sink_parquet::Storage;
use kpipe_testkit::services;

use crate::support::{Store, dataset, demo_config, run, text};

/// Rows and exact sums of `value` per group, as `check_readers.py` takes them.
fn totals(groups: impl Iterator<Item = (String, Option<Decimal>)>) -> serde_json::Value {
    let mut rows = 0u64;
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for (key, value) in groups {
        rows += 1;
        if let Some(value) = value {
            let sum = sums.entry(key).or_insert(Decimal::from(0u32));
            *sum = sum.checked_add(value).expect("the sums fit DECIMAL(38, 18)");
        }
    }
    let sums: serde_json::Map<String, serde_json::Value> =
        sums.into_iter().map(|(k, v)| (k, serde_json::Value::String(v.to_string()))).collect();
    serde_json::json!({ "rows": rows, "sums": sums })
}

/// kpipe's own totals of an output's two trees.
fn expected(storage: &Storage) -> serde_json::Value {
    let metrics = kpipe_sink_parquet::read::read_stored(storage, "metrics").expect("the metric files read");
    let kpis = kpipe_kpi::read_stored_kpis(storage, kpipe_sink_parquet::OutputFormat::Parquet, None)
        .expect("the KPI files read");
    serde_json::json!({
        "metrics": totals(metrics.into_iter().map(|r| (r.row.metric.as_str().to_owned(), Some(r.row.value)))),
        "kpis": totals(kpis.into_iter().map(|r| (r.kpi.to_string(), r.value))),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_reads_both_trees_with_its_defaults_locally_and_from_s3() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let sources = apis.sources_toml();
    let local = tempfile::tempdir().expect("a temp dir");
    let config = demo_config(local.path(), &sources, ".", "", "");
    let out = tokio::task::spawn_blocking(move || run(&[], &config)).await.expect("kpipe ran");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let s3 = tokio::task::spawn_blocking(services::s3_server)
        .await
        .expect("joined")
        .expect("the S3 server starts");
    let store = Store::s3(&s3, "readers/out");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = demo_config(dir.path(), &sources, &store.url, "", "");
    let env = store.env.clone();
    let out = tokio::task::spawn_blocking(move || run(&env, &config)).await.expect("kpipe ran");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    apis.shutdown().await;

    let on_disk = Storage::local(local.path());
    assert_eq!(dataset(&store.storage()), dataset(&on_disk), "S3 holds the local rows");
    let totals = expected(&on_disk);
    assert!(totals["metrics"]["rows"].as_u64() > Some(5_000), "{totals}");
    assert!(totals["kpis"]["rows"].as_u64() > Some(1_000), "{totals}");
    let expected_file = dir.path().join("expected.json");
    std::fs::write(&expected_file, totals.to_string()).expect("written");

    let python = services::python().expect("the test services' Python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/storage/check_readers.py");
    let mut check = Command::new(python);
    check
        .arg(&script)
        .arg(&expected_file)
        .arg("--local")
        .arg(local.path())
        .args(["--s3", &store.url, "--require-spark"])
        .envs(store.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let out =
        tokio::task::spawn_blocking(move || check.output()).await.expect("joined").expect("python runs");
    let said = text(&out);
    assert!(out.status.success(), "a reader disagrees with kpipe:\n{said}");
    // 8 readers of each tree from S3, 9 locally (Spark too).
    assert!(said.contains("34 passed, 0 failed"), "{said}");
}
