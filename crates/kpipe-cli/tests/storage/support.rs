//! What the storage tests share: the demo's sources against a store, running the binary, and
//! reading a dataset back from any output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kpipe_cli::demo;
use kpipe_sink_parquet::{OutputFormat, Storage};
use kpipe_storage::{OutputLocation, StorageOptions};
use kpipe_testkit::services::{AzuriteServer, S3Server};

/// The window every run pulls.
pub const WINDOW: [&str; 4] = ["--from", "2026-10-01", "--to", "2026-10-07"];

/// An object store under test, with what a child process and this process need to reach it.
pub struct Store {
    /// The output URL.
    pub url: String,
    /// The environment of a `kpipe` child process.
    pub env: Vec<(String, String)>,
    /// `[pipeline.storage]` for this process (which has none of `env`).
    pub options: StorageOptions,
    /// Credential values that must appear in no output.
    pub secrets: Vec<String>,
}

impl Store {
    pub fn s3(server: &S3Server, prefix: &str) -> Store {
        let options = [
            ("endpoint", server.endpoint()),
            ("access_key_id", server.access_key_id().to_owned()),
            ("secret_access_key", server.secret_access_key().to_owned()),
            ("region", server.region().to_owned()),
            ("allow_http", "true".to_owned()),
        ];
        Store {
            url: server.url(prefix),
            env: server.env(),
            options: StorageOptions { values: options.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() },
            secrets: vec![server.secret_access_key().to_owned()],
        }
    }

    pub fn azure(server: &AzuriteServer, prefix: &str) -> Store {
        let options = [
            ("endpoint", server.endpoint()),
            ("account_name", server.account().to_owned()),
            ("access_key", server.account_key().to_owned()),
            ("allow_http", "true".to_owned()),
        ];
        Store {
            url: server.url(prefix),
            env: server.env(),
            options: StorageOptions { values: options.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() },
            secrets: vec![server.account_key().to_owned()],
        }
    }

    /// The store as kpipe's storage layer opens it.
    pub fn storage(&self) -> Storage {
        let location = OutputLocation::parse(&self.url, Path::new("/")).expect("a store URL");
        Storage::open(&location, &self.options).expect("the store opens")
    }
}

/// The demo's configuration (the simulated APIs and the spreadsheets) in `dir`, writing to
/// `output` (a URL, or `"."`), with `extra` lines in `[pipeline]` and a `[pipeline.storage]`
/// table of `storage` lines.
pub fn demo_config(dir: &Path, sources: &str, output: &str, extra: &str, storage: &str) -> PathBuf {
    let path = demo::prepare_with(dir, sources).expect("the demo inputs are written");
    let text = std::fs::read_to_string(&path).expect("the demo configuration");
    let replaced = text.replacen("output = \".\"", &format!("output = \"{output}\"\n{extra}"), 1);
    assert_ne!(replaced, text, "the demo configuration names its output as expected");
    let table = if storage.is_empty() { String::new() } else { format!("\n[pipeline.storage]\n{storage}\n") };
    std::fs::write(&path, format!("{replaced}{table}")).expect("written");
    path
}

