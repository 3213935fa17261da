//! The golden test: a hand-built metrics dataset (`golden/metrics.csv`: LinkedIn ads in EUR and
//! organic, Facebook in USD, HubSpot, GA4 channels, a social-selling log and a survey; days on
//! both sides of a month end inside one ISO week; zero denominators; reach, users and followers)
//! and every KPI row the stage must write for it (`golden/expected.txt`), all 28 catalog KPIs at
//! the day, week and month grains and the entity, account, platform and all scopes.
//!
//! The expected rows were worked out from the rules of docs/kpis.md and docs/schema.md ("KPI output")
//! by `golden/expected.py`, a separate implementation that shares no code with the crate; the
//! values are literal decimals. A few of them, by hand:
//!
//! - `follower_growth_rate week 2026-09-28`: follower gains 10 + 20 + 2 over the followers of
//!   Sunday 2026-09-27 (1000) = 0.032; the month of September has no starting value (no
//!   2026-08-31), so its value is null with the numerator kept;
//! - `cpc` over all platforms is one row per currency: EUR (LinkedIn) and USD (Facebook), never a
//!   sum of both;
//! - `ctr` of campaign c2 on 2026-09-30 divides 0 clicks by 0 impressions: a row with a null value;
//! - `returning_visitor_rate` of the GA4 property: users are unique, so the property-level row
//!   (220) is the account's value on 2026-09-30 and nothing else is (two channels cannot be
//!   summed); no week or month value.

mod common;

use common::{day, lines, rows, store};
use kpipe_core::DateWindow;
use kpipe_kpi::{Catalog, Grain, KpiSettingsConfig, Scope, Settings, read_kpis};

const METRICS: &str = include_str!("golden/metrics.csv");
const EXPECTED: &str = include_str!("golden/expected.txt");

fn stored() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("test setup");
    let window = DateWindow::new(day("2026-09-27"), day("2026-10-02")).expect("test setup");
    store(dir.path(), &rows(METRICS), window);
    dir
}

fn compare(got: &[String], want: &[&str]) {
    let missing: Vec<&&str> = want.iter().filter(|w| !got.iter().any(|g| g == **w)).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(&g.as_str())).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected row(s) missing:\n{}\n{} unexpected row(s):\n{}",
        missing.len(),
        missing.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
        extra.len(),
        extra.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(got.len(), want.len(), "duplicate rows");
}

#[test]
fn every_catalog_kpi_at_every_grain_and_scope() {
    let dir = stored();
    let window = DateWindow::new(day("2026-09-30"), day("2026-10-01")).unwrap();
    let report =
        kpipe_kpi::run(dir.path(), &Catalog::builtin(), &Settings::default(), window, "golden").unwrap();
    // The week 2026-09-28 and the months of September and October, whole: from the day before
    // the earliest period to the end of the latest.
    assert_eq!(report.read_window, DateWindow::new(day("2026-08-31"), day("2026-10-31")).unwrap());
    assert_eq!(report.commit.periods_written, 5, "{report:?}");

    let got = lines(&read_kpis(dir.path(), None).unwrap());
    let want: Vec<&str> = EXPECTED.lines().filter(|l| !l.is_empty()).collect();
    compare(&got, &want);

    // The expectation covers the whole catalog at every grain and scope.
    for def in Catalog::builtin().definitions() {
        for grain in Grain::ALL {
            for scope in Scope::ALL {
                let prefix = format!("{} {grain} ", def.name);
                assert!(
                    want.iter()
                        .any(|l| l.starts_with(&prefix) && l.split(' ').nth(3) == Some(scope.as_str())),
                    "{} has no {grain} {scope} row",
                    def.name
                );
            }
        }
    }

    // One file per grain and period, where docs/schema.md says.
    for (grain, period) in [
        ("day", "2026-09-30"),
        ("day", "2026-10-01"),
        ("week", "2026-09-28"),
        ("month", "2026-09-01"),
        ("month", "2026-10-01"),
    ] {
        let file = dir.path().join(format!("kpis/{grain}.{period}.parquet"));
        assert!(file.is_file(), "{}", file.display());
    }
    assert!(!dir.path().join(".kpipe/staging/kpis").exists());
}

/// With `report_currency = "USD"` and `EUR = "1.08"`, money is converted before it is summed:
/// one row per scope, and a blended KPI over LinkedIn and Facebook spend and HubSpot leads.
#[test]
fn converted_currencies_and_a_blended_kpi() {
    let dir = stored();
    let settings: KpiSettingsConfig =
        toml::from_str("report_currency = \"USD\"\n[currency_rates]\nEUR = \"1.08\"\n").unwrap();
    let settings = Settings::from_config(&settings).unwrap();
    let user = toml::from_str(
        "[blended_cpl]\nformula = \"spend[platform = 'linkedin' | 'facebook'] / leads[platform = 'hubspot']\"\nstage = \"decision\"\n",
    )
    .unwrap();
    let catalog = Catalog::new(&user).unwrap();
    let window = DateWindow::new(day("2026-09-30"), day("2026-10-01")).unwrap();
    kpipe_kpi::run(dir.path(), &catalog, &settings, window, "rates").unwrap();
    let rows = read_kpis(dir.path(), None).unwrap();
    assert!(rows.iter().all(|r| r.currency.is_none_or(|c| c.as_str() == "USD")));
    let got: Vec<String> = lines(&rows)
        .into_iter()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            ["blended_cpl", "cpc", "roas"].contains(&f[0]) && ["account", "platform", "all"].contains(&f[3])
        })
        .collect();
    compare(&got, &EXPECTED_CONVERTED);
}

