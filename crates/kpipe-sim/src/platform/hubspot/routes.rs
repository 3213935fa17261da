//! The GET routes: account details, deal pipelines, forms and their submissions, marketing
//! emails and their statistics.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::Days;
use serde_json::{Map, Value, json};

use super::data::{EmailDay, iso, parse_ms};
use super::{HubSpotState, StageOutcome, error, validation_error};
use crate::config::CannedResponse;
use crate::platform::test_routes::{decode_position, encode_position};

const CREATED: &str = "2025-01-10T15:04:11.000Z";

fn ok(body: Value) -> Response {
    CannedResponse::json(200, body).to_response()
}

fn bad_request(message: &str) -> Response {
    validation_error(message).to_response()
}

fn params(query: Option<&str>) -> Vec<(String, String)> {
    query.map(crate::query_pairs).unwrap_or_default()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `limit` within `1..=max` (default `default`) and the offset `after` stands for.
fn page(params: &[(String, String)], default: u64, max: u64) -> Result<(usize, usize), String> {
    let limit = match param(params, "limit") {
        None => default,
        Some(text) => text.parse::<u64>().map_err(|_| format!("`limit` must be a number; got {text:?}"))?,
    };
    if limit == 0 || limit > max {
        return Err(format!("`limit` must be between 1 and {max}; got {limit}"));
    }
    let offset = match param(params, "after") {
        None | Some("") => 0,
        Some(token) => decode_position(token).ok_or("`after` is not a paging token this API gave")?,
    };
    Ok((usize::try_from(offset).unwrap_or(usize::MAX), usize::try_from(limit).unwrap_or(usize::MAX)))
}

/// One page of `items`, with `paging.next` (after and link) when more follow.
fn paged(base: &str, path: &str, items: Vec<Value>, offset: usize, limit: usize, total: bool) -> Value {
    let count = items.len();
    let start = offset.min(count);
    let end = start.saturating_add(limit).min(count);
    let mut body = Map::new();
    if total {
        body.insert("total".to_owned(), json!(count));
    }
    body.insert("results".to_owned(), Value::Array(items[start..end].to_vec()));
    if end < count {
        let after = encode_position(end as u64);
        body.insert(
            "paging".to_owned(),
            json!({"next": {"after": after, "link": format!("{base}{path}?limit={limit}&after={after}")}}),
        );
    }
    Value::Object(body)
}

/// `GET /account-info/v3/details`.
pub(super) async fn account_details(State(state): State<Arc<HubSpotState>>) -> Response {
    let portal = &state.api.portal;
    // The offset in force now, as HubSpot reports it.
    let minutes = portal.offset_minutes_at(chrono::Utc::now().timestamp_millis());
    let sign = if minutes < 0 { '-' } else { '+' };
    ok(json!({
        "portalId": portal.id,
        "accountType": "STANDARD",
        "timeZone": portal.time_zone,
        "companyCurrency": portal.currency,
        "additionalCurrencies": portal.additional_currencies,
        "utcOffset": format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60),
        "utcOffsetMilliseconds": i64::from(minutes) * 60_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }))
}

/// `GET /crm/v3/pipelines/{objectType}`: deal pipelines only.
pub(super) async fn pipelines(
    State(state): State<Arc<HubSpotState>>,
    Path(object): Path<String>,
) -> Response {
    if object != "deals" && object != "0-3" {
        return bad_request(&format!("Pipelines of object type {object} are not available in this portal"));
    }
    let results: Vec<Value> = state
        .api
        .pipelines
        .iter()
        .enumerate()
        .map(|(order, pipeline)| {
            let open = pipeline.stages.iter().filter(|s| s.outcome == StageOutcome::Open).count().max(1);
            let stages: Vec<Value> = pipeline
                .stages
                .iter()
                .enumerate()
                .map(|(n, stage)| {
                    let (closed, probability) = match stage.outcome {
                        StageOutcome::Won => ("true", "1.0".to_owned()),
                        StageOutcome::Lost => ("true", "0.0".to_owned()),
                        StageOutcome::Open => ("false", format!("{:.1}", (n + 1) as f64 / (open + 1) as f64)),
                    };
                    json!({"id": stage.id, "label": stage.label, "displayOrder": n,
                           "metadata": {"isClosed": closed, "probability": probability},
                           "createdAt": CREATED, "updatedAt": CREATED, "archived": false,
                           "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"})
                })
                .collect();
            json!({"id": pipeline.id, "label": pipeline.label, "displayOrder": order, "stages": stages,
                   "createdAt": CREATED, "updatedAt": CREATED, "archived": false})
        })
        .collect();
    ok(json!({"results": results}))
}

