//! Records that cannot be counted, and the counting of survey answers. Deals and survey responses
//! follow §2-§3 (every property value a string).

use kpipe_core::Decimal;
use kpipe_sim::platform::hubspot::{HubSpotApi, POISONED_AMOUNT, TruthOptions};
use kpipe_sim::{Fault, FaultRule};
use serde_json::json;

use crate::common::{self, day, small_portal};
use crate::{SEED, pull, sim_config, start, start_api, window, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_amount_quarantines_its_deal_and_the_page_goes_on() {
    let api = HubSpotApi { poisoned_deal_days: vec![day("2026-10-02")], ..small_portal() };
    let sim = start_api(&api).await;
    let table = with(common::oauth_table(&sim), r#"streams = ["deals"]"#);
    let window = window("2026-10-01", "2026-10-03");
    let pulled = pull(table, window).await;
    pulled.expect_ok("poisoned amount");
    let poisoned = api.poisoned_deals(SEED, window.start(), window.end());
    assert_eq!(poisoned.len(), 1);
    assert_eq!(pulled.quarantined.len(), 1, "{:?}", pulled.quarantined);
    let record = &pulled.quarantined[0];
    assert_eq!(record.stream, "deals");
    assert!(
        record.reason.contains(POISONED_AMOUNT) && record.reason.contains("not a number"),
        "{}",
        record.reason
    );
    assert!(record.raw.contains(&format!("\"id\":\"{}\"", poisoned[0])), "{}", record.raw);
    assert!(record.location.contains(&format!("record {}", poisoned[0])), "{}", record.location);
    // The other deals of that page (one page holds the whole window) are all counted.
    assert_eq!(sim.requests_for("/crm/v3/objects/deals/search"), 1);
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    pulled.totals().assert_eq(&common::only(&expected, &["deal_pipeline"]), "poisoned amount");
    let created: Decimal = pulled
        .rows
        .iter()
        .filter(|r| r.metric.as_str() == "deals_created")
        .fold(Decimal::ZERO, |sum, r| sum.checked_add(r.value).unwrap());
    assert!(created > Decimal::from_i64(5), "the other deals of the page were dropped: {created}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nps_scores_zero_to_ten_are_bucketed_into_the_three_counts() {
    // One survey-response search page (§3) with one response for every score from 0 to 10.
    let results: Vec<_> = (0..=10)
        .map(|score| {
            json!({"id": format!("{}", 9_100 + score), "archived": false,
                   "createdAt": "2026-10-02T15:00:00.000Z", "updatedAt": "2026-10-02T15:00:00.000Z",
                   "properties": {"hs_createdate": "2026-10-02T15:00:00.000Z",
                                  "hs_lastmodifieddate": format!("2026-10-02T15:00:{score:02}.000Z"),
                                  "hs_object_id": format!("{}", 9_100 + score), "hs_survey_id": "3101",
                                  "hs_survey_name": "Customer NPS", "hs_survey_type": "NPS",
                                  "hs_value": score.to_string(), "hs_response_group": null}})
        })
        .collect();
    let page = Fault::respond(200, json!({"total": 11, "results": results}));
    let api = small_portal();
    let config = sim_config(&api, kpipe_sim::platform::hubspot::auth_config())
        .with_fault(FaultRule::on_request(1, page).on_path("/crm/v3/objects/feedback_submissions/search"));
    let sim = start(config).await;
    let table = with(common::oauth_table(&sim), r#"streams = ["feedback"]"#);
    let pulled = pull(table, window("2026-10-02", "2026-10-02")).await;
    pulled.expect_ok("nps");
    let value = |metric: &str| {
        pulled
            .rows
            .iter()
            .find(|r| r.metric.as_str() == metric && r.entity_id.as_str() == "3101")
            .map(|r| r.value.to_string())
    };
    assert_eq!(value("nps_promoters").as_deref(), Some("2"));
    assert_eq!(value("nps_passives").as_deref(), Some("2"));
    assert_eq!(value("nps_detractors").as_deref(), Some("7"));
    assert_eq!(value("survey_responses").as_deref(), Some("11"));
    let row = pulled.rows.iter().find(|r| r.metric.as_str() == "nps_promoters").unwrap();
    assert_eq!((row.level.as_str(), row.entity_name.as_deref()), ("survey", Some("Customer NPS")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_keeps_each_deals_currency() {
    // A month of the default portal: some deals are in the portal's second currency.
    let api =
        HubSpotApi { first_day: day("2026-09-01"), last_day: day("2026-10-31"), ..HubSpotApi::default() };
    let sim = start_api(&api).await;
    let table = with(common::oauth_table(&sim), r#"streams = ["deals"]"#);
    let window = window("2026-10-01", "2026-10-31");
    let pulled = pull(table, window).await;
    pulled.expect_ok("currencies");
    let currencies: std::collections::BTreeSet<&str> =
        pulled.rows.iter().filter_map(|r| r.currency.as_ref().map(|c| c.as_str())).collect();
    assert_eq!(currencies.into_iter().collect::<Vec<_>>(), ["EUR", "USD"]);
    let expected = common::expected(&api, SEED, window, &TruthOptions::default());
    pulled.totals().assert_eq(&common::only(&expected, &["deal_pipeline"]), "currencies");
}
