//! The demo pipeline end to end: the shipped CSVs in, Parquet out, every value compared with the
//! input read independently here, through the plain Arrow reader of the parquet crate.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type};
use arrow_array::{Array, RecordBatch};
use kpipe_cli::runner::Quiet;
use kpipe_cli::{RunOptions, SourceStatus, demo};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

type Key = (String, String, String, String, String, String, String, String); // source, date, platform, account, level, entity, metric, channel

/// Expected value, currency, entity name per key.
type Expected = BTreeMap<Key, (String, Option<String>, Option<String>)>;

fn units(value: &str) -> i128 {
    // The independent decimal reading: scale by 10^18 through the text.
    let (neg, v) = value.strip_prefix('-').map_or((false, value), |v| (true, v));
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let padded = format!("{frac:0<18}");
    let n: i128 = format!("{int}{padded}").parse().unwrap_or_else(|e| panic!("{value}: {e}"));
    if neg { -n } else { n }
}

fn expected() -> Expected {
    let mut out = Expected::new();
    let mut add = |k: Key, v: String, cur: Option<String>, name: Option<String>| {
        assert!(out.insert(k.clone(), (v, cur, name)).is_none(), "duplicate key {k:?}");
    };
    let csv = |name: &str| demo::INPUTS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c).unwrap_or_default();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());

    for line in csv("metrics.csv").lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // date,platform,account,level,entity,entity_name,metric,value,currency,channel,source_medium
        add(
            (
                "marketing_sheet".into(),
                f[0].into(),
                f[1].into(),
                f[2].into(),
                f[3].into(),
                f[4].into(),
                f[6].into(),
                f[9].into(),
            ),
            units(f[7]).to_string(),
            opt(f[8]),
            opt(f[5]),
        );
    }
    for line in csv("social_selling.csv").lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        for (i, metric) in ["invites_sent", "invites_accepted", "replies", "interested"].iter().enumerate() {
            add(
                (
                    "social_selling".into(),
                    f[0].into(),
                    "linkedin".into(),
                    "sales_team".into(),
                    "rep".into(),
                    f[1].into(),
                    (*metric).into(),
                    String::new(),
                ),
                units(f[2 + i]).to_string(),
                None,
                None,
            );
        }
    }
    let mut days: BTreeMap<String, [i128; 5]> = BTreeMap::new();
    for line in csv("survey.csv").lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let score: i128 = f[2].parse().unwrap_or_else(|e| panic!("{e}"));
        let d = days.entry(f[0].to_owned()).or_default();
        d[0] += 1;
        d[if score >= 9 {
            1
        } else if score >= 7 {
            2
        } else {
            3
        }] += 1;
        d[4] += i128::from(f[3] == "yes");
    }
    for (day, c) in days {
        for (i, metric) in
            ["survey_responses", "nps_promoters", "nps_passives", "nps_detractors", "csat_satisfied"]
                .iter()
                .enumerate()
        {
            add(
                (
                    "nps_survey".into(),
                    day.clone(),
                    "files".into(),
                    "nps_survey".into(),
                    "survey".into(),
                    "customer_nps".into(),
                    (*metric).into(),
                    String::new(),
                ),
                (c[i] * 1_000_000_000_000_000_000).to_string(),
                None,
                None,
            );
        }
    }
    out
}

fn read_all(dir: &std::path::Path) -> (Expected, Vec<String>) {
    let mut got = Expected::new();
    let mut run_ids = Vec::new();
    for file in
        kpipe_sink_parquet::read::parquet_files(&dir.join("metrics")).unwrap_or_else(|e| panic!("{e}"))
    {
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
        for batch in reader {
            let batch: RecordBatch = batch.unwrap_or_else(|e| panic!("{e}"));
            let s = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("no column {name}"))
                    .as_string::<i32>()
                    .clone()
            };
            let (source, platform, account, level, entity, metric, channel, currency, name, run_id, unit) = (
                s("source"),
                s("platform"),
                s("account_id"),
                s("level"),
                s("entity_id"),
                s("metric"),
                s("channel"),
                s("currency"),
                s("entity_name"),
                s("run_id"),
                s("unit"),
            );
            let date = batch
                .column_by_name("date")
                .unwrap_or_else(|| panic!("date"))
                .as_primitive::<Date32Type>()
                .clone();
            let value = batch
                .column_by_name("value")
                .unwrap_or_else(|| panic!("value"))
                .as_primitive::<Decimal128Type>()
                .clone();
            assert_eq!(value.precision(), 38);
            assert_eq!(value.scale(), 18);
            for i in 0..batch.num_rows() {
                let opt = |a: &arrow_array::StringArray| (!a.is_null(i)).then(|| a.value(i).to_owned());
                let day =
                    chrono::NaiveDate::from_num_days_from_ce_opt(date.value(i) + 719_163).unwrap_or_default();
                assert!(
                    file.to_string_lossy().ends_with(&format!("metrics/{}.{day}.parquet", source.value(i))),
                    "{file:?}"
                );
                let expected_unit = match metric.value(i) {
                    "spend" | "revenue" => "currency",
                    "session_duration_seconds" => "seconds",
                    _ => "count",
                };
                assert_eq!(unit.value(i), expected_unit, "{}", metric.value(i));
                let key = (
                    source.value(i).to_owned(),
                    day.to_string(),
                    platform.value(i).to_owned(),
                    account.value(i).to_owned(),
                    level.value(i).to_owned(),
                    entity.value(i).to_owned(),
                    metric.value(i).to_owned(),
                    opt(&channel).unwrap_or_default(),
                );
                assert!(
                    got.insert(key.clone(), (value.value(i).to_string(), opt(&currency), opt(&name)))
                        .is_none(),
                    "duplicate {key:?}"
                );
                run_ids.push(run_id.value(i).to_owned());
            }
        }
    }
    (got, run_ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_writes_every_value_exactly_and_reruns_replace_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config_path = demo::prepare(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let (from, to) = demo::window();
    let run = || async {
        let cfg = kpipe_cli::load(&config_path, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let mut options = RunOptions::new(to);
        options.from = Some(from);
        options.to = Some(to);
        kpipe_cli::run(cfg, options, Arc::new(Quiet)).await.unwrap_or_else(|e| panic!("{e}"))
    };
    let first = run().await;
    assert_eq!(first.status, SourceStatus::Succeeded, "{}", first.render());
    assert_eq!(first.exit_code(), 0);

    let want = expected();
    let (got, run_ids) = read_all(dir.path());
    assert_eq!(got.len(), want.len());
    for (key, value) in &want {
        assert_eq!(got.get(key), Some(value), "{key:?}");
    }
    assert!(run_ids.iter().all(|r| r == &first.run_id));
    let written: u64 = first.sources.iter().map(|s| s.rows_written).sum();
    assert_eq!(written as usize, want.len());

    // The same window again: same rows, none twice, all from the second run.
    let second = run().await;
    let (again, run_ids) = read_all(dir.path());
    assert_eq!(again, got);
    assert!(run_ids.iter().all(|r| r == &second.run_id));
}
