//! What the tests share: the simulator with Google's token endpoint (JWT bearer grant verified
//! with the test key pair of `kpipe-sim/tests/fixtures`), service-account key files, and the
//! rows the simulator's own data says a pull must write.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use kpipe_core::{Decimal, Metric};
use kpipe_sim::platform::ga4::{self, Ga4Api, ReportQuery};
use kpipe_sim::{JwtBearerConfig, SimConfig, SimServer};
use kpipe_testkit::{RowKey, Totals};

/// The service account the simulator accepts assertions from.
pub const CLIENT_EMAIL: &str = "kpipe-reader@kpipe-test.iam.gserviceaccount.com";

/// The private key of the test key pair (it protects nothing but the simulator).
pub const PRIVATE_KEY: &str =
    include_str!("../../../../crates/kpipe-sim/tests/fixtures/test-service-account-key.pem");

/// Its public key, which the simulator verifies assertions with.
pub const PUBLIC_KEY: &str =
    include_str!("../../../../crates/kpipe-sim/tests/fixtures/test-service-account-key.pub.pem");

/// Another RSA key, which the simulator does not know.
pub const OTHER_PRIVATE_KEY: &str = include_str!("../fixtures/other-service-account-key.pem");

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

/// The simulator serving `api`, with Google's token endpoint.
pub fn sim_config(seed: u64, api: Ga4Api) -> SimConfig {
    SimConfig::new(seed)
        .with_auth(ga4::auth_config(JwtBearerConfig::new(PUBLIC_KEY, CLIENT_EMAIL)))
        .with_platform(Arc::new(api))
}

/// Writes a service account's JSON key file (the shape Google's console downloads) whose
/// `token_uri` is the simulator's, and returns its path.
pub fn key_file(sim: &SimServer, private_key: &str, name: &str) -> PathBuf {
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "kpipe-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": sim.token_url(),
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ga4-keys");
    std::fs::create_dir_all(&dir).expect("a key directory");
    let path = dir.join(format!("{name}-{}.json", sim.addr().port()));
    std::fs::write(&path, key.to_string()).expect("a key file");
    path
}

/// The source table pointing at `sim` with a key file, without `type`.
pub fn source_table(sim: &SimServer, properties: &[&str], key: &std::path::Path) -> toml::Table {
    let mut table = toml::Table::new();
    let ids = properties.iter().map(|p| toml::Value::String((*p).to_owned())).collect();
    table.insert("property_ids".into(), toml::Value::Array(ids));
    table.insert("credentials_file".into(), toml::Value::String(key.display().to_string()));
    table.insert("base_url".into(), toml::Value::String(sim.base_url().to_owned()));
    table
}

/// GA4 metrics of the built-in reports and the canonical metric of each (the mapping table of
/// the README).
pub const TRAFFIC_METRICS: [(&str, Metric); 7] = [
    ("sessions", Metric::Sessions),
    ("engagedSessions", Metric::EngagedSessions),
    ("userEngagementDuration", Metric::SessionDurationSeconds),
    ("screenPageViews", Metric::PageViews),
    ("keyEvents", Metric::Conversions),
    ("purchaseRevenue", Metric::Revenue),
    ("newUsers", Metric::NewUsers),
];

fn key(
    property: &str,
    level: &str,
    entity: &str,
    date: NaiveDate,
    dims: String,
    metric: Metric,
    currency: &str,
) -> RowKey {
    let currency = (metric == Metric::Revenue).then(|| currency.to_owned());
    RowKey {
        account_id: property.to_owned(),
        level: level.to_owned(),
        entity_id: entity.to_owned(),
        date,
        dimensions: dims,
        metric: metric.name().to_owned(),
        currency,
    }
}

fn value(text: &str) -> Decimal {
    text.parse().expect("the simulator's numbers parse")
}

fn ga4_date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y%m%d").expect("a GA4 date")
}

/// The rows of the built-in reports for `window`, from the simulator's own data: traffic by
/// channel and source / medium, property totals with `totalUsers` per day, returning users.
pub fn expected(api: &Ga4Api, seed: u64, window: kpipe_core::DateWindow, properties: &[&str]) -> Totals {
    let mut totals = Totals::new();
    let names: Vec<&str> = TRAFFIC_METRICS.iter().map(|(n, _)| *n).collect();
    for property in properties {
        let currency = api.property(property).expect("a simulated property").currency.clone();
        let report = |dims: &[&str], metrics: &[&str]| {
            api.report(seed, property, &ReportQuery::new(window.start(), window.end(), dims, metrics))
                .expect("a report")
        };
        let traffic =
            report(&["date", "sessionDefaultChannelGroup", "sessionSource", "sessionMedium"], &names);
        for row in &traffic.rows {
            let d = &row.dimensions;
            let dims = format!("channel={},source_medium={} / {}", d[1], d[2], d[3]);
            for ((_, metric), text) in TRAFFIC_METRICS.iter().zip(&row.metrics) {
                totals.insert(
                    key(property, "channel", &d[1], ga4_date(&d[0]), dims.clone(), *metric, &currency),
                    value(text),
                );
            }
        }
        let mut with_users = names.clone();
        with_users.push("totalUsers");
        let daily = report(&["date"], &with_users);
        let metrics: Vec<Metric> = TRAFFIC_METRICS.iter().map(|(_, m)| *m).chain([Metric::Users]).collect();
        for row in &daily.rows {
            for (metric, text) in metrics.iter().zip(&row.metrics) {
                let k = key(
                    property,
                    "property",
                    property,
                    ga4_date(&row.dimensions[0]),
                    String::new(),
                    *metric,
                    &currency,
                );
                totals.insert(k, value(text));
            }
        }
        for row in report(&["date", "newVsReturning"], &["totalUsers"]).rows {
            if row.dimensions[1] == "returning" {
                let date = ga4_date(&row.dimensions[0]);
                let k = key(
                    property,
                    "property",
                    property,
                    date,
                    String::new(),
                    Metric::ReturningUsers,
                    &currency,
                );
                totals.insert(k, value(&row.metrics[0]));
            }
        }
    }
    totals
}

/// The retry settings of the tests: short waits.
pub fn with_fast_retries(mut table: toml::Table) -> toml::Table {
    let retry: toml::Table =
        toml::from_str("max_attempts = 4\nbase_delay_ms = 5\nmax_delay_ms = 50").expect("a table");
    table.insert("retry".into(), toml::Value::Table(retry));
    table
}

/// The source `table` configures, built as `kpipe run` builds it.
pub fn build(table: toml::Table) -> Box<dyn kpipe_core::DynSource> {
    let cx = kpipe_core::BuildContext { source_name: "ga4".into(), config_dir: std::env::temp_dir() };
    match kpipe_connector_google_analytics::factory().build(with_fast_retries(table), &cx) {
        Ok(source) => source,
        Err(e) => panic!("the source cannot be built: {e}"),
    }
}

/// The same, as the concrete type (to give it another clock).
pub fn build_typed(table: toml::Table) -> kpipe_connector_google_analytics::GoogleAnalyticsSource {
    use kpipe_core::Source;
    let config: kpipe_connector_google_analytics::GoogleAnalyticsConfig =
        toml::Value::Table(with_fast_retries(table)).try_into().expect("a configuration");
    let cx = kpipe_core::BuildContext { source_name: "ga4".into(), config_dir: std::env::temp_dir() };
    kpipe_connector_google_analytics::GoogleAnalyticsSource::build(config, &cx).expect("a source")
}
