//! Incremental runs: a re-pulled day changes its week and its month, which are recomputed from
//! everything stored for them, not from the re-pulled day alone; re-running is idempotent;
//! untouched periods are left alone; a period that lost its data loses its file.

mod common;

use std::collections::BTreeMap;

use common::{day, lines, rows, store};
use kpipe_core::DateWindow;
use kpipe_kpi::{Catalog, Grain, Scope, Settings, period_file, read_kpis};

fn week_csv(wednesday_clicks: u32) -> String {
    let mut csv = String::from("source,platform,account,level,entity,date,metric,value,currency,channel\n");
    for d in 5..=11 {
        let clicks = if d == 7 { wednesday_clicks } else { 10 };
        csv.push_str(&format!("li,linkedin,508,campaign,c1,2026-10-{d:02},clicks,{clicks},,\n"));
        csv.push_str(&format!("li,linkedin,508,campaign,c1,2026-10-{d:02},impressions,100,,\n"));
    }
    csv
}

fn ctr(output: &std::path::Path, grain: Grain, start: &str) -> String {
    let rows = read_kpis(output, Some(grain)).expect("KPI files read back");
    let found: Vec<String> =
        lines(&rows).into_iter().filter(|l| l.starts_with(&format!("ctr {grain} {start} all "))).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_repulled_day_recomputes_its_whole_week_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let catalog = Catalog::builtin();
    let settings = Settings::default();
    let week = DateWindow::new(day("2026-10-05"), day("2026-10-11")).unwrap();
    store(out, &rows(&week_csv(10)), week);
    kpipe_kpi::run(out, &catalog, &settings, week, "first").unwrap();
    assert_eq!(
        ctr(out, Grain::Week, "2026-10-05"),
        "ctr week 2026-10-05 all * - = 0.1 (70 / 700) ratio consideration"
    );

    // The platform restates Wednesday: only that day is pulled again, and only that day is the
    // stage's window.
    let wednesday = DateWindow::day(day("2026-10-07"));
    let by_source: BTreeMap<_, _> = rows(&week_csv(40))
        .into_iter()
        .map(|(s, r)| (s, r.into_iter().filter(|r| r.date == day("2026-10-07")).collect::<Vec<_>>()))
        .collect();
    store(out, &by_source, wednesday);
    let tuesday_file = period_file(out, Grain::Day, day("2026-10-06"));
    let tuesday_before = std::fs::metadata(&tuesday_file).unwrap().modified().unwrap();
    let report = kpipe_kpi::run(out, &catalog, &settings, wednesday, "second").unwrap();
    // The day, its week and its month: read whole, plus the day before each.
    assert_eq!(report.commit.periods_written, 3, "{report:?}");
    assert_eq!(report.read_window, DateWindow::new(day("2026-09-30"), day("2026-10-31")).unwrap());
    assert_eq!(
        ctr(out, Grain::Week, "2026-10-05"),
        "ctr week 2026-10-05 all * - = 0.142857142857142857 (100 / 700) ratio consideration"
    );
    assert_eq!(
        ctr(out, Grain::Month, "2026-10-01"),
        "ctr month 2026-10-01 all * - = 0.142857142857142857 (100 / 700) ratio consideration"
    );
    assert_eq!(
        ctr(out, Grain::Day, "2026-10-07"),
        "ctr day 2026-10-07 all * - = 0.4 (40 / 100) ratio consideration"
    );
    // Other days are not rewritten.
    assert_eq!(std::fs::metadata(&tuesday_file).unwrap().modified().unwrap(), tuesday_before);

    // Idempotent: the same window again gives the same rows.
    let before = lines(&read_kpis(out, None).unwrap());
    kpipe_kpi::run(out, &catalog, &settings, wednesday, "third").unwrap();
    assert_eq!(lines(&read_kpis(out, None).unwrap()), before);

    // Wednesday's data is withdrawn: its day file goes, its week and month lose it.
    store(out, &BTreeMap::new(), wednesday);
    std::fs::remove_file(out.join("metrics/li.2026-10-07.parquet")).ok();
    let report = kpipe_kpi::run(out, &catalog, &settings, wednesday, "fourth").unwrap();
    assert_eq!((report.commit.periods_written, report.commit.periods_removed), (2, 1));
    assert!(!period_file(out, Grain::Day, day("2026-10-07")).exists());
    assert_eq!(
        ctr(out, Grain::Week, "2026-10-05"),
        "ctr week 2026-10-05 all * - = 0.1 (60 / 600) ratio consideration"
    );
}

#[test]
fn files_staged_by_a_killed_run_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".kpipe/staging/kpis/killed-run");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("day.2026-10-05.parquet.partial"), b"half a file").unwrap();
    let window = DateWindow::day(day("2026-10-05"));
    store(dir.path(), &rows(&week_csv(10)), DateWindow::new(day("2026-10-05"), day("2026-10-11")).unwrap());
    kpipe_kpi::run(dir.path(), &Catalog::builtin(), &Settings::default(), window, "next").unwrap();
    assert!(!stale.exists());
    assert!(!dir.path().join(".kpipe/staging/kpis").exists());
}

#[test]
fn grains_and_scopes_can_be_limited() {
    let dir = tempfile::tempdir().unwrap();
    let week = DateWindow::new(day("2026-10-05"), day("2026-10-11")).unwrap();
    store(dir.path(), &rows(&week_csv(10)), week);
    let settings =
        Settings { grains: vec![Grain::Week], scopes: vec![Scope::Platform], ..Settings::default() };
    let report = kpipe_kpi::run(dir.path(), &Catalog::builtin(), &settings, week, "limited").unwrap();
    assert_eq!(report.commit.periods_written, 1);
    // Only the week's days (and the Sunday before) are read.
    assert_eq!(report.read_window, DateWindow::new(day("2026-10-04"), day("2026-10-11")).unwrap());
    let rows = read_kpis(dir.path(), None).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.grain == Grain::Week && r.scope == Scope::Platform));
}
