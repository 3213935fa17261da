//! KPIs over stored metrics: time and peak memory of the KPI stage over `--rows N` metric rows
//! (10M by default) written by the Parquet sink over `--days D` days. Run through
//! `cargo xtask bench kpi`.
//!
//! The metrics are LinkedIn- and Facebook-like campaigns (EUR and USD accounts), ten metrics per
//! campaign and day (`reach` among them), every campaign active every day: N / (10 × D)
//! campaigns. They are written first (`--generate-only` stops there; `--reuse` skips it when
//! `--dir` already holds them); the peak memory reported is the KPI stage's own: the process's
//! high-water mark is reset (`/proc/self/clear_refs`) once the data is written.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use kpipe_core::{
    Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricBatch, MetricRow, Sink, SinkTarget,
};
use kpipe_kpi::{Catalog, Grain, Scope, Settings};
use kpipe_sink_parquet::ParquetSink;

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

struct Args {
    rows: u64,
    days: u64,
    dir: Option<PathBuf>,
    generate_only: bool,
    reuse: bool,
    grains: Vec<Grain>,
    scopes: Vec<Scope>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        rows: 10_000_000,
        days: 28,
        dir: None,
        generate_only: false,
        reuse: false,
        grains: Grain::ALL.to_vec(),
        scopes: Scope::ALL.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--generate-only" => a.generate_only = true,
            "--reuse" => a.reuse = true,
            "--grains" => {
                a.grains = value()?
                    .split(',')
                    .map(|g| Grain::from_name(g).ok_or_else(|| format!("unknown grain {g}")))
                    .collect::<Result<_, _>>()?
            }
            "--scopes" => {
                a.scopes = value()?
                    .split(',')
                    .map(|s| Scope::from_name(s).ok_or_else(|| format!("unknown scope {s}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes the metrics: per day, every campaign's ten metrics, one source per platform.
fn generate(dir: &std::path::Path, start: NaiveDate, args: &Args) -> Result<u64, String> {
    let campaigns = (args.rows / (METRICS.len() as u64 * args.days)).max(1);
    let window = DateWindow::new(start, start + Days::new(args.days - 1)).map_err(|e| e.to_string())?;
    let sink = ParquetSink::new(dir);
    let mut written = 0u64;
    for (source, platform, currency) in [("li", "linkedin", "EUR"), ("fb", "facebook", "USD")] {
        let target =
            SinkTarget { source: source.into(), window, run_id: "bench".into(), pulled_at: Utc::now() };
        let mut writer = sink.open(target).map_err(|e| e.to_string())?;
        let accounts: Vec<Label> = (0..5).map(|i| Label::new(&format!("{source}_account_{i}"))).collect();
        let ids: Vec<Label> = (0..campaigns / 2).map(|i| Label::new(&format!("{source}_{i}"))).collect();
        let currency = Currency::parse(currency);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ source.len() as u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for d in 0..args.days {
            let date = start + Days::new(d);
            let mut rows = Vec::with_capacity(64 * 1024);
            for (i, id) in ids.iter().enumerate() {
                let impressions = (next() % 20_000) as i64;
                for metric in METRICS {
                    let r = next();
                    let value = match metric {
                        Metric::Impressions => Decimal::from_i64(impressions),
                        Metric::Reach => Decimal::from_i64(impressions * 7 / 10),
                        Metric::Spend => {
                            Decimal::from_units(i128::from(r % 100_000_000) * 10_000_000_000_000)
                                .unwrap_or_default()
                        }
                        _ => Decimal::from_i64((r % 200) as i64),
                    };
                    rows.push(MetricRow {
                        platform: Label::Static(platform),
                        account_id: accounts[i % accounts.len()].clone(),
                        level: Label::Static("campaign"),
                        entity_id: id.clone(),
                        entity_name: None,
                        date,
                        dimensions: Dimensions::default(),
                        metric: metric.into(),
                        value,
                        currency: if metric == Metric::Spend { currency } else { None },
                    });
                }
                if rows.len() >= 60_000 {
                    written += rows.len() as u64;
                    writer.write(&MetricBatch::new(std::mem::take(&mut rows))).map_err(|e| e.to_string())?;
                }
            }
            written += rows.len() as u64;
            writer.write(&MetricBatch::new(rows)).map_err(|e| e.to_string())?;
        }
        writer.commit().map_err(|e| e.to_string())?;
    }
    Ok(written)
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("kpi_bench: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let args = args()?;
    if args.days == 0 || args.rows == 0 {
        return Err("--rows and --days must be at least 1".into());
    }
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).ok_or("date")?;
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| e.to_string())?),
    };
    let dir =
        args.dir.clone().or_else(|| temp.as_ref().map(|t| t.path().to_path_buf())).ok_or("no directory")?;
    let have = dir.join("metrics").exists();
    if !(args.reuse && have) {
        let clock = Instant::now();
        let rows = generate(&dir, start, &args)?;
        eprintln!("wrote {rows} metric rows in {:.1}s", clock.elapsed().as_secs_f64());
    }
    if args.generate_only {
        return Ok(());
    }
    // Measure the stage alone: reset the high-water mark left by writing the data.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_mib();
    let settings =
        Settings { grains: args.grains.clone(), scopes: args.scopes.clone(), ..Settings::default() };
    let catalog = Catalog::builtin();
    let window = DateWindow::new(start, start + Days::new(args.days - 1)).map_err(|e| e.to_string())?;
    let clock = Instant::now();
    let report = kpipe_kpi::run(&dir, &catalog, &settings, window, "bench").map_err(|e| e.to_string())?;
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "kpi: {} metric rows ({} days) -> {} KPI rows in {} files: {:.1}s, {:.0} metric rows/s, peak RSS {:.1} MiB (at start {:.1} MiB), grains {}, scopes {}",
        report.stats.rows_read,
        args.days,
        report.commit.rows,
        report.commit.periods_written,
        seconds,
        report.stats.rows_read as f64 / seconds,
        peak_rss_mib(),
        before,
        args.grains.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(","),
        args.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
    );
    Ok(())
}
