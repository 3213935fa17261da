//! The state's cursors: per source, stream and account, the last day written, moved only by
//! what a run committed; and a state file written before cursors existed still loads.

use std::sync::Arc;

use chrono::NaiveDate;
use kpipe_cli::config::{Config, PipelineConfig, SourceConfig};
use kpipe_cli::runner::{Quiet, RunOptions, run};
use kpipe_cli::state::StateStore;
use kpipe_cli::summary::SourceStatus;
use kpipe_core::{
    BuildContext, ConfigError, DateWindow, Decimal, Dimensions, Emitter, ErrorKind, Metric, MetricRow,
    PullRequest, Source, SourceError, StreamInfo,
};
use kpipe_sink_parquet::Storage;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).expect("a date")
}

fn row(date: NaiveDate, account: &str, metric: Metric) -> MetricRow {
    MetricRow {
        platform: "fake".into(),
        account_id: account.to_owned().into(),
        level: "campaign".into(),
        entity_id: "c1".into(),
        entity_name: None,
        date,
        dimensions: Dimensions::default(),
        metric: metric.into(),
        value: Decimal::from_i64(1),
        currency: None,
    }
}

/// How a pull of [`Fake`] ends.
#[derive(Clone, Copy)]
enum End {
    Whole,
    /// The daily quota runs out on this day, after its first stream.
    QuotaOn(NaiveDate),
    /// A data error after the first day's rows were sent.
    FailAfterFirstDay,
}

/// Two streams, `ads` of account `acct` and `pages` of account `page1`, a row each a day; or
/// with `labelled` false, one stream it never names.
struct Fake {
    end: End,
    labelled: bool,
}

impl Source for Fake {
    type Config = toml::Table;
    const KIND: &'static str = "fake";
    const DESCRIPTION: &'static str = "test source";

    fn catalog() -> Vec<kpipe_core::StreamCatalog> {
        Vec::new()
    }

    fn build(_: toml::Table, _: &BuildContext) -> Result<Self, ConfigError> {
        Ok(Fake { end: End::Whole, labelled: true })
    }

    fn streams(&self) -> Vec<StreamInfo> {
        let stream = |name| StreamInfo { name, description: "test" };
        if self.labelled { vec![stream("ads"), stream("pages")] } else { vec![stream("only")] }
    }

    async fn check(&self) -> Result<String, SourceError> {
        Ok(String::new())
    }

    async fn pull(&self, request: &PullRequest, out: &mut Emitter) -> Result<(), SourceError> {
        for date in request.window.days() {
            if self.labelled {
                out.set_stream("ads");
            }
            out.emit(row(date, "acct", Metric::Clicks)).await?;
            if matches!(self.end, End::QuotaOn(stop) if stop == date) {
                return Err(SourceError::new(ErrorKind::QuotaExhausted { reset_at: None }, "daily cap"));
            }
            if self.labelled {
                out.set_stream("pages");
            }
            out.emit(row(date, "page1", Metric::Impressions)).await?;
            out.complete(DateWindow::day(date)).await?;
            if matches!(self.end, End::FailAfterFirstDay) {
                return Err(SourceError::data("an unreadable answer"));
            }
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
            restatement_days: Some(3),
            source: Box::new(source),
        }],
        kpis: Default::default(),
    }
}

fn options(from: u32, to: u32) -> RunOptions {
    let mut options = RunOptions::new(day(7));
    options.from = Some(day(from));
    options.to = Some(day(to));
    options
}

/// The cursors on disk: (stream, account, last day).
fn cursors(output: &std::path::Path) -> Vec<(String, String, NaiveDate)> {
    let state = StateStore::open(&Storage::local(output)).expect("a readable state file");
    state
        .cursors("fake")
        .into_iter()
        .flat_map(|(stream, accounts)| accounts.into_iter().map(move |(a, c)| (stream.clone(), a, c.through)))
        .collect()
}

fn through(d: u32) -> Vec<(String, String, NaiveDate)> {
    vec![("ads".into(), "acct".into(), day(d)), ("pages".into(), "page1".into(), day(d))]
}

