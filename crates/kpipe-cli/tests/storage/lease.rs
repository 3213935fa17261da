//! One run per output on an object store: the lease object, its takeover after a killed
//! holder's lease lapses, and concurrent state writers detected.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use kpipe_cli::lock::{LeaseRecord, LockError, RunLock};
use kpipe_cli::state::{Committed, StateError, StateStore};
use kpipe_sink_parquet::layout;
use kpipe_testkit::services;

use crate::support::{Store, assert_no_secret, kpipe, run, text};

/// A configuration with one files source (no API) writing to `url`.
fn files_config(dir: &std::path::Path, url: &str, lease_seconds: u32) -> std::path::PathBuf {
    let data = dir.join("data.csv");
    // Enough lines that a run lasts a moment: the lease is looked at while it holds it.
    let mut csv = String::from("date,platform,account,level,entity,metric,value,currency\n");
    for day in 1..=7 {
        for entity in 0..20_000 {
            csv.push_str(&format!("2026-10-0{day},files,acct,ad,ad{entity},impressions,{},\n", 100 + entity));
        }
    }
    std::fs::write(&data, csv).expect("written");
    let config = dir.join("kpipe.toml");
    std::fs::write(
        &config,
        format!(
            "[pipeline]\noutput = \"{url}\"\nlock_lease_seconds = {lease_seconds}\n\n\
             [sources.sheet]\ntype = \"files\"\nkind = \"metrics\"\npath = \"data.csv\"\n"
        ),
    )
    .expect("written");
    config
}

