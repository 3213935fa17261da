use std::path::Path;

use kpipe_core::{
    BuildContext, DateWindow, Emitter, ErrorKind, MetricRow, NaiveDate, PullRequest, Quarantined, Source,
    SourceEvent,
};

use crate::{FilesConfig, FilesSource};

fn config(toml_text: &str) -> FilesConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

fn build(dir: &Path, toml_text: &str) -> FilesSource {
    let cx = BuildContext { source_name: "sheet".into(), config_dir: dir.to_path_buf() };
    FilesSource::build(config(toml_text), &cx).unwrap_or_else(|e| panic!("{e}"))
}

fn request() -> PullRequest {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
    PullRequest {
        window: DateWindow::new(d("2020-01-01"), d("2030-01-01")).unwrap_or_else(|e| panic!("{e}")),
        run_id: "t".into(),
        full_refresh: false,
    }
}

async fn pull(
    source: &FilesSource,
) -> (Result<(), kpipe_core::SourceError>, Vec<MetricRow>, Vec<Quarantined>) {
    let (mut out, mut rx) = Emitter::channel(1024, 4);
    let result = source.pull(&request(), &mut out).await;
    let flushed = out.flush().await;
    drop(out);
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    while let Some(ev) = rx.recv().await {
        match ev {
            SourceEvent::Rows(b) => rows.extend(b.rows),
            SourceEvent::Quarantined(q) => bad.push(q),
            SourceEvent::Completed(_) | SourceEvent::Skipped { .. } | SourceEvent::PeriodRows(_) => {}
        }
    }
    (result.and(flushed), rows, bad)
}

fn summary(rows: &[MetricRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {} {}{}",
                r.date,
                r.platform,
                r.account_id,
                r.level,
                r.entity_id,
                r.metric,
                r.value,
                r.currency.map(|c| format!(" {c}")).unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn metrics_files_keep_good_lines_and_quarantine_bad_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("data")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("data/a.csv"),
        "date,platform,account,level,entity,metric,value,currency\n\
         2026-03-01,linkedin,508,campaign,c1,spend,24.457317520310493,EUR\n\
         2026-03-01,linkedin,508,campaign,c1,impressions,1200,\n\
         2026-03-02,linkedin,508,campaign,c1,clickz,3,\n\
         2026-02-30,linkedin,508,campaign,c1,clicks,3,\n\
         2026-03-02,linkedin,508,campaign,c1,clicks,three,\n\
         2026-03-02,linkedin,508,campaign,c1,spend,1.5,\n\
         2026-03-02,linkedin,508,campaign\n\
         \n\
         2026-03-03,offline_events,shop,event,fair,linkedin.booth_visits,40,\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = build(dir.path(), "kind = \"metrics\"\npath = \"data/*.csv\"");
    let (result, rows, bad) = pull(&src).await;
    result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        summary(&rows),
        [
            "2026-03-01 linkedin 508 campaign c1 spend 24.457317520310493 EUR",
            "2026-03-01 linkedin 508 campaign c1 impressions 1200",
            "2026-03-03 offline_events shop event fair linkedin.booth_visits 40",
        ]
    );
    let reasons: Vec<(String, String)> = bad
        .iter()
        .map(|q| (q.location.rsplit('/').next().unwrap_or_default().to_owned(), q.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("a.csv:4".to_owned(), "unknown metric `clickz`: expected a canonical metric (docs/schema.md) or `<platform>.<name>`".to_owned()),
            ("a.csv:5".to_owned(), "date `2026-02-30` is not a valid YYYY-MM-DD date".to_owned()),
            ("a.csv:6".to_owned(), "`value`: `three` is not a decimal number".to_owned()),
            ("a.csv:7".to_owned(), "metric `spend` is money but the row has no currency".to_owned()),
            ("a.csv:8".to_owned(), "the line has 4 fields, the header 8".to_owned()),
        ]
    );
    assert_eq!(bad[0].raw, "2026-03-02,linkedin,508,campaign,c1,clickz,3,");
    assert_eq!(bad[0].stream, "metrics");
}

#[tokio::test]
async fn a_bad_header_fails_the_source_naming_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("m.csv"), "date,platform,account,level,entity,metric,valu\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let src = build(dir.path(), "kind = \"metrics\"\npath = \"m.csv\"");
    let (result, _, _) = pull(&src).await;
    let err = result.expect_err("bad header");
    assert_eq!(err.kind(), ErrorKind::Data);
    assert!(err.to_string().contains("m.csv: column 7 is `valu`"), "{err}");
    let err = src.check().await.expect_err("check sees it too");
    assert!(err.to_string().contains("`valu`"), "{err}");
}

#[tokio::test]
async fn a_glob_matching_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = build(dir.path(), "kind = \"metrics\"\npath = \"nothing/*.csv\"");
    let (result, _, _) = pull(&src).await;
    let err = result.expect_err("no files");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.to_string(), "`path` `nothing/*.csv` matches no file");
}

