//! The conformance suite against the simulator's Example Ads API
//! (`kpipe_sim::platform::example`), whose responses follow that API's documented shapes:
//! report rows with numbers as strings, a cursor in `paging.next_cursor`, the
//! `{"error":{"code","message"}}` envelope, 429 `RATE_LIMITED` with `Retry-After` and
//! `DAILY_QUOTA_EXCEEDED` without it.

use std::sync::Arc;

use chrono::NaiveDate;
use kpipe_core::{ConnectorFactory, DateWindow, Decimal, Metric};
use kpipe_sim::platform::example::{self, ExampleAds};
use kpipe_sim::{AuthConfig, Fault, QuotaRule, SimConfig, SimServer};
use kpipe_testkit::{Auth, Harness, RowKey, Setup, Totals};

struct TemplateHarness;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn api() -> ExampleAds {
    ExampleAds::default()
}

impl Harness for TemplateHarness {
    fn factory(&self) -> ConnectorFactory {
        kpipe_connector_template::factory()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig::new(seed).with_auth(AuthConfig::required()).with_platform(Arc::new(api()))
    }

    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table {
        let mut table: toml::Table = toml::from_str(&format!(
            r#"
            account_ids = ["1001", "1002"]
            client_id = "sim-client"
            client_secret = "sim-secret"
            refresh_token = "sim-refresh-token"
            base_url = "{}"
            token_url = "{}"
            "#,
            sim.base_url(),
            sim.token_url()
        ))
        .expect("a table");
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
        let api = api();
        let mut totals = Totals::new();
        for (account, currency) in &api.accounts {
            for row in api.report(seed, account, window.start(), window.end()) {
                let date = day(&row.date);
                for (metric, value, currency) in [
                    (Metric::Impressions, &row.impressions, None),
                    (Metric::Clicks, &row.clicks, None),
                    (Metric::Spend, &row.spend, Some(currency.as_str())),
                ] {
                    let key =
                        RowKey::new(account, "campaign", &row.campaign_id, date, metric.name(), currency);
                    totals.insert(key, value.parse::<Decimal>().expect("the simulator's numbers parse"));
                }
            }
        }
        totals
    }

    fn data_path(&self) -> &str {
        "/example/v1/reports"
    }

    fn throttled(&self, seconds: u64) -> Fault {
        Fault::Respond(example::rate_limited(seconds))
    }

    fn daily_cap(&self, limit: u64) -> Option<QuotaRule> {
        Some(example::daily_quota(limit))
    }

    fn malformed_elements(&self, _sim: &SimServer) -> Option<Fault> {
        Some(Fault::respond(
            200,
            serde_json::json!({"data": [
                {"date": "2026-10-01", "campaign_id": "1001-1", "impressions": "12", "clicks": "3", "spend": "1.5"},
                {"date": "2026-10-01", "campaign_id": "1001-2", "impressions": "n/a", "clicks": "3", "spend": "1.5"}
            ], "paging": {}}),
        ))
    }

    fn secrets(&self, _sim: &SimServer) -> Vec<String> {
        vec!["sim-secret".into(), "sim-refresh-token".into()]
    }
}

kpipe_testkit::conformance_suite!(TemplateHarness);
