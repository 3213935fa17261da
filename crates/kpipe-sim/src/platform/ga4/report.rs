//! `runReport`: the request body as the API reads it (`RunReportRequest`, notes §2), the
//! aggregation of the facts into a report table, and the response body (`RunReportResponse`,
//! notes §3) with ordering, offset/limit paging and `rowCount`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::data::{self, DIMENSIONS, MetricType, SimProperty, Span, Totals};
use crate::rng::{hash_label, mix64};

/// Rows per page when the request names no `limit` (notes §2).
pub const DEFAULT_LIMIT: u64 = 10_000;
/// The largest `limit` the API accepts (notes §2).
pub const MAX_LIMIT: u64 = 250_000;
/// Dimensions per request at most (notes §2).
pub const MAX_DIMENSIONS: usize = 9;
/// Date ranges per request at most (`DateRange`: "Requests are allowed up to 4 date ranges").
pub const MAX_DATE_RANGES: usize = 4;
/// The dimension a report of several date ranges gets after the requested ones, valued with the
/// range's `name` (`date_range_0`, `date_range_1`, ... for unnamed ranges).
pub const DATE_RANGE_DIMENSION: &str = "dateRange";
/// Metrics per request at most (notes §2).
pub const MAX_METRICS: usize = 10;

/// Why a request is refused: the HTTP status, the gRPC status and Google's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// `INVALID_ARGUMENT`, `PERMISSION_DENIED`, `RESOURCE_EXHAUSTED`, ...
    pub grpc_status: &'static str,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A 400 `INVALID_ARGUMENT`.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { status: 400, grpc_status: "INVALID_ARGUMENT", message: message.into() }
    }
}

/// What a report is asked for, reduced to what decides its rows: the simulator's truth for
/// tests is [`super::Ga4Api::report`] with one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// The first day, in the property's time zone.
    pub start: NaiveDate,
    /// The last day, inclusive.
    pub end: NaiveDate,
    /// Dimension API names, in order.
    pub dimensions: Vec<String>,
    /// Metric API names, in order.
    pub metrics: Vec<String>,
    /// `currencyCode`: the currency money is reported in; the property's when `None`.
    pub currency: Option<String>,
    /// `keepEmptyRows`: keep rows whose metrics are all zero.
    pub keep_empty_rows: bool,
}

impl ReportQuery {
    /// A query for these days, dimensions and metrics in the property's currency.
    #[must_use]
    pub fn new(start: NaiveDate, end: NaiveDate, dimensions: &[&str], metrics: &[&str]) -> Self {
        Self {
            start,
            end,
            dimensions: dimensions.iter().map(|d| (*d).to_owned()).collect(),
            metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
            currency: None,
            keep_empty_rows: false,
        }
    }
}

/// One of a request's `dateRanges`, with its name: the value of the [`DATE_RANGE_DIMENSION`]
/// of its rows when the request has several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRange {
    /// `name`, or `date_range_<index>` when the request gives none.
    pub name: String,
    /// The first day, in the property's time zone.
    pub start: NaiveDate,
    /// The last day, inclusive.
    pub end: NaiveDate,
}

impl NamedRange {
    /// A range named `name` from `start` to `end`.
    #[must_use]
    pub fn new(name: &str, start: NaiveDate, end: NaiveDate) -> Self {
        Self { name: name.to_owned(), start, end }
    }
}

/// One row of a report, values as the API sends them (strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// `dimensionValues[].value`, in header order.
    pub dimensions: Vec<String>,
    /// `metricValues[].value`, in header order.
    pub metrics: Vec<String>,
}

/// Every row of a report, ordered by its dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTable {
    /// The dimension headers.
    pub dimensions: Vec<String>,
    /// The metric headers and their types.
    pub metrics: Vec<(String, MetricType)>,
    /// The rows.
    pub rows: Vec<ReportRow>,
    /// `metadata.currencyCode`.
    pub currency: String,
    /// Days the report spans (for its token cost).
    pub days: u64,
}

impl ReportTable {
    /// The property tokens the report costs: more for more rows and longer spans, like the
    /// real API's cost model (notes §6), at least 1.
    #[must_use]
    pub fn cost(&self) -> u64 {
        1 + self.rows.len() as u64 / 500 + self.days / 30
    }
}

