//! The demo's pipeline (four simulated APIs, three spreadsheets, the KPI stage) written to S3
//! and Azure: the same rows as a local run, re-runs that replace, kills that leave nothing.

use std::path::Path;
use std::time::Duration;

use kpipe_cli::demo_apis::DemoApis;
use kpipe_sink_parquet::{Storage, layout};
use kpipe_testkit::services;

use crate::support::{
    Store, assert_no_secret, dataset, demo_config, keys, kill_after, kpipe, kpis, open_s3_uploads, run, text,
    wait_for_lease_to_lapse,
};

/// Runs `f` on a blocking thread: the simulated APIs answer on the runtime's other threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("the blocking task ends")
}

/// The local run every store must match: its metric rows and KPI rows.
async fn reference(sources: &str) -> (Vec<crate::support::Row>, Vec<String>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = demo_config(dir.path(), sources, ".", "", "");
    let out = blocking(move || run(&[], &config)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let local = Storage::local(dir.path());
    let rows = dataset(&local);
    assert!(rows.len() > 5_000, "{} rows", rows.len());
    for source in ["linkedin_ads", "facebook_ads", "hubspot_crm", "web_analytics", "marketing_sheet"] {
        assert!(rows.iter().any(|r| r.0 == source), "no rows of {source}");
    }
    let kpis = kpis(&local);
    assert!(!kpis.is_empty());
    (rows, kpis)
}

/// Runs the demo's sources into `store` twice and checks each time that it holds exactly
/// `expected`, and that nothing but data, quarantine and state is left in it.
async fn lands_whole(store: Store, sources: &str, expected: &(Vec<crate::support::Row>, Vec<String>)) {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Every file is uploaded as a multipart upload (of one part), as large days are.
    let config = demo_config(dir.path(), sources, &store.url, "", "multipart_threshold = 1");
    let storage = store.storage();
    for attempt in ["first run", "the same window again"] {
        let (env, cfg) = (store.env.clone(), config.clone());
        let out = blocking(move || run(&env, &cfg)).await;
        assert_eq!(out.status.code(), Some(0), "{attempt}: {}", text(&out));
        assert_no_secret(&store.secrets, "the run's output", text(&out).as_bytes());
        assert_eq!(dataset(&storage), expected.0, "{attempt}: the metric rows of {}", store.url);
        assert_eq!(crate::support::kpis(&storage), expected.1, "{attempt}: the KPI rows of {}", store.url);
        let keys = keys(&storage);
        let stray: Vec<&String> = keys
            .iter()
            .filter(|k| {
                !(layout::parse_metric_file(k).is_some()
                    || layout::parse_kpi_file(k).is_some()
                    || layout::parse_period_file(k).is_some()
                    || k.starts_with("quarantine/") && k.ends_with(".jsonl")
                    || k.starts_with(".kpipe/state/") && k.ends_with(".json"))
            })
            .collect();
        assert!(stray.is_empty(), "{attempt}: left in {}: {stray:?}", store.url);
        for source in ["linkedin_ads", "facebook_ads", "hubspot_crm", "web_analytics", "marketing_sheet"] {
            let state =
                storage.get(&layout::state_object(source)).expect("readable").expect("a state object");
            assert_no_secret(&store.secrets, "a state object", &state.bytes);
        }
    }
    // The state says the days are there: `kpipe state show` reads it from the store.
    let cfg = config.to_string_lossy().into_owned();
    let env = store.env.clone();
    let out =
        blocking(move || kpipe(&env, &["state", "show", "-c", &cfg, "--source", "linkedin_ads"]).output())
            .await
            .expect("kpipe runs");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2026-10-01..2026-10-07"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_dataset_lands_on_s3_and_azure_and_a_rerun_replaces_its_days() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let sources = apis.sources_toml();
    let expected = reference(&sources).await;

    let s3 = blocking(services::s3_server).await.expect("the S3 server starts");
    lands_whole(Store::s3(&s3, "lake/kpipe"), &sources, &expected).await;
    assert!(open_s3_uploads(&s3).is_empty(), "multipart uploads left open");

    let azure = blocking(services::azurite).await.expect("Azurite starts");
    lands_whole(Store::azure(&azure, "lake/kpipe"), &sources, &expected).await;
    apis.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_any_point_rerun_to_exactly_the_uninterrupted_dataset_on_s3() {
    let apis = DemoApis::start().await.expect("the simulators start");
    let sources = apis.sources_toml();
    let expected = reference(&sources).await.0;
    let s3 = blocking(services::s3_server).await.expect("the S3 server starts");
    let store = Store::s3(&s3, "killed");
    let dir = tempfile::tempdir().expect("a temp dir");
    // A short lease, so that each run after a kill can take over the killed run's lock.
    let config =
        demo_config(dir.path(), &sources, &store.url, "lock_lease_seconds = 5", "multipart_threshold = 1");
    let storage = store.storage();
    let mut interrupted = 0;
    for delay_ms in [150u64, 500, 1_000, 1_800] {
        // The killed run's lease must lapse first.
        let s = storage.clone();
        blocking(move || wait_for_lease_to_lapse(&s)).await;
        if kill_after(&store.env, &config, Duration::from_millis(delay_ms), &storage, &expected).await {
            interrupted += 1;
        }
    }
    assert!(interrupted > 0, "every kill came after the run had finished: nothing was tested");
    let s = storage.clone();
    blocking(move || wait_for_lease_to_lapse(&s)).await;
    let (env, cfg) = (store.env.clone(), config.clone());
    let out = blocking(move || run(&env, &cfg)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(dataset(&storage), expected);
    let open = open_s3_uploads(&s3);
    assert!(open.is_empty(), "the re-run left multipart uploads open: {open:?}");
    let journal: Vec<String> = keys(&storage).into_iter().filter(|k| k.starts_with(".kpipe/")).collect();
    assert!(journal.iter().all(|k| k.starts_with(".kpipe/state/")), "left behind: {journal:?}");
    apis.shutdown().await;
}

#[test]
fn an_upload_a_killed_process_left_open_is_aborted_by_the_next_writer() {
    let s3 = services::s3_server().expect("the S3 server starts");
    let store = Store::s3(&s3, "orphans");
    let storage = store.storage();
    // A killed process's upload: started and journaled, one part sent, never completed.
    let multipart = s3.builder().build().expect("an S3 client");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let key = "orphans/metrics/li.2026-10-01.parquet";
    let path = object_store::path::Path::from(key);
    let id = runtime.block_on(async {
        use object_store::multipart::MultipartStore;
        let id = multipart.create_multipart(&path).await.expect("an upload starts");
        let part = object_store::PutPayload::from(vec![7u8; 1024]);
        multipart.put_part(&path, &id, 0, part).await.expect("a part is sent");
        id
    });
    let journal = layout::upload_journal("metrics/li");
    let record = serde_json::json!({ "path": key, "upload_id": id });
    storage.put(&format!("{journal}/killed.json"), record.to_string().into()).expect("journaled");
    assert_eq!(open_s3_uploads(&s3), [key]);
    assert!(storage.get("metrics/li.2026-10-01.parquet").expect("readable").is_none());

    // The next writer of the source cleans up before it stages anything.
    let sink = kpipe_sink_parquet::ParquetSink::on(storage.clone());
    let window = kpipe_core::DateWindow::day(chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("a date"));
    let target = kpipe_core::SinkTarget {
        source: "li".into(),
        window,
        run_id: "next".into(),
        pulled_at: chrono::Utc::now(),
    };
    let writer = kpipe_core::Sink::open(&sink, target).expect("the sink opens");
    writer.abort().expect("nothing to publish");
    assert!(open_s3_uploads(&s3).is_empty(), "the orphaned upload is still open");
    assert!(storage.list(&journal).expect("listable").is_empty());

    // A file over the threshold goes up in parts and appears whole.
    let big = tempfile::NamedTempFile::new().expect("a temp file");
    let content: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(big.path(), &content).expect("written");
    let staged = big.path().to_path_buf();
    storage.publish_file(&staged, "big/file.bin", &journal).expect("uploaded in parts");
    let back = storage.get("big/file.bin").expect("readable").expect("published");
    assert!(back.bytes == content, "the object is the file, whole");
    assert!(!Path::new(&staged).exists(), "the staged file is gone");
    assert!(open_s3_uploads(&s3).is_empty());
}

/// An output of layout version 1 on an object store is moved to version 2 by a server-side copy
/// then a delete per file, and a second pass finds nothing to do.
#[test]
fn an_output_of_layout_version_1_is_moved_on_s3_and_azure() {
    use kpipe_sink_parquet::migrate::{Migrated, to_current_layout};
    let s3 = services::s3_server().expect("the S3 server starts");
    let azure = services::azurite().expect("Azurite starts");
    for store in [Store::s3(&s3, "v1"), Store::azure(&azure, "v1")] {
        let storage = store.storage();
        for key in [
            "metrics/source=li/date=2026-10-01/part-00000.parquet",
            "metrics/source=fb/date=2026-10-01/part-00000.parquet",
            "kpis/grain=month/period=2026-10-01/part-00000.parquet",
            "quarantine/source=li/r1.jsonl",
        ] {
            storage.put(key, bytes::Bytes::from(key.to_owned())).expect("written");
        }
        assert_eq!(
            to_current_layout(&storage).expect("moved"),
            Migrated { moved: 3, removed: 0 },
            "{}",
            store.url
        );
        assert_eq!(
            keys(&storage),
            [
                "kpis/month.2026-10-01.parquet",
                "metrics/fb.2026-10-01.parquet",
                "metrics/li.2026-10-01.parquet",
                "quarantine/source=li/r1.jsonl",
            ],
            "{}",
            store.url
        );
        let moved = storage.get("metrics/li.2026-10-01.parquet").expect("readable").expect("there");
        assert_eq!(&moved.bytes[..], b"metrics/source=li/date=2026-10-01/part-00000.parquet");
        assert!(to_current_layout(&storage).expect("nothing to move").is_empty());
    }
}
