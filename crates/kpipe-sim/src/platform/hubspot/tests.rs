//! The simulated HubSpot API over real sockets. Shapes follow `shared/apis/hubspot.md`: §2 for
//! CRM objects (string property values), §3 for search (body, paging, the 10,000 ceiling), §4
//! for email statistics, §6 for forms and submissions, §7 for OAuth, §8 for rate-limit headers
//! and error envelopes; account details follow developers.hubspot.com's account information API.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::*;
use crate::{SimConfig, SimServer};

const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn small() -> HubSpotApi {
    HubSpotApi {
        first_day: day("2026-10-01"),
        last_day: day("2026-10-10"),
        private_app_tokens: vec![TOKEN.to_owned()],
        ..HubSpotApi::default()
    }
}

async fn start(api: HubSpotApi) -> SimServer {
    let auth = crate::AuthConfig { static_tokens: vec![TOKEN.to_owned()], ..auth_config() };
    SimServer::start(SimConfig::new(3).with_auth(auth).with_platform(Arc::new(api))).await.unwrap()
}

async fn get(sim: &SimServer, path: &str) -> (u16, http::HeaderMap, Value) {
    let response = client().get(sim.url(path)).bearer_auth(TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

async fn search(sim: &SimServer, object: &str, body: Value) -> (u16, http::HeaderMap, Value) {
    let url = sim.url(&format!("/crm/v3/objects/{object}/search"));
    let response = client().post(url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn window_filters(property: &str, since: &str, until: &str, portal: &Portal) -> Value {
    let ms = |d: &str| portal.day_start_ms(day(d)).to_string();
    json!([{"filters": [
        {"propertyName": property, "operator": "GTE", "value": ms(since)},
        {"propertyName": property, "operator": "LT", "value": ms(until)}]}])
}

#[tokio::test]
async fn account_details_give_the_portal_its_zone_and_currency() {
    let sim = start(small()).await;
    let (status, headers, body) = get(&sim, "/account-info/v3/details").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["portalId"], 24_839_204);
    assert_eq!(body["timeZone"], "US/Eastern");
    // The offset in force now: -05:00, or -04:00 on daylight saving time.
    let minutes = small().portal.offset_minutes_at(chrono::Utc::now().timestamp_millis());
    assert!(minutes == -300 || minutes == -240, "{minutes}");
    assert_eq!(body["utcOffset"], format!("-0{}:00", -minutes / 60));
    assert_eq!(body["utcOffsetMilliseconds"], i64::from(minutes) * 60_000);
    assert_eq!(body["companyCurrency"], "USD");
    // A private-app token sees the burst and the daily headers (§8).
    assert_eq!(headers["x-hubspot-ratelimit-max"], "190");
    assert_eq!(headers["x-hubspot-ratelimit-remaining"], "189");
    assert_eq!(headers["x-hubspot-ratelimit-interval-milliseconds"], "10000");
    assert_eq!(headers["x-hubspot-ratelimit-daily"], "625000");
    assert_eq!(headers["x-hubspot-ratelimit-daily-remaining"], "624999");
}

#[tokio::test]
async fn oauth_tokens_live_thirty_minutes_and_see_no_daily_headers() {
    let sim = start(small()).await;
    let response = client()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
            ("refresh_token", "sim-refresh-token"),
        ])
        .send()
        .await
        .unwrap();
    assert!(sim.token_url().ends_with("/oauth/v1/token"));
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["expires_in"], 1800);
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["refresh_token"], "sim-refresh-token");
    let access = token["access_token"].as_str().unwrap();
    let response = client().get(sim.url("/crm/v3/pipelines/deals")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-hubspot-ratelimit-remaining"));
    assert!(!response.headers().contains_key("x-hubspot-ratelimit-daily"));
    let body: Value = response.json().await.unwrap();
    let stages = &body["results"][0]["stages"];
    let won = stages.as_array().unwrap().iter().find(|s| s["id"] == "closedwon").unwrap();
    assert_eq!(won["metadata"], json!({"isClosed": "true", "probability": "1.0"}));
}

