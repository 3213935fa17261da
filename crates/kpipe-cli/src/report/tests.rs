//! The report's model and page from hand-made rows: currencies apart, hostile names escaped.

use std::collections::BTreeMap;

use kpipe_core::{Currency, Decimal, Label, NaiveDate, Unit};
use kpipe_kpi::{Grain, KpiRow, Scope, Stage};

use super::data::{CampaignSpend, MetricTotals, Window};
use super::model::{Charts, KpiInput, Slot};
use super::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap_or_default()
}

fn window() -> Window {
    Window {
        from: day(1),
        to: day(28),
        files: vec![
            (Grain::Week, day(5), "kpis/week.2026-10-05.parquet".into()),
            (Grain::Week, day(12), "kpis/week.2026-10-12.parquet".into()),
            (Grain::Month, day(1), "kpis/month.2026-10-01.parquet".into()),
        ],
    }
}

fn cpc(
    grain: Grain,
    start: NaiveDate,
    platform: Option<&str>,
    currency: &str,
    spend: i64,
    clicks: i64,
) -> KpiRow {
    KpiRow {
        kpi: Label::new("cpc"),
        grain,
        period_start: start,
        period_end: grain.period_end(start),
        scope: if platform.is_some() { Scope::Platform } else { Scope::All },
        platform: platform.map(Label::new),
        source: None,
        account_id: None,
        level: None,
        entity_id: None,
        value: (clicks != 0).then(|| Decimal::from_i64(spend / clicks)),
        numerator: Some(Decimal::from_i64(spend)),
        denominator: Some(Decimal::from_i64(clicks)),
        unit: Unit::Currency,
        currency: Currency::parse(currency),
        stage: Stage::Consideration,
    }
}

#[test]
fn kpis_in_two_currencies_get_a_section_and_charts_each() {
    let rows = vec![
        cpc(Grain::Week, day(5), Some("linkedin"), "EUR", 300, 100),
        cpc(Grain::Week, day(12), Some("linkedin"), "EUR", 400, 100),
        cpc(Grain::Week, day(5), Some("facebook"), "USD", 50, 25),
        cpc(Grain::Week, day(12), Some("facebook"), "USD", 80, 0),
        cpc(Grain::Month, day(1), Some("facebook"), "USD", 130, 25),
    ];
    let catalog = kpipe_kpi::Catalog::builtin();
    let groups = group_by_kpi(&rows, &catalog);
    assert_eq!(
        groups.iter().map(|(n, c, r)| (n.as_str(), c.as_deref(), r.len())).collect::<Vec<_>>(),
        [("cpc", Some("EUR"), 2), ("cpc", Some("USD"), 3)]
    );
    let platforms = vec!["facebook".to_owned(), "linkedin".to_owned()];
    let mut charts = Charts::default();
    let mut sections = Vec::new();
    for (name, currency, rows) in &groups {
        let input = KpiInput {
            name,
            description: "",
            formula: Some("spend / clicks"),
            currency: currency.as_deref(),
            rows: rows.clone(),
        };
        sections.extend(model::kpi_section(&input, &platforms, &window(), &mut charts));
    }
    let ids: Vec<&str> = charts.all().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "kpi-cpc-EUR-week",
            "kpi-cpc-EUR-platforms",
            "kpi-cpc-USD-week",
            "kpi-cpc-USD-month",
            "kpi-cpc-USD-platforms"
        ]
    );
    for chart in charts.all() {
        let code = if chart.id.contains("EUR") { "EUR" } else { "USD" };
        assert_eq!(chart.currency.as_deref(), Some(code), "{}", chart.id);
        let platform = if code == "EUR" { "linkedin" } else { "facebook" };
        assert!(chart.datasets.iter().all(|s| s.label == platform || s.label.contains("20")), "{chart:?}");
    }
    // The zero denominator of facebook's second week is explained, with the denominator named.
    let usd = &sections[1];
    assert_eq!(usd.notes.list(), ["no value: zero denominator (clicks = 0)"]);
    let eur = &sections[0];
    let linkedin = eur.rows.iter().find(|r| r.series == "linkedin").and_then(|r| r.week.clone());
    let change = linkedin.and_then(|c| c.change).map(|c| (c.absolute, c.relative));
    assert_eq!(change, Some(("+1.00 EUR".to_owned(), Some("+33.3%".to_owned()))));
}

