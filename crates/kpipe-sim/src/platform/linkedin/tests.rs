//! The simulated routes over real sockets, with the shapes of `shared/apis/linkedin.md`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::Value;

use super::*;
use crate::{SimConfig, SimServer};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn api() -> LinkedInApi {
    LinkedInApi { today: Some(day("2026-11-20")), ..LinkedInApi::default() }
}

async fn start(api: LinkedInApi) -> SimServer {
    SimServer::start(SimConfig::new(11).with_platform(Arc::new(api))).await.unwrap()
}

async fn get(sim: &SimServer, path_and_query: &str, version: Option<&str>, restli: bool) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(sim.url(path_and_query));
    if let Some(v) = version {
        request = request.header("LinkedIn-Version", v);
    }
    if restli {
        request = request.header("X-Restli-Protocol-Version", "2.0.0");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ok_get(sim: &SimServer, path_and_query: &str) -> Value {
    let (status, body) = get(sim, path_and_query, Some("202610"), true).await;
    assert_eq!(status, 200, "{path_and_query}: {body}");
    body
}

const ANALYTICS: &str = "/rest/adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY\
    &dateRange=(start:(year:2026,month:3,day:1),end:(year:2026,month:3,day:3))\
    &accounts=List(urn%3Ali%3AsponsoredAccount%3A508000001)";

#[tokio::test]
async fn versions_and_protocol_headers_are_enforced() {
    // §1: the version header is required and must be served; 426 names it as YYYYMM01.
    let sim = start(api()).await;
    let (status, body) = get(&sim, "/rest/adAccounts/508000001", None, true).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("VERSION_MISSING")));
    let (status, body) = get(&sim, "/rest/adAccounts/508000001", Some("202401"), true).await;
    assert_eq!(status, 426);
    assert_eq!(body["code"], "NONEXISTENT_VERSION");
    assert_eq!(body["message"], "Requested version 20240101 is not active");
    let (status, _) = get(&sim, "/rest/adAccounts/508000001", Some("202610"), false).await;
    assert_eq!(status, 400);
    let account = ok_get(&sim, "/rest/adAccounts/508000001").await;
    assert_eq!((account["id"].as_u64(), account["currency"].as_str()), (Some(508_000_001), Some("USD")));
}

#[tokio::test]
async fn analytics_follow_the_restli_syntax_and_limits() {
    // §2 and §3.1: literal structures, encoded URNs, at most 20 fields, no paging.
    let sim = start(api()).await;
    let body =
        ok_get(&sim, &format!("{ANALYTICS}&fields=dateRange,pivotValues,impressions,costInLocalCurrency"))
            .await;
    let elements = body["elements"].as_array().unwrap();
    assert!(!elements.is_empty());
    let first = &elements[0];
    assert!(first["pivotValues"][0].as_str().unwrap().starts_with("urn:li:sponsoredCampaign:"));
    assert_eq!(first["dateRange"]["start"], serde_json::json!({"year": 2026, "month": 3, "day": 1}));
    assert!(first["impressions"].is_u64() && first["costInLocalCurrency"].is_string());
    assert!(first.get("clicks").is_none(), "only the fields asked for");

    let unencoded = ANALYTICS.replace("urn%3Ali%3AsponsoredAccount%3A", "urn:li:sponsoredAccount:");
    let (status, body) = get(&sim, &unencoded, Some("202610"), true).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("percent-encoded"));

    let many: Vec<String> = (0..19).map(|i| format!("metric{i}")).collect();
    let url = format!("{ANALYTICS}&fields=dateRange,pivotValues,{}", many.join(","));
    assert_eq!(get(&sim, &url, Some("202610"), true).await.0, 400);
}

