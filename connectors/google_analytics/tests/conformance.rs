//! The conformance suite against the simulator's Analytics Data API v1beta
//! (`kpipe_sim::platform::ga4`), whose answers follow `shared/apis/ga4.md`: `RunReportResponse`
//! with every value a string typed by `metricHeaders` (§3), `batchRunReports` (§4), offset/limit
//! paging with `rowCount` (§5), Google's error envelope and 429 `RESOURCE_EXHAUSTED` quota
//! errors without `Retry-After` (§6), and the JWT bearer grant of a service-account key (§7).

mod common;

use kpipe_core::{ConnectorFactory, DateWindow};
use kpipe_sim::platform::ga4::{self, Ga4Api};
use kpipe_sim::{Fault, QuotaRule, SimConfig, SimServer};
use kpipe_testkit::{Auth, Harness, Setup, Totals};
use serde_json::json;

use common::{PRIVATE_KEY, day, expected, key_file, sim_config, source_table};

const PROPERTIES: [&str; 2] = ["123456789", "987654321"];

struct Ga4Harness;

impl Harness for Ga4Harness {
    fn factory(&self) -> ConnectorFactory {
        kpipe_connector_google_analytics::factory()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        sim_config(seed, Ga4Api::default())
    }

    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table {
        let key = key_file(sim, PRIVATE_KEY, "conformance");
        let mut table = source_table(sim, &PROPERTIES, &key);
        if let Some(size) = setup.page_size {
            table.insert("page_size".into(), toml::Value::Integer(i64::from(size)));
        }
        table
    }

    fn auth(&self) -> Auth {
        Auth::Refreshable
    }

    fn window(&self) -> DateWindow {
        DateWindow::new(day("2026-10-01"), day("2026-10-03")).expect("a window")
    }

    fn empty_window(&self) -> DateWindow {
        DateWindow::new(day("2019-06-01"), day("2019-06-07")).expect("a window")
    }

    fn expected(&self, seed: u64, window: DateWindow) -> Totals {
        expected(&Ga4Api::default(), seed, window, &PROPERTIES)
    }

    fn data_path(&self) -> &str {
        "/v1beta/properties"
    }

    /// GA4's short-term refusal: too many requests of the property in flight (no `Retry-After`,
    /// notes §6).
    fn throttled(&self, _seconds: u64) -> Fault {
        Fault::Respond(ga4::concurrent_requests_exhausted())
    }

    fn daily_cap(&self, limit: u64) -> Option<QuotaRule> {
        Some(ga4::daily_quota(limit))
    }

    /// The first request is a `batchRunReports` of the three built-in reports (notes §4); its
    /// traffic report holds one row whose `sessions` is not a number.
    fn malformed_elements(&self, _sim: &SimServer) -> Option<Fault> {
        let metrics = json!([
            {"name": "sessions", "type": "TYPE_INTEGER"}, {"name": "engagedSessions", "type": "TYPE_INTEGER"},
            {"name": "userEngagementDuration", "type": "TYPE_SECONDS"},
            {"name": "screenPageViews", "type": "TYPE_INTEGER"},
            {"name": "keyEvents", "type": "TYPE_FLOAT"}, {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"},
            {"name": "newUsers", "type": "TYPE_INTEGER"}
        ]);
        let row = |sessions: &str| {
            json!({"dimensionValues": [{"value": "20261001"}, {"value": "Direct"},
                                       {"value": "(direct)"}, {"value": "(none)"}],
                   "metricValues": [{"value": sessions}, {"value": "3"}, {"value": "120"}, {"value": "9"},
                                    {"value": "1"}, {"value": "19.99"}, {"value": "2"}]})
        };
        let metadata = json!({"currencyCode": "USD", "timeZone": "America/Los_Angeles"});
        let empty = |dimensions: serde_json::Value, metrics: serde_json::Value| {
            json!({"dimensionHeaders": dimensions, "metricHeaders": metrics, "metadata": metadata,
                   "kind": "analyticsData#runReport"})
        };
        let mut totals = metrics.as_array().cloned().unwrap_or_default();
        totals.push(json!({"name": "totalUsers", "type": "TYPE_INTEGER"}));
        Some(Fault::respond(
            200,
            json!({"reports": [
                {"dimensionHeaders": [{"name": "date"}, {"name": "sessionDefaultChannelGroup"},
                                      {"name": "sessionSource"}, {"name": "sessionMedium"}],
                 "metricHeaders": metrics, "rows": [row("12"), row("n/a")], "rowCount": 2,
                 "metadata": metadata, "kind": "analyticsData#runReport"},
                empty(json!([{"name": "date"}]), json!(totals)),
                empty(
                    json!([{"name": "date"}, {"name": "newVsReturning"}]),
                    json!([{"name": "totalUsers", "type": "TYPE_INTEGER"}])
                )
            ], "kind": "analyticsData#batchRunReports"}),
        ))
    }

    /// The private key's lines: none may appear in a log line or an error.
    fn secrets(&self, _sim: &SimServer) -> Vec<String> {
        PRIVATE_KEY.lines().filter(|l| !l.starts_with("-----")).take(3).map(str::to_owned).collect()
    }
}

kpipe_testkit::conformance_suite!(Ga4Harness);