/// Worked out like `golden/expected.txt`, with EUR amounts times 1.08.
const EXPECTED_CONVERTED: [&str; 45] = [
    "blended_cpl day 2026-09-30 all * USD = 21.211666666666666667 (254.54 / 12) currency decision",
    "blended_cpl day 2026-10-01 all * USD = 33.7129166515 (269.703333212 / 8) currency decision",
    "blended_cpl month 2026-09-01 all * USD = 21.661666666666666667 (259.94 / 12) currency decision",
    "blended_cpl month 2026-10-01 all * USD = 35.0629166515 (280.503333212 / 8) currency decision",
    "blended_cpl week 2026-09-28 all * USD = 26.7521666606 (535.043333212 / 20) currency decision",
    "cpc day 2026-09-30 account facebook:fb/act_1 USD = 2 (200 / 100) currency consideration",
    "cpc day 2026-09-30 account linkedin:li_ads/508 USD = 2.727 (54.54 / 20) currency consideration",
    "cpc day 2026-09-30 all * USD = 2.121166666666666667 (254.54 / 120) currency consideration",
    "cpc day 2026-09-30 platform facebook USD = 2 (200 / 100) currency consideration",
    "cpc day 2026-09-30 platform linkedin USD = 2.727 (54.54 / 20) currency consideration",
    "cpc day 2026-10-01 account facebook:fb/act_1 USD = 2.005555555555555556 (180.5 / 90) currency consideration",
    "cpc day 2026-10-01 account linkedin:li_ads/508 USD = 2.347456137157894737 (89.203333212 / 38) currency consideration",
    "cpc day 2026-10-01 all * USD = 2.10705729071875 (269.703333212 / 128) currency consideration",
    "cpc day 2026-10-01 platform facebook USD = 2.005555555555555556 (180.5 / 90) currency consideration",
    "cpc day 2026-10-01 platform linkedin USD = 2.347456137157894737 (89.203333212 / 38) currency consideration",
    "cpc month 2026-09-01 account facebook:fb/act_1 USD = 2 (200 / 100) currency consideration",
    "cpc month 2026-09-01 account linkedin:li_ads/508 USD = 2.60608695652173913 (59.94 / 23) currency consideration",
    "cpc month 2026-09-01 all * USD = 2.113333333333333333 (259.94 / 123) currency consideration",
    "cpc month 2026-09-01 platform facebook USD = 2 (200 / 100) currency consideration",
    "cpc month 2026-09-01 platform linkedin USD = 2.60608695652173913 (59.94 / 23) currency consideration",
    "cpc month 2026-10-01 account facebook:fb/act_1 USD = 2.005555555555555556 (180.5 / 90) currency consideration",
    "cpc month 2026-10-01 account linkedin:li_ads/508 USD = 2.325658911906976744 (100.003333212 / 43) currency consideration",
    "cpc month 2026-10-01 all * USD = 2.109047618135338346 (280.503333212 / 133) currency consideration",
    "cpc month 2026-10-01 platform facebook USD = 2.005555555555555556 (180.5 / 90) currency consideration",
    "cpc month 2026-10-01 platform linkedin USD = 2.325658911906976744 (100.003333212 / 43) currency consideration",
    "cpc week 2026-09-28 account facebook:fb/act_1 USD = 2.002631578947368421 (380.5 / 190) currency consideration",
    "cpc week 2026-09-28 account linkedin:li_ads/508 USD = 2.453068781142857143 (154.543333212 / 63) currency consideration",
    "cpc week 2026-09-28 all * USD = 2.114795783446640316 (535.043333212 / 253) currency consideration",
    "cpc week 2026-09-28 platform facebook USD = 2.002631578947368421 (380.5 / 190) currency consideration",
    "cpc week 2026-09-28 platform linkedin USD = 2.453068781142857143 (154.543333212 / 63) currency consideration",
    "roas day 2026-09-30 account facebook:fb/act_1 USD = 2.25125 (450.25 / 200) ratio decision",
    "roas day 2026-09-30 all * USD = 8.55759409130195647 (2178.25 / 254.54) ratio decision",
    "roas day 2026-09-30 platform facebook USD = 2.25125 (450.25 / 200) ratio decision",
    "roas day 2026-10-01 account facebook:fb/act_1 USD = 1.662049861495844875 (300 / 180.5) ratio decision",
    "roas day 2026-10-01 all * USD = 4.719296513104304644 (1272.81 / 269.703333212) ratio decision",
    "roas day 2026-10-01 platform facebook USD = 1.662049861495844875 (300 / 180.5) ratio decision",
    "roas month 2026-09-01 account facebook:fb/act_1 USD = 2.25125 (450.25 / 200) ratio decision",
    "roas month 2026-09-01 all * USD = 8.379818419635300454 (2178.25 / 259.94) ratio decision",
    "roas month 2026-09-01 platform facebook USD = 2.25125 (450.25 / 200) ratio decision",
    "roas month 2026-10-01 account facebook:fb/act_1 USD = 1.662049861495844875 (300 / 180.5) ratio decision",
    "roas month 2026-10-01 all * USD = 4.53759313811087676 (1272.81 / 280.503333212) ratio decision",
    "roas month 2026-10-01 platform facebook USD = 1.662049861495844875 (300 / 180.5) ratio decision",
    "roas week 2026-09-28 account facebook:fb/act_1 USD = 1.971747700394218134 (750.25 / 380.5) ratio decision",
    "roas week 2026-09-28 all * USD = 6.450057006191287154 (3451.06 / 535.043333212) ratio decision",
    "roas week 2026-09-28 platform facebook USD = 1.971747700394218134 (750.25 / 380.5) ratio decision",
];