fn money(totals: &mut MetricTotals, platform: &str, currency: &str, campaign: &str, amount: i64) {
    let key = (platform.to_owned(), currency.to_owned());
    let entry =
        totals.by_platform.entry((key.0.clone(), "spend".to_owned(), Some(key.1.clone()))).or_default();
    *entry = entry.checked_add(Decimal::from_i64(amount)).unwrap_or_default();
    totals
        .spend_by_week
        .insert((currency.to_owned(), platform.to_owned(), day(5)), Decimal::from_i64(amount));
    totals.campaigns.insert(
        (platform.to_owned(), "ads".into(), "1".into(), format!("c-{currency}"), currency.to_owned()),
        CampaignSpend { name: Some(campaign.to_owned()), spend: Decimal::from_i64(amount) },
    );
}

fn report(metrics: &MetricTotals, charts: &mut Charts) -> Report {
    let platforms = vec!["facebook".to_owned(), "linkedin".to_owned()];
    Report {
        output: "/data/<out>".into(),
        format: "parquet",
        from: day(1),
        to: day(28),
        weeks: 1,
        months: 1,
        generated_at: "now".into(),
        report_currency: None,
        kpi_rows: 0,
        metric_rows: 0,
        metric_files: 0,
        kpis: Vec::new(),
        journey: sections::journey(metrics, &[], charts),
        social: sections::social(metrics, &[], &platforms, charts),
        money: sections::money(metrics, &BTreeMap::new(), &platforms, &window(), charts),
        charts: Charts::default(),
    }
}

#[test]
fn spend_in_two_currencies_is_never_added() {
    let mut totals = MetricTotals::default();
    money(&mut totals, "linkedin", "EUR", "Brand", 700);
    money(&mut totals, "facebook", "USD", "Leads", 300);
    let mut charts = Charts::default();
    let r = report(&totals, &mut charts);
    let blocks: Vec<(&str, &str)> =
        r.money.currencies.iter().map(|c| (c.currency.as_str(), c.total.as_str())).collect();
    assert_eq!(blocks, [("EUR", "700.00 EUR"), ("USD", "300.00 USD")]);
    let ids: Vec<&str> = charts.all().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "spend-EUR-platforms",
            "spend-EUR-weeks",
            "spend-EUR-campaigns",
            "spend-USD-platforms",
            "spend-USD-weeks",
            "spend-USD-campaigns"
        ]
    );
    for chart in charts.all() {
        let code = &chart.id[6..9];
        assert_eq!(chart.currency.as_deref(), Some(code));
        let total: f64 = chart.datasets.iter().flat_map(|s| s.data.iter().flatten()).sum();
        assert_eq!(total, if code == "EUR" { 700.0 } else { 300.0 }, "{}", chart.id);
    }
    // Without revenue, ROI is explained rather than shown as -100%.
    let campaign = &r.money.currencies[0].campaigns[0];
    assert!(matches!(&campaign.roi, model::Shown::Empty { reason, .. } if reason.contains("no revenue")));
    assert!(matches!(r.social.chart, Slot::Empty { .. }));
}

#[test]
fn hostile_names_cannot_break_out_of_the_page() {
    let hostile = "</script><img src=x onerror=alert(1)>";
    let mut totals = MetricTotals::default();
    money(&mut totals, "linkedin", "EUR", hostile, 10);
    totals.reps.insert(
        ("linkedin".into(), "rep".into()),
        data::RepCounts { name: Some(format!("{hostile}<b>")), counts: [Decimal::from_i64(3); 4] },
    );
    let mut charts = Charts::default();
    let mut r = report(&totals, &mut charts);
    r.charts = charts;
    let page = html::page(&r);
    assert!(!page.contains("<img"), "an entity name became markup");
    assert_eq!(page.matches("</script>").count(), 3, "only the three script elements close");
    assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("\\u003c/script\\u003e\\u003cimg"), "the name is in the data blob, escaped");
    assert!(page.contains("<code>/data/&lt;out&gt;</code>"));
    // Every canvas says how many datasets it was given.
    for chart in r.charts.all() {
        let canvas = format!(
            "id=\"{}\" data-chart=\"{}\" data-series=\"{}\"",
            chart.id,
            chart.id,
            chart.datasets.len()
        );
        assert!(page.contains(&canvas), "{canvas}");
    }
}
