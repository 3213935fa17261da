//! Google Analytics 4: the Analytics Data API v1beta (`/v1beta/properties/...`) as
//! `shared/apis/ga4.md` describes it.
//!
//! | route | notes section |
//! |---|---|
//! | `POST /v1beta/properties/{id}:runReport` | §2, §3, §5 |
//! | `POST /v1beta/properties/{id}:batchRunReports` (at most 5 requests) | §4 |
//! | `GET /v1beta/properties/{id}/metadata` | §1 (the dimensions and metrics it knows) |
//!
//! Reports are aggregated from seeded facts (one per property, day, traffic source, device,
//! country, new or returning): every `dimensionValues[].value` and `metricValues[].value` is a
//! string, typed by `metricHeaders[].type`; `date` is `YYYYMMDD` in the property's time zone;
//! empty reports have neither `rows` nor `rowCount`; rows whose metrics are all zero are left out
//! unless `keepEmptyRows`; `limit` (default 10,000, at most 250,000) and `offset` may be strings
//! or numbers; `rowCount` counts every row of the report. Without `orderBys` the order of the
//! rows changes from page to page, since the API promises none. Unique counts (`totalUsers`,
//! `activeUsers`, `newUsers`, the `returning` row of `newVsReturning`) are computed at the grain
//! asked, never the sum of finer rows: a group's count on one day lies between its largest cell's
//! and the cells' sum; over several days (a report without `date`), between its busiest day's and
//! the days' sum, and below that sum once two days have users ([`Ga4Api::period_users`] is that
//! truth). `currencyCode` converts revenue at fixed rates.
//!
//! A request may have up to four `dateRanges` (`DateRange`): with more than one, each range's
//! rows come with a last dimension `dateRange` valued with the range's `name` (`date_range_0`,
//! ... when unnamed; a name may not begin with `date_range_` or `RESERVED_`), as Google's "Create
//! a report" guide shows under "Multiple date ranges". Each range is counted on its own.
//!
//! Property quotas (§6) are enforced per property: concurrent requests in flight, tokens per
//! hour (per property, and per project per property) and per day, each refusal a 429
//! `RESOURCE_EXHAUSTED` with Google's message; `returnPropertyQuota` reports them. What the
//! simulator saw is in [`Ga4Api::monitor`]. Errors use Google's envelope
//! `{"error": {"code", "message", "status"}}`: an unknown property is 403 `PERMISSION_DENIED`, a
//! bad request 400 `INVALID_ARGUMENT`. [`auth_config`] makes the token endpoint Google's.
//!
//! Not simulated (refused with a 400 naming the field): filters, metric aggregations, cohorts,
//! comparisons; `orderBys` on `dateRange`; pivot and realtime reports are not served.

mod data;
mod property_quota;
mod report;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::NaiveDate;
use serde_json::{Value, json};

pub use data::{CHANNELS, COUNTRIES, DEVICES, DIMENSIONS, METRICS, MetricType, SimProperty, metric_type};
pub use data::{
    NEW_DAYS_KEPT_PERMILLE, RETURNING_CELLS_KEPT_PERMILLE, RETURNING_DAYS_KEPT_PERMILLE, union_count,
};
pub use property_quota::{Ga4Monitor, PropertyQuotaLimits, QuotaRefusal};
pub use report::{
    ApiError, DATE_RANGE_DIMENSION, DEFAULT_LIMIT, MAX_DATE_RANGES, MAX_DIMENSIONS, MAX_LIMIT, MAX_METRICS,
    NamedRange, ReportQuery, ReportRow, ReportTable, format_money,
};

use crate::config::CannedResponse;
use crate::platform::{Platform, PlatformContext};
use crate::quota::{QuotaRule, RetryAfter};
use report::RunReportRequest;

/// Google's token endpoint path (`https://oauth2.googleapis.com/token`).
pub const TOKEN_PATH: &str = "/token";

/// Requests one `batchRunReports` may hold (notes §4).
pub const MAX_BATCH_REQUESTS: usize = 5;

/// The simulated Data API: which properties exist, from when they have data, their quotas.
/// Clones share the quota state and the [`Ga4Monitor`], so a test keeps a clone to read it.
#[derive(Debug, Clone)]
pub struct Ga4Api {
    /// The properties.
    pub properties: Vec<SimProperty>,
    /// The first day with data; earlier days are empty.
    pub first_day: NaiveDate,
    /// The last day with data, if any.
    pub last_day: Option<NaiveDate>,
    /// Every property's quota limits.
    pub quota: PropertyQuotaLimits,
    /// How long an "hour" of the hourly token quotas lasts (shorter in tests).
    pub hour: Duration,
    /// How long a report takes to run once admitted, holding its concurrent-request slot.
    pub processing_time: Duration,
    /// What the simulator saw: requests in flight, quota refusals, tokens consumed. Shared by
    /// clones; a new one starts from nothing.
    pub monitor: Ga4Monitor,
}

