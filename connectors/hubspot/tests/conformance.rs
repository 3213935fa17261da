//! The conformance suite against the simulated HubSpot API (`kpipe_sim::platform::hubspot`),
//! authenticated as an OAuth app (refresh token at `/oauth/v1/token`, §7 of
//! `shared/apis/hubspot.md`). Its responses follow the notes: CRM search results with string
//! property values (§2, §3), forms and newest-first submissions (§6), email statistics (§4),
//! 429 bodies with `policyName` (`TEN_SECONDLY_ROLLING` with `Retry-After`, `DAILY` without)
//! and the `{"status":"error",..}` envelope (§8).

use std::sync::Arc;

use kpipe_core::{ConnectorFactory, DateWindow, Decimal};
use kpipe_sim::platform::hubspot::{self, TruthOptions};
use kpipe_sim::{Fault, QuotaRule, SimConfig, SimServer};
use kpipe_testkit::{Auth, Harness, RowKey, Setup, Totals};

mod common;

struct HubSpotHarness;

impl Harness for HubSpotHarness {
    fn factory(&self) -> ConnectorFactory {
        kpipe_connector_hubspot::factory()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig::new(seed).with_auth(hubspot::auth_config()).with_platform(Arc::new(common::small_portal()))
    }

    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table {
        let mut table = common::oauth_table(sim);
        if let Some(size) = setup.page_size {
            table.insert("page_size".into(), toml::Value::Integer(i64::from(size)));
        }
        table
    }

    fn auth(&self) -> Auth {
        Auth::Refreshable
    }

    fn window(&self) -> DateWindow {
        DateWindow::new(common::day("2026-10-01"), common::day("2026-10-03")).expect("a window")
    }

    fn empty_window(&self) -> DateWindow {
        DateWindow::new(common::day("2019-06-01"), common::day("2019-06-07")).expect("a window")
    }

    fn expected(&self, seed: u64, window: DateWindow) -> Totals {
        common::expected(&common::small_portal(), seed, window, &TruthOptions::default())
    }

    fn data_path(&self) -> &str {
        "/crm/v3/objects"
    }

    fn throttled(&self, seconds: u64) -> Fault {
        Fault::Respond(hubspot::throttled(seconds))
    }

    fn daily_cap(&self, limit: u64) -> Option<QuotaRule> {
        Some(hubspot::daily_quota(limit))
    }

    fn malformed_elements(&self, _sim: &SimServer) -> Option<Fault> {
        // A contacts search page (§3) whose second record has a `createdate` that is no date.
        Some(Fault::respond(
            200,
            serde_json::json!({"total": 2, "results": [
                {"id": "1001", "archived": false,
                 "createdAt": "2026-10-01T15:00:00.000Z", "updatedAt": "2026-10-02T15:00:00.000Z",
                 "properties": {"createdate": "2026-10-01T15:00:00.000Z", "hs_object_id": "1001",
                                "lastmodifieddate": "2026-10-02T15:00:00.000Z", "lifecyclestage": "lead",
                                "hs_analytics_source": "PAID_SOCIAL"}},
                {"id": "1002", "archived": false,
                 "createdAt": "2026-10-01T16:00:00.000Z", "updatedAt": "2026-10-02T16:00:00.000Z",
                 "properties": {"createdate": "not a date", "hs_object_id": "1002",
                                "lastmodifieddate": "2026-10-02T16:00:00.000Z", "lifecyclestage": "lead"}}]}),
        ))
    }

    fn secrets(&self, _sim: &SimServer) -> Vec<String> {
        vec!["sim-secret".into(), "sim-refresh-token".into()]
    }
}

kpipe_testkit::conformance_suite!(HubSpotHarness);

#[test]
fn the_harness_window_holds_every_stream() {
    let totals = HubSpotHarness.expected(kpipe_testkit::suite::SEED, HubSpotHarness.window());
    let metrics = totals.by_metric();
    for metric in [
        "leads",
        "hubspot.contacts_created",
        "deals_created",
        "deals_won",
        "revenue",
        "form_submissions",
        "emails_delivered",
        "emails_opened",
        "emails_clicked",
        "nps_promoters",
        "nps_detractors",
        "csat_satisfied",
        "survey_responses",
    ] {
        assert!(metrics.get(metric).is_some_and(|v| *v > Decimal::ZERO), "{metric} is empty: {metrics:?}");
    }
    let keys: Vec<RowKey> = totals.iter().map(|(k, _)| k.clone()).collect();
    assert!(keys.iter().any(|k| k.dimensions.starts_with("channel=")));
    assert!(keys.iter().any(|k| k.currency.is_some()));
}
