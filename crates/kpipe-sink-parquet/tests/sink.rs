//! The sink's contract: every value round-trips, a re-run replaces its window, nothing partial is
//! ever visible.

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::{
    Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricBatch, MetricName, MetricRow, Sink,
    SinkTarget, Unit,
};
use kpipe_sink_parquet::layout::{local_path, metric_file};
use kpipe_sink_parquet::read::{parquet_files, read_dir};
use kpipe_sink_parquet::{ParquetSink, ParquetSinkOptions};

fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn target(source: &str, from: &str, to: &str, run: &str) -> SinkTarget {
    SinkTarget {
        source: source.into(),
        window: DateWindow::new(day(from), day(to)).expect("window"),
        run_id: run.into(),
        pulled_at: DateTime::<Utc>::from_timestamp_micros(1_764_000_000_123_456).expect("ts"),
    }
}

fn row(date: &str, entity: &str, metric: MetricName, value: &str, currency: Option<&str>) -> MetricRow {
    MetricRow {
        platform: "linkedin".into(),
        account_id: "508000000".into(),
        level: "campaign".into(),
        entity_id: Label::new(entity),
        entity_name: Some(Label::new(&format!("Campaign {entity}"))),
        date: day(date),
        dimensions: Dimensions {
            country: Some("DE".into()),
            device: Some("mobile".into()),
            ..Default::default()
        },
        metric,
        value: value.parse::<Decimal>().expect("decimal"),
        currency: currency.and_then(Currency::parse),
    }
}

fn sample() -> Vec<MetricRow> {
    vec![
        row("2026-03-01", "1", Metric::Spend.into(), "24.457317520310493", Some("EUR")),
        row("2026-03-01", "1", Metric::Spend.into(), "-2E-18", Some("EUR")),
        row("2026-03-02", "2", Metric::Impressions.into(), "1500", None),
        row(
            "2026-03-03",
            "2",
            MetricName::extra("linkedin", "card_clicks", Unit::Count).expect("extra"),
            "7",
            None,
        ),
        MetricRow {
            entity_name: None,
            dimensions: Dimensions::default(),
            ..row("2026-03-03", "3", Metric::Reach.into(), "99", None)
        },
    ]
}

fn write(sink: &ParquetSink, t: SinkTarget, rows: Vec<MetricRow>) -> kpipe_core::CommitStats {
    let mut w = sink.open(t).expect("open");
    w.write(&MetricBatch::new(rows)).expect("write");
    w.commit().expect("commit")
}

fn sorted(mut rows: Vec<MetricRow>) -> Vec<String> {
    let mut out: Vec<String> = rows.drain(..).map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

#[test]
fn every_value_round_trips() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    let stats = write(&sink, target("li", "2026-03-01", "2026-03-03", "run-1"), sample());
    assert_eq!((stats.rows, stats.partitions_written, stats.partitions_removed), (5, 3, 0));

    let stored = read_dir(dir.path()).expect("read");
    assert_eq!(sorted(stored.iter().map(|s| s.row.clone()).collect()), sorted(sample()));
    for s in &stored {
        assert_eq!(s.source, "li");
        assert_eq!(s.run_id, "run-1");
        assert_eq!(s.pulled_at.timestamp_micros(), 1_764_000_000_123_456);
    }
    let spend: Vec<String> =
        stored.iter().filter(|s| s.row.metric.as_str() == "spend").map(|s| s.row.value.to_string()).collect();
    assert!(spend.contains(&"24.457317520310493".to_owned()));
    assert!(spend.contains(&"-0.000000000000000002".to_owned()));

    let files = parquet_files(&dir.path().join("metrics")).expect("list");
    let expected: Vec<_> = ["2026-03-01", "2026-03-02", "2026-03-03"]
        .iter()
        .map(|d| local_path(dir.path(), &metric_file("li", d.parse().expect("a date"))))
        .collect();
    assert_eq!(files, expected);
}