/// `GET /marketing/v3/forms`.
pub(super) async fn forms(State(state): State<Arc<HubSpotState>>, RawQuery(query): RawQuery) -> Response {
    let params = params(query.as_deref());
    let (offset, limit) = match page(&params, 20, 100) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let portal = &state.api.portal;
    let items = state
        .api
        .forms
        .iter()
        .map(|form| {
            let created = iso(portal.day_start_ms(form.created) + 9 * 3_600_000);
            json!({"id": form.guid, "name": form.name, "formType": "hubspot",
                   "createdAt": created, "updatedAt": created, "archived": false,
                   "fieldGroups": [{"groupType": "default_group", "richTextType": "text",
                                    "fields": [{"objectTypeId": "0-1", "name": "email", "label": "Email",
                                                "required": true, "hidden": false, "fieldType": "email"}]}]})
        })
        .collect();
    ok(paged("https://api.hubapi.com", "/marketing/v3/forms", items, offset, limit, false))
}

/// `GET /form-integrations/v1/submissions/forms/{guid}`: newest first, `limit` ≤ 50.
pub(super) async fn submissions(
    State(state): State<Arc<HubSpotState>>,
    Path(guid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(index) = state.api.forms.iter().position(|f| f.guid == guid) else {
        return error(404, "OBJECT_NOT_FOUND", &format!("Form {guid} was not found")).to_response();
    };
    let params = params(query.as_deref());
    let (offset, limit) = match page(&params, 20, 50) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let items = state.data.submissions[index]
        .iter()
        .map(|s| {
            json!({"conversionId": s.conversion_id, "submittedAt": s.submitted_ms, "pageUrl": s.page_url,
                   "values": [{"name": "email", "value": s.email, "objectTypeId": "0-1"}]})
        })
        .collect();
    let path = format!("/form-integrations/v1/submissions/forms/{guid}");
    ok(paged("https://api.hubapi.com", &path, items, offset, limit, false))
}

/// `GET /marketing/v3/emails`.
pub(super) async fn emails(State(state): State<Arc<HubSpotState>>, RawQuery(query): RawQuery) -> Response {
    let params = params(query.as_deref());
    let (offset, limit) = match page(&params, 10, 100) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let portal = &state.api.portal;
    let items = state
        .api
        .emails
        .iter()
        .map(|email| {
            let sent = iso(portal.day_start_ms(email.published) + 10 * 3_600_000);
            json!({"id": email.id.to_string(), "name": email.name, "subject": email.name,
                   "state": "PUBLISHED", "type": "BATCH_EMAIL", "publishDate": sent,
                   "createdAt": sent, "updatedAt": sent, "archived": false})
        })
        .collect();
    ok(paged("https://api.hubapi.com", "/marketing/v3/emails", items, offset, limit, true))
}

/// `[startTimestamp, endTimestamp)` in epoch ms, both required.
fn time_range(params: &[(String, String)]) -> Result<(i64, i64), String> {
    let at = |name: &str| {
        let text = param(params, name).ok_or_else(|| format!("`{name}` is required"))?;
        parse_ms(text).ok_or_else(|| format!("`{name}` {text:?} is not an ISO-8601 timestamp"))
    };
    let (start, end) = (at("startTimestamp")?, at("endTimestamp")?);
    if end <= start {
        return Err("`endTimestamp` must be after `startTimestamp`".to_owned());
    }
    Ok((start, end))
}

fn email_ids(params: &[(String, String)]) -> Result<Vec<u64>, String> {
    params
        .iter()
        .filter(|(k, _)| k == "emailIds")
        .map(|(_, v)| v.parse().map_err(|_| format!("`emailIds` {v:?} is not an email id")))
        .collect()
}

/// `EmailStatisticsData` (§4): counters, device breakdown, qualifier stats and ratios in percent.
fn statistics(days: &[&EmailDay]) -> Value {
    let mut counters: BTreeMap<&str, u64> = BTreeMap::new();
    for day in days {
        for (name, value) in &day.counters {
            *counters.entry(name).or_default() += value;
        }
    }
    let get = |name: &str| counters.get(name).copied().unwrap_or(0);
    let percent = |part: u64, whole: u64| {
        if whole == 0 { 0.0 } else { (part as f64 * 10_000.0 / whole as f64).round() / 100.0 }
    };
    let (opens, clicks) = (get("open"), get("click"));
    let devices = |n: u64| json!({"computer": n * 3 / 5, "mobile": n - n * 3 / 5, "unknown": 0});
    json!({
        "counters": counters,
        "deviceBreakdown": {"open_device_type": devices(opens), "click_device_type": devices(clicks)},
        "qualifierStats": {},
        "ratios": {
            "openratio": percent(opens, get("delivered")),
            "clickratio": percent(clicks, get("delivered")),
            "clickthroughratio": percent(clicks, opens),
            "deliveredratio": percent(get("delivered"), get("sent")),
            "bounceratio": percent(get("bounce"), get("sent")),
            "unsubscribedratio": percent(get("unsubscribed"), get("delivered")),
        },
    })
}

fn days_in<'a>(state: &'a HubSpotState, start: i64, end: i64, ids: &[u64]) -> Vec<&'a EmailDay> {
    let portal = &state.api.portal;
    state
        .data
        .email_days
        .iter()
        .filter(|d| ids.is_empty() || ids.contains(&d.email_id))
        .filter(|d| (start..end).contains(&portal.day_start_ms(d.day)))
        .collect()
}

