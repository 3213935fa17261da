//! Reports beyond the conformance window: custom reports mapped through the vocabulary, revenue
//! in a requested currency, reports of many pages, and `check` against the property's metadata.
//! Shapes: `shared/apis/ga4.md` §2 (request, `currencyCode`), §3 (typed string values), §5
//! (offset paging with `rowCount`), §1 (`getMetadata`).

mod common;

use kpipe_core::{DateWindow, Decimal, ErrorKind, Metric};
use kpipe_sim::SimServer;
use kpipe_sim::platform::ga4::{Ga4Api, ReportQuery};
use kpipe_testkit::{RowKey, Totals, pull};

use common::{PRIVATE_KEY, build, day, expected, key_file, sim_config, source_table};

const SEED: u64 = 23;
const PROPERTIES: [&str; 2] = ["123456789", "987654321"];

async fn start(api: &Ga4Api) -> SimServer {
    SimServer::start(sim_config(SEED, api.clone())).await.expect("the simulator")
}

fn table(sim: &SimServer, extra: &str) -> toml::Table {
    let key = key_file(sim, PRIVATE_KEY, "reports");
    let mut table = source_table(sim, &PROPERTIES, &key);
    let extra: toml::Table = toml::from_str(extra).expect("a table");
    table.extend(extra);
    table
}

fn window(from: &str, to: &str) -> DateWindow {
    DateWindow::new(day(from), day(to)).expect("a window")
}

