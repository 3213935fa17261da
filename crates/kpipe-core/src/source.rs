//! The trait a connector implements, its erased twin, and the emitter it writes rows to.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::connector::BuildContext;
use crate::error::{ConfigError, SourceError};
use crate::record::{MetricBatch, MetricRow};
use crate::window::DateWindow;

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of data a source can pull (ad analytics, page statistics, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    /// Short snake_case name.
    pub name: &'static str,
    /// What it pulls, for people.
    pub description: &'static str,
}

/// What a pull covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The days to pull. Rows outside it are dropped and counted by the pipeline.
    pub window: DateWindow,
    /// The run this pull belongs to.
    pub run_id: String,
    /// Pull everything in the window even where the state says it is final.
    pub full_refresh: bool,
}

/// A platform connector.
///
/// Implement it with plain `async fn`s; the runtime holds it as a [`DynSource`]. Register it with
/// one line, [`ConnectorFactory::of`](crate::ConnectorFactory::of).
pub trait Source: Send + Sync + Sized + 'static {
    /// The typed configuration of a `[sources.<name>]` table (without the `type` key). Use
    /// `#[serde(deny_unknown_fields)]` so that a misspelt key is an error.
    type Config: DeserializeOwned + Send;

    /// The `type` value that selects this connector, snake_case (`linkedin`).
    const KIND: &'static str;

    /// One line saying what it pulls.
    const DESCRIPTION: &'static str;

    /// Checks the configuration and builds the source. Nothing may be fetched here.
    fn build(config: Self::Config, cx: &BuildContext) -> Result<Self, ConfigError>;

    /// The streams this source pulls.
    fn streams(&self) -> Vec<StreamInfo>;

    /// Verifies that a pull could work (credentials, files, ...) without pulling; returns a
    /// one-line description of what was checked.
    fn check(&self) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Pulls the request's window and writes every row, or quarantines what cannot be read, to
    /// `out`.
    fn pull(
        &self,
        request: &PullRequest,
        out: &mut Emitter,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Days after which the platform no longer restates a day's numbers (late conversions,
    /// deduplication): a day pulled more than this many days after it is final and not pulled
    /// again. `None` (the default): the numbers may change at any time, so every run re-pulls
    /// its whole window. A source's `restatement_days` key overrides it.
    fn restatement_days(&self) -> Option<u32> {
        None
    }

    /// What the source's requests have cost so far (an HTTP connector returns its client's
    /// counters); the run summary reports it per source. Sources that send no requests keep the
    /// default, `None`.
    fn telemetry(&self) -> Option<RequestTelemetry> {
        None
    }
}

/// Counters of what a source's requests cost: the run summary's per-source HTTP figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestTelemetry {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Requests that waited for the rate limiter.
    pub throttle_waits: u64,
    /// Total time spent waiting for the rate limiter, in milliseconds.
    pub throttle_wait_ms: u64,
    /// Access tokens obtained.
    pub token_refreshes: u64,
    /// Retries by reason (`throttled`, `server_error`, `transport`, `token_refused`, ...).
    pub retries: std::collections::BTreeMap<String, u64>,
}

impl RequestTelemetry {
    /// Retries of every reason together.
    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }
}

/// [`Source`] behind a pointer: what the runtime holds.
pub trait DynSource: Send + Sync {
    /// The connector's `type`.
    fn kind(&self) -> &'static str;
    /// See [`Source::streams`].
    fn streams(&self) -> Vec<StreamInfo>;
    /// See [`Source::check`].
    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>>;
    /// See [`Source::pull`].
    fn pull<'a>(
        &'a self,
        request: &'a PullRequest,
        out: &'a mut Emitter,
    ) -> BoxFuture<'a, Result<(), SourceError>>;
    /// See [`Source::telemetry`].
    fn telemetry(&self) -> Option<RequestTelemetry>;
    /// See [`Source::restatement_days`].
    fn restatement_days(&self) -> Option<u32>;
}

impl<S: Source> DynSource for S {
    fn kind(&self) -> &'static str {
        S::KIND
    }

    fn streams(&self) -> Vec<StreamInfo> {
        Source::streams(self)
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        Box::pin(Source::check(self))
    }

    fn pull<'a>(
        &'a self,
        request: &'a PullRequest,
        out: &'a mut Emitter,
    ) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(Source::pull(self, request, out))
    }

    fn telemetry(&self) -> Option<RequestTelemetry> {
        Source::telemetry(self)
    }

    fn restatement_days(&self) -> Option<u32> {
        Source::restatement_days(self)
    }
}

/// A record that could not be turned into rows, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    /// The stream it came from.
    pub stream: String,
    /// Where it was: `file.csv:17`, a request URL without credentials, an element index.
    pub location: String,
    /// Why it was refused.
    pub reason: String,
    /// The record as received.
    pub raw: String,
}

/// What travels from a source to the pipeline.
#[derive(Debug)]
pub enum SourceEvent {
    /// Rows that passed validation.
    Rows(MetricBatch),
    /// A record that did not.
    Quarantined(Quarantined),
    /// Every row of these days has been sent (all streams, all accounts): if the pull stops
    /// early (a daily quota), these days can still be published.
    Completed(DateWindow),
}

