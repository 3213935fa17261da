//! Properties over random additive data (a seeded generator, many seeds):
//!
//! - a KPI over any period and scope is the ratio of the summed components (ratio of sums, not a
//!   mean of ratios), rounded half to even, with those sums as its numerator and denominator;
//! - splitting a week into its days, or a scope into its parts, and adding the numerators and
//!   denominators back gives the week's (the scope's) numerator and denominator;
//! - the stage, which reads stored sources one at a time (and during a run as each commits),
//!   writes exactly the rows of one pass over every source's rows together.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use kpipe_core::{Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricRow};
use kpipe_kpi::{Catalog, Computation, Grain, KpiRow, RowRef, Scope, Settings, StageFeed, read_kpis};
use kpipe_sink_parquet::Storage;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One entity-day of generated data: clicks, impressions, spend in cents.
#[derive(Debug, Clone)]
struct Obs {
    source: &'static str,
    platform: &'static str,
    account: &'static str,
    entity: String,
    date: NaiveDate,
    clicks: i128,
    impressions: i128,
    cents: i128,
}

const ENTITIES: [(&str, &str, &str, usize); 3] =
    [("li", "linkedin", "508", 4), ("li_emea", "linkedin", "509", 2), ("fb", "facebook", "act_1", 3)];

fn generate(seed: u64) -> Vec<Obs> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let first = NaiveDate::from_ymd_opt(2026, 9, 20).expect("test setup");
    let mut out = Vec::new();
    for d in 0..35 {
        let date = first + Days::new(d);
        for (source, platform, account, n) in ENTITIES {
            for e in 0..n {
                if rng.below(10) < 3 {
                    continue; // no row that day
                }
                let impressions = if rng.below(12) == 0 { 0 } else { rng.below(5000) as i128 };
                let clicks = if impressions == 0 { 0 } else { rng.below(200) as i128 };
                out.push(Obs {
                    source,
                    platform,
                    account,
                    entity: format!("{account}-{e}"),
                    date,
                    clicks,
                    impressions,
                    cents: rng.below(100_000) as i128,
                });
            }
        }
    }
    out
}

fn metric_rows(o: &Obs) -> Vec<MetricRow> {
    let row = |metric: Metric, value: Decimal, currency: Option<Currency>| MetricRow {
        platform: o.platform.into(),
        account_id: o.account.into(),
        level: "campaign".into(),
        entity_id: Label::new(&o.entity),
        entity_name: None,
        date: o.date,
        dimensions: Dimensions::default(),
        metric: metric.into(),
        value,
        currency,
    };
    let count = |v: i128| Decimal::from_units(v * 1_000_000_000_000_000_000).expect("test setup");
    vec![
        row(Metric::Clicks, count(o.clicks), None),
        row(Metric::Impressions, count(o.impressions), None),
        row(
            Metric::Spend,
            Decimal::from_units(o.cents * 10_000_000_000_000_000).expect("test setup"),
            Currency::parse("EUR"),
        ),
    ]
}

fn compute(data: &[Obs], window: DateWindow) -> Vec<KpiRow> {
    let catalog = Catalog::builtin();
    let settings = Settings::default();
    let mut c = Computation::new(&catalog, &settings, window);
    let mut by_day: BTreeMap<NaiveDate, Vec<&Obs>> = BTreeMap::new();
    for o in data {
        by_day.entry(o.date).or_default().push(o);
    }
    let mut periods = Vec::new();
    for (date, obs) in by_day {
        if c.begin_day(date, &mut periods).expect("days in order") {
            for o in obs {
                for r in metric_rows(o) {
                    c.add_row(o.source, &RowRef::from_row(&r));
                }
            }
        }
    }
    periods.extend(c.finish());
    periods.into_iter().flat_map(|p| p.rows).collect()
}

/// `n / d` in units of 10^-18, rounded half to even: the test's own division.
fn ratio_units(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    let twice = 2 * r;
    if twice > d || (twice == d && q % 2 == 1) { q + 1 } else { q }
}

/// The periods of `grain` containing `date`.
fn period_start(grain: Grain, date: NaiveDate) -> NaiveDate {
    match grain {
        Grain::Day => date,
        Grain::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
        Grain::Month => date.with_day(1).expect("test setup"),
    }
}

type Key = (String, Grain, NaiveDate, Scope, String);

/// Per (grain, period, scope, who): summed clicks, impressions, cents.
type Sums = BTreeMap<(Grain, NaiveDate, Scope, String), (i128, i128, i128)>;

