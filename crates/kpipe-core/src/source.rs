//! The trait a connector implements, its erased twin, and the emitter it writes rows to.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::connector::BuildContext;
use crate::error::{ConfigError, SourceError};
use crate::period::PeriodRow;
use crate::quota::{QuotaLeft, RequestEstimate};
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

    /// The keys of its configuration that list units of work (ad accounts, pages,
    /// properties): `kpipe run --shard K/N` keeps the units shard K owns. A source with none
    /// (the default) is one unit as a whole.
    const UNIT_KEYS: &'static [crate::UnitKey] = &[];

    /// A rate limit the platform counts per application rather than per account, which the
    /// shards of a run share (each takes its part). `None` (the default): the source's limits
    /// are per account, portal or property, and each shard keeps them whole.
    const SHARED_RATE_LIMIT: Option<crate::SharedRateLimit> = None;

    /// Checks the configuration and builds the source. Nothing may be fetched here.
    fn build(config: Self::Config, cx: &BuildContext) -> Result<Self, ConfigError>;

    /// The streams this source pulls.
    fn streams(&self) -> Vec<StreamInfo>;

    /// Every stream it can pull, whatever the configuration, with the levels, dimension columns
    /// and metrics of its rows and the platform field each metric comes from
    /// ([`crate::catalog`]). Build it from the connector's own field-to-metric tables so that it
    /// cannot drift from them: `kpipe catalog` and the docs print it, and the conformance suite
    /// refuses a row it does not declare.
    fn catalog() -> Vec<crate::catalog::StreamCatalog>;

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

    /// How far back the platform keeps what the source reads: a run whose window starts
    /// earlier is warned that those days come back empty. `None` (the default): as far back as
    /// the account goes.
    fn history(&self) -> Option<History> {
        None
    }

    /// What the source's requests have cost so far (an HTTP connector returns its client's
    /// counters); the run summary reports it per source. Sources that send no requests keep the
    /// default, `None`.
    fn telemetry(&self) -> Option<RequestTelemetry> {
        None
    }

    /// What pulling `windows` would cost the platform, worked out from the configuration and
    /// the connector's own paging (date slices, accounts, streams, page sizes), without calling
    /// any API: `kpipe plan` shows it with the share of the daily quota it takes. A range when
    /// the number of pages depends on data. Sources that send no requests keep the default,
    /// `None`.
    fn estimate_requests(&self, _windows: &[DateWindow]) -> Option<RequestEstimate> {
        None
    }

    /// What the source knows about its credential: its kind, and the lifetimes the token
    /// endpoint announced for the tokens obtained so far (after [`Source::check`], the one it
    /// refreshed there). Never a token. `kpipe check` judges expiry from it; sources that need
    /// no credential keep the default, `None`.
    fn token_facts(&self) -> Option<TokenFacts> {
        None
    }
}

/// How far back a platform keeps a source's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Days before today that can still be pulled.
    pub days: u32,
    /// The platform's rule, for the warning ("Meta keeps ads insights for 37 months").
    pub rule: &'static str,
}

/// The kind of credential a source authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An access token given in the configuration: nothing renews it.
    StaticAccessToken,
    /// A refresh token from a person's consent, exchanged for short-lived access tokens.
    RefreshToken,
    /// A service account's key, exchanged for access tokens (Google's JWT bearer grant).
    ServiceAccount,
    /// The application's own client id and secret (the client-credentials grant).
    ClientCredentials,
}

/// What a source knows about its credential, without the credential itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFacts {
    /// How the source authenticates.
    pub credential: CredentialKind,
    /// The lifetime the token endpoint announced (`expires_in`) for the last access token it
    /// issued; `None` before any was obtained, or when it did not say.
    pub access_token_lifetime: Option<std::time::Duration>,
    /// How long the refresh token has left, as the token endpoint announced it with the last
    /// access token (LinkedIn's `refresh_token_expires_in`); `None` when it did not say.
    pub refresh_token_remaining: Option<std::time::Duration>,
}

impl TokenFacts {
    /// The facts of `credential` before any token was obtained.
    pub fn of(credential: CredentialKind) -> TokenFacts {
        TokenFacts { credential, access_token_lifetime: None, refresh_token_remaining: None }
    }
}

