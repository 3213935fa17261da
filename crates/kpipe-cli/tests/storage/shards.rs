//! `kpipe run --shard K/N`: the shards of a configuration, run as separate processes into one
//! output, give exactly the dataset of one unsharded run. The platform APIs are kpipe's
//! simulator: LinkedIn's Marketing API with twelve ad accounts (`/rest/adAnalytics`, as
//! `shared/apis/linkedin.md` describes it) and the GA4 Data API with six properties
//! (`runReport`, `shared/apis/google_analytics.md`), plus the demo's spreadsheets (sources that
//! are one unit each).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use kpipe_cli::demo;
use kpipe_sim::platform::ga4::{Ga4Api, SimProperty};
use kpipe_sim::platform::linkedin::{self, LinkedInApi};
use kpipe_sim::{AuthConfig, SimConfig, SimServer};
use kpipe_sink_parquet::{Storage, layout};

use crate::support::{Row, Store, WINDOW, dataset, demo_config, kpipe, kpis, text};

/// The simulated LinkedIn and GA4 APIs with enough accounts to spread over eight shards.
struct Apis {
    linkedin: SimServer,
    google: SimServer,
}

impl Apis {
    async fn start() -> Apis {
        let config = || SimConfig::new(2026);
        let linkedin = SimServer::start(
            config()
                .with_auth(linkedin::auth_config())
                .with_platform(Arc::new(LinkedInApi::with_accounts(12, 2, 1))),
        )
        .await
        .expect("the LinkedIn simulator starts");
        let properties = (1..=6)
            .map(|i| SimProperty::new(&format!("30000000{i}"), "USD", "America/New_York", 40 + i * 10))
            .collect();
        let google = SimServer::start(
            config().with_auth(AuthConfig::required()).with_platform(Arc::new(Ga4Api::new(properties))),
        )
        .await
        .expect("the GA4 simulator starts");
        Apis { linkedin, google }
    }

    /// The sources pulling the first `accounts` LinkedIn accounts and every GA4 property.
    fn sources(&self, accounts: u64) -> String {
        let ids: Vec<String> = (1..=accounts).map(|n| format!("\"{}\"", 508_000_000 + n)).collect();
        let properties: Vec<String> = (1..=6).map(|i| format!("\"30000000{i}\"")).collect();
        format!(
            r#"
[sources.li_ads]
type = "linkedin"
account_ids = [{ids}]
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{li}"
token_url = "{li_token}"

[sources.web]
type = "google_analytics"
property_ids = [{properties}]
client_id = "sim-client"
client_secret = "sim-secret"
refresh_token = "sim-refresh-token"
base_url = "{ga}"
token_url = "{ga_token}"
"#,
            ids = ids.join(", "),
            properties = properties.join(", "),
            li = self.linkedin.base_url(),
            li_token = self.linkedin.token_url(),
            ga = self.google.base_url(),
            ga_token = self.google.token_url(),
        )
    }

    async fn shutdown(self) {
        self.linkedin.shutdown().await;
        self.google.shutdown().await;
    }
}

/// `kpipe run -c config` over [`WINDOW`] with `extra` arguments.
fn run_with(env: &[(String, String)], config: &Path, extra: &[&str]) -> Output {
    let config = config.to_string_lossy().into_owned();
    let mut args = vec!["run", "-c", config.as_str()];
    args.extend(WINDOW);
    args.extend(extra);
    kpipe(env, &args).output().expect("kpipe runs")
}

/// Runs the `count` shards of `config` at once, each to the end; asserts they all succeeded.
async fn run_shards(env: &[(String, String)], config: &Path, count: u32, extra: &[&str]) {
    let mut tasks = Vec::new();
    for k in 0..count {
        let (env, config) = (env.to_vec(), config.to_path_buf());
        let mut args: Vec<String> = vec!["--shard".into(), format!("{k}/{count}"), "--no-kpis".into()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        tasks.push(tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (k, run_with(&env, &config, &args))
        }));
    }
    for task in tasks {
        let (k, out) = task.await.expect("joined");
        assert_eq!(out.status.code(), Some(0), "shard {k}/{count} failed: {}", text(&out));
    }
}