fn who(scope: Scope, o: &Obs) -> String {
    match scope {
        Scope::Entity => format!("{}/{}", o.source, o.entity),
        Scope::Account => format!("{}/{}", o.source, o.account),
        Scope::Platform => o.platform.to_owned(),
        Scope::All => "*".to_owned(),
    }
}

fn row_who(r: &KpiRow) -> String {
    let s = |l: &Option<Label>| l.as_deref().unwrap_or("").to_owned();
    match r.scope {
        Scope::Entity => format!("{}/{}", s(&r.source), s(&r.entity_id)),
        Scope::Account => format!("{}/{}", s(&r.source), s(&r.account_id)),
        Scope::Platform => s(&r.platform),
        Scope::All => "*".to_owned(),
    }
}

#[test]
fn kpis_are_ratios_of_sums_and_recombine() {
    let window = DateWindow::new(
        NaiveDate::from_ymd_opt(2026, 9, 28).unwrap(),
        NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
    )
    .unwrap();
    for seed in 1..=25u64 {
        let data = generate(seed);
        let rows = compute(&data, window);

        // The sums, straight from the generated data.
        let mut sums = Sums::new();
        for o in &data {
            for grain in Grain::ALL {
                let start = period_start(grain, o.date);
                let touched = match grain {
                    Grain::Day => window.contains(o.date),
                    _ => start <= window.end() && period_start(grain, window.start()) <= start,
                };
                if !touched {
                    continue;
                }
                for scope in Scope::ALL {
                    let s = sums.entry((grain, start, scope, who(scope, o))).or_default();
                    s.0 += o.clicks;
                    s.1 += o.impressions;
                    s.2 += o.cents;
                }
            }
        }
        let mut by_key: BTreeMap<Key, &KpiRow> = BTreeMap::new();
        for r in &rows {
            let k = (r.kpi.to_string(), r.grain, r.period_start, r.scope, row_who(r));
            assert!(by_key.insert(k.clone(), r).is_none(), "seed {seed}: {k:?} twice");
        }
        let units = |d: Option<Decimal>| d.map(|d| d.units());
        const ONE: i128 = 1_000_000_000_000_000_000;
        for ((grain, start, scope, who), (clicks, impressions, cents)) in &sums {
            let get = |kpi: &str| {
                by_key
                    .get(&(kpi.to_owned(), *grain, *start, *scope, who.clone()))
                    .unwrap_or_else(|| panic!("seed {seed}: no {kpi} {grain} {start} {scope} {who}"))
            };
            let ctr = get("ctr");
            assert_eq!(units(ctr.numerator), Some(clicks * ONE), "seed {seed}");
            assert_eq!(units(ctr.denominator), Some(impressions * ONE), "seed {seed}");
            let want = (*impressions != 0).then(|| ratio_units(clicks * ONE, *impressions));
            assert_eq!(units(ctr.value), want, "seed {seed}: ctr {grain} {start} {scope} {who}");

            let cpc = get("cpc");
            assert_eq!(cpc.currency.map(|c| c.to_string()).as_deref(), Some("EUR"));
            assert_eq!(units(cpc.numerator), Some(cents * 10_000_000_000_000_000));
            let want = (*clicks != 0).then(|| ratio_units(cents * 10_000_000_000_000_000, *clicks));
            assert_eq!(units(cpc.value), want, "seed {seed}: cpc {grain} {start} {scope} {who}");

            let cpm = get("cpm");
            assert_eq!(units(cpm.numerator), Some(cents * 10_000_000_000_000_000_000));
            let want =
                (*impressions != 0).then(|| ratio_units(cents * 10_000_000_000_000_000_000, *impressions));
            assert_eq!(units(cpm.value), want, "seed {seed}: cpm {grain} {start} {scope} {who}");
        }
        // No row without data behind it.
        let ctr_rows = rows.iter().filter(|r| r.kpi.as_str() == "ctr").count();
        assert_eq!(ctr_rows, sums.len(), "seed {seed}");

        // Splitting the week 2026-09-28 (all its days are in the window) into days, and every
        // scope into its parts, recombines exactly.
        let week = NaiveDate::from_ymd_opt(2026, 9, 28).unwrap();
        for kpi in ["ctr", "cpc", "cpm", "brand_awareness"] {
            let parts = |f: &dyn Fn(&KpiRow) -> bool| -> (i128, i128) {
                rows.iter()
                    .filter(|r| r.kpi.as_str() == kpi && f(r))
                    .map(|r| (units(r.numerator).unwrap_or(0), units(r.denominator).unwrap_or(0)))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            };
            for scope in Scope::ALL {
                let whole = parts(&|r| r.grain == Grain::Week && r.period_start == week && r.scope == scope);
                let days = parts(&|r| {
                    r.grain == Grain::Day
                        && r.period_start >= week
                        && r.period_start < week + Days::new(7)
                        && r.scope == scope
                });
                assert_eq!(whole, days, "seed {seed}: {kpi} {scope}: the week is not the sum of its days");
            }
            for grain in Grain::ALL {
                let total = |scope: Scope| parts(&|r| r.grain == grain && r.scope == scope);
                assert_eq!(total(Scope::Entity), total(Scope::Account), "seed {seed}: {kpi} {grain}");
                assert_eq!(total(Scope::Account), total(Scope::Platform), "seed {seed}: {kpi} {grain}");
                assert_eq!(total(Scope::Platform), total(Scope::All), "seed {seed}: {kpi} {grain}");
            }
        }
    }
}

