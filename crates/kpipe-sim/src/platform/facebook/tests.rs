//! The simulated Graph API over real sockets. Shapes follow `shared/apis/facebook.md`: §2 for
//! insights rows and paging, §3 for report runs, §4 for Page insights, §6 for the error envelope
//! and usage headers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::{SimConfig, SimServer};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start(graph: FacebookGraph) -> SimServer {
    SimServer::start(SimConfig::new(11).with_auth(auth_config()).with_platform(Arc::new(graph)))
        .await
        .unwrap()
}

async fn get(url: &str) -> (u16, HeaderMap, Value) {
    let response = client().get(url).bearer_auth(DEMO_ACCESS_TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

const FIELDS: &str = "account_id,account_currency,campaign_id,campaign_name,impressions,reach,clicks,\
                      inline_link_clicks,spend,actions,action_values";

fn report_query(level: &str, limit: u64) -> String {
    let range = crate::percent_encode(r#"{"since":"2026-03-07","until":"2026-03-09"}"#);
    format!("level={level}&fields={FIELDS}&time_increment=1&time_range={range}&limit={limit}")
}

#[tokio::test]
async fn a_report_pages_with_absolute_next_links_and_string_numbers() {
    let sim = start(FacebookGraph::default()).await;
    let account = DEFAULT_AD_ACCOUNTS[0];
    let mut url = sim.url(&format!("/v25.0/act_{account}/insights?{}", report_query("campaign", 2)));
    let mut rows = Vec::new();
    let mut pages = 0;
    loop {
        let (status, headers, body) = get(&url).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("x-business-use-case-usage") && headers.contains_key("x-app-usage"));
        pages += 1;
        rows.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["paging"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&format!("{}/v25.0/act_{account}/insights?", sim.base_url())));
                assert!(next.contains("access_token=") && next.contains("after="), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    let truth = FacebookGraph::default().insights(
        11,
        account,
        InsightsLevel::Campaign,
        NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
    );
    assert_eq!(rows.len(), truth.len());
    assert_eq!(pages, truth.len().div_ceil(2));
    let first = &rows[0];
    assert_eq!(first["account_id"], account, "no act_ prefix");
    assert_eq!(first["account_currency"], "USD");
    assert!(first["impressions"].is_string() && first["spend"].is_string());
    assert_eq!(first["spend"], truth[0].spend());
    assert_eq!(first["date_start"], first["date_stop"]);
    assert!(first.get("adset_id").is_none() && first.get("cpc").is_none(), "only the requested fields");
    assert!(first["actions"][0]["value"].is_string());
}

/// `POST path` with the JSON `body`: the JSON answer.
async fn post(sim: &SimServer, path: &str, body: &Value) -> Value {
    let response = client().post(sim.url(path)).bearer_auth(DEMO_ACCESS_TOKEN).json(body).send().await;
    response.unwrap().json().await.unwrap()
}

/// `POST /v25.0/act_{account}/insights` with `body`: the report run's id.
async fn start_run(sim: &SimServer, account: &str, body: &Value) -> String {
    let started = post(sim, &format!("/v25.0/act_{account}/insights"), body).await;
    started["report_run_id"].as_str().unwrap().to_owned()
}

/// §3: report runs polled in one batch request (`POST /` with `batch`), each answer's body a
/// string of JSON; a request the batch cannot answer gets an error in its place.
#[tokio::test]
async fn report_runs_are_polled_in_a_batch() {
    let sim = start(FacebookGraph::default()).await;
    let mut ids = Vec::new();
    for account in DEFAULT_AD_ACCOUNTS {
        let body = serde_json::json!({"level": "campaign", "fields": "impressions",
            "time_range": {"since": "2026-03-07", "until": "2026-03-09"}, "time_increment": 1});
        ids.push(start_run(&sim, account, &body).await);
    }
    let mut batch: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"method": "GET", "relative_url": format!("v25.0/{id}?fields=async_status")}))
        .collect();
    batch.push(serde_json::json!({"method": "GET", "relative_url": "v25.0/act_101000000000001/campaigns"}));
    let body = serde_json::json!({"batch": serde_json::to_string(&batch).unwrap(), "include_headers": false});
    let answers = post(&sim, "/", &body).await;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    for (answer, id) in answers.iter().zip(&ids) {
        assert_eq!(answer["code"], 200);
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            (body["id"].as_str(), body["async_status"].as_str()),
            (Some(id.as_str()), Some("Job Started"))
        );
    }
    assert_eq!(answers[2]["code"], 400);
    let refused =
        client().post(sim.url("/")).bearer_auth(DEMO_ACCESS_TOKEN).json(&serde_json::json!({})).send();
    assert_eq!(refused.await.unwrap().status().as_u16(), 400);
}

