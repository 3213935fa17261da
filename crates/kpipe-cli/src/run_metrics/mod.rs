//! A run's metrics for monitoring, in Prometheus' text exposition format: written to a file for
//! node-exporter's textfile collector (`kpipe run --metrics-file`, `kpipe schedule
//! --metrics-file`) and served on `/metrics` by `kpipe schedule --metrics-addr`.
//!
//! Counters (`*_total`) add up across runs: a metrics file continues from the counters of the
//! file it replaces, `kpipe schedule` from its own since it started (or from its metrics file's).
//! Gauges describe the last run, except `kpipe_run_last_success_timestamp_seconds`, read from the
//! output's ledger (so it survives restarts), and `kpipe_refresh_token_expiry_timestamp_seconds`,
//! from what `kpipe auth` recorded in the secrets files. The names are in [`families`].

mod endpoint;
mod exposition;
pub mod families;
mod snapshot;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use kpipe_core::Shard;
use kpipe_sink_parquet::Storage;

pub use endpoint::{CONTENT_TYPE, InProgress, ScheduleMetrics, serve};
pub use exposition::{Family, Labels, MetricType, Series, escape_label_value, read_counters, render};
pub use snapshot::{Observed, build_info, quota_levels, run_counters, run_gauges, unix_seconds};

use crate::config::{Config, RefreshTokenRecords};
use crate::state::StateStore;
use crate::summary::RunSummary;
use crate::token_health::{self, TokenInputs};

/// What a run's metrics need besides its summary, taken from the configuration before the run
/// consumes it: where the ledger is, and when the refresh tokens expire.
#[derive(Debug, Clone)]
pub struct RunContext {
    storage: Option<Storage>,
    shard: Shard,
    /// The enabled sources: the ones whose last success matters.
    sources: Vec<String>,
    token_expiry: BTreeMap<String, DateTime<Utc>>,
}

impl RunContext {
    /// The context of a run of `cfg`, with the refresh-token records read with it.
    pub fn new(cfg: &Config, records: &RefreshTokenRecords) -> RunContext {
        let storage = match cfg.pipeline.open_storage() {
            Ok(storage) => Some(storage),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot open the output to read when sources last succeeded");
                None
            }
        };
        let config = cfg.path.display().to_string();
        let now = Utc::now();
        let token_expiry = cfg
            .sources
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| {
                let report = token_health::assess(&TokenInputs {
                    source: &s.name,
                    config: &config,
                    platform: crate::auth::platform(&s.kind),
                    facts: s.source.token_facts(),
                    record: records.get(&s.name),
                    observed_at: now,
                    now,
                    warn_days: None,
                });
                Some((s.name.clone(), report.refresh_token_expires_at?))
            })
            .collect();
        RunContext {
            storage,
            shard: cfg.pipeline.split.shard,
            sources: cfg.sources.iter().filter(|s| s.enabled).map(|s| s.name.clone()).collect(),
            token_expiry,
        }
    }

    /// The context of a run of `cfg`, reading its secrets files' refresh-token records again
    /// (`${NAME}` values from the process environment).
    pub fn of(cfg: &Config) -> RunContext {
        // What this second reading has to say (a secrets file readable by others, ...) the
        // first one said already.
        let reread = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            crate::config::load_with_token_records(&cfg.path, &|name| std::env::var(name).ok())
        });
        let records = match reread {
            Ok((_, records)) => records,
            Err(e) => {
                tracing::warn!(
                    error = %kpipe_core::scrub(&e.to_string()),
                    "metrics: cannot read the refresh-token records; their expiry is left out"
                );
                RefreshTokenRecords::new()
            }
        };
        RunContext::new(cfg, &records)
    }

    /// What is known now about the sources: last successes from the ledger (read again, after
    /// the run) and token expiries.
    pub fn observe(&self) -> Observed {
        Observed { last_success: self.last_success(), token_expiry: self.token_expiry.clone() }
    }

    fn last_success(&self) -> BTreeMap<String, DateTime<Utc>> {
        let Some(storage) = &self.storage else { return BTreeMap::new() };
        let state = match StateStore::open_shard(storage, self.shard) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read the ledger for when sources last succeeded");
                return BTreeMap::new();
            }
        };
        self.sources
            .iter()
            .filter_map(|name| {
                let newest = state.source(name)?.days.iter().map(|(_, _, day)| day.pulled_at).max()?;
                Some((name.clone(), newest))
            })
            .collect()
    }
}

/// Writes `summary`'s metrics to `path` for node-exporter's textfile collector: the counters
/// of the file it replaces plus this run's, and this run's levels. The file is replaced whole
/// (a temporary file in the same directory, renamed), so the collector never reads half of it.
pub fn write_textfile(path: &Path, summary: &RunSummary, context: &RunContext) -> std::io::Result<()> {
    let mut counters = read_counters_file(path);
    counters.add_all(&run_counters(summary));
    let gauges = run_gauges(summary, &context.observe());
    write_atomically(path, &render(families::ALL, &[&build_info(), &counters, &gauges]))
}

/// The counters of the metrics file at `path`; none when there is no such file yet.
pub fn read_counters_file(path: &Path) -> Series {
    match std::fs::read_to_string(path) {
        Ok(text) => read_counters(&text, families::ALL),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "metrics: cannot read the earlier metrics file; its counters start again from 0");
            }
            Series::default()
        }
    }
}