/// The first day of the default properties' data.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2024, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

impl Default for Ga4Api {
    /// Two properties (USD in Los Angeles, EUR in Berlin) with data every day from
    /// [`FIRST_DAY`] on, standard quotas.
    fn default() -> Self {
        Self::new(vec![
            SimProperty::new("123456789", "USD", "America/Los_Angeles", 2),
            SimProperty::new("987654321", "EUR", "Europe/Berlin", 1),
        ])
    }
}

impl Ga4Api {
    /// These properties, with the defaults for the rest.
    #[must_use]
    pub fn new(properties: Vec<SimProperty>) -> Self {
        Self {
            properties,
            first_day: FIRST_DAY,
            last_day: None,
            quota: PropertyQuotaLimits::STANDARD,
            hour: Duration::from_secs(3600),
            processing_time: Duration::ZERO,
            monitor: Ga4Monitor::default(),
        }
    }

    /// What the simulator saw: requests in flight, quota refusals, tokens consumed.
    #[must_use]
    pub fn monitor(&self) -> &Ga4Monitor {
        &self.monitor
    }

    /// The property with this id.
    #[must_use]
    pub fn property(&self, id: &str) -> Option<&SimProperty> {
        self.properties.iter().find(|p| p.id == id)
    }

    /// Every row of the report `query` asks of property `id` for `seed`, ordered by dimension
    /// values: the simulator's truth, which tests compare a connector's rows against.
    ///
    /// # Errors
    ///
    /// The API's answer to a bad query: an unknown property, dimension or metric, too many of
    /// them, an inverted range, an unsupported currency.
    pub fn report(&self, seed: u64, id: &str, query: &ReportQuery) -> Result<ReportTable, ApiError> {
        let property = self.property(id).ok_or_else(|| permission_denied(id))?;
        report::compute(seed, property, query, (self.first_day, self.last_day))
    }

    /// The report `query` asks over each of `ranges` in one request, as it is served: with
    /// several ranges, each row's last dimension is its range's name (`dateRange`). The query's
    /// own `start` and `end` are not used.
    ///
    /// # Errors
    ///
    /// As [`Ga4Api::report`]; and more than four ranges, or a name used twice.
    pub fn report_ranges(
        &self,
        seed: u64,
        id: &str,
        query: &ReportQuery,
        ranges: &[NamedRange],
    ) -> Result<ReportTable, ApiError> {
        let property = self.property(id).ok_or_else(|| permission_denied(id))?;
        report::compute_ranges(seed, property, query, ranges, (self.first_day, self.last_day))
    }

    /// The simulator's truth for the unique user counts of property `id` over the days `start`
    /// to `end` taken as one span (a week, a month), for each value of `dimensions` (none: the
    /// property's), as a report of those dimensions without `date` serves them: `totalUsers`,
    /// `newUsers`, and `totalUsers` of the `returning` row of `newVsReturning`. Each value lies
    /// between the largest single day's and the sum of the days' values, and is below the sum
    /// when two days or more have users; a dimension value's count is never above the property's.
    ///
    /// # Errors
    ///
    /// As [`Ga4Api::report`].
    pub fn period_users(
        &self,
        seed: u64,
        id: &str,
        start: NaiveDate,
        end: NaiveDate,
        dimensions: &[&str],
    ) -> Result<std::collections::BTreeMap<Vec<String>, PeriodUsers>, ApiError> {
        let mut out: std::collections::BTreeMap<Vec<String>, PeriodUsers> = std::collections::BTreeMap::new();
        let counts = |t: &ReportTable, i: usize| -> Vec<(Vec<String>, u64)> {
            t.rows
                .iter()
                .map(|r| (r.dimensions.clone(), r.metrics.get(i).and_then(|v| v.parse().ok()).unwrap_or(0)))
                .collect()
        };
        let all =
            self.report(seed, id, &ReportQuery::new(start, end, dimensions, &["totalUsers", "newUsers"]))?;
        for (key, users) in counts(&all, 0) {
            out.entry(key).or_default().users = users;
        }
        for (key, new) in counts(&all, 1) {
            out.entry(key).or_default().new_users = new;
        }
        let mut split: Vec<&str> = dimensions.to_vec();
        split.push("newVsReturning");
        let by_kind = self.report(seed, id, &ReportQuery::new(start, end, &split, &["totalUsers"]))?;
        for (mut key, users) in counts(&by_kind, 0) {
            if key.pop().as_deref() == Some("returning") {
                out.entry(key).or_default().returning_users = users;
            }
        }
        Ok(out)
    }
}