/// Exchange rates of the currencies `currencyCode` accepts, in millionths of a unit per US
/// dollar.
const RATES: [(&str, u64); 7] = [
    ("USD", 1_000_000),
    ("EUR", 920_000),
    ("GBP", 790_000),
    ("CHF", 880_000),
    ("CAD", 1_360_000),
    ("AUD", 1_520_000),
    ("JPY", 151_000_000),
];

fn rate(code: &str) -> Option<u64> {
    RATES.iter().find(|(c, _)| *c == code).map(|(_, r)| *r)
}

/// Cents of `from` in cents of `to`, rounded half up.
fn convert(cents: u64, from: &str, to: &str) -> Option<u64> {
    if from == to {
        return Some(cents);
    }
    let (from, to) = (u128::from(rate(from)?), u128::from(rate(to)?));
    let converted = (u128::from(cents) * to * 2 + from) / (2 * from);
    u64::try_from(converted).ok()
}

/// A money amount in cents as the API writes it: major units, no trailing zeros (`"2450.5"`).
#[must_use]
pub fn format_money(cents: u64) -> String {
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A floating-point metric as the API writes it: the shortest text that reads back as the
/// same double (`"0.6481723237597912"`, `"1"`).
fn format_ratio(numerator: u64, denominator: u64) -> String {
    if denominator == 0 {
        return "0".to_owned();
    }
    format!("{}", numerator as f64 / denominator as f64)
}

fn metric_value(name: &str, span: &Span, property_currency: &str, currency: &str) -> String {
    let t = &span.sums;
    match name {
        "sessions" => t.sessions.to_string(),
        "engagedSessions" => t.engaged_sessions.to_string(),
        "userEngagementDuration" => t.engagement_seconds.to_string(),
        "screenPageViews" => t.page_views.to_string(),
        "keyEvents" => t.key_events.to_string(),
        "eventCount" => t.event_count.to_string(),
        "purchaseRevenue" => {
            format_money(convert(t.revenue_cents, property_currency, currency).unwrap_or_default())
        }
        "newUsers" => span.new_users().to_string(),
        "totalUsers" | "activeUsers" => span.total_users().to_string(),
        "engagementRate" => format_ratio(t.engaged_sessions, t.sessions),
        "bounceRate" => format_ratio(t.sessions - t.engaged_sessions.min(t.sessions), t.sessions),
        "averageSessionDuration" => format_ratio(t.engagement_seconds, t.sessions),
        "screenPageViewsPerSession" => format_ratio(t.page_views, t.sessions),
        _ => "0".to_owned(),
    }
}

fn is_zero(value: &str) -> bool {
    value.parse::<f64>().is_ok_and(|v| v == 0.0)
}

/// The report `query` asks of `property`, from the facts of `seed`, over the days from
/// `first_day` to `last_day` that the query's range covers.
pub(crate) fn compute(
    seed: u64,
    property: &SimProperty,
    query: &ReportQuery,
    (first_day, last_day): (NaiveDate, Option<NaiveDate>),
) -> Result<ReportTable, ApiError> {
    if query.end < query.start {
        return Err(ApiError::invalid(format!(
            "The start date {} is after the end date {}.",
            query.start, query.end
        )));
    }
    if query.dimensions.len() > MAX_DIMENSIONS {
        return Err(ApiError::invalid(format!(
            "Requests are limited to {MAX_DIMENSIONS} dimensions within a date range."
        )));
    }
    if query.metrics.is_empty() {
        return Err(ApiError::invalid("At least one metric is required."));
    }
    if query.metrics.len() > MAX_METRICS {
        return Err(ApiError::invalid(format!(
            "Requests are limited to {MAX_METRICS} metrics within a date range."
        )));
    }
    let mut seen = Vec::new();
    for d in &query.dimensions {
        if !DIMENSIONS.contains(&d.as_str()) {
            return Err(ApiError::invalid(format!(
                "Field {d} is not a valid dimension. For a list of valid dimensions and metrics, see \
                 https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema "
            )));
        }
        if seen.contains(&d) {
            return Err(ApiError::invalid(format!("Duplicate dimension name {d}.")));
        }
        seen.push(d);
    }
    let mut metrics = Vec::with_capacity(query.metrics.len());
    for m in &query.metrics {
        let Some(t) = data::metric_type(m) else {
            return Err(ApiError::invalid(format!(
                "Field {m} is not a valid metric. For a list of valid dimensions and metrics, see \
                 https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema "
            )));
        };
        if metrics.iter().any(|(n, _)| n == m) {
            return Err(ApiError::invalid(format!("Duplicate metric name {m}.")));
        }
        metrics.push((m.clone(), t));
    }
    let currency = query.currency.clone().unwrap_or_else(|| property.currency.clone());
    if rate(&currency).is_none() {
        return Err(ApiError::invalid(format!("Currency code {currency} is not supported.")));
    }

    // Each group's day totals, then the group over the range: additive metrics add up, unique
    // counts are combined from the days' counts (a group of a report by `date` has one day).
    let mut groups: BTreeMap<Vec<String>, Span> = BTreeMap::new();
    let from = query.start.max(first_day);
    let to = last_day.map_or(query.end, |l| query.end.min(l));
    let mut day = from;
    while day <= to {
        let mut today: BTreeMap<Vec<String>, Totals> = BTreeMap::new();
        for fact in data::facts(seed, property, day) {
            let key = query.dimensions.iter().map(|d| fact.dimension(d)).collect();
            today.entry(key).or_default().add(&fact);
        }
        for (key, totals) in today {
            groups.entry(key).or_default().add_day(&totals);
        }
        match day.checked_add_days(Days::new(1)) {
            Some(next) => day = next,
            None => break,
        }
    }
    let rows = groups
        .into_iter()
        .map(|(dimensions, span)| ReportRow {
            dimensions,
            metrics: query
                .metrics
                .iter()
                .map(|m| metric_value(m, &span, &property.currency, &currency))
                .collect(),
        })
        .filter(|row| query.keep_empty_rows || !row.metrics.iter().all(|v| is_zero(v)))
        .collect();
    let days = u64::try_from((query.end - query.start).num_days() + 1).unwrap_or(1);
    Ok(ReportTable { dimensions: query.dimensions.clone(), metrics, rows, currency, days })
}

/// The report `query` asks over each of `ranges` (its own `start` and `end` are not used): one
/// range gives that range's report; several give each range's rows with the range's name as the
/// value of a last dimension [`DATE_RANGE_DIMENSION`], ordered by dimension values. Each range
/// is computed on its own, so a range's unique counts are those of its days (overlapping ranges
/// count the shared days in both).
pub(crate) fn compute_ranges(
    seed: u64,
    property: &SimProperty,
    query: &ReportQuery,
    ranges: &[NamedRange],
    bounds: (NaiveDate, Option<NaiveDate>),
) -> Result<ReportTable, ApiError> {
    check_ranges(ranges)?;
    let mut merged: Option<ReportTable> = None;
    for range in ranges {
        let query = ReportQuery { start: range.start, end: range.end, ..query.clone() };
        let mut table = compute(seed, property, &query, bounds)?;
        if ranges.len() == 1 {
            return Ok(table);
        }
        for row in &mut table.rows {
            row.dimensions.push(range.name.clone());
        }
        match &mut merged {
            None => {
                table.dimensions.push(DATE_RANGE_DIMENSION.to_owned());
                merged = Some(table);
            }
            Some(all) => {
                all.rows.append(&mut table.rows);
                all.days += table.days;
            }
        }
    }
    let mut table = merged.ok_or_else(|| ApiError::invalid("A date range is required."))?;
    table.rows.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
    Ok(table)
}

/// What the API checks of `dateRanges`: one to four, names unique and not reserved.
fn check_ranges(ranges: &[NamedRange]) -> Result<(), ApiError> {
    if ranges.is_empty() {
        return Err(ApiError::invalid("A date range is required."));
    }
    if ranges.len() > MAX_DATE_RANGES {
        return Err(ApiError::invalid(format!(
            "Requests are limited to {MAX_DATE_RANGES} date ranges; this one has {}.",
            ranges.len()
        )));
    }
    for (i, range) in ranges.iter().enumerate() {
        if ranges[..i].iter().any(|r| r.name == range.name) {
            return Err(ApiError::invalid(format!("The date range name {} is used twice.", range.name)));
        }
    }
    Ok(())
}

/// An int64 field: a JSON string (as the discovery document encodes it) or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Int64 {
    Text(String),
    Number(i64),
}