/// Counters of what a source's requests cost: the run summary's per-source HTTP figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
    pub retries: BTreeMap<String, u64>,
    /// The same counters for the requests a connector labelled with a stream
    /// (`ApiRequest::stream` in kpipe-http); requests that serve several streams (an account's
    /// details) are in the totals only. The run summary shows them per stream.
    #[serde(skip)]
    pub streams: BTreeMap<String, StreamRequests>,
    /// What the platform said is left of its quotas, by account: the lowest seen. Empty when
    /// the platform does not say. The run summary shows it per source.
    #[serde(skip)]
    pub quota_left: BTreeMap<String, QuotaLeft>,
}

/// The request counters of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamRequests {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that waited for the rate limiter.
    pub throttle_waits: u64,
    /// Total time spent waiting for the rate limiter, in milliseconds.
    pub throttle_wait_ms: u64,
    /// Retries by reason.
    pub retries: BTreeMap<String, u64>,
}

impl StreamRequests {
    /// Adds `other`'s counts.
    pub fn absorb(&mut self, other: &StreamRequests) {
        self.requests += other.requests;
        self.throttle_waits += other.throttle_waits;
        self.throttle_wait_ms += other.throttle_wait_ms;
        for (reason, n) in &other.retries {
            *self.retries.entry(reason.clone()).or_default() += n;
        }
    }
}

impl RequestTelemetry {
    /// Retries of every reason together.
    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }

    /// Adds the counters of another client of the same source (a connector with one client per
    /// account): counts add up, quotas keep the lowest.
    pub fn absorb(&mut self, other: RequestTelemetry) {
        self.requests += other.requests;
        self.bytes_received += other.bytes_received;
        self.throttle_waits += other.throttle_waits;
        self.throttle_wait_ms += other.throttle_wait_ms;
        self.token_refreshes += other.token_refreshes;
        for (reason, n) in other.retries {
            *self.retries.entry(reason).or_default() += n;
        }
        for (stream, counts) in other.streams {
            self.streams.entry(stream).or_default().absorb(&counts);
        }
        for (account, left) in other.quota_left {
            self.quota_left.entry(account).or_default().keep_lowest(&left);
        }
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
    /// See [`Source::estimate_requests`].
    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate>;
    /// See [`Source::restatement_days`].
    fn restatement_days(&self) -> Option<u32>;
    /// See [`Source::history`].
    fn history(&self) -> Option<History>;
    /// See [`Source::token_facts`].
    fn token_facts(&self) -> Option<TokenFacts>;
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

    fn estimate_requests(&self, windows: &[DateWindow]) -> Option<RequestEstimate> {
        Source::estimate_requests(self, windows)
    }

    fn restatement_days(&self) -> Option<u32> {
        Source::restatement_days(self)
    }

    fn history(&self) -> Option<History> {
        Source::history(self)
    }

    fn token_facts(&self) -> Option<TokenFacts> {
        Source::token_facts(self)
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
    /// Unique metrics' values over whole weeks and months ([`crate::period`]), validated.
    PeriodRows(Vec<PeriodRow>),
    /// A record that did not.
    Quarantined(Quarantined),
    /// Every row of these days has been sent (all streams, all accounts): if the pull stops
    /// early (a daily quota), these days can still be published.
    Completed(DateWindow),
    /// Input the source read and left out on purpose (blank lines, lines dated outside the
    /// window), counted by reason in the run summary so that every line read is accounted for.
    Skipped {
        /// Why, the same words for every line of the kind.
        reason: String,
        /// How many lines (or records).
        count: u64,
    },
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
    /// Skipped input not yet sent, by reason.
    skipped: std::collections::BTreeMap<String, u64>,
    skipped_total: u64,
    /// The stream of the rows emitted from now on.
    stream: Option<Arc<str>>,
    /// The stream of the rows in `pending`: a batch never mixes streams.
    pending_stream: Option<Arc<str>>,
    /// Period rows not yet sent.
    pending_periods: Vec<PeriodRow>,
    periods_emitted: u64,
}

/// Whether two stream labels are the same one. [`Emitter::set_stream`] keeps the label when the
/// name does not change, so comparing pointers is enough and costs nothing per row.
fn same_stream(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    }
}

