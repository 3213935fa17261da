//! What a run did, for people (a table) and for machines (`--summary-json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::{DateWindow, QuotaLeft, RequestTelemetry};

/// How a source's part of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Everything pulled was written.
    Succeeded,
    /// Written, but some records were quarantined.
    Partial,
    /// Nothing of this run was written for it; its earlier data is untouched.
    Failed,
    /// Not run: disabled, not selected, or its window lies before its `start_date`.
    Skipped,
}

/// One stream's part of a source's run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StreamSummary {
    /// Days pulled and published for the stream by this run.
    pub days_pulled: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Requests sent for the stream, retries included (requests that serve several streams
    /// count for the source only).
    pub requests: u64,
    /// Retries by reason.
    pub retries: BTreeMap<String, u64>,
    /// Requests that waited for the rate limiter.
    pub throttle_waits: u64,
    /// Time spent waiting for the rate limiter, in milliseconds.
    pub throttle_wait_ms: u64,
    /// Days of the ledger holding the stream as final, after the run.
    pub ledger_final: u64,
    /// Days of the ledger holding the stream as provisional, after the run.
    pub ledger_provisional: u64,
    /// The cursor of each account after the run: the last day written.
    pub cursors: BTreeMap<String, NaiveDate>,
}

impl StreamSummary {
    /// Adds a later window's counts.
    fn add(&mut self, later: &StreamSummary) {
        self.days_pulled += later.days_pulled;
        self.rows_written += later.rows_written;
        self.quarantined += later.quarantined;
    }
}

/// One source's part of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceSummary {
    /// The configured name.
    pub name: String,
    /// The connector type.
    #[serde(rename = "type")]
    pub kind: String,
    /// How it ended.
    pub status: SourceStatus,
    /// The days pulled and replaced.
    pub window: Option<DateWindow>,
    /// Rows written.
    pub rows_written: u64,
    /// Rows written per metric.
    pub rows_by_metric: BTreeMap<String, u64>,
    /// Rows of unique metrics over whole weeks and months written (`metrics_period/`).
    pub period_rows_written: u64,
    /// Records quarantined (bad lines, invalid values).
    pub quarantined: u64,
    /// Where the quarantined records are.
    pub quarantine_file: Option<PathBuf>,
    /// Rows dated outside the window, not written.
    pub rows_outside_window: u64,
    /// Input lines (or records) the source read and left out on purpose, by reason: with
    /// `rows_written` and `quarantined`, every line of a files source is accounted for.
    pub lines_skipped: BTreeMap<String, u64>,
    /// Day partitions written.
    pub partitions_written: usize,
    /// Day partitions removed because the pull found nothing for them.
    pub partitions_removed: usize,
    /// The platform's quota stopped the pull (a daily cap): run again after it resets.
    pub quota_exhausted: bool,
    /// Days pulled and published by this run.
    pub days_pulled: u64,
    /// Days of the window skipped because the ledger has them final.
    pub days_skipped_final: u64,
    /// Days of this source the ledger holds as final, after the run.
    pub ledger_final: u64,
    /// Days of this source the ledger holds as provisional, after the run.
    pub ledger_provisional: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// What its HTTP requests cost; absent for sources that send none.
    pub http: Option<RequestTelemetry>,
    /// HTTP requests per row written: how economically the connector uses the platform's quota.
    pub requests_per_row: Option<f64>,
    /// What the platform said is left of its quotas, per account: the lowest seen during the
    /// run. Empty when the platform does not say (or the source sends no requests).
    pub quota_left: BTreeMap<String, QuotaLeft>,
    /// Per stream: what was pulled, written, quarantined and requested, and where its cursors
    /// stand.
    pub streams: BTreeMap<String, StreamSummary>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