impl Int64 {
    fn value(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Self::Number(n) => Ok(*n),
            Self::Text(t) => t
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid value at '{field}' (TYPE_INT64), \"{t}\""))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DateRange {
    start_date: String,
    end_date: String,
    /// The value of the `dateRange` dimension of the range's rows when the request has several
    /// ranges; `date_range_<index>` when not given.
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DimensionOrder {
    dimension_name: String,
    #[serde(default)]
    order_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricOrder {
    metric_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderBy {
    #[serde(default)]
    dimension: Option<DimensionOrder>,
    #[serde(default)]
    metric: Option<MetricOrder>,
    #[serde(default)]
    desc: bool,
}

/// A `RunReportRequest` (notes §2). Fields the simulator does not simulate are refused with a
/// 400 naming them, so a test cannot rely on them silently.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RunReportRequest {
    #[serde(default)]
    pub(crate) property: Option<String>,
    #[serde(default)]
    date_ranges: Vec<DateRange>,
    #[serde(default)]
    dimensions: Vec<Named>,
    #[serde(default)]
    metrics: Vec<Named>,
    #[serde(default)]
    dimension_filter: Option<Value>,
    #[serde(default)]
    metric_filter: Option<Value>,
    #[serde(default)]
    order_bys: Vec<OrderBy>,
    #[serde(default)]
    limit: Option<Int64>,
    #[serde(default)]
    offset: Option<Int64>,
    #[serde(default)]
    keep_empty_rows: bool,
    #[serde(default)]
    currency_code: Option<String>,
    #[serde(default)]
    pub(crate) return_property_quota: bool,
    #[serde(default)]
    metric_aggregations: Vec<String>,
    #[serde(default)]
    cohort_spec: Option<Value>,
    #[serde(default)]
    comparisons: Option<Value>,
}

/// A request read and checked: the query, the page and the order.
#[derive(Debug)]
pub(crate) struct PageRequest {
    /// The query; its `start` and `end` are the first range's.
    pub(crate) query: ReportQuery,
    /// Every date range, named.
    pub(crate) ranges: Vec<NamedRange>,
    offset: u64,
    limit: u64,
    order_bys: Vec<OrderBy>,
}

/// Reads `YYYY-MM-DD`, `today`, `yesterday` or `NdaysAgo`.
fn parse_day(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    match text {
        "today" => Some(today),
        "yesterday" => today.checked_sub_days(Days::new(1)),
        _ => match text.strip_suffix("daysAgo").map(str::parse::<u64>) {
            Some(Ok(n)) => today.checked_sub_days(Days::new(n)),
            Some(Err(_)) => None,
            None => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
        },
    }
}

impl RunReportRequest {
    /// Checks what the API checks before running the report, and what the simulator does not
    /// simulate.
    pub(crate) fn page(&self) -> Result<PageRequest, ApiError> {
        let unsupported = [
            ("dimensionFilter", self.dimension_filter.is_some()),
            ("metricFilter", self.metric_filter.is_some()),
            ("metricAggregations", !self.metric_aggregations.is_empty()),
            ("cohortSpec", self.cohort_spec.is_some()),
            ("comparisons", self.comparisons.is_some()),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(ApiError::invalid(format!("kpipe-sim does not simulate `{field}`.")));
        }
        let today = Utc::now().date_naive();
        let day = |text: &str| {
            parse_day(text, today).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid date {text:?}: use YYYY-MM-DD, NdaysAgo, yesterday, or today."
                ))
            })
        };
        let mut ranges = Vec::with_capacity(self.date_ranges.len());
        for (index, range) in self.date_ranges.iter().enumerate() {
            let name = match &range.name {
                None => format!("date_range_{index}"),
                Some(name) if name.starts_with("date_range_") || name.starts_with("RESERVED_") => {
                    return Err(ApiError::invalid(format!(
                        "The date range name {name} is invalid: it cannot begin with date_range_ or \
                         RESERVED_."
                    )));
                }
                Some(name) => name.clone(),
            };
            ranges.push(NamedRange { name, start: day(&range.start_date)?, end: day(&range.end_date)? });
        }
        check_ranges(&ranges)?;
        let (start, end) = (ranges[0].start, ranges[0].end);
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(l) => match l.value("limit")? {
                n if n > 0 && n.unsigned_abs() <= MAX_LIMIT => n.unsigned_abs(),
                n => {
                    return Err(ApiError::invalid(format!(
                        "limit {n} is invalid: it must be positive and at most {MAX_LIMIT}."
                    )));
                }
            },
        };
        let offset = match &self.offset {
            None => 0,
            Some(o) => match o.value("offset")? {
                n if n >= 0 => n.unsigned_abs(),
                n => {
                    return Err(ApiError::invalid(format!(
                        "offset {n} is invalid: it must not be negative."
                    )));
                }
            },
        };
        let dimensions: Vec<String> = self.dimensions.iter().map(|d| d.name.clone()).collect();
        let metrics: Vec<String> = self.metrics.iter().map(|m| m.name.clone()).collect();
        for order in &self.order_bys {
            match (&order.dimension, &order.metric) {
                (Some(d), None) if dimensions.contains(&d.dimension_name) => {}
                (None, Some(m)) if metrics.contains(&m.metric_name) => {}
                (Some(d), None) => {
                    return Err(ApiError::invalid(format!(
                        "Dimension {} in orderBys is not in the request's dimensions.",
                        d.dimension_name
                    )));
                }
                (None, Some(m)) => {
                    return Err(ApiError::invalid(format!(
                        "Metric {} in orderBys is not in the request's metrics.",
                        m.metric_name
                    )));
                }
                _ => return Err(ApiError::invalid("Each orderBys entry orders by one dimension or metric.")),
            }
        }
        Ok(PageRequest {
            query: ReportQuery {
                start,
                end,
                dimensions,
                metrics,
                currency: self.currency_code.clone(),
                keep_empty_rows: self.keep_empty_rows,
            },
            ranges,
            offset,
            limit,
            order_bys: self.order_bys.clone(),
        })
    }
}