#[tokio::test]
async fn cursors_move_only_with_what_a_run_committed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path();

    // The quota runs out on the 3rd: the 1st and 2nd are published, and the cursors stop there.
    let summary =
        run(config(out, Fake { end: End::QuotaOn(day(3)), labelled: true }), options(1, 4), Arc::new(Quiet))
            .await
            .expect("a run");
    let s = &summary.sources[0];
    assert_eq!(s.status, SourceStatus::Partial, "{s:?}");
    assert_eq!(cursors(out), through(2));
    let (ads, pages) = (&s.streams["ads"], &s.streams["pages"]);
    assert_eq!((ads.days_pulled, ads.rows_written, pages.rows_written), (2, 2, 2), "{s:?}");
    assert_eq!(ads.cursors.get("acct"), Some(&day(2)));
    // Run on the 7th with a 3-day horizon, both days are final.
    assert_eq!((ads.ledger_final, ads.ledger_provisional), (2, 0));

    // A pull that fails publishes nothing: its rows of the 3rd were sent, yet no cursor moves.
    let summary = run(
        config(out, Fake { end: End::FailAfterFirstDay, labelled: true }),
        options(3, 6),
        Arc::new(Quiet),
    )
    .await
    .expect("a run");
    assert_eq!(summary.sources[0].status, SourceStatus::Failed);
    assert_eq!(cursors(out), through(2));
    assert_eq!(summary.sources[0].streams["ads"].cursors.get("acct"), Some(&day(2)));

    // Done again without a hitch, the days are published and the cursors follow.
    let summary = run(config(out, Fake { end: End::Whole, labelled: true }), options(3, 4), Arc::new(Quiet))
        .await
        .expect("a run");
    assert_eq!(summary.sources[0].status, SourceStatus::Succeeded);
    assert_eq!(cursors(out), through(4));
    let state = StateStore::open(&Storage::local(out)).expect("a readable state file");
    let ledger = state.source("fake").expect("the source's ledger");
    assert_eq!(ledger.streams_on(day(4)), ["ads", "pages"].into_iter().collect());
    assert_eq!(ledger.accounts_on(day(4)), ["acct", "page1"].into_iter().collect());
}

#[tokio::test]
async fn rows_of_a_source_with_one_stream_are_that_streams() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let summary =
        run(config(dir.path(), Fake { end: End::Whole, labelled: false }), options(1, 2), Arc::new(Quiet))
            .await
            .expect("a run");
    let s = &summary.sources[0];
    assert_eq!(s.streams["only"].rows_written, 4, "{s:?}");
    assert_eq!(s.streams["only"].cursors.len(), 2);
    assert_eq!(
        cursors(dir.path()),
        [("only".into(), "acct".into(), day(2)), ("only".into(), "page1".into(), day(2))]
    );
}

#[tokio::test]
async fn a_state_file_from_before_cursors_loads_and_gains_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = dir.path().join(".kpipe/state.json");
    std::fs::create_dir_all(state.parent().expect("a parent")).expect("a directory");
    // The layout written before streams and cursors were kept: the 1st is final.
    std::fs::write(
        &state,
        r#"{"version": 1, "sources": {"fake": {"days": {"2026-10-01": {
            "pulled_at": "2026-10-06T03:00:00Z", "pulled_on": "2026-10-06",
            "run_id": "0193a0c4-0000-7000-8000-000000000001", "rows": 2,
            "accounts": {"acct": 1, "page1": 1}, "status": "final"}}}}}"#,
    )
    .expect("written");
    let summary =
        run(config(dir.path(), Fake { end: End::Whole, labelled: true }), options(1, 2), Arc::new(Quiet))
            .await
            .expect("the old state file loads");
    let s = &summary.sources[0];
    assert_eq!((s.days_skipped_final, s.days_pulled), (1, 1), "{s:?}");
    assert_eq!(cursors(dir.path()), through(2));
    let state = StateStore::open(&Storage::local(dir.path())).expect("a readable state file");
    let old = state.source("fake").expect("the source's ledger");
    assert_eq!(old.day(day(1)).map(|r| r.run_id.as_str()), Some("0193a0c4-0000-7000-8000-000000000001"));
    assert_eq!(
        old.accounts_on(day(1)),
        ["acct", "page1"].into_iter().collect(),
        "the old entry is kept as it was"
    );
    assert!(!dir.path().join(".kpipe/state.json").exists(), "moved to one object per source");
}
