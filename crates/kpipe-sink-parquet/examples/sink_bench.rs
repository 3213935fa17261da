//! Rows per second written to Parquet and the process's peak memory, for `--rows N` synthetic
//! metric rows over a window of `--days D` days (28 by default). Run through `cargo xtask bench sink`.
//!
//! The rows are generated once (a few batches, reused with other values) so that the time
//! measured is the sink's: column building, encoding, zstd, and the atomic commit.

use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use kpipe_core::{
    Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricBatch, MetricRow, Sink, SinkTarget,
};
use kpipe_sink_parquet::{ParquetSink, ParquetSinkOptions};

const METRICS: [Metric; 10] = [
    Metric::Impressions,
    Metric::Clicks,
    Metric::LinkClicks,
    Metric::Spend,
    Metric::Conversions,
    Metric::Leads,
    Metric::Likes,
    Metric::Comments,
    Metric::Shares,
    Metric::Reach,
];

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn batches(start: NaiveDate, days: u64, n_batches: usize, batch_rows: usize) -> Vec<MetricBatch> {
    let accounts: Vec<Label> = (0..10).map(|i| Label::new(&format!("50800{i:04}"))).collect();
    let campaigns: Vec<(Label, Label)> = (0..5000)
        .map(|i| (Label::new(&format!("{}", 180_000_000 + i)), Label::new(&format!("Spring campaign {i}"))))
        .collect();
    let eur = Currency::parse("EUR");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n_batches)
        .map(|_| {
            let rows = (0..batch_rows)
                .map(|i| {
                    let r = next();
                    let metric = METRICS[i % METRICS.len()];
                    let (id, name) = &campaigns[(r % 5000) as usize];
                    let money = metric == Metric::Spend;
                    MetricRow {
                        platform: "linkedin".into(),
                        account_id: accounts[(r >> 20) as usize % 10].clone(),
                        level: "campaign".into(),
                        entity_id: id.clone(),
                        entity_name: Some(name.clone()),
                        date: start.checked_add_days(Days::new((r >> 32) % days)).unwrap_or(start),
                        dimensions: Dimensions::default(),
                        metric: metric.into(),
                        value: if money {
                            Decimal::from_units(i128::from((r >> 8) % 100_000_000) * 10_000_000_000_000)
                                .unwrap_or_default()
                        } else {
                            Decimal::from_i64(((r >> 8) % 100_000) as i64)
                        },
                        currency: if money { eur } else { None },
                    }
                })
                .collect();
            MetricBatch::new(rows)
        })
        .collect()
}

fn main() {
    let mut rows_wanted: u64 = 1_000_000;
    let mut days: u64 = 28;
    let mut options = ParquetSinkOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<usize>().ok());
        match a.as_str() {
            "--rows" => rows_wanted = value().map_or(rows_wanted, |v| v as u64),
            "--days" => days = value().map_or(days, |v| (v as u64).max(1)),
            "--zstd-level" => options.zstd_level = value().map_or(options.zstd_level, |v| v as i32),
            "--chunk-rows" => options.chunk_rows = value().unwrap_or(options.chunk_rows),
            "--row-group-rows" => options.max_row_group_rows = value().unwrap_or(options.max_row_group_rows),
            "--max-buffered-mib" => {
                options.max_buffered_bytes = value().map_or(options.max_buffered_bytes, |v| v << 20)
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: sink_bench [--rows N] [--days D] [--zstd-level L] [--chunk-rows N] [--row-group-rows N] \
                     [--max-buffered-mib M]"
                );
                std::process::exit(2);
            }
        }
    }
    let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    let input = batches(start, days, 8, 8192);
    let rss_input = peak_rss_mib();
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let sink = ParquetSink::new(out.path()).with_options(options);
    let target = SinkTarget {
        source: "bench".into(),
        window: DateWindow::lookback(
            start.checked_add_days(Days::new(days - 1)).unwrap_or(start),
            days as u32,
        ),
        run_id: "bench".into(),
        pulled_at: Utc::now(),
    };
    let t0 = Instant::now();
    let mut writer = sink.open(target).unwrap_or_else(|e| panic!("open: {e}"));
    let mut written = 0u64;
    'outer: loop {
        for b in &input {
            writer.write(b).unwrap_or_else(|e| panic!("write: {e}"));
            written += b.len() as u64;
            if written >= rows_wanted {
                break 'outer;
            }
        }
    }
    let stats = writer.commit().unwrap_or_else(|e| panic!("commit: {e}"));
    let secs = t0.elapsed().as_secs_f64();
    let bytes: u64 = stats.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    println!(
        "sink rows={} seconds={:.3} rows_per_sec={:.0} peak_rss_mib={:.1} input_rss_mib={:.1} files={} bytes_per_row={:.2}",
        stats.rows,
        secs,
        stats.rows as f64 / secs,
        peak_rss_mib(),
        rss_input,
        stats.files.len(),
        bytes as f64 / stats.rows as f64
    );
}