/// Unique user counts of a group over a span of days ([`Ga4Api::period_users`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodUsers {
    /// `totalUsers`.
    pub users: u64,
    /// `newUsers`.
    pub new_users: u64,
    /// `totalUsers` of the `returning` row of `newVsReturning` (0 when there is none).
    pub returning_users: u64,
}

/// Google's error envelope.
#[must_use]
pub fn error(status: u16, grpc_status: &str, message: &str) -> CannedResponse {
    CannedResponse::json(
        status,
        json!({"error": {"code": status, "message": message, "status": grpc_status}}),
    )
}

const QUOTA_DOCS: &str =
    "To learn more, see https://developers.google.com/analytics/devguides/reporting/data/v1/quotas";

/// Hourly property tokens exhausted (429 `RESOURCE_EXHAUSTED`, no `Retry-After`).
#[must_use]
pub fn tokens_per_hour_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        &format!(
            "Exhausted property tokens per hour. These quota tokens will return in under an hour. \
             {QUOTA_DOCS}"
        ),
    )
}

/// This project's hourly tokens for the property exhausted (429 `RESOURCE_EXHAUSTED`).
#[must_use]
pub fn tokens_per_project_per_hour_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        &format!(
            "Exhausted property tokens per hour for a project per property. These quota tokens will \
             return in under an hour. {QUOTA_DOCS}"
        ),
    )
}

/// Daily property tokens exhausted (429 `RESOURCE_EXHAUSTED`).
#[must_use]
pub fn tokens_per_day_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        &format!("Exhausted property tokens per day. These quota tokens will return tomorrow. {QUOTA_DOCS}"),
    )
}

/// Too many requests of one property in flight (429 `RESOURCE_EXHAUSTED`).
#[must_use]
pub fn concurrent_requests_exhausted() -> CannedResponse {
    error(
        429,
        "RESOURCE_EXHAUSTED",
        &format!(
            "Exhausted concurrent requests quota. Too many requests for this property are in flight. \
             {QUOTA_DOCS}"
        ),
    )
}

/// A daily cap of `limit` requests answered like GA4.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit)
        .named("ga4_daily")
        .with_retry_after(RetryAfter::Omit)
        .with_response(tokens_per_day_exhausted())
}

/// An expired or invalid access token (401 `UNAUTHENTICATED`).
#[must_use]
pub fn unauthenticated() -> CannedResponse {
    error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or \
         other valid authentication credential.",
    )
}

/// The answer to a property the credentials cannot read, or that does not exist.
fn permission_denied(id: &str) -> ApiError {
    ApiError {
        status: 403,
        grpc_status: "PERMISSION_DENIED",
        message: format!(
            "User does not have sufficient permissions for this property ({id}). To learn more about \
             Property ID, see \
             https://developers.google.com/analytics/devguides/reporting/data/v1/property-id."
        ),
    }
}

/// Google's token endpoint behaviour at [`TOKEN_PATH`]: no refresh token in responses,
/// `expires_in` 3599, the JWT-bearer grant verified with `jwt`.
#[must_use]
pub fn auth_config(jwt: crate::JwtBearerConfig) -> crate::AuthConfig {
    crate::AuthConfig {
        require_bearer: true,
        token_path: TOKEN_PATH.to_owned(),
        jwt_bearer: Some(jwt),
        expires_in: Duration::from_secs(3599),
        expired_response: unauthenticated(),
        invalid_response: unauthenticated(),
        ..crate::AuthConfig::default()
    }
}

fn refusal_response(refusal: QuotaRefusal) -> Response {
    match refusal {
        QuotaRefusal::Concurrent => concurrent_requests_exhausted(),
        QuotaRefusal::Hourly => tokens_per_hour_exhausted(),
        QuotaRefusal::ProjectHourly => tokens_per_project_per_hour_exhausted(),
        QuotaRefusal::Daily => tokens_per_day_exhausted(),
    }
    .to_response()
}

fn error_response(e: &ApiError) -> Response {
    error(e.status, e.grpc_status, &e.message).to_response()
}

#[derive(Debug)]
struct Ga4State {
    api: Ga4Api,
    seed: u64,
}