fn compare_dimension(a: &str, b: &str, order_type: Option<&str>) -> Ordering {
    match order_type {
        Some("CASE_INSENSITIVE_ALPHANUMERIC") => a.to_lowercase().cmp(&b.to_lowercase()),
        Some("NUMERIC") => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        },
        _ => a.cmp(b),
    }
}

fn compare_metric(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

/// One page of `table` as `page` asks, in the `RunReportResponse` shape. Without `orderBys` the
/// rows come in an order that changes from page to page, as the API promises no order: only a
/// client that orders its pages pages reliably.
pub(crate) fn render(
    seed: u64,
    table: &ReportTable,
    page: &PageRequest,
    time_zone: &str,
) -> Map<String, Value> {
    let mut rows: Vec<&ReportRow> = table.rows.iter().collect();
    let shuffle = |row: &ReportRow| {
        mix64(seed ^ hash_label(&row.dimensions.join("\u{1f}")) ^ mix64(page.offset.wrapping_add(page.limit)))
    };
    rows.sort_by_cached_key(|r| shuffle(r));
    rows.sort_by(|a, b| {
        for order in &page.order_bys {
            let ordering = if let Some(d) = &order.dimension {
                let i = table.dimensions.iter().position(|n| *n == d.dimension_name).unwrap_or(0);
                compare_dimension(&a.dimensions[i], &b.dimensions[i], d.order_type.as_deref())
            } else if let Some(m) = &order.metric {
                let i = table.metrics.iter().position(|(n, _)| *n == m.metric_name).unwrap_or(0);
                compare_metric(&a.metrics[i], &b.metrics[i])
            } else {
                Ordering::Equal
            };
            let ordering = if order.desc { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    let start = usize::try_from(page.offset).unwrap_or(usize::MAX).min(rows.len());
    let end = start.saturating_add(usize::try_from(page.limit).unwrap_or(usize::MAX)).min(rows.len());
    let cells = |values: &[String]| values.iter().map(|v| json!({"value": v})).collect::<Vec<_>>();
    let mut body = Map::new();
    body.insert(
        "dimensionHeaders".into(),
        Value::Array(table.dimensions.iter().map(|d| json!({"name": d})).collect()),
    );
    body.insert(
        "metricHeaders".into(),
        Value::Array(table.metrics.iter().map(|(n, t)| json!({"name": n, "type": t.as_str()})).collect()),
    );
    // proto3 JSON leaves out empty repeated fields and zero numbers (notes §3).
    if end > start {
        let page_rows = rows[start..end]
            .iter()
            .map(|r| json!({"dimensionValues": cells(&r.dimensions), "metricValues": cells(&r.metrics)}))
            .collect();
        body.insert("rows".into(), Value::Array(page_rows));
    }
    if !rows.is_empty() {
        body.insert("rowCount".into(), json!(rows.len()));
    }
    body.insert("metadata".into(), json!({"currencyCode": table.currency, "timeZone": time_zone}));
    body.insert("kind".into(), json!("analyticsData#runReport"));
    body
}
