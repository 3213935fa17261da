//! What the test binaries share: a small simulated portal, source tables pointing at the
//! simulator, and the simulator's truth as testkit totals.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use chrono::NaiveDate;
use kpipe_core::{DateWindow, Decimal};
use kpipe_sim::SimServer;
use kpipe_sim::platform::hubspot::{Form, HubSpotApi, MarketingEmail, TruthOptions};
use kpipe_testkit::{RowKey, Totals};

/// A private app's token the simulator accepts (`AuthConfig::static_tokens`).
pub const PRIVATE_APP_TOKEN: &str = "pat-na1-7c1e2d3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f";

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

/// A portal with a fortnight of records around October 2026: every stream has data in
/// 2026-10-01..=2026-10-03, a form is created in the middle of it, and nothing exists in 2019.
pub fn small_portal() -> HubSpotApi {
    HubSpotApi {
        first_day: day("2026-09-20"),
        last_day: day("2026-10-05"),
        contacts_per_day: (4, 8),
        deals_per_day: (4, 7),
        responses_per_day: (1, 3),
        forms: vec![
            Form {
                guid: "4e5d1a3c-8f2b-4c7d-9a61-2b3c4d5e6f70".into(),
                name: "Newsletter Sign-up".into(),
                created: day("2026-09-01"),
                per_day: (0, 3),
            },
            Form {
                guid: "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e".into(),
                name: "Webinar Registration".into(),
                created: day("2026-10-02"),
                per_day: (1, 3),
            },
        ],
        emails: vec![
            MarketingEmail {
                id: 187_000_000_101,
                name: "September Newsletter".into(),
                published: day("2026-09-29"),
                recipients: 1_200,
                active_days: 6,
            },
            MarketingEmail {
                id: 187_000_000_118,
                name: "Webinar Invitation".into(),
                published: day("2026-10-02"),
                recipients: 800,
                active_days: 6,
            },
        ],
        ..HubSpotApi::default()
    }
}

/// An OAuth app's source table against `sim` (the default token path of `auth_config`).
pub fn oauth_table(sim: &SimServer) -> toml::Table {
    toml::from_str(&format!(
        r#"
        client_id = "sim-client"
        client_secret = "sim-secret"
        refresh_token = "sim-refresh-token"
        base_url = "{}"
        token_url = "{}"
        "#,
        sim.base_url(),
        sim.token_url()
    ))
    .expect("a table")
}

/// A private app's source table against `sim`.
pub fn private_app_table(sim: &SimServer) -> toml::Table {
    toml::from_str(&format!(
        r#"
        access_token = "{PRIVATE_APP_TOKEN}"
        base_url = "{}"
        "#,
        sim.base_url()
    ))
    .expect("a table")
}

/// The rows the simulator's records add up to, keyed like the rows a source writes.
pub fn expected(api: &HubSpotApi, seed: u64, window: DateWindow, options: &TruthOptions) -> Totals {
    let mut totals = Totals::new();
    let portal = api.portal.id.to_string();
    for row in api.expected_rows(seed, window.start(), window.end(), options) {
        let mut key =
            RowKey::new(&portal, row.level, &row.entity_id, row.date, row.metric, row.currency.as_deref());
        if let Some(channel) = &row.channel {
            key.dimensions = format!("channel={channel}");
        }
        totals.insert(key, row.value.parse::<Decimal>().expect("the simulator's numbers parse"));
    }
    totals
}

/// The keys of `totals` at one of `levels`.
pub fn only(totals: &Totals, levels: &[&str]) -> Totals {
    let mut out = Totals::new();
    for (key, value) in totals.iter().filter(|(k, _)| levels.contains(&k.level.as_str())) {
        out.insert(key.clone(), *value);
    }
    out
}