/// Replaces the file at `path` with `text` (creating its directory): written beside it under a
/// name the textfile collector ignores (it reads `*.prom` only), then renamed over it.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "metrics".into());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let temp: PathBuf = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{KpiStageStatus, KpiStageSummary, SourceStatus, SourceSummary, StreamSummary};
    use kpipe_core::RequestTelemetry;

    fn summary() -> RunSummary {
        let mut ads = SourceSummary::new("ads \"main\"", "linkedin");
        ads.status = SourceStatus::Partial;
        ads.rows_written = 40;
        ads.quarantined = 2;
        ads.streams
            .insert("ad_analytics".into(), StreamSummary { rows_written: 40, ..StreamSummary::default() });
        let mut http =
            RequestTelemetry { requests: 9, throttle_waits: 1, throttle_wait_ms: 1500, ..Default::default() };
        http.retries.insert("throttled".into(), 2);
        http.quota_left.insert(
            "508".into(),
            kpipe_core::QuotaLeft {
                daily_requests: Some(90),
                daily_requests_limit: Some(100),
                ..Default::default()
            },
        );
        ads.set_http(Some(http));
        let sheet = SourceSummary::new("sheet", "files");
        RunSummary {
            run_id: "r1".into(),
            started_at: DateTime::parse_from_rfc3339("2026-01-01T03:00:00Z")
                .expect("a time")
                .with_timezone(&Utc),
            duration_ms: 2_500,
            output: "out".into(),
            status: SourceStatus::Partial,
            sources: vec![ads, sheet],
            kpis: Some(KpiStageSummary {
                status: KpiStageStatus::Succeeded,
                window: kpipe_core::DateWindow::day(
                    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a day"),
                ),
                read_window: None,
                metric_rows_read: 40,
                without_period_value: BTreeMap::new(),
                rows_written: 12,
                periods_written: 1,
                periods_removed: 0,
                duration_ms: 100,
                error: None,
            }),
            shard: None,
        }
    }

    #[test]
    fn run_metrics_name_sources_statuses_and_counts() {
        let run = summary();
        let counters = run_counters(&run);
        let ads: &[(&str, &str)] = &[("source", "ads \"main\""), ("kind", "linkedin")];
        assert_eq!(counters.get(&families::ROWS_WRITTEN, ads), Some(40.0));
        assert_eq!(counters.get(&families::REQUESTS, ads), Some(9.0));
        assert_eq!(counters.get(&families::THROTTLE_WAIT_SECONDS, ads), Some(1.5));
        let throttled = [ads, &[("reason", "throttled")]].concat();
        assert_eq!(counters.get(&families::RETRIES, &throttled), Some(2.0));
        assert_eq!(counters.get(&families::RUNS, &[("status", "partial")]), Some(1.0));
        assert_eq!(counters.get(&families::KPI_ROWS_WRITTEN, &[]), Some(12.0));
        // A source without requests has no HTTP series.
        assert_eq!(counters.get(&families::REQUESTS, &[("source", "sheet"), ("kind", "files")]), None);

        let mut observed = Observed::default();
        observed.last_success.insert("sheet".into(), run.started_at);
        let gauges = run_gauges(&run, &observed);
        let partial = [ads, &[("status", "partial")]].concat();
        let failed = [ads, &[("status", "failed")]].concat();
        assert_eq!(gauges.get(&families::SOURCE_STATUS, &partial), Some(1.0));
        assert_eq!(gauges.get(&families::SOURCE_STATUS, &failed), Some(0.0));
        let quota = [ads, &[("account", "508"), ("quota", "daily_requests")]].concat();
        assert_eq!(gauges.get(&families::QUOTA_LEFT, &quota), Some(90.0));
        assert_eq!(gauges.get(&families::QUOTA_LIMIT, &quota), Some(100.0));
        assert_eq!(gauges.get(&families::LAST_SUCCESS, &[("source", "sheet")]), Some(1_767_236_400.0));
        assert_eq!(gauges.get(&families::RUN_DURATION, &[]), Some(2.5));

        let text = render(families::ALL, &[&build_info(), &counters, &gauges]);
        assert!(
            text.contains("kpipe_rows_written_total{source=\"ads \\\"main\\\"\",kind=\"linkedin\"} 40\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE kpipe_run_last_success_timestamp_seconds gauge\n"), "{text}");
    }

    #[test]
    fn a_metrics_file_is_replaced_whole_and_its_counters_go_on() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("kpipe.prom");
        let context =
            RunContext { storage: None, shard: Shard::ALL, sources: vec![], token_expiry: BTreeMap::new() };
        write_textfile(&path, &summary(), &context).expect("written");
        write_textfile(&path, &summary(), &context).expect("written again");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.contains("kpipe_rows_written_total{source=\"ads \\\"main\\\"\",kind=\"linkedin\"} 80\n"),
            "{text}"
        );
        assert!(text.contains("kpipe_runs_total{status=\"partial\"} 2\n"), "{text}");
        assert!(text.contains("kpipe_run_duration_seconds 2.5\n"), "{text}");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["kpipe.prom"], "no temporary file is left");
    }
}