#[tokio::test]
async fn report_runs_are_polled_then_paged() {
    let sim = start(FacebookGraph::default()).await;
    let account = DEFAULT_AD_ACCOUNTS[1];
    let body = serde_json::json!({
        "level": "ad", "fields": FIELDS.split(',').collect::<Vec<_>>().join(","), "time_increment": 1,
        "time_range": {"since": "2026-03-07", "until": "2026-03-09"},
        "action_attribution_windows": ["7d_click", "1d_view"],
    });
    let id = start_run(&sim, account, &body).await;
    let (status, _, early) = get(&sim.url(&format!("/v25.0/{id}/insights"))).await;
    assert_eq!((status, early["error"]["code"].clone()), (400, serde_json::json!(100)));
    let mut statuses = Vec::new();
    loop {
        let (_, _, run) = get(&sim.url(&format!("/v25.0/{id}"))).await;
        assert!(run["async_percent_completion"].is_u64());
        statuses.push(run["async_status"].as_str().unwrap().to_owned());
        if run["async_status"] == "Job Completed" {
            assert_eq!(run["async_percent_completion"], 100);
            break;
        }
    }
    assert_eq!(statuses, ["Job Started", "Job Completed"]);
    let (_, _, page) = get(&sim.url(&format!("/v25.0/{id}/insights?limit=500"))).await;
    let rows = page["data"].as_array().unwrap();
    assert!(!rows.is_empty() && rows[0]["account_currency"] == "EUR");
    let with_actions = rows.iter().find(|r| r.get("actions").is_some()).unwrap();
    assert!(with_actions["actions"][0].get("7d_click").is_some());
    assert!(
        with_actions["actions"][0].get("1d_view").is_none(),
        "view windows without conversions are left out"
    );
}

#[tokio::test]
async fn page_insights_need_valid_metrics_and_hand_out_the_page_token() {
    let sim = start(FacebookGraph::default()).await;
    let (_, _, page) = get(&sim.url(&format!("/v25.0/{DEFAULT_PAGE}?fields=name,access_token"))).await;
    assert_eq!(page["access_token"], DEMO_ACCESS_TOKEN);
    let url = |metrics: &str| {
        sim.url(&format!(
            "/v25.0/{DEFAULT_PAGE}/insights?metric={metrics}&period=day&since=2026-03-07&until=2026-03-10"
        ))
    };
    let (status, headers, body) = get(&url("page_media_view,page_follows")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-page-usage"));
    assert_eq!(body["data"][1]["values"].as_array().unwrap().len(), 3);
    let (status, _, refused) = get(&url("page_media_view,page_impressions")).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], 100);
}

#[tokio::test]
async fn a_spent_budget_is_refused_with_80000_and_usage_headers() {
    let graph =
        FacebookGraph { usage_budget: UsageBudget::new(3, Duration::from_secs(60)), ..Default::default() };
    let monitor = graph.monitor();
    let sim = start(graph).await;
    let url = sim.url(&format!("/v25.0/act_{}?fields=currency", DEFAULT_AD_ACCOUNTS[0]));
    for expected in [33.33, 66.67, 100.0] {
        let (status, headers, _) = get(&url).await;
        assert_eq!(status, 200);
        let usage: Value = serde_json::from_str(headers["x-ad-account-usage"].to_str().unwrap()).unwrap();
        assert_eq!(usage["acc_id_util_pct"], expected);
    }
    let (status, headers, body) = get(&url).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 80_000);
    assert_eq!(body["error"]["error_subcode"], 2_446_079);
    let buc: Value = serde_json::from_str(headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    assert_eq!(buc[DEFAULT_AD_ACCOUNTS[0]][0]["estimated_time_to_regain_access"], 1);
    assert_eq!(monitor.throttled(), 1);
}