#[test]
fn days_must_come_in_order() {
    let catalog = Catalog::builtin();
    let settings = Settings::default();
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let mut c =
        Computation::new(&catalog, &settings, DateWindow::new(d("2026-10-05"), d("2026-10-06")).unwrap());
    let mut out = Vec::new();
    assert!(c.begin_day(d("2026-10-06"), &mut out).unwrap());
    assert!(c.begin_day(d("2026-10-05"), &mut out).is_err());
    assert!(!c.begin_day(d("2027-01-01"), &mut out).unwrap(), "outside the periods: not needed");
}

fn stored(data: &[Obs]) -> (tempfile::TempDir, DateWindow) {
    let dir = tempfile::tempdir().expect("test setup");
    let mut by_source: BTreeMap<String, Vec<MetricRow>> = BTreeMap::new();
    for o in data {
        by_source.entry(o.source.to_owned()).or_default().extend(metric_rows(o));
    }
    let first = data.iter().map(|o| o.date).min().expect("test setup");
    let last = data.iter().map(|o| o.date).max().expect("test setup");
    let window = DateWindow::new(first, last).expect("test setup");
    common::store(dir.path(), &by_source, window);
    (dir, window)
}

#[test]
fn the_stage_source_by_source_writes_what_one_pass_over_all_computes() {
    for seed in 1..=4 {
        let data = generate(seed);
        let (dir, window) = stored(&data);
        // Three sources, two of them on one platform: the platform and all-platforms scopes
        // add up accounts of several sources.
        let report = kpipe_kpi::run(dir.path(), &Catalog::builtin(), &Settings::default(), window, "t")
            .expect("the stage runs");
        let written = common::lines(&read_kpis(dir.path(), None).expect("readable"));
        let one_pass = common::lines(&compute(&data, window));
        assert_eq!(report.commit.rows as usize, written.len());
        assert!(written.iter().any(|l| l.contains(" platform linkedin ")), "seed {seed}: {written:?}");
        assert_eq!(written, one_pass, "seed {seed}");
    }
}

#[test]
fn a_stage_fed_as_sources_finish_writes_the_same_rows() {
    let data = generate(7);
    let (dir, window) = stored(&data);
    let (catalog, settings) = (Catalog::builtin(), Settings::default());
    kpipe_kpi::run(dir.path(), &catalog, &settings, window, "whole").expect("the stage runs");
    let whole = common::lines(&read_kpis(dir.path(), None).expect("readable"));

    // `fb` is stored and not pulled: read at once. `li` is named done; `li_emea` and a source
    // that never wrote anything are left to the finish.
    let pulling = ["li", "li_emea", "never_wrote"].map(str::to_owned).to_vec();
    let storage = Storage::local(dir.path());
    let feed =
        StageFeed::start(storage.clone(), catalog.clone(), settings.clone(), window, "fed".into(), pulling)
            .expect("started");
    feed.source_done("li");
    feed.source_done("li");
    let report = feed.finish().expect("the stage runs");
    let fed = common::lines(&read_kpis(dir.path(), None).expect("readable"));
    assert_eq!(fed, whole);
    assert_eq!(report.commit.rows as usize, fed.len());
    assert_eq!(report.stats.rows_read as usize, data.len() * 3, "every stored row read once");

    // Dropped before its finish (a stopped run): nothing is published, nothing staged is left.
    std::fs::remove_dir_all(dir.path().join("kpis")).expect("test setup");
    let feed = StageFeed::start(storage, catalog, settings, window, "stopped".into(), vec!["li".into()])
        .expect("started");
    feed.source_done("li");
    drop(feed);
    assert!(read_kpis(dir.path(), None).expect("readable").is_empty());
    let staging = dir.path().join(".kpipe/staging");
    let left: Vec<_> =
        walk(&staging).into_iter().filter(|p| p.to_string_lossy().contains("stopped")).collect();
    assert!(left.is_empty(), "{left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