impl SourceSummary {
    /// A summary with nothing done yet.
    pub fn new(name: &str, kind: &str) -> SourceSummary {
        SourceSummary {
            name: name.to_owned(),
            kind: kind.to_owned(),
            status: SourceStatus::Skipped,
            window: None,
            rows_written: 0,
            rows_by_metric: BTreeMap::new(),
            period_rows_written: 0,
            quarantined: 0,
            quarantine_file: None,
            rows_outside_window: 0,
            lines_skipped: BTreeMap::new(),
            partitions_written: 0,
            partitions_removed: 0,
            quota_exhausted: false,
            days_pulled: 0,
            days_skipped_final: 0,
            ledger_final: 0,
            ledger_provisional: 0,
            duration_ms: 0,
            http: None,
            requests_per_row: None,
            quota_left: BTreeMap::new(),
            streams: BTreeMap::new(),
            error: None,
        }
    }

    /// Adds a later window of the same source's run: counts add up, the window spans both, the
    /// worse status and the later error win. Request counters are cumulative per source, so
    /// the later ones replace the earlier.
    pub fn merge(mut self, later: SourceSummary) -> SourceSummary {
        self.window = match (self.window, later.window) {
            (Some(a), Some(b)) => DateWindow::new(a.start().min(b.start()), a.end().max(b.end())).ok(),
            (a, b) => a.or(b),
        };
        self.rows_written += later.rows_written;
        self.period_rows_written += later.period_rows_written;
        for (metric, n) in later.rows_by_metric {
            *self.rows_by_metric.entry(metric).or_default() += n;
        }
        self.quarantined += later.quarantined;
        for (name, stream) in &later.streams {
            self.streams.entry(name.clone()).or_default().add(stream);
        }
        self.quarantine_file = later.quarantine_file.or(self.quarantine_file);
        self.rows_outside_window += later.rows_outside_window;
        for (reason, n) in &later.lines_skipped {
            *self.lines_skipped.entry(reason.clone()).or_default() += n;
        }
        self.partitions_written += later.partitions_written;
        self.partitions_removed += later.partitions_removed;
        self.days_pulled += later.days_pulled;
        self.quota_exhausted |= later.quota_exhausted;
        self.duration_ms += later.duration_ms;
        self.status = worse(self.status, later.status);
        self.error = later.error.or(self.error);
        let http = later.http.or(self.http.take());
        self.set_http(http);
        self
    }

    /// Records the source's request counters, with requests per row written, its requests per
    /// stream and what is left of its quotas.
    pub fn set_http(&mut self, http: Option<RequestTelemetry>) {
        self.requests_per_row = match &http {
            Some(h) if self.rows_written > 0 => Some(h.requests as f64 / self.rows_written as f64),
            _ => None,
        };
        if let Some(h) = &http {
            for (name, counts) in &h.streams {
                let stream = self.streams.entry(name.clone()).or_default();
                stream.requests = counts.requests;
                stream.retries.clone_from(&counts.retries);
                stream.throttle_waits = counts.throttle_waits;
                stream.throttle_wait_ms = counts.throttle_wait_ms;
            }
            self.quota_left.clone_from(&h.quota_left);
        }
        self.http = http;
    }

    /// Requests that no stream was named for (an account's details, a batch serving several
    /// streams).
    pub fn shared_requests(&self) -> u64 {
        let labelled: u64 = self.streams.values().map(|s| s.requests).sum();
        self.http.as_ref().map_or(0, |h| h.requests.saturating_sub(labelled))
    }
}

/// A whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run's id, also in the `run_id` column.
    pub run_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Wall time.
    pub duration_ms: u64,
    /// Where the files are.
    pub output: String,
    /// The overall outcome: the worst of the sources'.
    pub status: SourceStatus,
    /// Per source, in name order.
    pub sources: Vec<SourceSummary>,
    /// The KPI stage that followed the sources, when one was due.
    pub kpis: Option<KpiStageSummary>,
    /// For a run of one shard (`--shard K/N`): which, and how the configuration was split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSummary>,
}