#[test]
fn files_are_zstd_with_statistics_and_every_column() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "r"), sample());
    let file = dir.path().join("metrics/li.2026-03-02.parquet");
    let reader = SerializedFileReader::new(std::fs::File::open(file).expect("open")).expect("parquet");
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().schema_descr().num_columns(), 21);
    let rg = meta.row_group(0);
    for col in rg.columns() {
        // Columns with many distinct values are zstd-compressed; near-constant ones are not
        // worth a compressor per open day.
        let name = col.column_path().string();
        let compressed =
            ["account_id", "entity_id", "entity_name", "metric", "value"].contains(&name.as_str());
        let expected = if compressed {
            parquet::basic::Compression::ZSTD(Default::default())
        } else {
            parquet::basic::Compression::UNCOMPRESSED
        };
        assert_eq!(col.compression(), expected, "{name}");
        assert!(col.statistics().is_some(), "{} has no statistics", col.column_path());
    }
    let kv = meta.file_metadata().key_value_metadata().expect("kv");
    assert!(kv.iter().any(|k| k.key == "kpipe.schema_version"));
}

/// Every column chunk lists its pages per type and encoding (`encoding_stats`): without them,
/// parquet-mr (Spark) cannot tell that no data page fell back from the dictionary, and skips
/// dictionary filtering of row groups.
#[test]
fn column_chunks_carry_page_encoding_stats() {
    use parquet::basic::{Encoding, PageType};
    use parquet::file::metadata::{PageEncodingStats, ParquetMetaDataOptions, ParquetMetaDataReader};
    let dir = tempfile::tempdir().expect("tmp");
    // 20,000 rows of one day: three data pages per column (8,192 rows a page).
    let rows: Vec<MetricRow> = (0..20_000)
        .map(|i| row("2026-03-02", &format!("{}", i % 7), Metric::Clicks.into(), &i.to_string(), None))
        .collect();
    write(&ParquetSink::new(dir.path()), target("li", "2026-03-02", "2026-03-02", "r"), rows);
    let file = std::fs::File::open(dir.path().join("metrics/li.2026-03-02.parquet")).expect("open");
    let meta = ParquetMetaDataReader::new()
        .with_metadata_options(Some(ParquetMetaDataOptions::new().with_encoding_stats_as_mask(false)))
        .parse_and_finish(&file)
        .expect("metadata");
    let stats = |page_type, encoding, count| PageEncodingStats { page_type, encoding, count };
    for col in meta.row_group(0).columns() {
        let name = col.column_path().string();
        let got = col.page_encoding_stats().unwrap_or_else(|| panic!("{name}: no encoding_stats"));
        let all_null = col.statistics().and_then(|s| s.null_count_opt()) == Some(20_000);
        let expected = if name == "value" || all_null {
            // Amounts are PLAIN from the start, and a column of nulls has no dictionary.
            vec![stats(PageType::DATA_PAGE_V2, Encoding::PLAIN, 3)]
        } else {
            vec![
                stats(PageType::DICTIONARY_PAGE, Encoding::PLAIN, 1),
                stats(PageType::DATA_PAGE_V2, Encoding::RLE_DICTIONARY, 3),
            ]
        };
        assert_eq!(got, &expected, "{name}");
        assert_eq!(col.dictionary_page_offset().is_some(), name != "value" && !all_null, "{name}");
    }
}

#[test]
fn rerunning_a_window_replaces_it_without_duplicates() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "run-1"), sample());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "run-2"), sample());
    let stored = read_dir(dir.path()).expect("read");
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|s| s.run_id == "run-2"));

    // A re-pull of 03-02..03-03 that finds nothing on 03-03 removes that day and keeps 03-01.
    let stats = write(
        &sink,
        target("li", "2026-03-02", "2026-03-03", "run-3"),
        vec![row("2026-03-02", "2", Metric::Impressions.into(), "1600", None)],
    );
    assert_eq!((stats.partitions_written, stats.partitions_removed), (1, 1));
    let mut got: Vec<(String, String, String)> = read_dir(dir.path())
        .expect("read")
        .into_iter()
        .map(|s| (s.row.date.to_string(), s.row.metric.to_string(), s.row.value.to_string()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("2026-03-01".into(), "spend".into(), "-0.000000000000000002".into()),
            ("2026-03-01".into(), "spend".into(), "24.457317520310493".into()),
            ("2026-03-02".into(), "impressions".into(), "1600".into()),
        ]
    );
}