#[tokio::test]
async fn tokens_are_checked_with_code_190() {
    let sim = start(FacebookGraph::default()).await;
    let url = sim.url(&format!("/v25.0/act_{}", DEFAULT_AD_ACCOUNTS[0]));
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 190);
    let with_query = client().get(format!("{url}?access_token={DEMO_ACCESS_TOKEN}")).send().await.unwrap();
    assert_eq!(with_query.status().as_u16(), 200);
    let (status, _, unknown) = get(&sim.url("/v25.0/act_999")).await;
    assert_eq!((status, unknown["error"]["error_subcode"].clone()), (400, serde_json::json!(33)));
}

#[tokio::test]
async fn too_large_pages_are_answered_reduce_the_amount_of_data() {
    let sim = start(FacebookGraph { reduce_data_above: Some(100), ..Default::default() }).await;
    let account = DEFAULT_AD_ACCOUNTS[0];
    let (status, _, body) =
        get(&sim.url(&format!("/v25.0/act_{account}/insights?{}", report_query("ad", 500)))).await;
    assert_eq!(
        (status, body["error"]["code"].clone(), body["error"]["error_subcode"].clone()),
        (500, 1.into(), 99.into())
    );
    let (status, _, _) =
        get(&sim.url(&format!("/v25.0/act_{account}/insights?{}", report_query("ad", 100)))).await;
    assert_eq!(status, 200);
}

/// Meta's Ad Account Insights reference: `time_ranges` gives one result set per range (each row
/// `date_start`..`date_stop` the range), `time_increment=all_days` one over `time_range`; the
/// reach is the range's own, below the sum of the days.
#[tokio::test]
async fn reach_over_ranges_is_one_row_per_entity_and_range() {
    let sim = start(FacebookGraph::default()).await;
    let account = DEFAULT_AD_ACCOUNTS[0];
    let ranges = crate::percent_encode(
        r#"[{"since":"2026-03-02","until":"2026-03-08"},{"since":"2026-03-01","until":"2026-03-10"}]"#,
    );
    let url = sim.url(&format!(
        "/v25.0/act_{account}/insights?level=campaign&fields=campaign_id,reach,impressions&time_ranges={ranges}\
         &time_increment=1&limit=100"
    ));
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["data"].as_array().unwrap();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let graph = FacebookGraph::default();
    let week = graph.range_insights(11, account, InsightsLevel::Campaign, d("2026-03-02"), d("2026-03-08"));
    let month = graph.range_insights(11, account, InsightsLevel::Campaign, d("2026-03-01"), d("2026-03-10"));
    assert_eq!(rows.len(), week.len() + month.len());
    assert_eq!(
        (rows[0]["date_start"].as_str(), rows[0]["date_stop"].as_str()),
        (Some("2026-03-02"), Some("2026-03-08"))
    );
    assert_eq!(rows[0]["reach"], week[0].reach.to_string());
    let last = &rows[rows.len() - 1];
    assert_eq!(
        (last["date_start"].as_str(), last["date_stop"].as_str()),
        (Some("2026-03-01"), Some("2026-03-10"))
    );
    let days = graph.insights(11, account, InsightsLevel::Campaign, d("2026-03-02"), d("2026-03-08"));
    let own = days.iter().filter(|r| r.entity_id() == week[0].entity_id());
    let (summed_reach, summed_impressions) =
        own.fold((0, 0), |(r, i), row| (r + row.reach, i + row.impressions));
    assert!(week[0].reach < summed_reach);
    assert_eq!(rows[0]["impressions"], summed_impressions.to_string());
    let whole = crate::percent_encode(r#"{"since":"2026-03-02","until":"2026-03-08"}"#);
    let (status, _, body) = get(&sim.url(&format!(
        "/v25.0/act_{account}/insights?level=campaign&fields=reach&time_range={whole}&time_increment=all_days"
    )))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["reach"], week[0].reach.to_string());
}
