//! The simulated Data API over real sockets, with the shapes of `shared/apis/ga4.md` (§2 request,
//! §3 response and `propertyQuota`, §4 batches, §5 offset paging, §6 quota errors, §7 tokens).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::{SimConfig, SimServer};

const PROPERTY: &str = "123456789";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn start(api: Ga4Api) -> SimServer {
    SimServer::start(SimConfig::new(7).with_platform(Arc::new(api))).await.unwrap()
}

async fn post(sim: &SimServer, path: &str, body: &Value) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.post(sim.url(path)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn traffic_request(limit: u64, offset: u64) -> Value {
    json!({
        "dateRanges": [{"startDate": "2026-03-01", "endDate": "2026-03-02"}],
        "dimensions": [{"name": "date"}, {"name": "sessionDefaultChannelGroup"}],
        "metrics": [{"name": "sessions"}, {"name": "totalUsers"}, {"name": "purchaseRevenue"},
                    {"name": "engagementRate"}, {"name": "userEngagementDuration"}],
        "orderBys": [{"dimension": {"dimensionName": "date"}},
                     {"dimension": {"dimensionName": "sessionDefaultChannelGroup"}}],
        "limit": limit.to_string(),
        "offset": offset.to_string(),
        "returnPropertyQuota": true
    })
}

fn run_report() -> String {
    format!("/v1beta/properties/{PROPERTY}:runReport")
}

#[tokio::test]
async fn reports_have_the_documented_shape() {
    let sim = start(Ga4Api::default()).await;
    let (status, body) = post(&sim, &run_report(), &traffic_request(10_000, 0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "analyticsData#runReport");
    assert_eq!(body["dimensionHeaders"], json!([{"name": "date"}, {"name": "sessionDefaultChannelGroup"}]));
    assert_eq!(
        body["metricHeaders"],
        json!([{"name": "sessions", "type": "TYPE_INTEGER"}, {"name": "totalUsers", "type": "TYPE_INTEGER"},
               {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"},
               {"name": "engagementRate", "type": "TYPE_FLOAT"},
               {"name": "userEngagementDuration", "type": "TYPE_SECONDS"}])
    );
    assert_eq!(body["metadata"], json!({"currencyCode": "USD", "timeZone": "America/Los_Angeles"}));
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(body["rowCount"].as_u64(), Some(rows.len() as u64));
    // Every value is a string; dates are YYYYMMDD; rows come in the order asked.
    assert_eq!(rows[0]["dimensionValues"][0]["value"], "20260301");
    for row in rows {
        assert!(row["metricValues"].as_array().unwrap().iter().all(|v| v["value"].is_string()), "{row}");
    }
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["dimensionValues"][0]["value"].as_str().unwrap().to_owned(),
                r["dimensionValues"][1]["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let quota = &body["propertyQuota"];
    assert_eq!(quota["tokensPerHour"]["remaining"].as_u64().unwrap() + 1, 40_000);
    assert_eq!(quota["concurrentRequests"], json!({"remaining": 10}));
    // The truth the tests compare against is what was served.
    let truth = Ga4Api::default()
        .report(
            7,
            PROPERTY,
            &ReportQuery::new(
                day("2026-03-01"),
                day("2026-03-02"),
                &["date", "sessionDefaultChannelGroup"],
                &["sessions", "totalUsers", "purchaseRevenue", "engagementRate", "userEngagementDuration"],
            ),
        )
        .unwrap();
    assert_eq!(truth.rows.len(), rows.len());
    assert_eq!(truth.rows[3].metrics[0], rows[3]["metricValues"][0]["value"].as_str().unwrap());
}

#[tokio::test]
async fn empty_reports_have_no_rows_and_no_row_count() {
    let sim = start(Ga4Api::default()).await;
    let mut request = traffic_request(10, 0);
    request["dateRanges"] = json!([{"startDate": "2019-06-01", "endDate": "2019-06-07"}]);
    let (status, body) = post(&sim, &run_report(), &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("rows").is_none() && body.get("rowCount").is_none(), "{body}");
}

#[tokio::test]
async fn offset_paging_with_order_by_covers_the_report_once() {
    let sim = start(Ga4Api::default()).await;
    let (_, whole) = post(&sim, &run_report(), &traffic_request(10_000, 0)).await;
    let total = whole["rowCount"].as_u64().unwrap();
    let mut paged = Vec::new();
    let mut offset = 0;
    while offset < total {
        let (status, page) = post(&sim, &run_report(), &traffic_request(3, offset)).await;
        assert_eq!(status, 200);
        assert_eq!(page["rowCount"].as_u64(), Some(total));
        paged.extend(page["rows"].as_array().unwrap().iter().cloned());
        offset += 3;
    }
    assert_eq!(Value::Array(paged), whole["rows"]);
    // Past the end: no rows, the count still there.
    let (_, past) = post(&sim, &run_report(), &traffic_request(3, total + 3)).await;
    assert!(past.get("rows").is_none() && past["rowCount"].as_u64() == Some(total));
}

#[tokio::test]
async fn without_order_by_pages_are_not_stable() {
    let sim = start(Ga4Api::default()).await;
    let mut request = traffic_request(10_000, 0);
    request.as_object_mut().unwrap().remove("orderBys");
    let (_, whole) = post(&sim, &run_report(), &request).await;
    let total = whole["rowCount"].as_u64().unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0;
    while offset < total {
        request["limit"] = json!(4);
        request["offset"] = json!(offset);
        let (_, page) = post(&sim, &run_report(), &request).await;
        for row in page["rows"].as_array().unwrap() {
            seen.insert(row["dimensionValues"].to_string());
        }
        offset += 4;
    }
    assert!((seen.len() as u64) < total, "unordered pages happened to cover every row");
}

#[tokio::test]
async fn unique_users_are_not_the_sum_of_finer_rows() {
    let api = Ga4Api::default();
    let q = |dims: &[&str]| {
        ReportQuery::new(day("2026-03-01"), day("2026-03-01"), dims, &["totalUsers", "newUsers"])
    };
    let by_day = api.report(7, PROPERTY, &q(&["date"])).unwrap();
    let by_channel = api.report(7, PROPERTY, &q(&["date", "sessionDefaultChannelGroup"])).unwrap();
    let sum =
        |t: &ReportTable, i: usize| t.rows.iter().map(|r| r.metrics[i].parse::<u64>().unwrap()).sum::<u64>();
    assert!(sum(&by_day, 0) < sum(&by_channel, 0), "users of the day are fewer than the channels' sum");
    // New users are counted once, on their first visit: they add up.
    assert_eq!(sum(&by_day, 1), sum(&by_channel, 1));
    let returning = api
        .report(7, PROPERTY, &q(&["date", "newVsReturning"]))
        .unwrap()
        .rows
        .iter()
        .map(|r| r.dimensions[1].clone())
        .collect::<Vec<_>>();
    assert_eq!(returning, ["new", "returning"]);
}

#[tokio::test]
async fn currency_code_converts_revenue() {
    let api = Ga4Api::default();
    let mut q = ReportQuery::new(day("2026-03-01"), day("2026-03-31"), &["date"], &["purchaseRevenue"]);
    let usd = api.report(7, PROPERTY, &q).unwrap();
    q.currency = Some("EUR".into());
    let eur = api.report(7, PROPERTY, &q).unwrap();
    assert_eq!(eur.currency, "EUR");
    let first = |t: &ReportTable| t.rows[0].metrics[0].parse::<f64>().unwrap();
    assert!((first(&eur) - first(&usd) * 0.92).abs() < 0.01);
    q.currency = Some("XYZ".into());
    assert_eq!(api.report(7, PROPERTY, &q).unwrap_err().status, 400);
    assert_eq!(format_money(245_050), "2450.5");
    assert_eq!(format_money(1_200), "12");
    assert_eq!(format_money(99), "0.99");
}

#[tokio::test]
async fn bad_requests_get_google_errors() {
    let sim = start(Ga4Api::default()).await;
    let mut request = traffic_request(10, 0);
    request["metrics"] = json!([{"name": "sessionz"}]);
    request["orderBys"] = json!([]);
    let (status, body) = post(&sim, &run_report(), &request).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("sessionz"));
    let (status, body) = post(&sim, "/v1beta/properties/555:runReport", &traffic_request(10, 0)).await;
    assert_eq!((status, body["error"]["status"].as_str()), (403, Some("PERMISSION_DENIED")));
    let mut request = traffic_request(10, 0);
    request["limit"] = json!("250001");
    assert_eq!(post(&sim, &run_report(), &request).await.0, 400);
    request["limit"] = json!(10);
    request["surprise"] = json!(true);
    assert_eq!(post(&sim, &run_report(), &request).await.0, 400);
}

#[tokio::test]
async fn batches_answer_in_request_order() {
    let sim = start(Ga4Api::default()).await;
    let path = format!("/v1beta/properties/{PROPERTY}:batchRunReports");
    let mut second = traffic_request(10, 0);
    second["dimensions"] = json!([{"name": "date"}]);
    second["orderBys"] = json!([]);
    let (status, body) = post(&sim, &path, &json!({"requests": [traffic_request(10, 0), second]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "analyticsData#batchRunReports");
    let reports = body["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1]["dimensionHeaders"], json!([{"name": "date"}]));
    assert!(reports.iter().all(|r| r["kind"] == "analyticsData#runReport" && r["propertyQuota"].is_object()));
    let six: Vec<Value> = (0..6).map(|_| traffic_request(1, 0)).collect();
    assert_eq!(post(&sim, &path, &json!({"requests": six})).await.0, 400);
    let mut other = traffic_request(1, 0);
    other["property"] = json!("properties/987654321");
    assert_eq!(post(&sim, &path, &json!({"requests": [other]})).await.0, 400);
}

#[tokio::test]
async fn concurrent_requests_over_the_property_limit_are_refused() {
    let api = Ga4Api {
        quota: PropertyQuotaLimits { concurrent_requests: 2, ..PropertyQuotaLimits::STANDARD },
        processing_time: Duration::from_millis(200),
        ..Ga4Api::default()
    };
    let monitor = api.monitor().clone();
    let sim = start(api).await;
    let (path, request) = (run_report(), traffic_request(1, 0));
    let answers = futures::future::join_all((0..4).map(|_| post(&sim, &path, &request))).await;
    let refused: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
    assert_eq!(refused.len(), 2, "{answers:?}");
    assert_eq!(refused[0]["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(refused[0]["error"]["message"].as_str().unwrap().contains("concurrent"));
    assert_eq!(monitor.max_in_flight(PROPERTY), 2);
    assert_eq!(monitor.refused(PROPERTY, QuotaRefusal::Concurrent), 2);
    // Another property has its own slots.
    assert_eq!(monitor.max_in_flight("987654321"), 0);
}

#[tokio::test]
async fn token_quotas_refuse_until_the_hour_turns_and_for_the_day() {
    let api = Ga4Api {
        quota: PropertyQuotaLimits {
            tokens_per_hour: 2,
            tokens_per_project_per_hour: 2,
            tokens_per_day: 3,
            ..PropertyQuotaLimits::STANDARD
        },
        hour: Duration::from_millis(300),
        ..Ga4Api::default()
    };
    let monitor = api.monitor().clone();
    let sim = start(api).await;
    let one = traffic_request(1, 0);
    assert_eq!(post(&sim, &run_report(), &one).await.0, 200);
    let (status, body) = post(&sim, &run_report(), &one).await;
    assert_eq!(status, 200);
    assert!(body["propertyQuota"]["tokensPerHour"].get("remaining").is_none(), "{body}");
    let (status, body) = post(&sim, &run_report(), &one).await;
    assert_eq!(status, 429);
    assert!(body["error"]["message"].as_str().unwrap().contains("per hour"), "{body}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(post(&sim, &run_report(), &one).await.0, 200);
    let (status, body) = post(&sim, &run_report(), &one).await;
    assert_eq!(status, 429);
    assert!(body["error"]["message"].as_str().unwrap().contains("per day"), "{body}");
    assert_eq!(monitor.tokens_consumed(PROPERTY), 3);
    assert_eq!(monitor.refused(PROPERTY, QuotaRefusal::Daily), 1);
}

#[tokio::test]
async fn metadata_lists_what_reports_may_use() {
    let sim = start(Ga4Api::default()).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body: Value = client
        .get(sim.url(&format!("/v1beta/properties/{PROPERTY}/metadata")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], format!("properties/{PROPERTY}/metadata"));
    assert!(body["metrics"].as_array().unwrap().iter().any(|m| m["apiName"] == "keyEvents"));
}

/// Several `dateRanges` (`DateRange`: up to 4, named; "Create a report", "Multiple date
/// ranges"): each range's rows, labelled by a last `dateRange` dimension.
#[tokio::test]
async fn several_date_ranges_label_their_rows_with_a_date_range_dimension() {
    let sim = start(Ga4Api::default()).await;
    let mut request = json!({
        "dateRanges": [{"startDate": "2026-03-02", "endDate": "2026-03-08", "name": "week_20260302"},
                       {"startDate": "2026-03-01", "endDate": "2026-03-31", "name": "month_20260301"}],
        "dimensions": [{"name": "sessionDefaultChannelGroup"}],
        "metrics": [{"name": "totalUsers"}, {"name": "sessions"}],
        "orderBys": [{"dimension": {"dimensionName": "sessionDefaultChannelGroup"}}],
        "returnPropertyQuota": true
    });
    let (status, body) = post(&sim, &run_report(), &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["dimensionHeaders"],
        json!([{"name": "sessionDefaultChannelGroup"}, {"name": "dateRange"}])
    );
    let rows = body["rows"].as_array().unwrap();
    let api = Ga4Api::default();
    let mut served = 0;
    for (name, start, end) in
        [("week_20260302", "2026-03-02", "2026-03-08"), ("month_20260301", "2026-03-01", "2026-03-31")]
    {
        let alone = api
            .report(
                7,
                PROPERTY,
                &ReportQuery::new(
                    day(start),
                    day(end),
                    &["sessionDefaultChannelGroup"],
                    &["totalUsers", "sessions"],
                ),
            )
            .unwrap();
        for row in &alone.rows {
            let found = rows
                .iter()
                .find(|r| {
                    r["dimensionValues"][0]["value"] == row.dimensions[0].as_str()
                        && r["dimensionValues"][1]["value"] == name
                })
                .unwrap_or_else(|| panic!("{name} {:?}", row.dimensions));
            assert_eq!(found["metricValues"][0]["value"], row.metrics[0].as_str());
            assert_eq!(found["metricValues"][1]["value"], row.metrics[1].as_str());
            served += 1;
        }
    }
    assert_eq!(rows.len(), served);
    assert_eq!(body["rowCount"].as_u64(), Some(served as u64));
    // Ordered by the requested dimension, whatever the range.
    let channels: Vec<&str> =
        rows.iter().map(|r| r["dimensionValues"][0]["value"].as_str().unwrap()).collect();
    let mut sorted = channels.clone();
    sorted.sort_unstable();
    assert_eq!(channels, sorted);
    // The truth helper serves the same table.
    let ranges = [
        NamedRange::new("week_20260302", day("2026-03-02"), day("2026-03-08")),
        NamedRange::new("month_20260301", day("2026-03-01"), day("2026-03-31")),
    ];
    let query = ReportQuery::new(
        day("2026-03-01"),
        day("2026-03-01"),
        &["sessionDefaultChannelGroup"],
        &["totalUsers", "sessions"],
    );
    assert_eq!(api.report_ranges(7, PROPERTY, &query, &ranges).unwrap().rows.len(), served);

    // Unnamed ranges are date_range_0, date_range_1, ...; one range has no dateRange dimension.
    request["dateRanges"] = json!([{"startDate": "2026-03-02", "endDate": "2026-03-08"},
                                   {"startDate": "2026-03-09", "endDate": "2026-03-15"}]);
    let (_, body) = post(&sim, &run_report(), &request).await;
    let names: std::collections::BTreeSet<&str> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dimensionValues"][1]["value"].as_str().unwrap())
        .collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["date_range_0", "date_range_1"]);
    request["dateRanges"] = json!([{"startDate": "2026-03-02", "endDate": "2026-03-08", "name": "week"}]);
    let (_, body) = post(&sim, &run_report(), &request).await;
    assert_eq!(body["dimensionHeaders"], json!([{"name": "sessionDefaultChannelGroup"}]));
    // Reserved names, a name used twice and a fifth range are refused.
    for ranges in [
        json!([{"startDate": "2026-03-02", "endDate": "2026-03-08", "name": "date_range_1"}]),
        json!([{"startDate": "2026-03-02", "endDate": "2026-03-08", "name": "RESERVED_x"}]),
        json!([{"startDate": "2026-03-02", "endDate": "2026-03-08", "name": "a"},
               {"startDate": "2026-03-09", "endDate": "2026-03-15", "name": "a"}]),
        json!(
            (0..5).map(|_| json!({"startDate": "2026-03-02", "endDate": "2026-03-08"})).collect::<Vec<_>>()
        ),
    ] {
        request["dateRanges"] = ranges;
        let (status, body) = post(&sim, &run_report(), &request).await;
        assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
    }
}

/// A week's or a month's unique users are counted over the span: at least the busiest day's,
/// at most the days' sum and below it once two days have users, and never more for a channel
/// than for the property.
#[test]
fn period_users_lie_between_the_busiest_day_and_the_sum_of_the_days() {
    let api = Ga4Api::default();
    let channel = ["sessionDefaultChannelGroup", "sessionSource", "sessionMedium"];
    for (start, end) in
        [("2026-03-02", "2026-03-08"), ("2026-03-01", "2026-03-31"), ("2026-03-30", "2026-03-31")]
    {
        for property in ["123456789", "987654321"] {
            let whole = api.period_users(7, property, day(start), day(end), &[]).unwrap();
            let whole = whole[&Vec::<String>::new()];
            for dims in [&[][..], &channel[..]] {
                let period = api.period_users(7, property, day(start), day(end), dims).unwrap();
                // Each day's own counts, by group.
                let mut days: std::collections::BTreeMap<Vec<String>, Vec<PeriodUsers>> = Default::default();
                let mut d = day(start);
                while d <= day(end) {
                    for (key, users) in api.period_users(7, property, d, d, dims).unwrap() {
                        days.entry(key).or_default().push(users);
                    }
                    d = d.succ_opt().unwrap();
                }
                assert_eq!(period.len(), days.len());
                for (key, users) in &period {
                    let per_day = &days[key];
                    let pick: [fn(&PeriodUsers) -> u64; 3] =
                        [|u| u.users, |u| u.new_users, |u| u.returning_users];
                    for (i, get) in pick.iter().enumerate() {
                        let values: Vec<u64> = per_day.iter().map(get).collect();
                        let (max, sum) =
                            (values.iter().copied().max().unwrap_or(0), values.iter().sum::<u64>());
                        let value = get(users);
                        assert!(
                            max <= value && value <= sum,
                            "{property} {start} {key:?} metric {i}: {value} not in {max}..={sum}"
                        );
                        if values.iter().filter(|v| **v > 0).count() >= 2 {
                            assert!(
                                value < sum,
                                "{property} {start} {key:?} metric {i}: {value} is the days' sum"
                            );
                        }
                        assert!(
                            value <= get(&whole),
                            "{property} {start} {key:?} metric {i}: above the property's"
                        );
                    }
                    assert!(users.users >= users.new_users.max(users.returning_users));
                }
            }
        }
    }
    assert_eq!(union_count(100, 100, 550), 100);
    assert_eq!(union_count(300, 100, 550), 210);
}