#[test]
fn other_sources_are_left_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "r1"), sample());
    write(&sink, target("fb", "2026-03-01", "2026-03-03", "r2"), vec![]);
    assert_eq!(read_dir(dir.path()).expect("read").len(), 5);
}

#[test]
fn nothing_is_visible_before_commit_and_abort_keeps_the_old_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "r1"), sample());
    let before = read_dir(dir.path()).expect("read");

    let mut w = sink.open(target("li", "2026-03-01", "2026-03-03", "r2")).expect("open");
    w.write(&MetricBatch::new(vec![row("2026-03-02", "9", Metric::Clicks.into(), "1", None)]))
        .expect("write");
    assert_eq!(read_dir(dir.path()).expect("read"), before, "uncommitted rows are visible");
    w.abort().expect("abort");
    assert_eq!(read_dir(dir.path()).expect("read"), before);

    // A writer dropped mid-way (a crash of the caller) leaves no trace either.
    let mut w = sink.open(target("li", "2026-03-01", "2026-03-03", "r3")).expect("open");
    w.write(&MetricBatch::new(sample())).expect("write");
    drop(w);
    assert_eq!(read_dir(dir.path()).expect("read"), before);
    assert!(!dir.path().join(".kpipe/staging/metrics/li/r3").exists());
}

#[test]
fn files_staged_by_a_killed_run_are_cleaned_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let stale = dir.path().join(".kpipe/staging/metrics/li/old-run");
    std::fs::create_dir_all(&stale).expect("mkdir");
    std::fs::write(stale.join("li.2026-03-01.parquet.partial"), b"PAR1 half a file").expect("write");
    let other = dir.path().join(".kpipe/staging/metrics/fb/old-run");
    std::fs::create_dir_all(&other).expect("mkdir");
    let sink = ParquetSink::new(dir.path());
    write(&sink, target("li", "2026-03-01", "2026-03-03", "r1"), sample());
    assert!(!stale.exists());
    assert!(other.exists(), "another source's staging is its own to clean up");
    assert!(!dir.path().join(".kpipe/staging/metrics/li").exists());
    assert_eq!(read_dir(dir.path()).expect("read").len(), 5);
}

#[test]
fn rows_outside_the_window_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path());
    let mut w = sink.open(target("li", "2026-03-02", "2026-03-02", "r1")).expect("open");
    let err = w.write(&MetricBatch::new(sample())).expect_err("outside");
    assert!(err.to_string().contains("outside the window"), "{err}");
}

#[test]
fn many_rows_across_many_days_with_small_buffers() {
    // Tiny limits force every memory-bounding path: many row groups, early cuts of the largest.
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path()).with_options(ParquetSinkOptions {
        max_buffered_bytes: 4096,
        max_row_group_rows: 100,
        ..Default::default()
    });
    let mut w = sink.open(target("li", "2026-03-01", "2026-03-28", "r1")).expect("open");
    let mut expected = 0u64;
    for b in 0..20 {
        let rows: Vec<MetricRow> = (0..300)
            .map(|i| {
                let d = format!("2026-03-{:02}", 1 + (i * 7 + b) % 28);
                row(&d, &format!("{b}-{i}"), Metric::Clicks.into(), &i.to_string(), None)
            })
            .collect();
        expected += rows.len() as u64;
        w.write(&MetricBatch::new(rows)).expect("write");
    }
    let stats = w.commit().expect("commit");
    assert_eq!(stats.rows, expected);
    let stored = read_dir(dir.path()).expect("read");
    assert_eq!(stored.len() as u64, expected);
    let total: i128 = stored.iter().map(|s| s.row.value.units()).sum();
    assert_eq!(total, 20 * (0..300).sum::<i128>() * 1_000_000_000_000_000_000);
}