impl Platform for Ga4Api {
    fn name(&self) -> &str {
        "ga4"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        self.monitor.start();
        let state = Arc::new(Ga4State { api: self.clone(), seed: ctx.seed() });
        Router::new()
            .route("/v1beta/properties/{call}", post(call))
            .route("/v1beta/properties/{id}/metadata", get(metadata))
            .with_state(state)
    }
}

/// `POST /v1beta/properties/{id}:{method}`: the colon is part of the path segment.
async fn call(State(state): State<Arc<Ga4State>>, Path(call): Path<String>, body: Bytes) -> Response {
    let Some((id, method)) = call.split_once(':') else {
        return error(
            404,
            "NOT_FOUND",
            &format!("The requested URL /v1beta/properties/{call} was not found."),
        )
        .to_response();
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return error_response(&ApiError::invalid(format!(
            "Invalid property ID: {id}. A numeric Property ID is required."
        )));
    }
    let Some(property) = state.api.property(id).cloned() else {
        return error_response(&permission_denied(id));
    };
    let api = &state.api;
    let _slot = match api.monitor.enter(&property.id, &api.quota) {
        Ok(slot) => slot,
        Err(refusal) => return refusal_response(refusal),
    };
    if !api.processing_time.is_zero() {
        tokio::time::sleep(api.processing_time).await;
    }
    let requests = match method {
        "runReport" => parse::<RunReportRequest>(&body).map(|r| vec![r]),
        "batchRunReports" => parse::<BatchRequest>(&body).and_then(|b| b.requests(id)),
        _ => {
            return error(404, "NOT_FOUND", &format!("Method {method} is not served by kpipe-sim."))
                .to_response();
        }
    };
    let requests = match requests {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    if let Err(refusal) = api.monitor.check_tokens(&property.id, &api.quota, api.hour) {
        return refusal_response(refusal);
    }
    let mut reports = Vec::with_capacity(requests.len());
    for request in &requests {
        let page = match request.page() {
            Ok(p) => p,
            Err(e) => return error_response(&e),
        };
        match report::compute_ranges(
            state.seed,
            &property,
            &page.query,
            &page.ranges,
            (api.first_day, api.last_day),
        ) {
            Ok(table) => reports.push((request, page, table)),
            Err(e) => return error_response(&e),
        }
    }
    let cost = reports.iter().map(|(_, _, t)| t.cost()).sum();
    let quota = api.monitor.consume(&property.id, &api.quota, cost);
    let mut bodies: Vec<Value> = reports
        .iter()
        .map(|(request, page, table)| {
            let mut body = report::render(state.seed, table, page, &property.time_zone);
            if request.return_property_quota {
                body.insert("propertyQuota".into(), quota.to_json());
            }
            Value::Object(body)
        })
        .collect();
    let body = if method == "runReport" {
        bodies.pop().unwrap_or(Value::Null)
    } else {
        json!({"reports": bodies, "kind": "analyticsData#batchRunReports"})
    };
    CannedResponse::json(200, body).to_response()
}

/// `BatchRunReportsRequest` (notes §4).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    #[serde(default)]
    requests: Vec<RunReportRequest>,
}

impl BatchRequest {
    fn requests(self, id: &str) -> Result<Vec<RunReportRequest>, ApiError> {
        if self.requests.is_empty() || self.requests.len() > MAX_BATCH_REQUESTS {
            return Err(ApiError::invalid(format!(
                "A batch holds 1 to {MAX_BATCH_REQUESTS} requests; this one holds {}.",
                self.requests.len()
            )));
        }
        let own = format!("properties/{id}");
        if let Some(other) = self.requests.iter().filter_map(|r| r.property.as_deref()).find(|p| *p != own) {
            return Err(ApiError::invalid(format!(
                "The property {other} of a batched request must be unspecified or {own}."
            )));
        }
        Ok(self.requests)
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// `GET /v1beta/properties/{id}/metadata`: the dimensions and metrics reports may use.
async fn metadata(State(state): State<Arc<Ga4State>>, Path(id): Path<String>) -> Response {
    if state.api.property(&id).is_none() {
        return error_response(&permission_denied(&id));
    }
    let dimensions: Vec<Value> =
        DIMENSIONS.iter().map(|d| json!({"apiName": d, "uiName": d, "category": "Traffic source"})).collect();
    let metrics: Vec<Value> = METRICS
        .iter()
        .map(|(m, t)| json!({"apiName": m, "uiName": m, "type": t.as_str(), "category": "Session"}))
        .collect();
    CannedResponse::json(
        200,
        json!({"name": format!("properties/{id}/metadata"), "dimensions": dimensions, "metrics": metrics}),
    )
    .to_response()
}
