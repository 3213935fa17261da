//! The partition ledger through whole runs, with the run's "today" as a fake clock: days turn
//! final once pulled after the restatement horizon and are then not pulled again.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use kpipe_cli::config::{Config, PipelineConfig, SourceConfig};
use kpipe_cli::runner::{Quiet, RunOptions, run};
use kpipe_cli::state::{DayStatus, StateStore};
use kpipe_cli::summary::SourceStatus;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Decimal, Dimensions, Emitter, Metric, MetricRow, PullRequest,
    Source, SourceError, StreamInfo,
};
use kpipe_sink_parquet::Storage;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).expect("a date")
}

/// One row per day and account; remembers the windows it was asked for.
struct Recording {
    asked: Arc<Mutex<Vec<DateWindow>>>,
}

impl Source for Recording {
    type Config = toml::Table;
    const KIND: &'static str = "recording";
    const DESCRIPTION: &'static str = "test source";

    fn build(_: toml::Table, _: &BuildContext) -> Result<Self, ConfigError> {
        Ok(Recording { asked: Arc::default() })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        Vec::new()
    }

    async fn check(&self) -> Result<String, SourceError> {
        Ok(String::new())
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(request.window);
        }
        for date in request.window.days() {
            for account in ["a1", "a2"] {
                out.emit(MetricRow {
                    platform: "fake".into(),
                    account_id: account.into(),
                    level: "account".into(),
                    entity_id: account.into(),
                    entity_name: None,
                    date,
                    dimensions: Dimensions::default(),
                    metric: Metric::Impressions.into(),
                    value: Decimal::from_i64(7),
                    currency: None,
                })
                .await?;
            }
        }
        Ok(())
    }

    fn restatement_days(&self) -> Option<u32> {
        Some(3)
    }
}

fn config(output: &std::path::Path, asked: &Arc<Mutex<Vec<DateWindow>>>) -> Config {
    Config {
        path: output.join("kpipe.toml"),
        pipeline: PipelineConfig::local(output.to_path_buf(), 7),
        sources: vec![SourceConfig {
            name: "ads".into(),
            kind: "recording".into(),
            enabled: true,
            start_date: None,
            restatement_days: None,
            source: Box::new(Recording { asked: asked.clone() }),
        }],
        kpis: Default::default(),
    }
}

async fn run_on(output: &std::path::Path, today: NaiveDate, full_refresh: bool) -> (Vec<DateWindow>, u64) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut options = RunOptions::new(today);
    options.full_refresh = full_refresh;
    // The default window: the 7 days up to yesterday.
    let summary = run(config(output, &asked), options, Arc::new(Quiet)).await.expect("a run");
    let s = &summary.sources[0];
    assert_ne!(s.status, SourceStatus::Failed, "{s:?}");
    let windows = asked.lock().expect("not poisoned").clone();
    (windows, s.days_skipped_final)
}

#[tokio::test]
async fn days_pulled_after_the_horizon_turn_final_and_are_not_pulled_again() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let window = |a, b| DateWindow::new(day(a), day(b)).expect("a window");

    // Run on the 11th: days 4..=10. Older than 3 days when pulled: 4..=7 final.
    let (asked, skipped) = run_on(dir.path(), day(11), false).await;
    assert_eq!((asked, skipped), (vec![window(4, 10)], 0));
    let state = StateStore::open(&Storage::local(dir.path())).expect("state");
    let ledger = state.source("ads").expect("ledger");
    let statuses: Vec<(NaiveDate, DayStatus)> =
        (1..=12).filter_map(|d| Some((day(d), ledger.day(day(d))?.status))).collect();
    let expected: Vec<(NaiveDate, DayStatus)> =
        (4..=10).map(|d| (day(d), if d <= 7 { DayStatus::Final } else { DayStatus::Provisional })).collect();
    assert_eq!(statuses, expected);
    assert!(ledger.accounts_on(day(9)).contains("a2"));

    // Next day: window 5..=11; 5..=7 final (skipped), 8..=10 provisional, 11 missing.
    let (asked, skipped) = run_on(dir.path(), day(12), false).await;
    assert_eq!((asked, skipped), (vec![window(8, 11)], 3));
    assert_eq!(StateStore::open(&Storage::local(dir.path())).expect("state").counts("ads"), (5, 3));

    // Same day again: only the provisional days.
    let (asked, _) = run_on(dir.path(), day(12), false).await;
    assert_eq!(asked, vec![window(9, 11)]);

    // --full-refresh pulls everything.
    let (asked, skipped) = run_on(dir.path(), day(12), true).await;
    assert_eq!((asked, skipped), (vec![window(5, 11)], 0));

    // The data is complete: every day of both runs, one row per account, no duplicates.
    let mut rows: Vec<(NaiveDate, String)> = kpipe_sink_parquet::read::read_dir(&dir.path().join("metrics"))
        .expect("readable")
        .into_iter()
        .map(|r| (r.row.date, r.row.account_id.to_string()))
        .collect();
    rows.sort();
    let expect: Vec<(NaiveDate, String)> =
        (4..=11).flat_map(|d| ["a1", "a2"].map(|a| (day(d), a.to_owned()))).collect();
    assert_eq!(rows, expect);
}

#[tokio::test]
async fn a_state_file_holds_no_secret_and_a_damaged_one_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    run_on(dir.path(), day(11), false).await;
    let path = dir.path().join(".kpipe/state/ads.json");
    let text = std::fs::read_to_string(&path).expect("a state file");
    assert!(text.contains("\"ads\"") && !text.to_lowercase().contains("token"));
    std::fs::write(&path, "not json").expect("writable");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let err = run(config(dir.path(), &asked), RunOptions::new(day(12)), Arc::new(Quiet)).await.unwrap_err();
    assert!(err.to_string().contains("ads.json"), "{err}");
    assert!(asked.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn plan_shows_what_a_run_would_pull_without_pulling() {
    let dir = tempfile::tempdir().expect("a temp dir");
    run_on(dir.path(), day(11), false).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let cfg = config(dir.path(), &asked);
    let plan = kpipe_cli::plan::plan(&cfg, &RunOptions::new(day(12))).expect("a plan");
    let s = &plan.sources[0];
    assert_eq!((s.days.missing, s.days.provisional, s.days.skipped_final), (1, 3, 3));
    assert_eq!(s.days.pull, vec![DateWindow::new(day(8), day(11)).expect("a window")]);
    assert_eq!(s.restatement_days, Some(3));
    let text = plan.render();
    assert!(text.contains("2026-10-08..=2026-10-11") && text.contains("3d"), "{text}");
    assert!(asked.lock().expect("not poisoned").is_empty(), "plan called the source");
}
