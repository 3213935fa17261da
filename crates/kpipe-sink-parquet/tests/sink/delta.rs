//! `format = "delta"`: the same rows as the Parquet layout, one commit per writer, re-runs
//! replace their partitions, a killed run's uploads are removed, stats in every add action.
//! The transaction log is read back with delta-rs itself here; the CLI's storage tests read the
//! tables with the Python `deltalake` package and Polars.

use std::collections::BTreeMap;

use kpipe_core::{MetricBatch, Sink};
use kpipe_sink_parquet::delta::{DeltaTableKind, active_files};
use kpipe_sink_parquet::read::read_metric_table;
use kpipe_sink_parquet::{OutputFormat, ParquetSink, Storage};

use super::{row, sample, sorted, target, write};

fn delta_sink(dir: &std::path::Path) -> ParquetSink {
    ParquetSink::new(dir).with_format(OutputFormat::Delta)
}

fn stored(storage: &Storage) -> Vec<String> {
    sorted(
        read_metric_table(storage, OutputFormat::Delta)
            .expect("readable")
            .into_iter()
            .map(|r| r.row)
            .collect(),
    )
}

/// The commits of a table's log, oldest first: (operation, kpipe.writer, kpipe.run_id, adds,
/// removes), read from `_delta_log/*.json` as any reader does.
fn commits(dir: &std::path::Path, table: DeltaTableKind) -> Vec<(String, String, String, usize, usize)> {
    let log = dir.join(table.key()).join("_delta_log");
    let mut files: Vec<_> = std::fs::read_dir(&log)
        .expect("a log")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("readable");
            let actions: Vec<serde_json::Value> =
                text.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
            let info = actions.iter().find_map(|a| a.get("commitInfo")).expect("commitInfo").clone();
            let field = |name: &str| info.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let count = |kind: &str| actions.iter().filter(|a| a.get(kind).is_some()).count();
            (field("operation"), field("kpipe.writer"), field("kpipe.run_id"), count("add"), count("remove"))
        })
        .collect()
}

#[test]
fn a_delta_table_holds_the_rows_a_reader_of_the_files_gets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let stats = write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    assert_eq!(stats.rows, 5);
    assert_eq!(stats.partitions_written, 3);
    let storage = Storage::local(dir.path());
    assert_eq!(stored(&storage), sorted(sample()));
    assert!(!dir.path().join("metrics").exists(), "no Parquet layout beside the Delta table");

    let log = commits(dir.path(), DeltaTableKind::Metrics);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].0, "CREATE TABLE");
    assert_eq!(log[1], ("WRITE".into(), "linkedin_ads".into(), "run-1".into(), 3, 0));
}

#[test]
fn a_rerun_replaces_its_days_in_one_commit_and_leaves_other_sources_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let storage = Storage::local(dir.path());
    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    let other = vec![row("2026-03-02", "9", kpipe_core::Metric::Clicks.into(), "4", None)];
    write(&sink, target("facebook_ads", "2026-03-02", "2026-03-02", "run-2"), other.clone());

    // Day 2 restated, day 3 now empty: replaced and removed in one commit; day 1 outside.
    let restated = vec![row("2026-03-02", "2", kpipe_core::Metric::Impressions.into(), "1600", None)];
    let stats = write(&sink, target("linkedin_ads", "2026-03-02", "2026-03-03", "run-3"), restated.clone());
    assert_eq!((stats.partitions_written, stats.partitions_removed), (1, 1));

    let mut expected: Vec<_> = sample().into_iter().filter(|r| r.date.to_string() == "2026-03-01").collect();
    expected.extend(restated);
    expected.extend(other);
    assert_eq!(stored(&storage), sorted(expected));

    let log = commits(dir.path(), DeltaTableKind::Metrics);
    let writes: Vec<_> = log.iter().filter(|c| c.0 == "WRITE").collect();
    assert_eq!(writes.len(), 3, "one commit per source per run: {log:?}");
    assert_eq!(*writes[2], ("WRITE".into(), "linkedin_ads".into(), "run-3".into(), 1, 2));
    let files = active_files(&storage, DeltaTableKind::Metrics).expect("files");
    let mut partitions: Vec<&str> = files.iter().map(|f| f.logical_key.as_str()).collect();
    partitions.dedup();
    assert_eq!(partitions.len(), files.len(), "one file per partition: {files:?}");
}