#[tokio::test]
async fn social_selling_counts_per_rep_and_day() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("ss.csv"),
        "date,rep,invites_sent,invites_accepted,replies,interested\n\
         2026-03-01,ana,40,14,5,2\n\
         2026-03-01,ben,35,9,,\n\
         2026-03-02,ana,-3,1,1,1\n\
         2026-03-02,,1,1,1,1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = build(
        dir.path(),
        "kind = \"social_selling\"\npath = \"ss.csv\"\nplatform = \"linkedin\"\naccount_id = \"sales-emea\"",
    );
    let (result, rows, bad) = pull(&src).await;
    result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        summary(&rows),
        [
            "2026-03-01 linkedin sales-emea rep ana invites_sent 40",
            "2026-03-01 linkedin sales-emea rep ana invites_accepted 14",
            "2026-03-01 linkedin sales-emea rep ana replies 5",
            "2026-03-01 linkedin sales-emea rep ana interested 2",
            "2026-03-01 linkedin sales-emea rep ben invites_sent 35",
            "2026-03-01 linkedin sales-emea rep ben invites_accepted 9",
        ]
    );
    let reasons: Vec<&str> = bad.iter().map(|q| q.reason.as_str()).collect();
    assert_eq!(reasons, ["`invites_sent` is `-3`, expected a whole number of 0 or more", "`rep` is empty"]);
}

#[tokio::test]
async fn surveys_become_daily_nps_and_csat_counts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("nps.csv"),
        "date,respondent,score,satisfied\n\
         2026-03-01,r1,10,yes\n\
         2026-03-01,r2,9,yes\n\
         2026-03-01,r3,8,no\n\
         2026-03-01,r4,3,no\n\
         2026-03-01,r4,5,no\n\
         2026-03-01,r5,11,yes\n\
         2026-03-02,r1,0,maybe\n\
         2026-03-02,r6,7,Y\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = build(dir.path(), "kind = \"survey\"\npath = \"nps.csv\"\nsurvey = \"q1-nps\"");
    let (result, rows, bad) = pull(&src).await;
    result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        summary(&rows),
        [
            "2026-03-01 files sheet survey q1-nps survey_responses 4",
            "2026-03-01 files sheet survey q1-nps nps_promoters 2",
            "2026-03-01 files sheet survey q1-nps nps_passives 1",
            "2026-03-01 files sheet survey q1-nps nps_detractors 1",
            "2026-03-01 files sheet survey q1-nps csat_satisfied 2",
            "2026-03-02 files sheet survey q1-nps survey_responses 1",
            "2026-03-02 files sheet survey q1-nps nps_promoters 0",
            "2026-03-02 files sheet survey q1-nps nps_passives 1",
            "2026-03-02 files sheet survey q1-nps nps_detractors 0",
            "2026-03-02 files sheet survey q1-nps csat_satisfied 1",
        ]
    );
    assert_eq!(bad.len(), 3);
    assert!(
        bad[0].reason.starts_with("respondent `r4` already answered on 2026-03-01 (at "),
        "{}",
        bad[0].reason
    );
    assert_eq!(bad[1].reason, "`score` is `11`, expected a whole number from 0 to 10");
    assert_eq!(bad[2].reason, "`satisfied` is `maybe`, expected yes or no");
}

#[tokio::test]
async fn survey_files_must_carry_the_same_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("a.csv"), "date,respondent,score\n2026-03-01,r1,9\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("b.csv"), "date,respondent,satisfied\n2026-03-01,r2,yes\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let src = build(dir.path(), "kind = \"survey\"\npath = \"*.csv\"");
    let (result, _, _) = pull(&src).await;
    let err = result.expect_err("mixed answers");
    assert!(err.to_string().contains("b.csv: its answer columns"), "{err}");
}

#[test]
fn configuration_mistakes_name_the_key() {
    let cx = BuildContext { source_name: "s".into(), config_dir: ".".into() };
    let err =
        FilesSource::build(config("kind = \"metrics\"\npath = \"x.csv\"\nplatform = \"linkedin\""), &cx)
            .expect_err("platform");
    assert_eq!(err.path, "platform");
    let err =
        FilesSource::build(config("kind = \"survey\"\npath = \"x.csv\"\nplatform = \"Linked In\""), &cx)
            .expect_err("platform");
    assert_eq!(err.path, "platform");
    let err = FilesSource::build(config("kind = \"survey\"\npath = \"[\""), &cx).expect_err("glob");
    assert_eq!(err.path, "path");
    let err = FilesSource::build(config("kind = \"survey\"\npath = \"x\"\ndelimiter = \"é\""), &cx)
        .expect_err("delimiter");
    assert_eq!(err.path, "delimiter");
}

#[tokio::test]
async fn every_row_of_every_kind_is_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        (
            "metrics",
            "date,platform,account,level,entity,metric,value,currency,unit,country\n\
             2026-03-01,linkedin,508,campaign,c1,spend,24.45,EUR,,\n\
             2026-03-01,linkedin,508,campaign,c1,impressions,1200,,,DE\n\
             2026-03-03,offline_events,shop,event,fair,offline_events.booth_visits,40,,count,\n",
        ),
        (
            "social_selling",
            "date,rep,invites_sent,invites_accepted,replies,interested\n2026-03-01,ana,40,14,5,2\n",
        ),
        ("survey", "date,respondent,score,satisfied\n2026-03-01,r1,10,yes\n2026-03-01,r2,3,no\n"),
    ];
    let catalog = <FilesSource as Source>::catalog();
    for (kind, text) in files {
        std::fs::write(dir.path().join(format!("{kind}.csv")), text).unwrap_or_else(|e| panic!("{e}"));
        let src = build(dir.path(), &format!("kind = \"{kind}\"\npath = \"{kind}.csv\""));
        let streams = src.streams();
        assert!(catalog.iter().any(|s| s.stream == streams[0]), "{kind}: {streams:?}");
        let (result, rows, bad) = pull(&src).await;
        result.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(bad.is_empty() && !rows.is_empty(), "{kind}: {bad:?}");
        for row in &rows {
            kpipe_core::check_row(&catalog, Some(streams[0].name), row, false)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
    }
    for stream in &catalog {
        assert_eq!(stream.check(None), Ok(()));
    }
}
