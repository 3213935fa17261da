//! CRM search past its 10,000-result ceiling (§3): the simulator answers 400 to any page past
//! the 10,000th result of a query, so a window of more modified records is only complete if the
//! source restarts its query below the ceiling, and only free of duplicates if it skips what the
//! restart returns again.

use kpipe_sim::platform::hubspot::{HubSpotApi, TruthOptions};
use serde_json::Value;

use crate::common::{self, day};
use crate::{SEED, pull, start_api, window, with};

/// About 10,900 contacts created in one week.
fn crowded(modified_granularity_ms: i64, bulk_modified_at: Option<i64>) -> HubSpotApi {
    HubSpotApi {
        first_day: day("2026-10-01"),
        last_day: day("2026-10-07"),
        contacts_per_day: (1_500, 1_600),
        modified_granularity_ms,
        bulk_modified_at,
        ..HubSpotApi::default()
    }
}

fn filters(call: &Value) -> Vec<(String, String, String)> {
    call["filterGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["filters"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("propertyName"), text("operator"), text("value"))
        })
        .collect()
}

async fn pull_crowded(api: &HubSpotApi) -> (kpipe_testkit::Pulled, u64) {
    let sim = start_api(api).await;
    // A fast search limit keeps the test quick; the 5 per second limit is tested elsewhere.
    let table = with(
        common::oauth_table(&sim),
        r#"
        streams = ["contacts"]
        rate_limit = { requests = 1000, per_seconds = 1 }
        search_rate_limit = { requests = 1000, per_seconds = 1 }
        "#,
    );
    let pulled = pull(table, window("2026-10-01", "2026-10-07")).await;
    (pulled, sim.requests_for("/crm/v3/objects/contacts/search"))
}

fn assert_complete(api: &HubSpotApi, pulled: &kpipe_testkit::Pulled) {
    pulled.expect_ok("crowded search");
    assert!(pulled.quarantined.is_empty(), "{:?}", pulled.quarantined.first());
    let window = window("2026-10-01", "2026-10-07");
    let created = api.dataset(SEED).contacts.len() as u64;
    assert!(created > 10_000, "the window must hold more than a query returns: {created}");
    // Duplicates would count a contact twice, gaps would miss it: the sums say neither happened.
    let totals = pulled.totals();
    let counted: i128 = totals
        .iter()
        .filter(|(k, _)| k.metric == "hubspot.contacts_created")
        .map(|(_, v)| v.units() / kpipe_core::Decimal::from_i64(1).units())
        .sum();
    assert_eq!(counted, i128::from(created));
    let expected = common::expected(api, SEED, window, &TruthOptions::default());
    totals.assert_eq(&common::only(&expected, &["account"]), "crowded search");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_more_than_ten_thousand_modified_records_is_pulled_whole() {
    // Last-modified times to the hour: many contacts share the instant a restart begins at.
    let api = crowded(3_600_000, None);
    let (pulled, requests) = pull_crowded(&api).await;
    assert_complete(&api, &pulled);
    let calls = api.search_calls();
    assert_eq!(calls.len() as u64, requests);
    assert!(calls.iter().all(|c| c.status == 200), "a page past the ceiling was asked for");
    let restarts: Vec<_> = calls
        .iter()
        .filter(|c| filters(&c.body).iter().any(|(p, op, _)| p == "lastmodifieddate" && op == "GTE"))
        .filter(|c| c.body["after"] == "0")
        .collect();
    assert!(!restarts.is_empty(), "the query was never restarted below the ceiling");
    // Every query stays within the ceiling: at most 50 pages of 200 before a restart.
    assert!(calls.iter().all(|c| c.body["after"].as_str().unwrap_or("0").parse::<u64>().unwrap() <= 9_800));
    assert_eq!(calls[0].body["sorts"][0]["propertyName"], "lastmodifieddate");
    assert_eq!(calls[0].body["limit"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_records_at_one_instant_than_a_query_returns_are_read_by_id() {
    // A bulk update touched every contact at the same millisecond.
    let api = crowded(1, Some(1_792_000_000_000));
    let (pulled, _) = pull_crowded(&api).await;
    assert_complete(&api, &pulled);
    let calls = api.search_calls();
    assert!(calls.iter().all(|c| c.status == 200));
    assert!(
        calls.iter().any(|c| filters(&c.body).iter().any(|(p, op, _)| p == "hs_object_id" && op == "GT")),
        "the records of the crowded instant were not paged by id"
    );
    assert!(calls.iter().any(|c| c.body["sorts"][0]["propertyName"] == "hs_object_id"));
}
