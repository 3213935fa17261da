//! Rows per second written to Parquet and the process's peak memory, for `--rows N` synthetic
//! metric rows over a window of `--days D` days (28 by default). Run through `cargo xtask bench sink`.
//!
//! The rows are made batch by batch between the sink's calls, and only the sink's calls are
//! timed: column building, encoding, zstd, and the atomic commit. Peak memory is the whole
//! process's, one batch of input included.

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use kpipe_core::{
    Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricBatch, MetricRow, Sink, SinkTarget,
};
use kpipe_sink_parquet::{ParquetSink, ParquetSinkOptions};

/// Rows per batch, as the pipeline's emitter sends them.
const BATCH_ROWS: u64 = 8192;

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

/// CPU time this thread has run, from `/proc/thread-self/schedstat`: unlike wall time it does
/// not count the time other processes on the machine hold the cores.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The synthetic data: 10 accounts, campaigns enough for every campaign to have ten metrics on
/// every day of the window (each campaign belongs to one account; `spend` is money in EUR with
/// 5 decimals), in one of two orders.
struct Generator {
    start: NaiveDate,
    days: u64,
    accounts: Vec<Label>,
    campaigns: Vec<(Label, Label)>,
    order: Order,
    seed: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// As the ad APIs return rows: per account and campaign, each day's metrics together.
    Api,
    /// Every row a random campaign and day: the worst case for every cache.
    Random,
}

impl Generator {
    fn new(start: NaiveDate, days: u64, rows: u64, order: Order) -> Generator {
        let n = (rows / (days * METRICS.len() as u64)).max(1);
        Generator {
            start,
            days,
            accounts: (0..10).map(|i| Label::new(&format!("50800{i:04}"))).collect(),
            campaigns: (0..n)
                .map(|i| {
                    (Label::new(&format!("{}", 180_000_000 + i)), Label::new(&format!("Spring campaign {i}")))
                })
                .collect(),
            order,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Rows `first..first + n` of the data set.
    fn batch(&mut self, first: u64, n: u64) -> MetricBatch {
        let eur = Currency::parse("EUR");
        let rows = (first..first + n)
            .map(|k| {
                let r = self.next_random();
                let metric = METRICS[(k % METRICS.len() as u64) as usize];
                let entity_day = k / METRICS.len() as u64;
                let (campaign, day) = match self.order {
                    Order::Api => {
                        (entity_day / self.days % self.campaigns.len() as u64, entity_day % self.days)
                    }
                    Order::Random => (r % self.campaigns.len() as u64, (r >> 32) % self.days),
                };
                let (id, name) = &self.campaigns[campaign as usize];
                let money = metric == Metric::Spend;
                MetricRow {
                    platform: "linkedin".into(),
                    account_id: self.accounts[(campaign % 10) as usize].clone(),
                    level: "campaign".into(),
                    entity_id: id.clone(),
                    entity_name: Some(name.clone()),
                    date: self.start.checked_add_days(Days::new(day)).unwrap_or(self.start),
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
    }
}

fn main() {
    let mut rows_wanted: u64 = 1_000_000;
    let mut days: u64 = 28;
    let mut options = ParquetSinkOptions::default();
    let mut order = Order::Api;
    let mut out_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<usize>().ok());
        match a.as_str() {
            "--random-order" => order = Order::Random,
            "--out" => out_dir = args.next().map(std::path::PathBuf::from),
            "--rows" => rows_wanted = value().map_or(rows_wanted, |v| v as u64),
            "--days" => days = value().map_or(days, |v| (v as u64).max(1)),
            "--zstd-level" => options.zstd_level = value().map_or(options.zstd_level, |v| v as i32),
            "--row-group-rows" => options.max_row_group_rows = value().unwrap_or(options.max_row_group_rows),
            "--max-buffered-mib" => {
                options.max_buffered_bytes = value().map_or(options.max_buffered_bytes, |v| v << 20)
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: sink_bench [--rows N] [--days D] [--random-order] [--out DIR] [--zstd-level L] [--row-group-rows N] \
                     [--max-buffered-mib M]"
                );
                std::process::exit(2);
            }
        }
    }
    let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    let mut generator = Generator::new(start, days, rows_wanted, order);
    // The campaigns' labels, before the sink runs: part of the peak, not the sink's.
    let input_rss = peak_rss_mib();
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let sink = ParquetSink::new(out_dir.as_deref().unwrap_or(temp.path())).with_options(options);
    let target = SinkTarget {
        source: "bench".into(),
        window: DateWindow::lookback(
            start.checked_add_days(Days::new(days - 1)).unwrap_or(start),
            days as u32,
        ),
        run_id: "bench".into(),
        pulled_at: Utc::now(),
    };
    // Only the sink's calls are timed: the rows are made between them.
    let mut in_sink = Duration::ZERO;
    let mut cpu_in_sink = Duration::ZERO;
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut writer = sink.open(target).unwrap_or_else(|e| panic!("open: {e}"));
    in_sink += t0.elapsed();
    cpu_in_sink += thread_cpu() - c0;
    let mut written = 0u64;
    while written < rows_wanted {
        let n = BATCH_ROWS.min(rows_wanted - written);
        let batch = generator.batch(written, n);
        let (t, c) = (Instant::now(), thread_cpu());
        writer.write(&batch).unwrap_or_else(|e| panic!("write: {e}"));
        in_sink += t.elapsed();
        cpu_in_sink += thread_cpu() - c;
        written += n;
    }
    let (t, c) = (Instant::now(), thread_cpu());
    let stats = writer.commit().unwrap_or_else(|e| panic!("commit: {e}"));
    in_sink += t.elapsed();
    cpu_in_sink += thread_cpu() - c;
    let secs = in_sink.as_secs_f64();
    let bytes: u64 = stats.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    println!(
        "sink order={} rows={} seconds={:.3} rows_per_sec={:.0} cpu_seconds={:.3} rows_per_cpu_sec={:.0} peak_rss_mib={:.1} input_rss_mib={:.1} files={} bytes_per_row={:.2}",
        if order == Order::Api { "api" } else { "random" },
        stats.rows,
        secs,
        stats.rows as f64 / secs,
        cpu_in_sink.as_secs_f64(),
        stats.rows as f64 / cpu_in_sink.as_secs_f64(),
        peak_rss_mib(),
        input_rss,
        stats.files.len(),
        bytes as f64 / stats.rows as f64
    );
}