/// What one shard of a sharded run held.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShardSummary {
    /// `K/N`.
    pub shard: String,
    /// Units of work (accounts, pages, properties, or whole sources) this shard pulled.
    pub units: usize,
    /// Sources with no unit in this shard.
    pub sources_elsewhere: Vec<String>,
    /// The part of per-application rate limits it took.
    pub rate_share: f64,
}

/// How the KPI stage after a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiStageStatus {
    /// The touched periods' KPI files were replaced.
    Succeeded,
    /// Nothing was replaced; the run's metrics stay published.
    Failed,
}

/// What the KPI stage after a run did (`kpis` in `--summary-json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KpiStageSummary {
    /// How it ended.
    pub status: KpiStageStatus,
    /// The days whose periods were recomputed.
    pub window: DateWindow,
    /// The days read: the touched periods, whole.
    pub read_window: Option<DateWindow>,
    /// Metric rows read.
    pub metric_rows_read: u64,
    /// Per `<platform> <metric> <grain>` of a unique metric: entities with days in a week or
    /// month but no value from the platform for it, so that KPIs over it are empty there.
    pub without_period_value: BTreeMap<String, u64>,
    /// KPI rows now in the touched periods' files.
    pub rows_written: u64,
    /// Period files written.
    pub periods_written: usize,
    /// Period files removed (no KPI row left in them).
    pub periods_removed: usize,
    /// Wall time.
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
}

impl RunSummary {
    /// The process exit code: 0 all succeeded, 1 a source failed, 3 records were quarantined.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            SourceStatus::Failed => 1,
            SourceStatus::Partial => 3,
            SourceStatus::Succeeded | SourceStatus::Skipped => 0,
        }
    }

    /// The overall status from the sources'.
    pub fn overall(sources: &[SourceSummary]) -> SourceStatus {
        if sources.iter().any(|s| s.status == SourceStatus::Failed) {
            SourceStatus::Failed
        } else if sources.iter().any(|s| s.status == SourceStatus::Partial) {
            SourceStatus::Partial
        } else if sources.iter().any(|s| s.status == SourceStatus::Succeeded) {
            SourceStatus::Succeeded
        } else {
            SourceStatus::Skipped
        }
    }

    /// A table for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {} {} in {:.1}s, output {}",
            self.run_id,
            status_word(self.status),
            self.duration_ms as f64 / 1000.0,
            self.output
        );
        if let Some(shard) = &self.shard {
            let _ = writeln!(
                out,
                "shard {}: {} unit(s), {:.3} of per-application rate limits; {} source(s) in other shards",
                shard.shard,
                shard.units,
                shard.rate_share,
                shard.sources_elsewhere.len()
            );
        }
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:<9} {:<23} {:>10} {:>11} {:>8} {:>8}",
            "source", "type", "status", "window", "rows", "quarantined", "days", "seconds"
        );
        for s in &self.sources {
            let _ = writeln!(
                out,
                "{:<16} {:<10} {:<9} {:<23} {:>10} {:>11} {:>8} {:>8.1}",
                s.name,
                s.kind,
                status_word(s.status),
                s.window.map(|w| format!("{}..{}", w.start(), w.end())).unwrap_or_else(|| "-".into()),
                s.rows_written,
                s.quarantined,
                s.partitions_written,
                s.duration_ms as f64 / 1000.0
            );
            let width = s.rows_by_metric.keys().map(String::len).max().unwrap_or(0).max(30);
            for (metric, rows) in &s.rows_by_metric {
                let _ = writeln!(out, "    {metric:<width$} {rows:>10}");
            }
            if s.days_pulled + s.days_skipped_final + s.ledger_final + s.ledger_provisional > 0 {
                let _ = writeln!(
                    out,
                    "    days: {} pulled, {} skipped as final; ledger: {} final, {} provisional",
                    s.days_pulled, s.days_skipped_final, s.ledger_final, s.ledger_provisional
                );
            }
            if let Some(h) = &s.http {
                let _ = writeln!(out, "    {}", http_line(h, s.requests_per_row));
                let _ = writeln!(out, "    quota left: {}", quota_line(&s.quota_left));
            }
            for (name, stream) in &s.streams {
                let _ = writeln!(out, "    stream {name}: {}", stream_line(stream, s.http.is_some()));
            }
            if s.http.is_some() && !s.streams.is_empty() {
                let shared = s.shared_requests();
                if shared > 0 {
                    let _ = writeln!(out, "    {shared} request(s) served several streams");
                }
            }
            if s.period_rows_written > 0 {
                let _ = writeln!(
                    out,
                    "    {} period row(s) written: reach and users over whole weeks and months",
                    s.period_rows_written
                );
            }
            if s.rows_outside_window > 0 {
                let _ = writeln!(
                    out,
                    "    {} row(s) dated outside the window were not written",
                    s.rows_outside_window
                );
            }
            if !s.lines_skipped.is_empty() {
                let each: Vec<String> = s.lines_skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
                let _ = writeln!(out, "    line(s) skipped: {}", each.join(", "));
            }
            if let Some(q) = &s.quarantine_file {
                let _ = writeln!(out, "    quarantined records: {}", q.display());
            }
            if let Some(e) = &s.error {
                let _ = writeln!(out, "    error: {e}");
            }
        }
        out
    }
}

