//! How rows combine beyond plain sums: breakdown rows repeat their total, coarser levels repeat
//! finer ones, unique metrics are never summed, and money never crosses currencies.

mod common;

use common::{day, lines, rows, store};
use kpipe_core::{DateWindow, Decimal, Dimensions, Label, Metric, MetricBatch, MetricRow, Sink, SinkTarget};
use kpipe_kpi::{Catalog, Grain, KpiDefinitionConfig, Settings, read_kpis};

fn run(csv_rows: &str, extra_rows: Vec<MetricRow>, kpis: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("test setup");
    let window = DateWindow::day(day("2026-10-05"));
    store(
        dir.path(),
        &rows(&format!(
            "source,platform,account,level,entity,date,metric,value,currency,channel\n{csv_rows}"
        )),
        window,
    );
    if !extra_rows.is_empty() {
        let sink = kpipe_sink_parquet::ParquetSink::new(dir.path());
        let target = SinkTarget {
            source: "breakdowns".into(),
            window,
            run_id: "r".into(),
            pulled_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).expect("test setup"),
        };
        let mut w = sink.open(target).expect("test setup");
        w.write(&MetricBatch::new(extra_rows)).expect("test setup");
        w.commit().expect("test setup");
    }
    let defs: std::collections::BTreeMap<String, KpiDefinitionConfig> =
        toml::from_str(kpis).expect("test setup");
    let settings = Settings { grains: vec![Grain::Day], ..Settings::default() };
    let catalog = Catalog::new(&defs).expect("definitions compile");
    kpipe_kpi::run(dir.path(), &catalog, &settings, window, "t").expect("the KPI stage runs");
    lines(&read_kpis(dir.path(), None).expect("KPI files read back"))
}

fn pick<'a>(all: &'a [String], prefix: &str) -> Vec<&'a str> {
    all.iter().filter(|l| l.starts_with(prefix)).map(String::as_str).collect()
}

fn row(entity: &str, country: Option<&str>, metric: Metric, value: i64) -> MetricRow {
    MetricRow {
        platform: "facebook".into(),
        account_id: "act_1".into(),
        level: "ad".into(),
        entity_id: Label::new(entity),
        entity_name: None,
        date: day("2026-10-05"),
        dimensions: Dimensions { country: country.map(Label::new), ..Dimensions::default() },
        metric: metric.into(),
        value: Decimal::from_i64(value),
        currency: None,
    }
}

#[test]
fn breakdown_rows_do_not_double_count_and_filters_can_select_them() {
    let extra = vec![
        // Ad a1: a total row and its country breakdown.
        row("a1", None, Metric::Impressions, 1000),
        row("a1", Some("DE"), Metric::Impressions, 600),
        row("a1", Some("FR"), Metric::Impressions, 400),
        row("a1", None, Metric::Clicks, 50),
        row("a1", Some("DE"), Metric::Clicks, 40),
        row("a1", Some("FR"), Metric::Clicks, 10),
        // Ad a2: only a country breakdown, which then stands for the total; reach by country
        // cannot be summed (a person may count in two rows).
        row("a2", Some("DE"), Metric::Impressions, 300),
        row("a2", Some("FR"), Metric::Impressions, 200),
        row("a2", Some("DE"), Metric::Clicks, 3),
        row("a2", Some("FR"), Metric::Clicks, 2),
        row("a2", Some("DE"), Metric::Likes, 5),
        row("a2", Some("DE"), Metric::Reach, 250),
        row("a2", Some("FR"), Metric::Reach, 150),
    ];
    let all = run(
        "",
        extra,
        "[ctr_de]\nformula = \"clicks[country = 'DE'] / impressions[country = 'DE']\"\nstage = \"consideration\"\n",
    );
    assert_eq!(
        pick(&all, "ctr day 2026-10-05 entity"),
        [
            "ctr day 2026-10-05 entity facebook:breakdowns/act_1/ad/a1 - = 0.05 (50 / 1000) ratio consideration",
            "ctr day 2026-10-05 entity facebook:breakdowns/act_1/ad/a2 - = 0.01 (5 / 500) ratio consideration",
        ]
    );
    assert_eq!(
        pick(&all, "ctr day 2026-10-05 all"),
        ["ctr day 2026-10-05 all * - = 0.036666666666666667 (55 / 1500) ratio consideration"]
    );
    assert_eq!(
        pick(&all, "ctr_de day 2026-10-05 all"),
        ["ctr_de day 2026-10-05 all * - = 0.047777777777777778 (43 / 900) ratio consideration"]
    );
    assert_eq!(
        pick(&all, "content_engagement_rate day 2026-10-05 entity"),
        [
            "content_engagement_rate day 2026-10-05 entity facebook:breakdowns/act_1/ad/a2 - = - (5 / -) ratio consideration"
        ]
    );
}