const DEVICES: &str = r#"
[[reports]]
name = "devices"
dimensions = ["deviceCategory", "countryId"]
metrics = ["sessions", "totalUsers", "engagementRate", "averageSessionDuration"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_reports_are_mapped_through_the_vocabulary() {
    let api = Ga4Api::default();
    let sim = start(&api).await;
    let days = window("2026-02-10", "2026-02-12");
    let pulled = pull(build(table(&sim, DEVICES)).as_ref(), days).await;
    pulled.expect_ok("custom report");
    let mut want = Totals::new();
    let names = [
        "users",
        "sessions",
        "google_analytics.engagement_rate",
        "google_analytics.average_session_duration",
    ];
    for property in PROPERTIES {
        let query = ReportQuery::new(
            days.start(),
            days.end(),
            &["date", "deviceCategory", "countryId"],
            &["sessions", "totalUsers", "engagementRate", "averageSessionDuration"],
        );
        for row in api.report(SEED, property, &query).expect("a report").rows {
            let date = chrono::NaiveDate::parse_from_str(&row.dimensions[0], "%Y%m%d").expect("a date");
            let dims = format!("country={},device={}", row.dimensions[2], row.dimensions[1]);
            for (metric, text) in [names[1], names[0], names[2], names[3]].iter().zip(&row.metrics) {
                let key = RowKey {
                    account_id: property.into(),
                    level: "devices".into(),
                    entity_id: property.into(),
                    date,
                    dimensions: dims.clone(),
                    metric: (*metric).into(),
                    currency: None,
                };
                want.insert(key, text.parse::<Decimal>().expect("a number"));
            }
        }
    }
    let devices: Vec<_> = pulled.rows.iter().filter(|r| r.level.as_str() == "devices").cloned().collect();
    Totals::from_rows(&devices).expect("no duplicates").assert_eq(&want, "custom report");
    let units: Vec<_> =
        devices.iter().take(4).map(|r| (r.metric.as_str().to_owned(), r.unit().as_str())).collect();
    assert_eq!(
        units,
        [
            ("sessions".to_owned(), "count"),
            ("users".to_owned(), "count"),
            ("google_analytics.engagement_rate".to_owned(), "ratio"),
            ("google_analytics.average_session_duration".to_owned(), "seconds"),
        ]
    );
    // The built-in reports are still there, exact.
    let builtin: Vec<_> = pulled.rows.iter().filter(|r| r.level.as_str() != "devices").cloned().collect();
    Totals::from_rows(&builtin)
        .expect("no duplicates")
        .assert_eq(&expected(&api, SEED, days, &PROPERTIES), "built-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_comes_in_the_requested_currency() {
    let api = Ga4Api::default();
    let sim = start(&api).await;
    let days = window("2026-02-10", "2026-02-11");
    let pulled = pull(build(table(&sim, r#"currency_code = "GBP""#)).as_ref(), days).await;
    pulled.expect_ok("currency");
    let revenue: Vec<_> =
        pulled.rows.iter().filter(|r| r.metric.as_str() == Metric::Revenue.name()).collect();
    assert!(!revenue.is_empty());
    assert!(revenue.iter().all(|r| r.currency.map(|c| c.to_string()).as_deref() == Some("GBP")));
    for property in PROPERTIES {
        let mut query = ReportQuery::new(days.start(), days.end(), &["date"], &["purchaseRevenue"]);
        query.currency = Some("GBP".into());
        for row in api.report(SEED, property, &query).expect("a report").rows {
            let date = chrono::NaiveDate::parse_from_str(&row.dimensions[0], "%Y%m%d").expect("a date");
            let written = revenue
                .iter()
                .find(|r| {
                    r.account_id.as_str() == property && r.level.as_str() == "property" && r.date == date
                })
                .map(|r| r.value);
            assert_eq!(written, Some(row.metrics[0].parse().expect("money")), "{property} {date}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_many_pages_is_read_whole_and_requests_stay_few() {
    let api = Ga4Api::default();
    let days = window("2026-01-01", "2026-03-31");
    let want = expected(&api, SEED, days, &PROPERTIES);

    // 90 days of 9 traffic sources are 810 rows per property: four pages of 250.
    let sim = start(&api).await;
    let pulled = pull(build(table(&sim, "page_size = 250\ndays_per_request = 90")).as_ref(), days).await;
    pulled.expect_ok("many pages");
    pulled.totals().assert_eq(&want, "many pages");
    let telemetry = pulled.telemetry.as_ref().expect("counters");
    // Per property: one batch of the three reports, then the traffic report's three further
    // pages and the returning-users report's (180 rows) none. And the periods: 14 weeks and 3
    // months, 5 groups of date ranges, 4 period reports each (at most 72 rows, one page): 20
    // reports in 4 batches.
    assert_eq!(sim.requests_for("/v1beta/properties/123456789:runReport"), 3);
    assert_eq!(sim.requests_for("/v1beta/properties/123456789:batchRunReports"), 1 + 4);
    assert_eq!(telemetry.requests, 2 * (1 + 3 + 4));

    // With the default page size, the same window is one request per property and 31 days,
    // and the same 4 for the periods.
    let sim = start(&api).await;
    let pulled = pull(build(table(&sim, "")).as_ref(), days).await;
    pulled.expect_ok("default pages");
    pulled.totals().assert_eq(&want, "default pages");
    let requests = pulled.telemetry.as_ref().expect("counters").requests;
    assert_eq!(requests, 2 * (3 + 4), "{requests} requests");
    let rows = pulled.rows.len() + pulled.period_rows.len();
    let per_row = requests as f64 / rows as f64;
    eprintln!(
        "{requests} requests for {} day rows and {} period rows: {per_row:.5} requests per row",
        pulled.rows.len(),
        pulled.period_rows.len()
    );
    assert!(per_row < 0.0015, "{per_row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_custom_reports_against_the_property_metadata() {
    let api = Ga4Api::default();
    let sim = start(&api).await;
    let source = build(table(&sim, DEVICES));
    assert_eq!(
        source.check().await.expect("check"),
        "2 property(ies) readable: 123456789, 987654321; custom reports valid: devices"
    );
    let typo = DEVICES.replace("averageSessionDuration", "averageSessionDurations");
    let error = build(table(&sim, &typo)).check().await.expect_err("an unknown metric");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("averageSessionDurations"), "{error}");
}
