//! The partition ledger through whole runs, with the run's "today" as a fake clock: days turn
//! final once pulled after the restatement horizon and are then not pulled again.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use kpipe_cli::config::{Config, PipelineConfig, SourceConfig};
use kpipe_cli::runner::{Quiet, RunOptions, run};
use kpipe_cli::state::{DayStatus, StateStore};
use kpipe_cli::summary::SourceStatus;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Decimal, Dimensions, Emitter, Metric, MetricRow, Period,
    PeriodGrain, PeriodRequest, PeriodRow, PullRequest, Source, SourceError, StreamInfo,
};
use kpipe_sink_parquet::Storage;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).expect("a date")
}

/// One row per day and account; remembers the windows it was asked for. With `periods`, also
/// the reach of account a1 over every week and month a window touches (its value: the days the
/// request covers).
struct Recording {
    asked: Arc<Mutex<Vec<DateWindow>>>,
    periods: bool,
}

impl Source for Recording {
    type Config = toml::Table;
    const KIND: &'static str = "recording";
    const DESCRIPTION: &'static str = "test source";

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        Vec::new()
    }

    fn build(_: toml::Table, _: &BuildContext) -> Result<Self, ConfigError> {
        Ok(Recording { asked: Arc::default(), periods: false })
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
        for request in PeriodRequest::for_window(request.window).into_iter().filter(|_| self.periods) {
            let row = MetricRow {
                platform: "fake".into(),
                account_id: "a1".into(),
                level: "account".into(),
                entity_id: "a1".into(),
                entity_name: None,
                date: request.period.start,
                dimensions: Dimensions::default(),
                metric: Metric::Reach.into(),
                value: Decimal::from_i64(request.days().num_days() as i64),
                currency: None,
            };
            out.emit_period(PeriodRow::new(request, row)).await?;
        }
        Ok(())
    }

    fn restatement_days(&self) -> Option<u32> {
        Some(3)
    }
}

fn config(output: &std::path::Path, asked: &Arc<Mutex<Vec<DateWindow>>>) -> Config {
    config_with(output, asked, false)
}

fn config_with(output: &std::path::Path, asked: &Arc<Mutex<Vec<DateWindow>>>, periods: bool) -> Config {
    Config {
        path: output.join("kpipe.toml"),
        pipeline: PipelineConfig::local(output.to_path_buf(), 7),
        sources: vec![SourceConfig {
            name: "ads".into(),
            kind: "recording".into(),
            enabled: true,
            start_date: None,
            restatement_days: None,
            source: Box::new(Recording { asked: asked.clone(), periods }),
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

/// A week or month published partial is completed by a later run that does not cover its last
/// day: the ledger remembers it, and the run pulls that day too, which asks for the whole period.
#[tokio::test]
async fn a_period_published_partial_is_pulled_whole_by_a_later_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pull = |today: NaiveDate| {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let output = dir.path().to_path_buf();
        async move {
            let summary = run(config_with(&output, &asked, true), RunOptions::new(today), Arc::new(Quiet))
                .await
                .expect("a run");
            assert_ne!(summary.sources[0].status, SourceStatus::Failed, "{:?}", summary.sources[0]);
            asked.lock().expect("not poisoned").clone()
        }
    };
    let storage = Storage::local(dir.path());
    let partial = || -> Vec<(Period, NaiveDate)> {
        let state = StateStore::open(&storage).expect("state");
        state.source("ads").expect("ledger").partial_periods.clone().into_iter().collect()
    };
    let week = |d| Period::containing(PeriodGrain::Week, day(d));
    let october = Period::containing(PeriodGrain::Month, day(1));

    // On the 15th: days 8..=14; the week of the 12th and October are published partial.
    assert_eq!(pull(day(15)).await, [DateWindow::new(day(8), day(14)).expect("a window")]);
    assert_eq!(partial(), [(week(12), day(14)), (october, day(14))]);

    // On 4 November: days 28..=3; the 18th, the last day of that week, is pulled as well.
    let november = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("a date");
    let asked = pull(november(4)).await;
    assert_eq!(asked, [DateWindow::day(day(18)), DateWindow::new(day(28), november(3)).expect("a window")]);
    let left: Vec<Period> = partial().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        left,
        [
            Period::containing(PeriodGrain::Week, november(2)),
            Period::containing(PeriodGrain::Month, november(2))
        ]
    );
    // The week's and October's files now hold their whole periods.
    for (grain, start, days) in [(PeriodGrain::Week, day(12), 7), (PeriodGrain::Month, day(1), 31)] {
        let rows = kpipe_sink_parquet::period::read_period_rows(
            &storage,
            kpipe_sink_parquet::OutputFormat::Parquet,
            grain,
            (start, start),
        )
        .expect("readable");
        assert_eq!(rows.len(), 1, "{grain} {start}");
        assert!(!rows[0].request.is_partial(), "{:?}", rows[0].request);
        assert_eq!(rows[0].stored.row.value, Decimal::from_i64(days));
    }
}