#[test]
fn the_memory_bound_holds_for_all_sources_together() {
    // A run writes its sources at once through one sink: the bound is for all of them, so the
    // sink's memory does not grow with the number of sources.
    let dir = tempfile::tempdir().expect("tmp");
    let max = 16 * 1024;
    let sink = ParquetSink::new(dir.path())
        .with_options(ParquetSinkOptions { max_buffered_bytes: max, ..Default::default() });
    let sources = ["linkedin_ads", "facebook_ads", "google_analytics"];
    let mut writers: Vec<_> = sources
        .iter()
        .map(|s| sink.open(target(s, "2026-03-01", "2026-03-28", "r1")).expect("open"))
        .collect();
    let mut expected = 0u64;
    let mut highest = 0;
    for b in 0..30 {
        for (w, writer) in writers.iter_mut().enumerate() {
            let rows: Vec<MetricRow> = (0..400)
                .map(|i| {
                    let d = format!("2026-03-{:02}", 1 + (i + b) % 28);
                    row(&d, &format!("{w}-{b}-{i}"), Metric::Clicks.into(), &(i * 7 + b).to_string(), None)
                })
                .collect();
            expected += rows.len() as u64;
            writer.write(&MetricBatch::new(rows)).expect("write");
            assert!(sink.buffered_bytes() <= max, "{} bytes buffered, bound {max}", sink.buffered_bytes());
            highest = highest.max(sink.buffered_bytes());
        }
    }
    // Each writer alone stays far below the bound: only their sum reaches it.
    assert!(highest > max / 4, "{highest}");
    let mut written = 0;
    for writer in writers {
        written += writer.commit().expect("commit").rows;
    }
    assert_eq!(written, expected);
    assert_eq!(sink.buffered_bytes(), 0, "committed writers hold nothing");
    assert_eq!(read_dir(dir.path()).expect("read").len() as u64, expected);
}

#[test]
fn large_varied_days_round_trip_exactly() {
    // Crosses every encoding path: pages of 8,192 rows, several row groups, dictionaries that
    // outgrow their limit and fall back to plain pages, labels shared between rows and labels
    // made per row, values that change on every row or repeat, nulls mixed with values.
    let dir = tempfile::tempdir().expect("tmp");
    let sink = ParquetSink::new(dir.path())
        .with_options(ParquetSinkOptions { max_row_group_rows: 25_000, ..Default::default() });
    let shared_account = Label::new("508000000");
    let rows: Vec<MetricRow> = (0..60_000u64)
        .map(|i| {
            let entity = i / 3;
            let metric = if i % 3 == 0 { Metric::Spend } else { Metric::Impressions };
            let value =
                if i % 7 == 0 { "5".to_owned() } else { format!("{}.{:05}", i * 31 % 100_003, i % 99_991) };
            MetricRow {
                platform: "linkedin".into(),
                account_id: if i % 5 == 0 {
                    Label::new(&format!("50800{}", i % 4))
                } else {
                    shared_account.clone()
                },
                level: "campaign".into(),
                entity_id: Label::new(&entity.to_string()),
                entity_name: (i % 11 != 0).then(|| {
                    Label::new(&format!("A campaign with a long descriptive name, number {entity:08}"))
                }),
                date: day(if i % 2 == 0 { "2026-03-01" } else { "2026-03-02" }),
                dimensions: Dimensions {
                    country: (i % 4 == 0).then(|| Label::new(["DE", "FR", "US"][(i % 3) as usize])),
                    ..Default::default()
                },
                metric: metric.into(),
                value: value.parse::<Decimal>().expect("decimal"),
                currency: (metric == Metric::Spend).then(|| Currency::parse("EUR")).flatten(),
            }
        })
        .collect();
    let mut w = sink.open(target("li", "2026-03-01", "2026-03-02", "r1")).expect("open");
    for chunk in rows.chunks(8192) {
        w.write(&MetricBatch::new(chunk.to_vec())).expect("write");
    }
    let stats = w.commit().expect("commit");
    assert_eq!(stats.rows, 60_000);
    let stored = read_dir(dir.path()).expect("read");
    assert_eq!(sorted(stored.into_iter().map(|s| s.row).collect()), sorted(rows));
}

#[path = "sink/delta.rs"]
mod delta;
