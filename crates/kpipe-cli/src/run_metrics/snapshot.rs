//! A run summary as metrics: what the run adds to the counters, and the levels it leaves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kpipe_core::QuotaLeft;

use super::exposition::{Labels, Series};
use super::families::*;
use crate::summary::{KpiStageStatus, RunSummary, SourceStatus, SourceSummary};
use crate::telemetry::{kpi_status_name, status_name};

/// Every source status, for the series that are 1 for the current one and 0 for the others.
const SOURCE_STATUSES: [SourceStatus; 4] =
    [SourceStatus::Succeeded, SourceStatus::Partial, SourceStatus::Failed, SourceStatus::Skipped];

/// What is known about the sources besides the run summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// When each source last published data, from the output's ledger.
    pub last_success: BTreeMap<String, DateTime<Utc>>,
    /// When each source's refresh token expires, where that is known.
    pub token_expiry: BTreeMap<String, DateTime<Utc>>,
}

/// Unix time in seconds, to the millisecond.
pub fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn source_labels(source: &SourceSummary) -> Labels {
    vec![("source", source.name.clone()), ("kind", source.kind.clone())]
}

fn with(mut labels: Labels, name: &'static str, value: impl Into<String>) -> Labels {
    labels.push((name, value.into()));
    labels
}

/// What is left of a platform's quotas, by the `quota` label's value: the counts that run
/// down (the limit and the share in use are separate metrics).
pub fn quota_levels(left: &QuotaLeft) -> Vec<(&'static str, u64)> {
    [
        ("daily_requests", left.daily_requests),
        ("window_requests", left.window_requests),
        ("daily_tokens", left.daily_tokens),
        ("hourly_tokens", left.hourly_tokens),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect()
}

/// What `summary` adds to the counters.
pub fn run_counters(summary: &RunSummary) -> Series {
    let mut c = Series::default();
    c.add(&RUNS, vec![("status", status_name(summary.status).to_owned())], 1.0);
    for source in &summary.sources {
        let labels = source_labels(source);
        c.add(&SOURCE_RUNS, with(labels.clone(), "status", status_name(source.status)), 1.0);
        c.add(&ROWS_WRITTEN, labels.clone(), source.rows_written as f64);
        c.add(&PERIOD_ROWS_WRITTEN, labels.clone(), source.period_rows_written as f64);
        c.add(&QUARANTINED, labels.clone(), source.quarantined as f64);
        c.add(&DAYS_PULLED, labels.clone(), source.days_pulled as f64);
        if let Some(http) = &source.http {
            c.add(&REQUESTS, labels.clone(), http.requests as f64);
            for (reason, n) in &http.retries {
                c.add(&RETRIES, with(labels.clone(), "reason", reason.clone()), *n as f64);
            }
            c.add(&THROTTLE_WAITS, labels.clone(), http.throttle_waits as f64);
            c.add(&THROTTLE_WAIT_SECONDS, labels.clone(), seconds(http.throttle_wait_ms));
            c.add(&TOKEN_REFRESHES, labels.clone(), http.token_refreshes as f64);
            c.add(&RECEIVED_BYTES, labels.clone(), http.bytes_received as f64);
        }
        for (name, stream) in &source.streams {
            let labels = with(labels.clone(), "stream", name.clone());
            c.add(&STREAM_ROWS_WRITTEN, labels.clone(), stream.rows_written as f64);
            c.add(&STREAM_QUARANTINED, labels.clone(), stream.quarantined as f64);
            if source.http.is_some() {
                c.add(&STREAM_REQUESTS, labels.clone(), stream.requests as f64);
                for (reason, n) in &stream.retries {
                    c.add(&STREAM_RETRIES, with(labels.clone(), "reason", reason.clone()), *n as f64);
                }
                c.add(&STREAM_THROTTLE_WAITS, labels.clone(), stream.throttle_waits as f64);
                c.add(&STREAM_THROTTLE_WAIT_SECONDS, labels, seconds(stream.throttle_wait_ms));
            }
        }
    }
    if let Some(kpis) = &summary.kpis {
        c.add(&KPI_ROWS_WRITTEN, vec![], kpis.rows_written as f64);
        c.add(&KPI_METRIC_ROWS_READ, vec![], kpis.metric_rows_read as f64);
    }
    c
}

/// The levels `summary` leaves: statuses, durations, times, quotas, ledgers, and what
/// `observed` knows about last successes and token expiries.
pub fn run_gauges(summary: &RunSummary, observed: &Observed) -> Series {
    let mut g = Series::default();
    for status in SOURCE_STATUSES {
        let current = f64::from(u8::from(status == summary.status));
        g.set(&RUN_OVERALL_STATUS, vec![("status", status_name(status).to_owned())], current);
    }
    g.set(&RUN_STARTED, vec![], unix_seconds(summary.started_at));
    let finished = summary.started_at + chrono::Duration::milliseconds(summary.duration_ms as i64);
    g.set(&RUN_FINISHED, vec![], unix_seconds(finished));
    g.set(&RUN_DURATION, vec![], seconds(summary.duration_ms));
    for source in &summary.sources {
        let labels = source_labels(source);
        for status in SOURCE_STATUSES {
            let current = f64::from(u8::from(status == source.status));
            g.set(&SOURCE_STATUS, with(labels.clone(), "status", status_name(status)), current);
        }
        g.set(&SOURCE_DURATION, labels.clone(), seconds(source.duration_ms));
        g.set(&QUOTA_EXHAUSTED, labels.clone(), f64::from(u8::from(source.quota_exhausted)));
        g.set(&LEDGER_DAYS, with(labels.clone(), "status", "final"), source.ledger_final as f64);
        g.set(&LEDGER_DAYS, with(labels.clone(), "status", "provisional"), source.ledger_provisional as f64);
        for (account, left) in &source.quota_left {
            let labels = with(labels.clone(), "account", account.clone());
            for (quota, value) in quota_levels(left) {
                g.set(&QUOTA_LEFT, with(labels.clone(), "quota", quota), value as f64);
            }
            if let Some(limit) = left.daily_requests_limit {
                g.set(&QUOTA_LIMIT, with(labels.clone(), "quota", "daily_requests"), limit as f64);
            }
            if let Some(percent) = left.used_percent {
                g.set(&QUOTA_USED_RATIO, labels, percent / 100.0);
            }
        }
    }
    if let Some(kpis) = &summary.kpis {
        for status in [KpiStageStatus::Succeeded, KpiStageStatus::Failed] {
            let current = f64::from(u8::from(status == kpis.status));
            g.set(&KPI_STATUS, vec![("status", kpi_status_name(status).to_owned())], current);
        }
        g.set(&KPI_DURATION, vec![], seconds(kpis.duration_ms));
    }
    g.add_all(&observed_gauges(observed));
    g
}

/// Last successes and token expiries as gauges.
pub fn observed_gauges(observed: &Observed) -> Series {
    let mut g = Series::default();
    for (source, at) in &observed.last_success {
        g.set(&LAST_SUCCESS, vec![("source", source.clone())], unix_seconds(*at));
    }
    for (source, at) in &observed.token_expiry {
        g.set(&TOKEN_EXPIRY, vec![("source", source.clone())], unix_seconds(*at));
    }
    g
}

/// `kpipe_build_info`.
pub fn build_info() -> Series {
    let mut g = Series::default();
    g.set(&BUILD_INFO, vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
    g
}
