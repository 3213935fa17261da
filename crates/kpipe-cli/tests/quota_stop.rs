//! A pull stopped by the platform's daily quota publishes the days the source completed and
//! leaves the other days' earlier data alone.

use std::sync::Arc;

use chrono::NaiveDate;
use kpipe_cli::config::{Config, PipelineConfig, SourceConfig};
use kpipe_cli::runner::{Quiet, RunOptions, run};
use kpipe_cli::summary::SourceStatus;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Decimal, Dimensions, Emitter, ErrorKind, Metric, MetricRow,
    PullRequest, Source, SourceError, StreamInfo,
};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).expect("a date")
}

fn row(date: NaiveDate, entity: &str, value: i64) -> MetricRow {
    MetricRow {
        platform: "fake".into(),
        account_id: "acct".into(),
        level: "campaign".into(),
        entity_id: entity.to_owned().into(),
        entity_name: None,
        date,
        dimensions: Dimensions::default(),
        metric: Metric::Clicks.into(),
        value: Decimal::from_i64(value),
        currency: None,
    }
}

/// Two campaigns a day; with `stop_on` set, the pull stops there after one campaign, as a
/// connector does when the platform says the daily quota is used up.
struct Fake {
    value: i64,
    stop_on: Option<NaiveDate>,
}

impl Source for Fake {
    type Config = toml::Table;
    const KIND: &'static str = "fake";
    const DESCRIPTION: &'static str = "test source";

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        Vec::new()
    }

    fn build(_: toml::Table, _: &BuildContext) -> Result<Self, ConfigError> {
        Ok(Fake { value: 1, stop_on: None })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        Vec::new()
    }

    async fn check(&self) -> Result<String, SourceError> {
        Ok(String::new())
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        for date in request.window.days() {
            out.emit(row(date, "c1", self.value)).await?;
            if self.stop_on == Some(date) {
                return Err(SourceError::new(
                    ErrorKind::QuotaExhausted { reset_at: None },
                    "daily cap reached",
                ));
            }
            out.emit(row(date, "c2", self.value)).await?;
            out.complete(DateWindow::day(date)).await?;
        }
        Ok(())
    }
}

fn config(output: &std::path::Path, source: Fake) -> Config {
    Config {
        path: output.join("kpipe.toml"),
        pipeline: PipelineConfig::local(output.to_path_buf(), 7),
        sources: vec![SourceConfig {
            name: "fake".into(),
            kind: "fake".into(),
            enabled: true,
            start_date: None,
            restatement_days: None,
            source: Box::new(source),
        }],
        kpis: Default::default(),
    }
}

fn stored(output: &std::path::Path) -> Vec<(NaiveDate, String, String)> {
    let mut rows: Vec<_> = kpipe_sink_parquet::read::read_dir(&output.join("metrics"))
        .expect("readable output")
        .into_iter()
        .map(|r| (r.row.date, r.row.entity_id.to_string(), r.row.value.to_string()))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn completed_days_are_published_and_the_rest_keeps_its_earlier_data() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut options = RunOptions::new(day(10));
    options.from = Some(day(1));
    options.to = Some(day(4));

    let first = run(config(dir.path(), Fake { value: 1, stop_on: None }), options.clone(), Arc::new(Quiet))
        .await
        .expect("a run");
    assert_eq!(first.sources[0].status, SourceStatus::Succeeded);
    assert_eq!(stored(dir.path()).len(), 8);

    // The second run re-pulls with new values and hits the cap on day 3 after one campaign.
    let second = run(config(dir.path(), Fake { value: 2, stop_on: Some(day(3)) }), options, Arc::new(Quiet))
        .await
        .expect("a run");
    let s = &second.sources[0];
    assert_eq!(s.status, SourceStatus::Partial, "{s:?}");
    assert_eq!(second.exit_code(), 3);
    assert_eq!(s.rows_written, 4);
    assert_eq!(s.rows_by_metric.get("clicks"), Some(&4));
    let message = s.error.as_deref().unwrap_or_default();
    assert!(message.contains("quota exhausted") && message.contains("2026-10-01..2026-10-02"), "{message}");

    let expect: Vec<(NaiveDate, String, String)> = [
        (1, "c1", "2"),
        (1, "c2", "2"),
        (2, "c1", "2"),
        (2, "c2", "2"),
        (3, "c1", "1"),
        (3, "c2", "1"),
        (4, "c1", "1"),
        (4, "c2", "1"),
    ]
    .into_iter()
    .map(|(d, e, v)| (day(d), e.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(stored(dir.path()), expect);
}

#[tokio::test]
async fn a_quota_stop_before_any_completed_day_publishes_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut options = RunOptions::new(day(10));
    options.from = Some(day(1));
    options.to = Some(day(2));
    let summary = run(config(dir.path(), Fake { value: 2, stop_on: Some(day(1)) }), options, Arc::new(Quiet))
        .await
        .expect("a run");
    assert_eq!(summary.sources[0].status, SourceStatus::Failed);
    assert!(stored(dir.path()).is_empty());
}