impl Emitter {
    /// Rows per batch unless the caller chooses. A batch of rows is under 1 MB at this size:
    /// glibc then serves it from reused arena memory (kpipe's binary maps blocks of 1 MiB and
    /// more separately, src/malloc.rs), and larger batches measured no faster.
    pub const DEFAULT_BATCH_ROWS: usize = 2048;

    /// An emitter and the receiving end; at most `capacity` batches wait in between.
    pub fn channel(capacity: usize, batch_rows: usize) -> (Emitter, mpsc::Receiver<SourceEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let batch_rows = batch_rows.max(1);
        let emitter = Emitter {
            tx,
            pending: Vec::new(),
            batch_rows,
            emitted: 0,
            quarantined: 0,
            skipped: std::collections::BTreeMap::new(),
            skipped_total: 0,
            stream: None,
            pending_stream: None,
            pending_periods: Vec::new(),
            periods_emitted: 0,
        };
        (emitter, rx)
    }

    /// A second emitter into the same pipeline, for rows that a source reads concurrently
    /// with the ones it is emitting here (another account's report, a Page beside the ads):
    /// it starts on this emitter's stream, batches on its own, and shares the channel, so its
    /// full batches reach the sink as soon as they are made. Hand it back with
    /// [`Emitter::join`], which sends what it still holds and adds its counts to this
    /// emitter's; a fork dropped instead loses the rows it had not sent yet, which is only
    /// right when the pull fails anyway.
    ///
    /// Sends wait for a free place in the channel, and free places go to the senders that
    /// waited first. So a fork used in one of several futures polled together (a
    /// `buffer_unordered` stream) must be flushed within its future: a send from outside them
    /// while they are not polled can wait for places promised to one of them, for ever.
    pub fn fork(&self) -> Emitter {
        Emitter {
            tx: self.tx.clone(),
            pending: Vec::new(),
            batch_rows: self.batch_rows,
            emitted: 0,
            quarantined: 0,
            skipped: std::collections::BTreeMap::new(),
            skipped_total: 0,
            stream: self.stream.clone(),
            pending_stream: None,
            pending_periods: Vec::new(),
            periods_emitted: 0,
        }
    }

    /// Takes back a [`Emitter::fork`]: sends its buffered rows, period rows and skip counts,
    /// and counts what it emitted, quarantined and skipped as this emitter's.
    pub async fn join(&mut self, mut fork: Emitter) -> Result<(), SourceError> {
        fork.flush().await?;
        self.emitted += fork.emitted;
        self.quarantined += fork.quarantined;
        self.periods_emitted += fork.periods_emitted;
        self.skipped_total += fork.skipped_total;
        Ok(())
    }

    /// Says which of the source's streams (a [`StreamInfo::name`]) the rows emitted from now on
    /// belong to: the run summary counts rows per stream and the state store keeps a cursor per
    /// stream and account. A source with a single stream need not call it (the runtime labels
    /// its rows); one with several calls it before each stream's rows. Rows emitted before any
    /// call are counted for the source only.
    pub fn set_stream(&mut self, stream: &str) {
        if self.stream.as_deref() != Some(stream) {
            self.stream = Some(Arc::from(stream));
        }
    }