#[tokio::test]
async fn analytics_are_cut_silently_at_the_element_cap() {
    let sim = start(LinkedInApi { max_elements: 5, ..api() }).await;
    let body = ok_get(&sim, &format!("{ANALYTICS}&fields=dateRange,pivotValues,impressions")).await;
    assert_eq!(body["elements"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn campaign_search_pages_with_next_page_tokens() {
    // §4: pageSize + pageToken, metadata.nextPageToken absent on the last page.
    let sim = start(api()).await;
    let search = concat!(
        "search=(status:(values:List(",
        "ACTIVE,PAUSED,ARCHIVED,COMPLETED,CANCELED,DRAFT,PENDING_DELETION,REMOVED)))"
    );
    let mut url = format!("/rest/adAccounts/508000001/adCampaigns?q=search&{search}&pageSize=3");
    let mut names = Vec::new();
    loop {
        let body = ok_get(&sim, &url).await;
        names.extend(
            body["elements"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()),
        );
        match body["metadata"]["nextPageToken"].as_str() {
            Some(token) => {
                url = format!(
                    "/rest/adAccounts/508000001/adCampaigns?q=search&{search}&pageSize=3&pageToken={token}"
                )
            }
            None => break,
        }
    }
    assert_eq!(names.len(), 4);
    let active =
        ok_get(&sim, "/rest/adAccounts/508000001/adCampaigns?q=search&search=(status:(values:List(ACTIVE)))")
            .await;
    assert_eq!(active["elements"].as_array().unwrap().len(), 2);
    let creatives = ok_get(&sim, "/rest/adAccounts/508000001/creatives?q=criteria&pageSize=100").await;
    assert_eq!(creatives["elements"].as_array().unwrap().len(), 8);
    assert!(creatives["metadata"].get("nextPageToken").is_none());
}

#[tokio::test]
async fn organization_statistics_are_daily_paged_and_twelve_months_deep() {
    // §3.4 and §3.5: one element per day, gains not totals, start/count paging.
    let sim = start(api()).await;
    let urn = "urn%3Ali%3Aorganization%3A2414183";
    let start_ms = day("2026-11-01").and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let end_ms = start_ms + 5 * 86_400_000;
    let intervals = format!("(timeRange:(start:{start_ms},end:{end_ms}),timeGranularityType:DAY)");
    let base = format!("q=organizationalEntity&organizationalEntity={urn}&timeIntervals={intervals}");
    let page =
        ok_get(&sim, &format!("/rest/organizationalEntityFollowerStatistics?{base}&start=0&count=3")).await;
    assert_eq!(page["elements"].as_array().unwrap().len(), 3);
    assert_eq!(page["elements"][0]["timeRange"]["start"], start_ms);
    let rest =
        ok_get(&sim, &format!("/rest/organizationalEntityFollowerStatistics?{base}&start=3&count=3")).await;
    assert_eq!(rest["elements"].as_array().unwrap().len(), 2);
    let shares = ok_get(&sim, &format!("/rest/organizationalEntityShareStatistics?{base}&count=10")).await;
    let stats = &shares["elements"][0]["totalShareStatistics"];
    assert!(stats["impressionCount"].is_u64() && stats["engagement"].is_f64());
    assert!(stats.get("uniqueImpressionsCount").is_none());

    let size = ok_get(&sim, &format!("/rest/networkSizes/{urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER")).await;
    let api = api();
    assert_eq!(size["firstDegreeSize"].as_i64(), Some(api.network_size(11, 2_414_183)));

    let old = day("2025-06-01").and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let intervals = format!("(timeRange:(start:{old},end:{end_ms}),timeGranularityType:DAY)");
    let url = format!(
        "/rest/organizationalEntityFollowerStatistics?q=organizationalEntity&organizationalEntity={urn}\
         &timeIntervals={intervals}"
    );
    assert_eq!(get(&sim, &url, Some("202610"), true).await.0, 400);
}

#[tokio::test]
async fn whole_range_analytics_give_one_element_per_entity_and_its_own_reach() {
    // §3.1: `timeGranularity=ALL` spans the `dateRange` asked for; reach is served for ranges of
    // at most 92 days and is the period's own, not a sum of days.
    let sim = start(api()).await;
    let accounts =
        "accounts=List(urn%3Ali%3AsponsoredAccount%3A508000001,urn%3Ali%3AsponsoredAccount%3A508000002)";
    let url = |pivot: &str, end: &str| {
        format!(
            "/rest/adAnalytics?q=analytics&pivot={pivot}&timeGranularity=ALL\
             &dateRange=(start:(year:2026,month:3,day:1),end:({end}))&{accounts}\
             &fields=dateRange,pivotValues,approximateMemberReach,impressions"
        )
    };
    let body = ok_get(&sim, &url("ACCOUNT", "year:2026,month:3,day:31")).await;
    let elements = body["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[0]["pivotValues"], serde_json::json!(["urn:li:sponsoredAccount:508000001"]));
    assert_eq!(elements[0]["dateRange"]["end"], serde_json::json!({"year": 2026, "month": 3, "day": 31}));
    let truth = api().period_reach(11, 508_000_001, Pivot::Account, day("2026-03-01"), day("2026-03-31"));
    assert_eq!(elements[0]["approximateMemberReach"].as_i64(), Some(truth[0].1));

    let groups = ok_get(&sim, &url("CAMPAIGN_GROUP", "year:2026,month:3,day:31")).await;
    let urns: Vec<&str> = groups["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pivotValues"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        urns,
        [
            "urn:li:sponsoredCampaignGroup:5080000011",
            "urn:li:sponsoredCampaignGroup:5080000012",
            "urn:li:sponsoredCampaignGroup:5080000021",
            "urn:li:sponsoredCampaignGroup:5080000022"
        ]
    );

    // 93 days: reach is left out, the other fields stay.
    let long = ok_get(&sim, &url("ACCOUNT", "year:2026,month:6,day:1")).await;
    let first = &long["elements"][0];
    assert!(first.get("approximateMemberReach").is_none() && first["impressions"].is_u64(), "{first}");
    // Account and group pivots are served with the accounts facet only.
    let by_campaign = "/rest/adAnalytics?q=analytics&pivot=ACCOUNT&timeGranularity=ALL\
         &dateRange=(start:(year:2026,month:3,day:1),end:(year:2026,month:3,day:2))\
         &campaigns=List(urn%3Ali%3AsponsoredCampaign%3A508000001001)";
    assert_eq!(get(&sim, by_campaign, Some("202610"), true).await.0, 400);
}