#[tokio::test]
async fn search_filters_sorts_and_pages_with_string_properties() {
    let api = small();
    let sim = start(api.clone()).await;
    let filters = window_filters("createdate", "2026-10-02", "2026-10-04", &api.portal);
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut last_modified = 0;
    loop {
        let body = json!({
            "filterGroups": filters,
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["lifecyclestage", "hs_analytics_source"], "limit": 7, "after": after});
        let (status, headers, page) = search(&sim, "contacts", body).await;
        assert_eq!(status, 200, "{page}");
        // Search answers carry no rate-limit headers (§3, §8).
        assert!(!headers.contains_key("x-hubspot-ratelimit-remaining"));
        assert!(page["total"].as_u64().unwrap() >= seen.len() as u64);
        for result in page["results"].as_array().unwrap() {
            let properties = result["properties"].as_object().unwrap();
            assert!(properties.values().all(|v| v.is_string() || v.is_null()), "{result}");
            assert_eq!(properties["hs_object_id"], result["id"]);
            let modified = parse_ms(properties["lastmodifieddate"].as_str().unwrap()).unwrap();
            assert!(modified >= last_modified, "sorted ascending");
            last_modified = modified;
            assert!(result.get("associations").is_none());
            seen.push(result["id"].as_str().unwrap().to_owned());
        }
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = json!(next),
            None => break,
        }
    }
    let expected: Vec<String> = api
        .dataset(3)
        .contacts
        .iter()
        .filter(|c| {
            let d = api.portal.local_day(c.created_ms);
            d == day("2026-10-02") || d == day("2026-10-03")
        })
        .map(|c| c.id.to_string())
        .collect();
    seen.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(api.search_calls().len(), sim.requests_for("/crm/v3/objects/contacts/search") as usize);
}

#[tokio::test]
async fn search_refuses_pages_past_ten_thousand_results() {
    let api = HubSpotApi {
        first_day: day("2026-10-01"),
        last_day: day("2026-10-07"),
        contacts_per_day: (1_500, 1_600),
        ..HubSpotApi::default()
    };
    let sim = start(api).await;
    let page = |after: &str, limit: u64| {
        json!({"limit": limit, "after": after,
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]})
    };
    let (status, _, body) = search(&sim, "contacts", page("9800", 200)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["total"].as_u64().unwrap() > 10_000);
    // The last page within the ceiling still points past it.
    assert_eq!(body["paging"]["next"]["after"], "10000");
    for (after, limit) in [("10000", 200), ("9900", 200), ("10200", 1)] {
        let (status, _, body) = search(&sim, "contacts", page(after, limit)).await;
        assert_eq!(status, 400, "after {after}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert!(body["correlationId"].is_string());
    }
}

fn one_filter(property: &str, operator: &str, value: &str) -> Value {
    json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": operator, "value": value}]}]})
}

