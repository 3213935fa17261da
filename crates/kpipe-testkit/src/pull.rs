//! Building a source against the simulator and pulling a window into memory.

use kpipe_core::{
    BuildContext, DateWindow, DynSource, Emitter, MetricRow, PeriodRow, PullRequest, Quarantined,
    RequestTelemetry, SourceError, SourceEvent,
};
use std::sync::Arc;

use kpipe_sim::SimServer;

use crate::harness::{Harness, Setup};
use crate::totals::Totals;

/// Everything one pull produced.
#[derive(Debug)]
pub struct Pulled {
    /// Rows that passed validation, in the order sent.
    pub rows: Vec<MetricRow>,
    /// The stream each row of `rows` was emitted under ([`Emitter::set_stream`]), in the same
    /// order; `None` for rows emitted before any.
    pub row_streams: Vec<Option<Arc<str>>>,
    /// Records the source or validation quarantined.
    pub quarantined: Vec<Quarantined>,
    /// The windows the source declared complete ([`Emitter::complete`]), in order.
    pub completed: Vec<DateWindow>,
    /// Unique metrics over whole weeks and months ([`Emitter::emit_period`]), in the order sent.
    pub period_rows: Vec<PeriodRow>,
    /// How `pull` ended.
    pub result: Result<(), SourceError>,
    /// The source's request counters after the pull.
    pub telemetry: Option<RequestTelemetry>,
}

impl Pulled {
    /// The rows summed by key; panics on a row that appears twice, since a duplicate would be
    /// double-counted by every reader.
    pub fn totals(&self) -> Totals {
        Totals::from_rows(&self.rows).unwrap_or_else(|dup| panic!("the source wrote a row twice: {dup}"))
    }

    /// The result, panicking with the error chain if it failed.
    pub fn expect_ok(&self, case: &str) {
        if let Err(e) = &self.result {
            panic!("{case}: the pull failed: {} error: {}", e.kind(), kpipe_core::ErrorChain(e));
        }
    }

    /// Retries of one reason.
    pub fn retries(&self, reason: &str) -> u64 {
        self.telemetry.as_ref().and_then(|t| t.retries.get(reason).copied()).unwrap_or(0)
    }
}

/// Builds the harness's source against `sim`. Its configuration gets a `retry` table with
/// short waits (so that cases with many failures stay fast) and, when given, a `rate_limit`
/// table of `requests` per `per_seconds`.
pub fn build_source(
    harness: &dyn Harness,
    sim: &SimServer,
    setup: Setup,
    rate_limit: Option<(u32, u32)>,
) -> Box<dyn DynSource> {
    let mut table = harness.source_config(sim, setup);
    if let Some((requests, per_seconds)) = rate_limit {
        let mut limit = toml::Table::new();
        limit.insert("requests".into(), toml::Value::Integer(i64::from(requests)));
        limit.insert("per_seconds".into(), toml::Value::Integer(i64::from(per_seconds)));
        table.insert("rate_limit".into(), toml::Value::Table(limit));
    }
    let mut retry = toml::Table::new();
    retry.insert("max_attempts".into(), toml::Value::Integer(4));
    retry.insert("base_delay_ms".into(), toml::Value::Integer(5));
    retry.insert("max_delay_ms".into(), toml::Value::Integer(50));
    table.insert("retry".into(), toml::Value::Table(retry));
    let cx = BuildContext { source_name: "under_test".into(), config_dir: std::env::temp_dir() };
    let factory = harness.factory();
    match factory.build(table, &cx) {
        Ok(source) => source,
        Err(e) => {
            panic!("the `{}` source cannot be built from the harness's configuration: {e}", factory.kind)
        }
    }
}

/// Pulls `window` from `source`, collecting what it emits.
pub async fn pull(source: &dyn DynSource, window: DateWindow) -> Pulled {
    let (mut out, mut rx) = Emitter::channel(4, 1024);
    let request = PullRequest { window, run_id: "conformance".into(), full_refresh: false };
    let collect = async move {
        let mut rows = Vec::new();
        let mut row_streams = Vec::new();
        let mut quarantined = Vec::new();
        let mut completed = Vec::new();
        let mut period_rows = Vec::new();
        while let Some(event) = rx.recv().await {
            match event {
                SourceEvent::Rows(batch) => {
                    row_streams.extend(std::iter::repeat_n(batch.stream.clone(), batch.rows.len()));
                    rows.extend(batch.rows);
                }
                SourceEvent::PeriodRows(batch) => period_rows.extend(batch),
                SourceEvent::Quarantined(q) => quarantined.push(q),
                SourceEvent::Completed(days) => completed.push(days),
                SourceEvent::Skipped { .. } => {}
            }
        }
        (rows, row_streams, quarantined, completed, period_rows)
    };
    let produce = async move {
        let result = source.pull(&request, &mut out).await;
        let flushed = out.flush().await;
        drop(out);
        result.and(flushed)
    };
    let (result, (rows, row_streams, quarantined, completed, period_rows)) = tokio::join!(produce, collect);
    Pulled { rows, row_streams, quarantined, completed, period_rows, result, telemetry: source.telemetry() }
}