/// Where a source writes its rows. Rows are validated ([`MetricRow::validate`]), batched, and
/// sent through a bounded channel, so a fast source waits for the sink instead of filling memory.
#[derive(Debug)]
pub struct Emitter {
    tx: mpsc::Sender<SourceEvent>,
    pending: Vec<MetricRow>,
    batch_rows: usize,
    emitted: u64,
    quarantined: u64,
}

impl Emitter {
    /// Rows per batch unless the caller chooses.
    pub const DEFAULT_BATCH_ROWS: usize = 8192;

    /// An emitter and the receiving end; at most `capacity` batches wait in between.
    pub fn channel(capacity: usize, batch_rows: usize) -> (Emitter, mpsc::Receiver<SourceEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let batch_rows = batch_rows.max(1);
        (Emitter { tx, pending: Vec::with_capacity(batch_rows), batch_rows, emitted: 0, quarantined: 0 }, rx)
    }

    /// Sends one row. A row that breaks the schema's rules is quarantined with the reason
    /// instead; `stream` and `location` say where it came from.
    pub async fn emit(&mut self, row: MetricRow) -> Result<(), SourceError> {
        self.pending.push(row);
        if self.pending.len() >= self.batch_rows {
            self.send_pending().await?;
        }
        Ok(())
    }

    /// Sends rows, checking each.
    pub async fn emit_all(&mut self, rows: impl IntoIterator<Item = MetricRow>) -> Result<(), SourceError> {
        for row in rows {
            self.emit(row).await?;
        }
        Ok(())
    }

    /// Records a record that could not be read.
    pub async fn quarantine(&mut self, record: Quarantined) -> Result<(), SourceError> {
        self.quarantined += 1;
        self.tx.send(SourceEvent::Quarantined(record)).await.map_err(|_| SourceError::cancelled())
    }

    /// Declares every day of `window` fully pulled: every row of those days, for every stream
    /// and account of the source, has been emitted. When a pull then stops early (the
    /// platform's daily quota is used up), the pipeline publishes these days and keeps the
    /// others as they were, instead of discarding the whole window. Sources that never call it
    /// are all-or-nothing.
    pub async fn complete(&mut self, window: DateWindow) -> Result<(), SourceError> {
        self.flush().await?;
        self.tx.send(SourceEvent::Completed(window)).await.map_err(|_| SourceError::cancelled())
    }

    /// Sends what is buffered. The pipeline calls it when `pull` returns.
    pub async fn flush(&mut self) -> Result<(), SourceError> {
        if self.pending.is_empty() { Ok(()) } else { self.send_pending().await }
    }

    /// Rows sent so far (after validation).
    pub fn rows_emitted(&self) -> u64 {
        self.emitted
    }

    /// Records quarantined so far, by the source or by validation.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    async fn send_pending(&mut self) -> Result<(), SourceError> {
        let mut rows = std::mem::replace(&mut self.pending, Vec::with_capacity(self.batch_rows));
        let mut bad = Vec::new();
        rows.retain(|row| match row.validate() {
            Ok(()) => true,
            Err(e) => {
                bad.push(Quarantined {
                    stream: row.level.to_string(),
                    location: format!("{} {} {} {}", row.account_id, row.entity_id, row.date, row.metric),
                    reason: e.to_string(),
                    raw: format!("{row:?}"),
                });
                false
            }
        });
        for q in bad {
            self.quarantine(q).await?;
        }
        self.emitted += rows.len() as u64;
        if rows.is_empty() {
            return Ok(());
        }
        self.tx.send(SourceEvent::Rows(MetricBatch::new(rows))).await.map_err(|_| SourceError::cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Metric;
    use crate::record::{Currency, Dimensions};

    fn row(metric: Metric, currency: Option<&str>) -> MetricRow {
        MetricRow {
            platform: "files".into(),
            account_id: "a".into(),
            level: "campaign".into(),
            entity_id: "c".into(),
            entity_name: None,
            date: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap_or_default(),
            dimensions: Dimensions::default(),
            metric: metric.into(),
            value: crate::Decimal::from_i64(3),
            currency: currency.and_then(Currency::parse),
        }
    }

    #[tokio::test]
    async fn batches_rows_and_quarantines_invalid_ones() {
        let (mut out, mut rx) = Emitter::channel(16, 2);
        out.emit(row(Metric::Clicks, None)).await.unwrap();
        out.emit(row(Metric::Spend, None)).await.unwrap();
        out.emit(row(Metric::Spend, Some("EUR"))).await.unwrap();
        out.flush().await.unwrap();
        assert_eq!((out.rows_emitted(), out.quarantined()), (2, 1));
        drop(out);
        let mut rows = 0;
        let mut reasons = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                SourceEvent::Rows(b) => rows += b.len(),
                SourceEvent::Quarantined(q) => reasons.push(q.reason),
                SourceEvent::Completed(_) => {}
            }
        }
        assert_eq!(rows, 2);
        assert_eq!(reasons, ["metric `spend` is money but the row has no currency"]);
    }

    #[tokio::test]
    async fn a_closed_pipeline_cancels_the_source() {
        let (mut out, rx) = Emitter::channel(1, 1);
        drop(rx);
        let err = out.emit(row(Metric::Clicks, None)).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Cancelled);
    }

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn erased_futures_are_send() {
        // A compile-time check: the runtime spawns these on a multi-threaded executor.
        fn check(src: &dyn DynSource, req: &PullRequest, out: &mut Emitter) {
            assert_send(&src.pull(req, out));
            assert_send(&src.check());
        }
        let _ = check;
    }
}