/// `GET /marketing/v3/emails/statistics/list`.
pub(super) async fn statistics_list(
    State(state): State<Arc<HubSpotState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = params(query.as_deref());
    let ((start, end), ids) = match (time_range(&params), email_ids(&params)) {
        (Ok(range), Ok(ids)) => (range, ids),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let days = days_in(&state, start, end, &ids);
    let mut emails: Vec<u64> = days.iter().map(|d| d.email_id).collect();
    emails.sort_unstable();
    emails.dedup();
    ok(json!({"aggregate": statistics(&days), "campaignAggregations": {}, "emails": emails}))
}

/// `GET /marketing/v3/emails/statistics/histogram?interval=DAY`: one interval per portal day with
/// statistics.
pub(super) async fn histogram(State(state): State<Arc<HubSpotState>>, RawQuery(query): RawQuery) -> Response {
    let params = params(query.as_deref());
    match param(&params, "interval") {
        Some("DAY") => {}
        Some(other) => return bad_request(&format!("interval {other} is not supported; use DAY")),
        None => return bad_request("`interval` is required"),
    }
    let ((start, end), ids) = match (time_range(&params), email_ids(&params)) {
        (Ok(range), Ok(ids)) => (range, ids),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let portal = &state.api.portal;
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<&EmailDay>> = BTreeMap::new();
    for day in days_in(&state, start, end, &ids) {
        by_day.entry(day.day).or_default().push(day);
    }
    let results: Vec<Value> = by_day
        .iter()
        .map(|(day, days)| {
            let next = day.checked_add_days(Days::new(1)).unwrap_or(*day);
            let (start, end) = (iso(portal.day_start_ms(*day)), iso(portal.day_start_ms(next)));
            json!({"interval": {"start": start, "end": end}, "aggregations": statistics(days)})
        })
        .collect();
    ok(json!({"total": results.len(), "results": results}))
}