/// A config writing to `output` (a URL, or `.` for its own folder).
fn config_in(dir: &Path, sources: &str, output: &str, store: Option<&Store>) -> PathBuf {
    match store {
        None => demo::prepare_with(dir, sources).expect("a config"),
        Some(store) => {
            assert_eq!(output, store.url);
            config_on(dir, sources, store, "")
        }
    }
}

/// A config writing to `store`, with `extra` lines in `[pipeline]`.
fn config_on(dir: &Path, sources: &str, store: &Store, extra: &str) -> PathBuf {
    let storage: Vec<String> = store.options.values.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
    demo_config(dir, sources, &store.url, &format!("lock_lease_seconds = 5\n{extra}"), &storage.join("\n"))
}

/// Asserts that no metric row is in two files, whatever their writers: every (source, account,
/// day) is in the files of exactly one writer.
fn assert_each_unit_day_in_one_file(storage: &Storage) {
    let mut writers: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for entry in storage.list(layout::METRICS).expect("listable") {
        let Some((source, shard, day)) = layout::parse_sharded_metric_file(&entry.key) else { continue };
        let object = storage.get(&entry.key).expect("readable").expect("listed");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(object.bytes)
            .expect("a Parquet file")
            .build()
            .expect("readable");
        for batch in reader {
            let batch = batch.expect("a batch");
            let column = batch.column_by_name("account_id").expect("account_id");
            let accounts = column.as_any().downcast_ref::<arrow_array::StringArray>().expect("text");
            for account in accounts.iter().flatten() {
                let key = (source.to_owned(), account.to_owned(), day.to_string());
                let writer = shard.to_string();
                if let Some(other) = writers.insert(key.clone(), writer.clone()) {
                    assert_eq!(
                        other, writer,
                        "{key:?} is in the files of shard {other} and of shard {writer}"
                    );
                }
                // The demo's spreadsheets list no accounts: each is one unit as a whole.
                let unit = if key.0 == "li_ads" || key.0 == "web" { key.1.as_str() } else { "" };
                assert!(
                    shard.owns(&key.0, unit),
                    "{key:?} is in a file of shard {shard}, which does not own it"
                );
            }
        }
    }
}

/// Asserts `got == expected`, saying by source and day what is missing or extra.
fn assert_same(got: &[Row], expected: &[Row], what: &str) {
    if got == expected {
        return;
    }
    let mut diff: BTreeMap<(String, String, &str), usize> = BTreeMap::new();
    for r in expected.iter().filter(|r| got.binary_search(r).is_err()) {
        *diff.entry((r.0.clone(), r.2.clone(), "missing")).or_default() += 1;
    }
    for r in got.iter().filter(|r| expected.binary_search(r).is_err()) {
        *diff.entry((r.0.clone(), r.2.clone(), "extra")).or_default() += 1;
    }
    let mut dups = 0;
    for w in got.windows(2).filter(|w| w[0] == w[1]) {
        dups += 1;
        *diff.entry((w[0].0.clone(), w[0].2.clone(), "twice")).or_default() += 1;
    }
    panic!(
        "{what}: {} rows, expected {}; {dups} duplicate(s); by source and day: {diff:?}",
        got.len(),
        expected.len()
    );
}

