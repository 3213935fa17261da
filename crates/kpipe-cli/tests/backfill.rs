//! A backfill that hits a daily cap stops cleanly and resumes on the next invocation without
//! pulling a finished day again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use kpipe_cli::backfill::{BackfillOptions, Order, backfill};
use kpipe_cli::config::{Config, PipelineConfig, SourceConfig};
use kpipe_cli::runner::Quiet;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Decimal, Dimensions, Emitter, ErrorKind, Metric, MetricRow,
    PullRequest, Source, SourceError, StreamInfo,
};

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).expect("a date")
}

/// A platform allowing `quota` day-requests "per day": one request per day pulled; past the
/// quota it answers like a daily cap. Declares each day complete as it goes.
struct Capped {
    used: Arc<AtomicU64>,
    quota: u64,
    pulled: Arc<Mutex<Vec<NaiveDate>>>,
}

impl Source for Capped {
    type Config = toml::Table;
    const KIND: &'static str = "capped";
    const DESCRIPTION: &'static str = "test source";

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        Vec::new()
    }

    fn build(_: toml::Table, _: &BuildContext) -> Result<Self, ConfigError> {
        Err(ConfigError::new("", "built by the test"))
    }

    fn streams(&self) -> Vec<StreamInfo> {
        Vec::new()
    }

    async fn check(&self) -> Result<String, SourceError> {
        Ok(String::new())
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        for date in request.window.days() {
            if self.used.fetch_add(1, Ordering::SeqCst) >= self.quota {
                return Err(SourceError::new(ErrorKind::QuotaExhausted { reset_at: None }, "daily cap"));
            }
            if let Ok(mut p) = self.pulled.lock() {
                p.push(date);
            }
            out.emit(MetricRow {
                platform: "fake".into(),
                account_id: "a".into(),
                level: "account".into(),
                entity_id: "a".into(),
                entity_name: None,
                date,
                dimensions: Dimensions::default(),
                metric: Metric::Clicks.into(),
                value: Decimal::from_i64(1),
                currency: None,
            })
            .await?;
            out.complete(DateWindow::day(date)).await?;
        }
        Ok(())
    }

    fn restatement_days(&self) -> Option<u32> {
        Some(30)
    }
}

#[tokio::test]
async fn a_backfill_stopped_by_a_daily_cap_resumes_without_pulling_finished_days() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = dir.path().to_path_buf();
    let pulled = Arc::new(Mutex::new(Vec::new()));
    let options = BackfillOptions {
        from: day(1, 1),
        to: Some(day(3, 31)),
        chunk_days: 28,
        order: Order::OldestFirst,
        only: None,
        today: day(11, 23),
    };
    let invocation = |quota: u64| {
        let used = Arc::new(AtomicU64::new(0));
        let output = output.clone();
        let pulled = pulled.clone();
        move || {
            Ok(Config {
                path: output.join("kpipe.toml"),
                pipeline: PipelineConfig::local(output.clone(), 7),
                sources: vec![SourceConfig {
                    name: "ads".into(),
                    kind: "capped".into(),
                    enabled: true,
                    start_date: None,
                    restatement_days: None,
                    source: Box::new(Capped { used: used.clone(), quota, pulled: pulled.clone() }),
                }],
                kpis: Default::default(),
            })
        }
    };

    // 90 days, 40 allowed per "day": the first invocation stops in the second chunk.
    let first = backfill(invocation(40), &options, Arc::new(Quiet), |_| {}).await.expect("a backfill");
    assert!(first.stopped.as_deref().is_some_and(|s| s.contains("quota")), "{:?}", first.stopped);
    assert_eq!(first.exit_code(), 3);
    assert_eq!(first.runs.len(), 2);
    assert!(!first.remaining.is_empty());
    let after_first = pulled.lock().expect("not poisoned").clone();
    assert_eq!(after_first.len(), 40);

    // The next invocation resumes at day 41 and finishes.
    let second = backfill(invocation(40), &options, Arc::new(Quiet), |_| {}).await.expect("a backfill");
    assert!(second.stopped.is_some(), "50 days left, 40 allowed: stops once more");
    let third = backfill(invocation(40), &options, Arc::new(Quiet), |_| {}).await.expect("a backfill");
    assert_eq!(third.stopped, None);
    assert_eq!(third.exit_code(), 0);

    let all = pulled.lock().expect("not poisoned").clone();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all.len(), sorted.len(), "a finished day was pulled again");
    assert_eq!(sorted.len(), 90);
    let stored = kpipe_sink_parquet::read::read_dir(&output.join("metrics")).expect("readable");
    assert_eq!(stored.len(), 90);
}