/// `kpipe <args>` with the store's environment, without the caller's RUST_LOG.
pub fn kpipe(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    c.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// `kpipe run -c config` over [`WINDOW`], to the end.
pub fn run(env: &[(String, String)], config: &Path) -> Output {
    let config = config.to_string_lossy().into_owned();
    let mut args = vec!["run", "-c", config.as_str()];
    args.extend(WINDOW);
    kpipe(env, &args).output().expect("kpipe runs")
}

/// Starts `kpipe run -c config` over [`WINDOW`], SIGKILLs it after `delay` (no chance to clean
/// up) and waits for it; then checks that what `storage` shows is whole days of the right rows:
/// every visible file reads as complete Parquet, every row is one of `expected`. Returns whether
/// the kill interrupted the run (the output is not yet `expected`).
pub async fn kill_after(
    env: &[(String, String)],
    config: &Path,
    delay: std::time::Duration,
    storage: &Storage,
    expected: &[Row],
) -> bool {
    kill_after_as(OutputFormat::Parquet, env, config, delay, storage, expected).await
}

/// [`kill_after`] for an output kept as `format`.
pub async fn kill_after_as(
    format: OutputFormat,
    env: &[(String, String)],
    config: &Path,
    delay: std::time::Duration,
    storage: &Storage,
    expected: &[Row],
) -> bool {
    let config = config.to_string_lossy().into_owned();
    let mut args = vec!["run", "-c", config.as_str()];
    args.extend(WINDOW);
    let mut child =
        kpipe(env, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("kpipe starts");
    tokio::time::sleep(delay).await;
    let _ = child.kill();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let partial = dataset_as(storage, format);
    assert!(partial.iter().all(|r| expected.binary_search(r).is_ok()), "a killed run published a wrong row");
    partial != expected
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A metric row without its lineage (run id, pull time), which differ between runs.
pub type Row = (String, String, String, String, String, String, String, String, String, String);

/// Every metric row of an output, sorted.
pub fn dataset(storage: &Storage) -> Vec<Row> {
    dataset_as(storage, OutputFormat::Parquet)
}

/// Every metric row of an output kept as `format`, sorted.
pub fn dataset_as(storage: &Storage, format: OutputFormat) -> Vec<Row> {
    let mut rows: Vec<Row> = kpipe_sink_parquet::read::read_metric_table(storage, format)
        .expect("every metric object is a whole, readable Parquet file")
        .into_iter()
        .map(|r| {
            let row = r.row;
            let dims: Vec<String> = row
                .dimensions
                .values()
                .into_iter()
                .map(|d| d.map(|v| v.to_string()).unwrap_or_default())
                .collect();
            (
                r.source,
                row.platform.to_string(),
                row.date.to_string(),
                row.account_id.to_string(),
                row.level.to_string(),
                row.entity_id.to_string(),
                dims.join("|"),
                row.metric.as_str().to_owned(),
                row.value.to_string(),
                row.currency.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Every KPI row of an output, as text, sorted.
pub fn kpis(storage: &Storage) -> Vec<String> {
    kpis_as(storage, OutputFormat::Parquet)
}

/// Every KPI row of an output kept as `format`, as text, sorted.
pub fn kpis_as(storage: &Storage, format: OutputFormat) -> Vec<String> {
    let mut rows: Vec<String> = kpipe_kpi::read_stored_kpis(storage, format, None)
        .expect("every KPI object is readable")
        .into_iter()
        .map(|r| format!("{r:?}"))
        .collect();
    rows.sort();
    rows
}

/// Every object key of an output, sorted.
pub fn keys(storage: &Storage) -> Vec<String> {
    storage.list("").expect("listable").into_iter().map(|e| e.key).collect()
}

/// Asserts that no secret appears in `text`.
pub fn assert_no_secret(secrets: &[String], what: &str, text: &[u8]) {
    for secret in secrets {
        assert!(!text.windows(secret.len()).any(|w| w == secret.as_bytes()), "{what} holds a secret");
    }
}

/// Waits until the lease a killed run left on `storage` has lapsed (returns at once without one).
pub fn wait_for_lease_to_lapse(storage: &Storage) {
    let Some(object) = storage.get(&kpipe_sink_parquet::layout::lock_object()).expect("readable") else {
        return;
    };
    let lease: kpipe_cli::lock::LeaseRecord = serde_json::from_slice(&object.bytes).expect("a lease record");
    let left = (lease.expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(left + std::time::Duration::from_millis(300));
}

/// The multipart uploads open in an S3 bucket, as the S3 API lists them (ListMultipartUploads,
/// through boto3 from the test services' virtualenv).
pub fn open_s3_uploads(server: &S3Server) -> Vec<String> {
    let python = kpipe_testkit::services::python().expect("the test services' python");
    let script = [
        "import sys, boto3",
        "s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],",
        "                  aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])",
        "for u in s3.list_multipart_uploads(Bucket=sys.argv[5]).get('Uploads', []):",
        "    print(u['Key'])",
    ]
    .join("\n");
    let out = Command::new(python)
        .args(["-c", script.as_str()])
        .args([
            server.endpoint().as_str(),
            server.access_key_id(),
            server.secret_access_key(),
            server.region(),
            server.bucket(),
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "listing uploads failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}