    /// The stream set by [`Emitter::set_stream`].
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    /// Sends one row. A row that breaks the schema's rules is quarantined with the reason
    /// instead; `stream` and `location` say where it came from.
    pub async fn emit(&mut self, row: MetricRow) -> Result<(), SourceError> {
        if !same_stream(&self.pending_stream, &self.stream) {
            if !self.pending.is_empty() {
                self.send_pending().await?;
            }
            self.pending_stream.clone_from(&self.stream);
        }
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

    /// Sends a unique metric's value over a week or month, asked of the platform for that
    /// period. A row that breaks the rules ([`PeriodRow::validate`]) is quarantined instead.
    pub async fn emit_period(&mut self, row: PeriodRow) -> Result<(), SourceError> {
        if let Err(e) = row.validate() {
            let r = &row.row;
            let stream = self.stream.as_deref().map_or_else(|| r.level.to_string(), str::to_owned);
            let location = format!("{} {} {} {}", r.account_id, r.entity_id, row.request.period, r.metric);
            return self
                .quarantine(Quarantined { stream, location, reason: e.to_string(), raw: format!("{row:?}") })
                .await;
        }
        self.pending_periods.push(row);
        if self.pending_periods.len() >= self.batch_rows {
            self.send_periods().await?;
        }
        Ok(())
    }

    /// Period rows sent so far (after validation).
    pub fn period_rows_emitted(&self) -> u64 {
        self.periods_emitted
    }

    async fn send_periods(&mut self) -> Result<(), SourceError> {
        let rows = std::mem::take(&mut self.pending_periods);
        self.periods_emitted += rows.len() as u64;
        self.tx.send(SourceEvent::PeriodRows(rows)).await.map_err(|_| SourceError::cancelled())
    }

    /// Records a record that could not be read.
    pub async fn quarantine(&mut self, record: Quarantined) -> Result<(), SourceError> {
        self.quarantined += 1;
        self.tx.send(SourceEvent::Quarantined(record)).await.map_err(|_| SourceError::cancelled())
    }

    /// Counts `count` lines (or records) of input read and left out on purpose, with why (the
    /// same words for every line of the kind: "blank line", "dated outside the window"). Sent
    /// with the next [`Emitter::flush`]; the run summary shows them per reason.
    pub fn skip(&mut self, reason: &str, count: u64) {
        if count > 0 {
            *self.skipped.entry(reason.to_owned()).or_default() += count;
            self.skipped_total += count;
        }
    }

    /// Lines or records skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped_total
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
        if !self.pending.is_empty() {
            self.send_pending().await?;
        }
        if !self.pending_periods.is_empty() {
            self.send_periods().await?;
        }
        for (reason, count) in std::mem::take(&mut self.skipped) {
            self.tx
                .send(SourceEvent::Skipped { reason, count })
                .await
                .map_err(|_| SourceError::cancelled())?;
        }
        Ok(())
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
        // A full batch is a source emitting at volume: its next batch gets its whole size at
        // once. A short one (a stream's last rows, a source with few rows) leaves the next to
        // grow as rows come: a run with fifty such sources would otherwise hold fifty batches'
        // worth of empty capacity.
        let next = if self.pending.len() >= self.batch_rows {
            Vec::with_capacity(self.batch_rows)
        } else {
            Vec::new()
        };
        let mut rows = std::mem::replace(&mut self.pending, next);
        let mut bad = Vec::new();
        rows.retain(|row| match row.validate() {
            Ok(()) => true,
            Err(e) => {
                bad.push(Quarantined {
                    stream: self
                        .pending_stream
                        .as_deref()
                        .map_or_else(|| row.level.to_string(), str::to_owned),
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
        if rows.len() < rows.capacity() / 4 {
            // The last rows of a stream in a batch sized for a full one: the batch waits in the
            // channel and the sink with only the room it needs.
            rows.shrink_to_fit();
        }
        let batch = MetricBatch { rows, stream: self.pending_stream.clone() };
        self.tx.send(SourceEvent::Rows(batch)).await.map_err(|_| SourceError::cancelled())
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
                SourceEvent::Completed(_) | SourceEvent::Skipped { .. } | SourceEvent::PeriodRows(_) => {}
            }
        }
        assert_eq!(rows, 2);
        assert_eq!(reasons, ["metric `spend` is money but the row has no currency"]);
    }

    #[tokio::test]
    async fn a_fork_sends_into_the_same_channel_and_its_counts_come_back_on_join() {
        let (mut out, mut rx) = Emitter::channel(16, 2);
        out.set_stream("ads");
        let mut fork = out.fork();
        fork.set_stream("pages");
        fork.emit(row(Metric::Clicks, None)).await.unwrap();
        fork.emit(row(Metric::Spend, None)).await.unwrap();
        fork.emit(row(Metric::Impressions, None)).await.unwrap();
        fork.skip("blank line", 2);
        out.emit(row(Metric::Clicks, None)).await.unwrap();
        out.join(fork).await.unwrap();
        out.flush().await.unwrap();
        assert_eq!((out.rows_emitted(), out.quarantined(), out.skipped()), (3, 1, 2));
        assert_eq!(out.stream(), Some("ads"));
        drop(out);
        let mut by_stream = std::collections::BTreeMap::new();
        let mut skipped = 0;
        while let Some(ev) = rx.recv().await {
            match ev {
                SourceEvent::Rows(b) => {
                    *by_stream.entry(b.stream.as_deref().unwrap_or("").to_owned()).or_insert(0) += b.len();
                }
                SourceEvent::Skipped { count, .. } => skipped += count,
                _ => {}
            }
        }
        assert_eq!(by_stream, [("ads".to_owned(), 1), ("pages".to_owned(), 2)].into_iter().collect());
        assert_eq!(skipped, 2);
    }

    #[tokio::test]
    async fn batches_carry_their_stream_and_never_mix_two() {
        let (mut out, mut rx) = Emitter::channel(16, 10);
        out.emit(row(Metric::Clicks, None)).await.unwrap();
        out.set_stream("ads");
        out.emit(row(Metric::Clicks, None)).await.unwrap();
        out.set_stream("ads");
        out.emit(row(Metric::Impressions, None)).await.unwrap();
        out.set_stream("pages");
        out.emit(row(Metric::Spend, None)).await.unwrap();
        out.flush().await.unwrap();
        assert_eq!(out.stream(), Some("pages"));
        drop(out);
        let mut batches = Vec::new();
        let mut quarantined = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                SourceEvent::Rows(b) => batches.push((b.stream.as_deref().map(str::to_owned), b.len())),
                SourceEvent::Quarantined(q) => quarantined.push(q.stream),
                SourceEvent::Completed(_) | SourceEvent::Skipped { .. } | SourceEvent::PeriodRows(_) => {}
            }
        }
        assert_eq!(batches, [(None, 1), (Some("ads".to_owned()), 2)]);
        // The invalid row (money without currency) is quarantined under its stream.
        assert_eq!(quarantined, ["pages"]);
    }

    #[test]
    fn telemetry_of_several_clients_adds_up() {
        let mut total = RequestTelemetry { requests: 2, ..RequestTelemetry::default() };
        total.streams.insert("ads".into(), StreamRequests { requests: 2, ..StreamRequests::default() });
        total.quota_left.insert("1".into(), QuotaLeft { used_percent: Some(10.0), ..QuotaLeft::default() });
        let mut other = RequestTelemetry { requests: 3, ..RequestTelemetry::default() };
        other.retries.insert("throttled".into(), 1);
        other.streams.insert("ads".into(), StreamRequests { requests: 3, ..StreamRequests::default() });
        other.quota_left.insert("1".into(), QuotaLeft { used_percent: Some(40.0), ..QuotaLeft::default() });
        total.absorb(other);
        assert_eq!((total.requests, total.total_retries()), (5, 1));
        assert_eq!(total.streams["ads"].requests, 5);
        assert_eq!(total.quota_left["1"].used_percent, Some(40.0));
    }

    #[tokio::test]
    async fn short_batches_hold_no_more_than_their_rows_need() {
        // Fifty small sources in one run must not hold fifty batches of empty capacity.
        let (mut out, mut rx) = Emitter::channel(16, 1000);
        for metric in [Metric::Clicks, Metric::Impressions, Metric::Clicks] {
            out.emit(row(metric, None)).await.unwrap();
        }
        out.set_stream("pages");
        for _ in 0..2000 {
            out.emit(row(Metric::Impressions, None)).await.unwrap();
        }
        out.set_stream("posts");
        out.emit(row(Metric::Clicks, None)).await.unwrap();
        out.flush().await.unwrap();
        drop(out);
        let mut batches = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let SourceEvent::Rows(b) = ev {
                batches.push((b.rows.len(), b.rows.capacity()));
            }
        }
        assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), vec![3, 1000, 1000, 1]);
        for (len, capacity) in &batches {
            assert!(*capacity <= (4 * len).max(16), "a batch of {len} rows holds room for {capacity}");
        }
        assert_eq!(batches[2].1, 1000, "a batch after a full one is allocated once, at its size");
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
