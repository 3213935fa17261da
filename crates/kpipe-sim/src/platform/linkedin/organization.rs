//! Company pages: name, follower total, and time-bound follower and share statistics
//! (`shared/apis/linkedin.md` §3.4, §3.5): one element per day, `start`/`count` paging, a
//! rolling 12-month window.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate};
use serde_json::{Value, json};

use super::restli::RestliValue;
use super::routes::{Query, ok};
use super::{LinkedInState, Refusal, bad_request, not_found};

const DAY_MS: i64 = 86_400_000;

fn organization_id(urn_or_id: &str) -> Option<u64> {
    urn_or_id.strip_prefix("urn:li:organization:").unwrap_or(urn_or_id).parse().ok()
}

pub(super) async fn organization(
    State(state): State<Arc<LinkedInState>>,
    Path(id): Path<String>,
) -> Response {
    let Some(org) = organization_id(&id).and_then(|id| state.api.organization(id)) else {
        return not_found(&format!("Organization {id} does not exist")).response();
    };
    let vanity: String =
        org.name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    ok(json!({
        "id": org.id,
        "localizedName": org.name,
        "vanityName": vanity,
        "name": {"localized": {"en_US": org.name}, "preferredLocale": {"country": "US", "language": "en"}},
        "primaryOrganizationType": "NONE",
        "locations": [],
        "localizedWebsite": "https://www.example.com"
    }))
}

/// `GET /rest/networkSizes/urn%3Ali%3Aorganization%3A<id>?edgeType=COMPANY_FOLLOWED_BY_MEMBER`.
pub(super) async fn network_size(
    State(state): State<Arc<LinkedInState>>,
    Path(urn): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw.as_deref());
    match query.plain("edgeType") {
        Ok(Some(edge)) if edge == "COMPANY_FOLLOWED_BY_MEMBER" || edge == "CompanyFollowedByMember" => {}
        Ok(_) => return bad_request("`edgeType=COMPANY_FOLLOWED_BY_MEMBER` is required").response(),
        Err(refusal) => return refusal.response(),
    }
    let Some(org) = urn.strip_prefix("urn:li:organization:").and_then(organization_id) else {
        return bad_request(&format!("`{urn}` is not an organization URN")).response();
    };
    if state.api.organization(org).is_none() {
        return not_found(&format!("Organization {org} does not exist")).response();
    }
    ok(json!({"firstDegreeSize": state.api.network_size(state.seed, org)}))
}

/// The request's organization and days, checked.
struct StatisticsRequest {
    organization: u64,
    urn: String,
    days: Vec<NaiveDate>,
    start: u64,
    count: u64,
}

fn millis(value: Option<&RestliValue>, name: &str) -> Result<i64, Refusal> {
    value
        .and_then(RestliValue::as_literal)
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| bad_request(&format!("`timeIntervals.timeRange.{name}` must be epoch milliseconds")))
}

fn statistics_request(state: &LinkedInState, query: &Query) -> Result<StatisticsRequest, Refusal> {
    query.finder("organizationalEntity")?;
    let urn = query
        .plain("organizationalEntity")?
        .ok_or_else(|| bad_request("`organizationalEntity` is required"))?;
    let organization = urn
        .strip_prefix("urn:li:organization:")
        .and_then(organization_id)
        .ok_or_else(|| bad_request(&format!("`{urn}` is not an organization URN")))?;
    if state.api.organization(organization).is_none() {
        return Err(error_access_denied(organization));
    }
    let Some(intervals) = query.restli("timeIntervals")? else {
        return Err(bad_request("kpipe-sim serves time-bound statistics only: give `timeIntervals`"));
    };
    if intervals.get("timeGranularityType").and_then(RestliValue::as_literal) != Some("DAY") {
        return Err(bad_request("kpipe-sim serves timeGranularityType:DAY only"));
    }
    let range = intervals.get("timeRange");
    let start_ms = millis(range.and_then(|r| r.get("start")), "start")?;
    let end_ms = millis(range.and_then(|r| r.get("end")), "end")?;
    if end_ms <= start_ms {
        return Err(bad_request("`timeRange.end` must be after `timeRange.start`"));
    }
    let first = DateTime::from_timestamp_millis(start_ms.div_euclid(DAY_MS) * DAY_MS)
        .map(|t| t.date_naive())
        .ok_or_else(|| bad_request("`timeRange.start` is out of range"))?;
    if first < state.api.earliest_statistics_day() {
        return Err(bad_request(&format!(
            "timeRange.start {first} is outside the rolling 12-month window (earliest {})",
            state.api.earliest_statistics_day()
        )));
    }
    // A bucket is a UTC day that starts before the range ends.
    let last_ms = end_ms - 1;
    let last = DateTime::from_timestamp_millis(last_ms).map_or(first, |t| t.date_naive());
    let days =
        first.iter_days().take_while(|d| *d <= last).filter(|d| state.api.has_statistics(*d)).collect();
    let start = match query.plain("start")? {
        None => 0,
        Some(v) => v.parse::<u64>().map_err(|_| bad_request("`start` must be a whole number"))?,
    };
    let count = query.size("count", state.api.default_statistics_count, state.api.max_page_size)?;
    Ok(StatisticsRequest { organization, urn, days, start, count })
}

fn error_access_denied(organization: u64) -> Refusal {
    Refusal {
        status: 403,
        code: "ACCESS_DENIED",
        message: format!(
            "Not enough permissions to access: organization {organization} (rw_organization_admin)"
        ),
    }
}

fn time_range(day: NaiveDate) -> Value {
    let start = day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis());
    json!({"start": start, "end": start + DAY_MS})
}

fn paged(request: &StatisticsRequest, element: impl Fn(NaiveDate) -> Value) -> Value {
    let start = usize::try_from(request.start).unwrap_or(usize::MAX).min(request.days.len());
    let end =
        start.saturating_add(usize::try_from(request.count).unwrap_or(usize::MAX)).min(request.days.len());
    let elements: Vec<Value> = request.days[start..end].iter().map(|d| element(*d)).collect();
    json!({"paging": {"start": request.start, "count": request.count, "links": []}, "elements": elements})
}

pub(super) async fn follower_statistics(
    State(state): State<Arc<LinkedInState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw.as_deref());
    match statistics_request(&state, &query) {
        Ok(request) => ok(paged(&request, |day| {
            let (organic, paid) = state.api.follower_gains(state.seed, request.organization, day);
            json!({
                "timeRange": time_range(day),
                "followerGains": {"organicFollowerGain": organic, "paidFollowerGain": paid},
                "organizationalEntity": request.urn
            })
        })),
        Err(refusal) => refusal.response(),
    }
}

pub(super) async fn share_statistics(
    State(state): State<Arc<LinkedInState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw.as_deref());
    match statistics_request(&state, &query) {
        Ok(request) => ok(paged(&request, |day| {
            json!({
                "totalShareStatistics": state.api.share_statistics(state.seed, request.organization, day),
                "organizationalEntity": request.urn,
                "timeRange": time_range(day)
            })
        })),
        Err(refusal) => refusal.response(),
    }
}