fn worse(a: SourceStatus, b: SourceStatus) -> SourceStatus {
    let rank = |s| match s {
        SourceStatus::Skipped => 0,
        SourceStatus::Succeeded => 1,
        SourceStatus::Partial => 2,
        SourceStatus::Failed => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn http_line(h: &RequestTelemetry, per_row: Option<f64>) -> String {
    let mut line = format!("http: {} request(s)", h.requests);
    if let Some(r) = per_row {
        let _ = write!(line, " ({r:.4} per row)");
    }
    if !h.retries.is_empty() {
        let reasons = h.retries.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        let _ = write!(line, ", retries: {reasons}");
    }
    if h.throttle_waits > 0 {
        let _ = write!(
            line,
            ", {} throttle wait(s) {:.1}s",
            h.throttle_waits,
            h.throttle_wait_ms as f64 / 1000.0
        );
    }
    let _ = write!(line, ", {} token(s), {} KiB", h.token_refreshes, h.bytes_received / 1024);
    line
}

fn quota_line(left: &BTreeMap<String, QuotaLeft>) -> String {
    if left.is_empty() {
        return "unknown (the platform does not report it)".to_owned();
    }
    left.iter().map(|(account, q)| format!("{account}: {q}")).collect::<Vec<_>>().join("; ")
}

fn stream_line(s: &StreamSummary, http: bool) -> String {
    let mut line =
        format!("{} day(s), {} row(s), {} quarantined", s.days_pulled, s.rows_written, s.quarantined);
    if http {
        let _ = write!(line, ", {} request(s)", s.requests);
    }
    if !s.retries.is_empty() {
        let reasons = s.retries.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        let _ = write!(line, ", retries: {reasons}");
    }
    if s.throttle_waits > 0 {
        let _ = write!(
            line,
            ", {} throttle wait(s) {:.1}s",
            s.throttle_waits,
            s.throttle_wait_ms as f64 / 1000.0
        );
    }
    let _ = write!(line, "; ledger: {} final, {} provisional", s.ledger_final, s.ledger_provisional);
    if let Some(through) = s.cursors.values().min() {
        let last = s.cursors.values().max().unwrap_or(through);
        if through == last {
            let _ = write!(line, "; written through {through}");
        } else {
            let _ = write!(line, "; written through {through}..{last} (by account)");
        }
    }
    line
}

fn status_word(s: SourceStatus) -> &'static str {
    match s {
        SourceStatus::Succeeded => "succeeded",
        SourceStatus::Partial => "partial",
        SourceStatus::Failed => "failed",
        SourceStatus::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_figures_are_reported_per_source_with_requests_per_row() {
        let mut s = SourceSummary::new("ads", "linkedin");
        s.status = SourceStatus::Succeeded;
        s.rows_written = 4_000;
        let mut http = RequestTelemetry { requests: 10, token_refreshes: 1, ..RequestTelemetry::default() };
        http.retries.insert("throttled".into(), 2);
        s.set_http(Some(http));
        assert_eq!(s.requests_per_row, Some(0.0025));
        let run = RunSummary {
            run_id: "r".into(),
            started_at: Utc::now(),
            duration_ms: 1,
            output: "out".into(),
            status: SourceStatus::Succeeded,
            sources: vec![s],
            kpis: None,
            shard: None,
        };
        assert!(
            run.render().contains("http: 10 request(s) (0.0025 per row), retries: throttled 2"),
            "{}",
            run.render()
        );
        let json = serde_json::to_value(&run).expect("serializable");
        assert_eq!(json["sources"][0]["http"]["requests"], 10);
        assert_eq!(json["sources"][0]["requests_per_row"], 0.0025);
    }

    #[test]
    fn streams_and_quota_left_are_reported() {
        let mut s = SourceSummary::new("crm", "hubspot");
        s.status = SourceStatus::Succeeded;
        s.rows_written = 30;
        s.streams.insert(
            "contacts".into(),
            StreamSummary { days_pulled: 3, rows_written: 30, ..StreamSummary::default() },
        );
        let mut later = SourceSummary::new("crm", "hubspot");
        later.streams.insert(
            "contacts".into(),
            StreamSummary { days_pulled: 2, rows_written: 5, quarantined: 1, ..StreamSummary::default() },
        );
        let mut s = s.merge(later);
        let mut http = RequestTelemetry { requests: 9, ..RequestTelemetry::default() };
        http.streams.insert(
            "contacts".into(),
            kpipe_core::StreamRequests { requests: 6, ..kpipe_core::StreamRequests::default() },
        );
        http.quota_left.insert(
            "62515".into(),
            QuotaLeft {
                daily_requests: Some(624_990),
                daily_requests_limit: Some(625_000),
                ..QuotaLeft::default()
            },
        );
        s.set_http(Some(http));
        assert_eq!(s.streams["contacts"].days_pulled, 5);
        assert_eq!(s.streams["contacts"].requests, 6);
        assert_eq!(s.shared_requests(), 3);
        let run = RunSummary {
            run_id: "r".into(),
            started_at: Utc::now(),
            duration_ms: 1,
            output: "out".into(),
            status: SourceStatus::Succeeded,
            sources: vec![s],
            kpis: None,
            shard: None,
        };
        let text = run.render();
        assert!(text.contains("quota left: 62515: 624990 of 625000 requests left today"), "{text}");
        assert!(text.contains("stream contacts: 5 day(s), 35 row(s), 1 quarantined, 6 request(s)"), "{text}");
        let json = serde_json::to_value(&run).expect("serializable");
        assert_eq!(json["sources"][0]["streams"]["contacts"]["requests"], 6);
        assert_eq!(json["sources"][0]["quota_left"]["62515"]["daily_requests"], 624_990);
        assert!(json["sources"][0]["http"].get("streams").is_none(), "shown per stream, not twice");
    }

    #[test]
    fn an_http_source_whose_platform_says_nothing_has_quota_left_unknown() {
        let mut s = SourceSummary::new("ads", "linkedin");
        s.set_http(Some(RequestTelemetry { requests: 1, ..RequestTelemetry::default() }));
        let run = RunSummary {
            run_id: "r".into(),
            started_at: Utc::now(),
            duration_ms: 1,
            output: "out".into(),
            status: SourceStatus::Succeeded,
            sources: vec![s],
            kpis: None,
            shard: None,
        };
        assert!(run.render().contains("quota left: unknown"), "{}", run.render());
    }

    #[test]
    fn sources_without_requests_report_none() {
        let mut s = SourceSummary::new("files", "files");
        s.rows_written = 10;
        s.set_http(None);
        assert_eq!((s.http.as_ref(), s.requests_per_row), (None, None));
    }
}