#[test]
fn every_add_action_carries_statistics_of_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(&delta_sink(dir.path()), target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    let log = dir.path().join("delta/metrics/_delta_log/00000000000000000001.json");
    let text = std::fs::read_to_string(log).expect("the first write");
    let adds: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?.get("add").cloned())
        .collect();
    assert_eq!(adds.len(), 3);
    let by_date: BTreeMap<String, serde_json::Value> = adds
        .iter()
        .map(|a| (a["partitionValues"]["date"].as_str().expect("date").to_owned(), a.clone()))
        .collect();
    let first = &by_date["2026-03-01"];
    assert_eq!(first["partitionValues"]["source"], "linkedin_ads");
    let stats: serde_json::Value =
        serde_json::from_str(first["stats"].as_str().expect("stats")).expect("JSON");
    assert_eq!(stats["numRecords"], 2);
    assert_eq!(stats["minValues"]["metric"], "spend");
    assert_eq!(stats["minValues"]["entity_id"], "1");
    assert_eq!(stats["maxValues"]["country"], "DE");
    assert_eq!(stats["minValues"]["pulled_at"], "2025-11-24T16:00:00.123Z");
    assert_eq!(stats["maxValues"]["pulled_at"], "2025-11-24T16:00:00.124Z");
    assert_eq!(stats["nullCount"]["region"], 2);
    assert_eq!(stats["nullCount"]["value"], 0);
    assert!(stats["minValues"].get("value").is_none(), "no decimal bound: {stats}");
    assert!(stats["minValues"].get("date").is_none(), "partition columns have no statistics: {stats}");
    let third =
        serde_json::from_str::<serde_json::Value>(by_date["2026-03-03"]["stats"].as_str().expect("stats"))
            .expect("JSON");
    assert_eq!(third["nullCount"]["entity_name"], 1);
    assert!(first["path"].as_str().expect("path").starts_with("source=linkedin_ads/date=2026-03-01/part-"));
}

#[test]
fn files_a_killed_run_uploaded_but_never_committed_are_removed_by_the_next_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let storage = Storage::local(dir.path());
    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    // What a run killed between its uploads and its commit leaves: uploaded files and the
    // journal that lists them, and a table that does not reference them.
    let stray = "delta/metrics/source=linkedin_ads/date=2026-03-02/part-killed.zstd.parquet";
    storage.put(stray, bytes::Bytes::from_static(b"PAR1 half a file")).expect("written");
    let journal = ".kpipe/delta/metrics/linkedin_ads.json";
    let listed = serde_json::json!({ "run_id": "run-killed", "files": [stray] });
    storage.put(journal, bytes::Bytes::from(listed.to_string())).expect("written");
    assert_eq!(stored(&storage), sorted(sample()), "uncommitted files are not part of the table");

    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-01", "run-2"), sample()[..2].to_vec());
    assert!(storage.get(stray).expect("readable").is_none(), "the stray upload is gone");
    assert!(storage.get(journal).expect("readable").is_none(), "and its journal");
    assert_eq!(stored(&storage), sorted(sample()));
}

#[test]
fn an_aborted_writer_leaves_the_table_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let storage = Storage::local(dir.path());
    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    let mut writer = sink.open(target("linkedin_ads", "2026-03-01", "2026-03-03", "run-2")).expect("open");
    writer
        .write(&MetricBatch::new(vec![row("2026-03-01", "1", kpipe_core::Metric::Clicks.into(), "1", None)]))
        .expect("write");
    writer.abort().expect("abort");
    assert_eq!(stored(&storage), sorted(sample()));
    assert_eq!(commits(dir.path(), DeltaTableKind::Metrics).len(), 2);
}

#[test]
fn writers_of_different_sources_committing_at_once_all_land() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let storage = Storage::local(dir.path());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let rows =
                    vec![row("2026-03-01", &i.to_string(), kpipe_core::Metric::Clicks.into(), "1", None)];
                write(
                    &sink,
                    target(&format!("source_{i}"), "2026-03-01", "2026-03-01", &format!("run-{i}")),
                    rows,
                )
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("a writer").rows, 1);
    }
    assert_eq!(stored(&storage).len(), 8);
    let log = commits(dir.path(), DeltaTableKind::Metrics);
    let writers: std::collections::BTreeSet<&str> =
        log.iter().filter(|c| c.0 == "WRITE").map(|c| c.1.as_str()).collect();
    assert_eq!(writers.len(), 8, "{log:?}");
    assert_eq!(log.iter().filter(|c| c.0 == "WRITE").count(), 8);
}

#[test]
fn vacuum_deletes_replaced_files_past_the_retention_and_nothing_current() {
    use kpipe_sink_parquet::delta::vacuum;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = delta_sink(dir.path());
    let storage = Storage::local(dir.path());
    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-1"), sample());
    write(&sink, target("linkedin_ads", "2026-03-01", "2026-03-03", "run-2"), sample());
    let data_files = || {
        storage
            .list("delta/metrics")
            .expect("listable")
            .into_iter()
            .filter(|e| e.key.ends_with(".parquet"))
            .count()
    };
    assert_eq!(data_files(), 6, "the replaced files stay for time travel");

    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let kept = vacuum(&storage, DeltaTableKind::Metrics, week, false).expect("vacuum");
    assert_eq!(kept.expired_files, 0, "replaced within the retention: kept");
    let dry = vacuum(&storage, DeltaTableKind::Metrics, std::time::Duration::ZERO, true).expect("vacuum");
    assert_eq!((dry.expired_files, data_files()), (3, 6), "a dry run counts and deletes nothing");
    let done = vacuum(&storage, DeltaTableKind::Metrics, std::time::Duration::ZERO, false).expect("vacuum");
    assert_eq!(done.expired_files, 3);
    assert_eq!(data_files(), 3);
    assert_eq!(stored(&storage), sorted(sample()), "the newest version is whole");
    assert_eq!(vacuum(&storage, DeltaTableKind::Kpis, week, false).expect("no table"), Default::default());
}