/// The metric and KPI rows of one unsharded run of `sources`: what shards must add up to.
fn reference(sources: &str) -> (Vec<Row>, Vec<String>) {
    let whole = tempfile::tempdir().expect("a temp dir");
    let config = config_in(whole.path(), sources, ".", None);
    let out = run_with(&[], &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let storage = Storage::local(whole.path());
    (dataset(&storage), kpis(&storage))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_eight_shards_pull_every_unit_exactly_once_and_hand_units_over_when_n_changes() {
    let apis = Apis::start().await;
    let sources = apis.sources(12);
    let (expected, _) = reference(&sources);
    let units: std::collections::BTreeSet<(&str, &str)> =
        expected.iter().map(|r| (r.0.as_str(), r.3.as_str())).collect();
    assert!(units.len() >= 18, "{units:?}");

    // Each number of shards from a fresh output: every unit is pulled by one of them.
    for count in 1..=8 {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = config_in(dir.path(), &sources, ".", None);
        run_shards(&[], &config, count, &[]).await;
        let storage = Storage::local(dir.path());
        assert_same(&dataset(&storage), &expected, &format!("{count} shard(s)"));
        assert_each_unit_day_in_one_file(&storage);
    }

    // One output whose number of shards changes: 3, then 5 (the new shards start from the days
    // the old ones had final, so nothing is pulled, nothing is lost), then 5 pulling again
    // (every account's rows move to the files of its new shard), then the whole configuration.
    let dir = tempfile::tempdir().expect("a temp dir");
    let storage = Storage::local(dir.path());
    let config = config_in(dir.path(), &sources, ".", None);
    run_shards(&[], &config, 3, &[]).await;
    assert_same(&dataset(&storage), &expected, "the dataset");
    run_shards(&[], &config, 5, &[]).await;
    assert_same(&dataset(&storage), &expected, "after going from 3 to 5 shards");
    run_shards(&[], &config, 5, &["--full-refresh"]).await;
    assert_same(&dataset(&storage), &expected, "after 5 shards pulled again");
    assert_each_unit_day_in_one_file(&storage);
    let keys = crate::support::keys(&storage);
    let left: Vec<&String> = keys.iter().filter(|k| k.starts_with("metrics") && k.contains("of3.")).collect();
    assert!(left.is_empty(), "files of 3 shards left: {left:?}");
    let out = run_with(&[], &config, &["--full-refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_same(&dataset(&storage), &expected, "after the whole configuration pulled again");
    let keys = crate::support::keys(&storage);
    let left: Vec<&String> = keys
        .iter()
        .filter(|k| {
            layout::parse_sharded_metric_file(k).is_some_and(|(_, shard, _)| !shard.is_all())
                || layout::parse_sharded_period_file(k).is_some_and(|(_, shard, _, _)| !shard.is_all())
        })
        .collect();
    assert!(left.is_empty(), "shard files left: {left:?}");
    apis.shutdown().await;
}

/// Per shard of 4 owning them, the accounts of `source` the output holds rows of.
fn accounts_by_owner(
    storage: &Storage,
    source: &str,
) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for row in kpipe_sink_parquet::read::read_metric_table(storage, kpipe_sink_parquet::OutputFormat::Parquet)
        .expect("readable")
    {
        if row.source == source {
            let account = row.row.account_id.to_string();
            let owner =
                (0..4).find(|k| kpipe_core::Shard::new(*k, 4).expect("a shard").owns(source, &account));
            out.entry(format!("{}/4", owner.expect("an owner"))).or_default().insert(account);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_list_that_grows_between_runs_is_split_without_moving_the_other_accounts() {
    let apis = Apis::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let storage = Storage::local(dir.path());
    let before = config_in(dir.path(), &apis.sources(8), ".", None);
    run_shards(&[], &before, 4, &[]).await;
    let split_before = accounts_by_owner(&storage, "li_ads");
    assert_eq!(split_before.values().map(|a| a.len()).sum::<usize>(), 8);

    // Four more accounts: each goes to one shard, and no earlier account changes shard.
    let after = config_in(dir.path(), &apis.sources(12), ".", None);
    run_shards(&[], &after, 4, &["--full-refresh"]).await;
    let (expected, _) = reference(&apis.sources(12));
    assert_same(&dataset(&storage), &expected, "the dataset");
    assert_each_unit_day_in_one_file(&storage);
    // `kpipe plan --shards 4` shows the same split before anything runs.
    let after_text = after.to_string_lossy().into_owned();
    let mut args = vec!["plan", "-c", after_text.as_str(), "--shards", "4", "--json"];
    args.extend(WINDOW);
    let out = kpipe(&[], &args).output().expect("kpipe runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON plan");
    let shards = plan["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 4);
    // 12 accounts, 6 properties and the 3 spreadsheets, each in one shard.
    let units: u64 = shards.iter().map(|s| s["units"].as_u64().unwrap_or(0)).sum();
    assert_eq!(units, 12 + 6 + 3, "{plan}");
    assert_eq!(plan["rate_share"].as_f64(), Some(0.25));
    let split_after = accounts_by_owner(&storage, "li_ads");
    assert_eq!(split_after.values().map(|a| a.len()).sum::<usize>(), 12);
    for (shard, accounts) in &split_before {
        assert!(
            accounts.is_subset(&split_after[shard]),
            "shard {shard} lost accounts: {split_before:?} {split_after:?}"
        );
    }
    apis.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_at_once_into_s3_give_the_unsharded_dataset_and_kpis() {
    let server = kpipe_testkit::services::s3_server().expect("the S3-compatible test server starts");
    let apis = Apis::start().await;
    let sources = apis.sources(12);

    let (expected, expected_kpis) = reference(&sources);

    let store = Store::s3(&server, "shards-two");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = config_in(dir.path(), &sources, &store.url, Some(&store));
    run_shards(&store.env, &config, 2, &[]).await;
    let storage = store.storage();
    assert_same(&crate::support::dataset(&storage), &expected, "the dataset");
    assert_each_unit_day_in_one_file(&storage);
    // Each shard kept a state object per source of its own, and a lock of its own.
    let keys = crate::support::keys(&storage);
    for shard in ["-0of2", "-1of2"] {
        assert!(keys.iter().any(|k| k.starts_with(".kpipe/state/") && k.contains(shard)), "{keys:?}");
    }
    assert!(kpis(&storage).is_empty(), "a shard computed KPIs");

    let config_text = config.to_string_lossy().into_owned();
    let mut args = vec!["kpis", "-c", config_text.as_str()];
    args.extend(WINDOW);
    let out = kpipe(&store.env, &args).output().expect("kpipe runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(kpis(&storage), expected_kpis);
    for secret in &store.secrets {
        assert!(!keys.iter().any(|k| k.contains(secret.as_str())));
    }
    apis.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shard_run_again_alone_completes_the_dataset() {
    let apis = Apis::start().await;
    let sources = apis.sources(12);
    let (expected, _) = reference(&sources);

    let dir = tempfile::tempdir().expect("a temp dir");
    let storage = Storage::local(dir.path());
    let config = config_in(dir.path(), &sources, ".", None);
    let out = run_with(&[], &config, &["--shard", "0/2", "--no-kpis"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut interrupted = 0;
    for delay_ms in [150, 500, 1_000] {
        let config = config.to_string_lossy().into_owned();
        let mut args = vec!["run", "-c", config.as_str(), "--shard", "1/2", "--no-kpis", "--full-refresh"];
        args.extend(WINDOW);
        let mut child = kpipe(&[], &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kpipe starts");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        let partial = dataset(&storage);
        assert!(
            partial.iter().all(|r| expected.binary_search(r).is_ok()),
            "a killed shard published a wrong row"
        );
        if partial != expected {
            interrupted += 1;
        }
    }
    assert!(interrupted > 0, "every kill came after the shard had finished: nothing was tested");
    let out = run_with(&[], &config, &["--shard", "1/2", "--no-kpis"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_same(&dataset(&storage), &expected, "the dataset");
    assert_each_unit_day_in_one_file(&storage);
    apis.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_commit_to_one_delta_table_on_s3_and_take_units_over_when_n_changes() {
    let server = kpipe_testkit::services::s3_server().expect("the S3-compatible test server starts");
    let apis = Apis::start().await;
    let sources = apis.sources(12);
    let (expected, expected_kpis) = reference(&sources);

    let store = Store::s3(&server, "shards-delta");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = config_on(dir.path(), &sources, &store, "format = \"delta\"");
    let storage = store.storage();
    let delta = kpipe_sink_parquet::OutputFormat::Delta;
    run_shards(&store.env, &config, 3, &[]).await;
    assert_same(&crate::support::dataset_as(&storage, delta), &expected, "3 shards");
    // From 3 shards to 2, pulling again: each commit moves its accounts out of the files of
    // the 3 shards, in the same transaction.
    run_shards(&store.env, &config, 2, &["--full-refresh"]).await;
    assert_same(&crate::support::dataset_as(&storage, delta), &expected, "3 shards, then 2");
    let active = kpipe_sink_parquet::table::table_files(&storage, delta, layout::METRICS).expect("the table");
    let left: Vec<&str> =
        active.iter().map(|f| f.logical_key.as_str()).filter(|k| k.contains("of3.")).collect();
    assert!(left.is_empty(), "files of 3 shards left in the table: {left:?}");

    let config_text = config.to_string_lossy().into_owned();
    let mut args = vec!["kpis", "-c", config_text.as_str()];
    args.extend(WINDOW);
    let out = kpipe(&store.env, &args).output().expect("kpipe runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(crate::support::kpis_as(&storage, delta), expected_kpis);
    apis.shutdown().await;
}