#[test]
fn coarser_levels_stand_for_finer_ones_above_the_entity() {
    // The account reports itself and its two campaigns; the account scope takes the account
    // row (reach included: one entity), the entity scope keeps every entity.
    let csv = "li,linkedin,508,account,508,2026-10-05,impressions,1500,,
li,linkedin,508,account,508,2026-10-05,clicks,30,,
li,linkedin,508,account,508,2026-10-05,reach,900,,
li,linkedin,508,campaign,c1,2026-10-05,impressions,1000,,
li,linkedin,508,campaign,c1,2026-10-05,clicks,20,,
li,linkedin,508,campaign,c1,2026-10-05,reach,700,,
li,linkedin,508,campaign,c2,2026-10-05,impressions,500,,
li,linkedin,508,campaign,c2,2026-10-05,clicks,10,,
li,linkedin,508,campaign,c2,2026-10-05,reach,400,,
li,linkedin,508,campaign,c2,2026-10-05,likes,9,,
";
    let all = run(csv, Vec::new(), "");
    assert_eq!(
        pick(&all, "ctr day 2026-10-05 account"),
        ["ctr day 2026-10-05 account linkedin:li/508 - = 0.02 (30 / 1500) ratio consideration"]
    );
    assert_eq!(pick(&all, "ctr day 2026-10-05 entity").len(), 3);
    // likes only exist at the campaign level, so that is where the account's likes come from;
    // reach comes from the account row (coarsest level for reach), a single entity: a value.
    assert_eq!(
        pick(&all, "content_engagement_rate day 2026-10-05 account"),
        [
            "content_engagement_rate day 2026-10-05 account linkedin:li/508 - = 0.01 (9 / 900) ratio consideration"
        ]
    );
}

#[test]
fn money_in_two_currencies_of_one_platform_is_split_by_currency() {
    let csv = "li,linkedin,508,campaign,c1,2026-10-05,clicks,20,,
li,linkedin,508,campaign,c1,2026-10-05,spend,50,EUR,
li,linkedin,509,campaign,c9,2026-10-05,clicks,10,,
li,linkedin,509,campaign,c9,2026-10-05,spend,30,GBP,
li,linkedin,510,campaign,c5,2026-10-05,clicks,1000,,
";
    let all = run(csv, Vec::new(), "");
    // Account 510 has clicks but no spend: its clicks belong to no currency.
    assert_eq!(
        pick(&all, "cpc day 2026-10-05 platform"),
        [
            "cpc day 2026-10-05 platform linkedin EUR = 2.5 (50 / 20) currency consideration",
            "cpc day 2026-10-05 platform linkedin GBP = 3 (30 / 10) currency consideration",
        ]
    );
    // A KPI without money is one row over the whole platform.
    assert_eq!(
        pick(&all, "conversion_rate day 2026-10-05 platform"),
        Vec::<&str>::new(),
        "no conversions, no row"
    );
}