#[tokio::test]
async fn search_requests_beyond_the_documented_limits_are_refused() {
    let sim = start(small()).await;
    let group = json!({"filters": [{"propertyName": "createdate", "operator": "HAS_PROPERTY"}]});
    let cases = [
        json!({"limit": 201}),
        json!({"filterGroups": vec![group.clone(); 6]}),
        one_filter("no_such_property", "EQ", "1"),
        one_filter("createdate", "LIKE", "1"),
        one_filter("createdate", "GTE", "soon"),
        json!({"after": "not-an-offset"}),
    ];
    for case in cases {
        let (status, _, body) = search(&sim, "contacts", case.clone()).await;
        assert_eq!(status, 400, "{case} -> {body}");
        assert_eq!(body["category"], "VALIDATION_ERROR");
    }
    let (status, _, _) = search(&sim, "tickets_of_doom", json!({})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn deals_are_found_by_close_date_and_won_stage() {
    let api = HubSpotApi { first_day: day("2026-09-01"), ..small() };
    let sim = start(api.clone()).await;
    let mut filters = window_filters("closedate", "2026-10-03", "2026-10-06", &api.portal);
    filters[0]["filters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"propertyName": "dealstage", "operator": "IN", "values": api.won_stages()}));
    let (status, _, body) = search(&sim, "deals", json!({"filterGroups": filters, "limit": 200})).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = api
        .dataset(3)
        .deals
        .iter()
        .filter(|d| {
            d.get("hs_is_closed_won") == Some("true")
                && d.get("closedate").and_then(parse_ms).is_some_and(|ms| {
                    (day("2026-10-03")..day("2026-10-06")).contains(&api.portal.local_day(ms))
                })
        })
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(ids, expected);
    assert!(!expected.is_empty());
}

#[tokio::test]
async fn form_submissions_come_newest_first_fifty_at_most() {
    let api = small();
    let sim = start(api.clone()).await;
    let (status, _, forms) = get(&sim, "/marketing/v3/forms?limit=2").await;
    assert_eq!(status, 200, "{forms}");
    assert_eq!(forms["results"].as_array().unwrap().len(), 2);
    let after = forms["paging"]["next"]["after"].as_str().unwrap();
    let (_, _, rest) = get(&sim, &format!("/marketing/v3/forms?limit=2&after={after}")).await;
    assert_eq!(rest["results"].as_array().unwrap().len(), 1);
    assert!(rest.get("paging").is_none(), "no paging on the last page");

    let guid = &api.forms[0].guid;
    let (status, _, body) =
        get(&sim, &format!("/form-integrations/v1/submissions/forms/{guid}?limit=51")).await;
    assert_eq!(status, 400, "{body}");
    let mut times = Vec::new();
    let mut path = format!("/form-integrations/v1/submissions/forms/{guid}?limit=50");
    loop {
        let (status, _, page) = get(&sim, &path).await;
        assert_eq!(status, 200, "{page}");
        times.extend(page["results"].as_array().unwrap().iter().map(|s| s["submittedAt"].as_i64().unwrap()));
        match page["paging"]["next"]["after"].as_str() {
            Some(after) => {
                path = format!("/form-integrations/v1/submissions/forms/{guid}?limit=50&after={after}")
            }
            None => break,
        }
    }
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(times.len(), api.dataset(3).submissions[0].len());
    let (status, _, _) = get(&sim, "/form-integrations/v1/submissions/forms/unknown-guid").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn email_statistics_list_the_active_emails_and_their_days() {
    let api = HubSpotApi { first_day: day("2026-01-01"), last_day: day("2026-01-31"), ..small() };
    let sim = start(api.clone()).await;
    let range = "startTimestamp=2026-01-06T05:00:00Z&endTimestamp=2026-01-09T05:00:00Z";
    let (status, _, list) = get(&sim, &format!("/marketing/v3/emails/statistics/list?{range}")).await;
    assert_eq!(status, 200, "{list}");
    let id = api.emails[0].id;
    assert_eq!(list["emails"], json!([id]));
    assert!(list["aggregate"]["counters"]["delivered"].as_u64().unwrap() > 0);
    for key in ["counters", "deviceBreakdown", "qualifierStats", "ratios"] {
        assert!(list["aggregate"].get(key).is_some(), "{key}");
    }
    let (status, _, histogram) =
        get(&sim, &format!("/marketing/v3/emails/statistics/histogram?interval=DAY&{range}&emailIds={id}"))
            .await;
    assert_eq!(status, 200, "{histogram}");
    let results = histogram["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["interval"]["start"], "2026-01-06T05:00:00.000Z");
    assert_eq!(results[0]["interval"]["end"], "2026-01-07T05:00:00.000Z");
    assert!(results[0]["aggregations"]["counters"]["open"].is_u64());
    let (status, _, _) =
        get(&sim, &format!("/marketing/v3/emails/statistics/histogram?interval=WEEK&{range}")).await;
    assert_eq!(status, 400);
    let (_, _, listing) = get(&sim, "/marketing/v3/emails?limit=100").await;
    assert_eq!(listing["results"][0]["id"], id.to_string());
}

#[test]
fn nps_truth_buckets_every_response() {
    let api = small();
    let rows = api.expected_rows(3, day("2026-10-01"), day("2026-10-10"), &TruthOptions::default());
    let sum = |metric: &str, survey: &str| -> u64 {
        rows.iter()
            .filter(|r| r.metric == metric && r.entity_id == survey)
            .map(|r| r.value.parse::<u64>().unwrap())
            .sum()
    };
    let nps = "3101";
    let buckets = sum("nps_promoters", nps) + sum("nps_passives", nps) + sum("nps_detractors", nps);
    assert_eq!(buckets, sum("survey_responses", nps));
    assert!(buckets > 0);
    let responses = api.dataset(3).feedback.iter().filter(|f| f.get("hs_survey_id") == Some(nps)).count();
    assert_eq!(buckets, responses as u64);
    assert_eq!(sum("csat_satisfied", nps), 0);
    assert!(sum("csat_satisfied", "3102") > 0);
}

#[test]
fn poisoned_deals_count_nowhere_and_are_listed() {
    let api = HubSpotApi { poisoned_deal_days: vec![day("2026-10-02")], ..small() };
    let poisoned = api.poisoned_deals(3, day("2026-10-02"), day("2026-10-02"));
    assert_eq!(poisoned.len(), 1);
    let deal = api.dataset(3).deals.into_iter().find(|d| d.id == poisoned[0]).unwrap();
    assert_eq!(deal.get("amount"), Some(POISONED_AMOUNT));
    let clean = small().expected_rows(3, day("2026-10-02"), day("2026-10-02"), &TruthOptions::default());
    let dirty = api.expected_rows(3, day("2026-10-02"), day("2026-10-02"), &TruthOptions::default());
    let created = |rows: &[ExpectedRow]| -> u64 {
        rows.iter().filter(|r| r.metric == "deals_created").map(|r| r.value.parse::<u64>().unwrap()).sum()
    };
    assert_eq!(created(&clean), created(&dirty) + 1);
}

#[test]
fn the_same_seed_gives_the_same_portal() {
    let api = small();
    assert_eq!(api.dataset(9), api.dataset(9));
    assert_ne!(api.dataset(9).contacts, api.dataset(10).contacts);
    let bulk = HubSpotApi { bulk_modified_at: Some(1_790_000_000_000), ..small() };
    assert!(bulk.dataset(9).contacts.iter().all(|c| c.modified_ms == 1_790_000_000_000));
    let hourly = HubSpotApi { modified_granularity_ms: 3_600_000, ..small() };
    assert!(hourly.dataset(9).contacts.iter().all(|c| c.modified_ms % 3_600_000 == 0));
}