#[test]
fn a_second_run_is_refused_naming_the_holder_and_a_killed_holders_lease_is_taken_over() {
    let s3 = services::s3_server().expect("the S3 server starts");
    let store = Store::s3(&s3, "leased");
    let storage = store.storage();
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = files_config(dir.path(), &store.url, 5);

    // Held by this process: a run is refused and says by whom.
    let held = RunLock::acquire(&storage, Duration::from_secs(60)).expect("the lock is free");
    let out = run(&store.env, &config);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("held by pid {}", std::process::id())), "{said}");
    assert!(said.contains("lease until"), "{said}");
    let busy = RunLock::acquire(&storage, Duration::from_secs(60)).expect_err("held");
    assert!(matches!(busy, LockError::Busy { .. }), "{busy}");
    drop(held);
    assert!(storage.get(&layout::lock_object()).expect("readable").is_none(), "released on drop");

    // Free again: the run goes through and releases it.
    let out = run(&store.env, &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&store.secrets, "the run's output", text(&out).as_bytes());
    assert!(storage.get(&layout::lock_object()).expect("readable").is_none());

    // A holder killed without releasing: refused until its lease lapses, then taken over.
    let cfg = config.to_string_lossy().into_owned();
    let mut run_args = vec!["run", "-c", cfg.as_str()];
    run_args.extend(crate::support::WINDOW);
    let mut child = kpipe(&store.env, &run_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kpipe starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let lease = loop {
        if let Some(object) = storage.get(&layout::lock_object()).expect("readable") {
            break serde_json::from_slice::<LeaseRecord>(&object.bytes).expect("a lease record");
        }
        assert!(Instant::now() < deadline, "the run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lease.pid, child.id());
    if storage.get(&layout::lock_object()).expect("readable").is_some() {
        let out = run(&store.env, &config);
        if lease.expires_at > chrono::Utc::now() + chrono::Duration::seconds(1) {
            assert_ne!(out.status.code(), Some(0), "a live lease was ignored: {}", text(&out));
            assert!(text(&out).contains(&format!("held by pid {}", lease.pid)), "{}", text(&out));
        }
        std::thread::sleep((lease.expires_at - chrono::Utc::now()).to_std().unwrap_or_default());
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = run(&store.env, &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_expired_lease_is_taken_over_and_a_live_one_is_not() {
    let s3 = services::s3_server().expect("the S3 server starts");
    let store = Store::s3(&s3, "stale");
    let storage = store.storage();
    let now = chrono::Utc::now();
    let stale = LeaseRecord {
        host: "gone-host".into(),
        pid: 4_000_000,
        holder_id: "killed".into(),
        acquired_at: now - chrono::Duration::minutes(10),
        expires_at: now - chrono::Duration::minutes(8),
    };
    storage.put(&layout::lock_object(), serde_json::to_vec(&stale).expect("json").into()).expect("written");
    let lock = RunLock::acquire(&storage, Duration::from_secs(30)).expect("an expired lease is taken over");
    let record: LeaseRecord =
        serde_json::from_slice(&storage.get(&layout::lock_object()).expect("readable").expect("held").bytes)
            .expect("a lease record");
    assert_eq!(record.pid, std::process::id());
    assert!(record.expires_at > now);
    drop(lock);

    let live = LeaseRecord { expires_at: now + chrono::Duration::minutes(5), ..stale };
    storage.put(&layout::lock_object(), serde_json::to_vec(&live).expect("json").into()).expect("written");
    let err = RunLock::acquire(&storage, Duration::from_secs(30)).expect_err("a live lease holds");
    assert!(err.to_string().contains("held by pid 4000000 on gone-host"), "{err}");
}

#[test]
fn a_state_written_concurrently_is_detected_on_s3() {
    let s3 = services::s3_server().expect("the S3 server starts");
    let storage = Store::s3(&s3, "state").storage();
    let day = |d| NaiveDate::from_ymd_opt(2026, 10, d).expect("a date");
    let commit = |d| Committed {
        days: [day(d)].into_iter().collect(),
        rows: [((day(d), "acct".to_owned(), Some("ads".to_owned())), 1)].into_iter().collect(),
        streams: vec!["ads".into()],
        periods: Vec::new(),
    };
    let mut first = StateStore::open(&storage).expect("state");
    let mut second = StateStore::open(&storage).expect("state");
    first.record("li", &commit(1), "r1", day(30), None);
    second.record("li", &commit(2), "r2", day(30), None);
    first.save_source("li").expect("the first writer saves");
    let err = second.save_source("li").expect_err("the second writer read an older state");
    assert!(matches!(err, StateError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains(".kpipe/state/li.json"), "{err}");

    // Read again, it saves; the first writer's copy is now the stale one.
    let mut third = StateStore::open(&storage).expect("state");
    third.record("li", &commit(3), "r3", day(30), None);
    third.save_source("li").expect("a fresh reader saves");
    first.record("li", &commit(4), "r4", day(30), None);
    assert!(matches!(first.save_source("li"), Err(StateError::Conflict { .. })));
    let last = StateStore::open(&storage).expect("state");
    let ledger = last.source("li").expect("a ledger");
    assert!(ledger.day(day(1)).is_some() && ledger.day(day(3)).is_some() && ledger.day(day(2)).is_none());
}

#[test]
fn check_probes_an_object_store_and_names_the_output_when_it_cannot() {
    let s3 = services::s3_server().expect("the S3 server starts");
    let store = Store::s3(&s3, "checked");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = files_config(dir.path(), &store.url, 60);
    let cfg = config.to_string_lossy().into_owned();
    let out = kpipe(&store.env, &["check", "-c", &cfg]).output().expect("kpipe runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("output {}: ok", store.url)), "{}", text(&out));
    assert!(crate::support::keys(&store.storage()).is_empty(), "the probe is left behind");

    // Nothing listens there: the check fails, naming the key and the file, and no secret.
    let env: Vec<(String, String)> = store
        .env
        .iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k.clone(), "http://127.0.0.1:9".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let out = kpipe(&env, &["check", "-c", &cfg]).output().expect("kpipe runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("{cfg}: pipeline.output = {}", store.url)), "{said}");
    assert_no_secret(&store.secrets, "the check's output", said.as_bytes());
}