/// Week and month KPIs over a unique metric take the platform's value for the period (the
/// `metrics_period` table), at the scope it was given for; without one they stay empty, never a
/// sum of days. Days: Monday 2026-10-05 to Sunday 2026-10-11, reach 100 a day for the account
/// and 60 for campaign c1, 10 likes a day on c1; the week's reach is 450 (account) and 300 (c1),
/// October's so far (partial, through 2026-10-11) 460 and 310.
#[test]
fn week_and_month_unique_values_come_from_period_rows_not_from_days() {
    use kpipe_core::{PeriodGrain, PeriodRequest, PeriodRow};

    let dir = tempfile::tempdir().expect("test setup");
    let window = DateWindow::new(day("2026-10-05"), day("2026-10-11")).expect("test setup");
    let mut csv = String::from("source,platform,account,level,entity,date,metric,value,currency,channel\n");
    for d in 5..=11 {
        csv.push_str(&format!("fb,facebook,act_1,account,act_1,2026-10-{d:02},reach,100,,\n"));
        csv.push_str(&format!("fb,facebook,act_1,campaign,c1,2026-10-{d:02},reach,60,,\n"));
        csv.push_str(&format!("fb,facebook,act_1,campaign,c1,2026-10-{d:02},likes,10,,\n"));
    }
    let by_source = rows(&csv);
    let kpis = r#"[reach_rate]
formula = "likes / reach"
stage = "consideration"
"#;
    let defs: std::collections::BTreeMap<String, KpiDefinitionConfig> =
        toml::from_str(kpis).expect("test setup");
    let catalog = Catalog::new(&defs).expect("definitions compile");
    let settings = Settings { grains: vec![Grain::Week, Grain::Month], ..Settings::default() };
    let compute = |with_periods: bool| {
        let sink = kpipe_sink_parquet::ParquetSink::new(dir.path());
        let target = SinkTarget {
            source: "fb".into(),
            window,
            run_id: "r".into(),
            pulled_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).expect("test setup"),
        };
        let mut w = sink.open(target).expect("test setup");
        w.write(&MetricBatch::new(by_source["fb"].clone())).expect("test setup");
        if with_periods {
            let mut period_rows = Vec::new();
            for request in PeriodRequest::for_window(window) {
                let week = request.period.grain == PeriodGrain::Week;
                for (level, entity, value) in [
                    ("account", "act_1", if week { 450 } else { 460 }),
                    ("campaign", "c1", if week { 300 } else { 310 }),
                ] {
                    let mut r = row(entity, None, Metric::Reach, value);
                    r.level = Label::new(level);
                    period_rows.push(PeriodRow::new(request, r));
                }
            }
            w.write_periods(&period_rows).expect("test setup");
        }
        w.commit().expect("test setup");
        let report =
            kpipe_kpi::run(dir.path(), &catalog, &settings, window, "t").expect("the KPI stage runs");
        (lines(&read_kpis(dir.path(), None).expect("KPI files read back")), report.stats.without_period_value)
    };

    let (without, why) = compute(false);
    // The stage says why those values are empty: two entities (the account, c1), a week, a month.
    assert_eq!(why.get("facebook reach week"), Some(&2), "{why:?}");
    assert_eq!(why.get("facebook reach month"), Some(&2), "{why:?}");
    for grain in ["week 2026-10-05", "month 2026-10-01"] {
        for scope in ["entity facebook:fb/act_1/campaign/c1", "account facebook:fb/act_1"] {
            let got = pick(&without, &format!("reach_rate {grain} {scope} "));
            assert_eq!(got.len(), 1, "{without:#?}");
            assert!(got[0].contains(" = - ("), "no period value, no KPI value: {}", got[0]);
        }
    }

    let (with, why) = compute(true);
    assert!(why.is_empty(), "{why:?}");
    let expect = [
        ("week 2026-10-05", "entity facebook:fb/act_1/campaign/c1", "0.233333333333333333 (70 / 300)"),
        ("week 2026-10-05", "account facebook:fb/act_1", "0.155555555555555556 (70 / 450)"),
        ("month 2026-10-01", "entity facebook:fb/act_1/campaign/c1", "0.225806451612903226 (70 / 310)"),
        ("month 2026-10-01", "account facebook:fb/act_1", "0.152173913043478261 (70 / 460)"),
    ];
    for (grain, scope, value) in expect {
        let got = pick(&with, &format!("reach_rate {grain} {scope} "));
        assert_eq!(got.len(), 1, "{with:#?}");
        assert!(got[0].contains(&format!(" = {value} ")), "{} should be {value}", got[0]);
    }
    // The sum of the days (700 for the account) is never used.
    assert!(!with.iter().any(|l| l.contains("/ 700)") || l.contains("/ 420)")), "{with:#?}");
}

/// A period's opening snapshot comes from the stored day before it, or, when that day is not
/// stored (the window starts with the period), from the opening value the connector wrote as a
/// period row: follower growth over a week then has its denominator.
#[test]
fn follower_growth_takes_the_opening_value_of_a_period_row_when_the_day_before_is_not_stored() {
    use kpipe_core::{PeriodGrain, PeriodRequest, PeriodRow};

    let dir = tempfile::tempdir().expect("test setup");
    let window = DateWindow::new(day("2026-10-05"), day("2026-10-11")).expect("test setup");
    let mut csv = String::from("source,platform,account,level,entity,date,metric,value,currency,channel\n");
    for d in 5..=11 {
        csv.push_str(&format!("li,linkedin,o1,organization,o1,2026-10-{d:02},follower_gains,5,,\n"));
        csv.push_str(&format!(
            "li,linkedin,o1,organization,o1,2026-10-{d:02},followers,{},,\n",
            1000 + 5 * (d - 4)
        ));
    }
    let sink = kpipe_sink_parquet::ParquetSink::new(dir.path());
    let target = SinkTarget {
        source: "li".into(),
        window,
        run_id: "r".into(),
        pulled_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).expect("test setup"),
    };
    let mut w = sink.open(target).expect("test setup");
    w.write(&MetricBatch::new(rows(&csv)["li"].clone())).expect("test setup");
    let opening: Vec<PeriodRow> = PeriodRequest::for_window(window)
        .into_iter()
        .filter(|r| r.period.grain == PeriodGrain::Week)
        .map(|request| {
            let mut r = row("o1", None, Metric::Followers, 1000);
            (r.platform, r.account_id, r.level) = ("linkedin".into(), "o1".into(), "organization".into());
            PeriodRow::new(request, r)
        })
        .collect();
    w.write_periods(&opening).expect("test setup");
    w.commit().expect("test setup");
    let defs = std::collections::BTreeMap::new();
    let catalog = Catalog::new(&defs).expect("the built-in catalog");
    let settings = Settings { grains: vec![Grain::Week], ..Settings::default() };
    kpipe_kpi::run(dir.path(), &catalog, &settings, window, "t").expect("the KPI stage runs");
    let all = lines(&read_kpis(dir.path(), None).expect("KPI files read back"));
    for scope in ["entity linkedin:li/o1/organization/o1", "account linkedin:li/o1"] {
        let got = pick(&all, &format!("follower_growth_rate week 2026-10-05 {scope} "));
        assert_eq!(got.len(), 1, "{all:#?}");
        assert!(got[0].contains(" = 0.035 (35 / 1000) "), "{}", got[0]);
    }
}
