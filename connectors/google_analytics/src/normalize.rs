//! Report pages to metric rows. A page's headers are checked against the request and read once
//! (`metricHeaders[].type` decides how each value is read); then each row becomes one metric row
//! per metric, or is refused with the reason, for the quarantine. A period report's row becomes
//! one period row per metric, for the period its `dateRange` names.

use chrono::NaiveDate;
use kpipe_core::{Currency, Dimensions, Label, MetricName, MetricRow, PeriodRequest, PeriodRow};
use serde_json::Value;

use crate::pacing::PropertyQuota;
use crate::reports::{DATE_RANGE_DIMENSION, ReportKind, ReportSpec, range_name};
use crate::vocabulary::{MetricType, PLATFORM, dimension_column, metric_name};

/// One page of a `runReport` answer, its headers read, its rows still as received.
#[derive(Debug, Clone)]
pub struct ReportPage {
    /// Each metric column's name in the schema and GA4 type.
    pub metrics: Vec<(MetricName, MetricType)>,
    /// The rows of this page.
    pub rows: Vec<Value>,
    /// `rowCount`: the rows of the whole report (0 when absent, as proto3 leaves zeros out).
    pub row_count: u64,
    /// The currency money is in: the requested `currencyCode`, else `metadata.currencyCode`.
    pub currency: Option<Currency>,
    /// The `propertyQuota` sent with the page.
    pub quota: Option<PropertyQuota>,
    /// What `metadata` says about the data's completeness (sampling, thresholding, `(other)`).
    pub caveats: Vec<&'static str>,
    /// Whether each row ends with the `dateRange` dimension (a period report of several ranges).
    pub ranged: bool,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn count(value: Option<&Value>) -> Option<u64> {
    match value {
        None => Some(0),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    }
}

/// Reads one report of an answer (`runReport`'s body, or an element of `batchRunReports`'
/// `reports`), checking that its headers are the ones `spec` asked for.
pub fn read_page(
    body: &Value,
    spec: &ReportSpec,
    requested_currency: Option<Currency>,
) -> Result<ReportPage, String> {
    read_page_with(body, spec, &spec.dimensions, requested_currency)
}

/// Reads one page of a period report over `periods`: with several periods its dimension
/// headers are the requested ones and `dateRange`; with one, the requested ones (GA4 adds
/// `dateRange` only for several ranges; a single range labelled all the same is read too).
pub fn read_period_page(
    body: &Value,
    spec: &ReportSpec,
    periods: &[PeriodRequest],
    requested_currency: Option<Currency>,
) -> Result<ReportPage, String> {
    let mut ranged = spec.dimensions.clone();
    ranged.push(DATE_RANGE_DIMENSION.to_owned());
    let labelled = body
        .get("dimensionHeaders")
        .and_then(Value::as_array)
        .and_then(|h| h.last())
        .and_then(|h| text(h, "/name"))
        .is_some_and(|name| name == DATE_RANGE_DIMENSION);
    if periods.len() > 1 || labelled {
        let mut page = read_page_with(body, spec, &ranged, requested_currency)?;
        page.ranged = true;
        Ok(page)
    } else {
        read_page_with(body, spec, &spec.dimensions, requested_currency)
    }
}

fn read_page_with(
    body: &Value,
    spec: &ReportSpec,
    dimensions: &[String],
    requested_currency: Option<Currency>,
) -> Result<ReportPage, String> {
    if !body.is_object() {
        return Err("the report is not a JSON object".into());
    }
    let rows = match body.get("rows") {
        None => Vec::new(),
        Some(Value::Array(rows)) => rows.clone(),
        Some(_) => return Err("`rows` is not an array".into()),
    };
    let row_count = count(body.get("rowCount")).ok_or("`rowCount` is not a count")?;
    let headers = |key: &str| body.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let dimension_names: Vec<&str> =
        headers("dimensionHeaders").iter().filter_map(|h| text(h, "/name")).collect();
    let metric_headers = headers("metricHeaders");
    // An empty report may come without headers; one with rows must carry them.
    let empty = rows.is_empty() && dimension_names.is_empty() && metric_headers.is_empty();
    if !empty && dimension_names != dimensions {
        return Err(format!("dimension headers {dimension_names:?}, expected {dimensions:?}"));
    }
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    if !empty {
        let names: Vec<&str> = metric_headers.iter().filter_map(|h| text(h, "/name")).collect();
        if names != spec.metrics || metric_headers.len() != names.len() {
            return Err(format!("metric headers {names:?}, expected {:?}", spec.metrics));
        }
        for (header, name) in metric_headers.iter().zip(&spec.metrics) {
            let type_name = text(header, "/type").unwrap_or("METRIC_TYPE_UNSPECIFIED");
            let metric_type = MetricType::parse(type_name)
                .ok_or_else(|| format!("`{name}` has an unknown type {type_name}"))?;
            let schema_name = match spec.fixed_metric() {
                Some(metric) => MetricName::from(metric),
                None => metric_name(name, metric_type)?,
            };
            metrics.push((schema_name, metric_type));
        }
    }
    let currency = match requested_currency {
        Some(c) => Some(c),
        None => text(body, "/metadata/currencyCode").and_then(Currency::parse),
    };
    let flag = |pointer: &str| body.pointer(pointer).and_then(Value::as_bool).unwrap_or(false);
    let mut caveats = Vec::new();
    if flag("/metadata/subjectToThresholding") {
        caveats.push("subject to thresholding: GA4 withheld rows with few users");
    }
    if flag("/metadata/dataLossFromOtherRow") {
        caveats.push("some values are rolled up into an `(other)` row");
    }
    if body.pointer("/metadata/samplingMetadatas").and_then(Value::as_array).is_some_and(|s| !s.is_empty()) {
        caveats.push("sampled: the values are estimates");
    }
    let quota = body.get("propertyQuota").map(PropertyQuota::read);
    Ok(ReportPage { metrics, rows, row_count, currency, quota, caveats, ranged: false })
}

/// What every row of a page shares.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// The property.
    pub property: &'a str,
    /// The report.
    pub spec: &'a ReportSpec,
}

fn values<'a>(row: &'a Value, key: &str, expected: usize) -> Result<Vec<Option<&'a str>>, String> {
    let list = row.get(key).and_then(Value::as_array).ok_or_else(|| format!("`{key}` is missing"))?;
    if list.len() != expected {
        return Err(format!("`{key}` holds {} values, the headers {expected}", list.len()));
    }
    Ok(list.iter().map(|v| v.get("value").and_then(Value::as_str)).collect())
}

/// The metric rows of one report row, or why it cannot be read. Rows of the new-vs-returning
/// report other than `returning` give none: new users come from the totals report.
pub fn normalize_row(row: &Value, page: &ReportPage, cx: RowContext<'_>) -> Result<Vec<MetricRow>, String> {
    let spec = cx.spec;
    // proto3 JSON leaves an empty string out: `{}` is the value "".
    let dims: Vec<&str> = values(row, "dimensionValues", spec.dimensions.len())?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let first = dims.first().copied().unwrap_or_default();
    let date = NaiveDate::parse_from_str(first, "%Y%m%d")
        .map_err(|_| format!("`date` {first:?} is not YYYYMMDD"))?;
    let names = spec.dimensions.get(1..).unwrap_or_default();
    let Some(entity) = entity_of(spec, names, dims.get(1..).unwrap_or_default(), cx.property)? else {
        return Ok(Vec::new());
    };
    metric_rows(row, page, cx, &entity, date)
}

/// The period rows of one row of a period report over `periods`, or why it cannot be read: the
/// same entity and metrics as the day report's rows, for the period the row's `dateRange` names.
pub fn normalize_period_row(
    row: &Value,
    page: &ReportPage,
    cx: RowContext<'_>,
    periods: &[PeriodRequest],
) -> Result<Vec<PeriodRow>, String> {
    let spec = cx.spec;
    let count = spec.dimensions.len() + usize::from(page.ranged);
    let dims: Vec<&str> =
        values(row, "dimensionValues", count)?.into_iter().map(Option::unwrap_or_default).collect();
    let request = if page.ranged {
        let name = dims[count - 1];
        periods
            .iter()
            .find(|p| range_name(p) == name)
            .ok_or_else(|| format!("`dateRange` {name:?} is none of the ranges asked for"))?
    } else {
        match periods {
            [only] => only,
            _ => return Err(format!("a row without `dateRange` in a report of {} ranges", periods.len())),
        }
    };
    let Some(entity) = entity_of(spec, &spec.dimensions, &dims[..spec.dimensions.len()], cx.property)? else {
        return Ok(Vec::new());
    };
    let rows = metric_rows(row, page, cx, &entity, request.period.start)?;
    Ok(rows.into_iter().map(|r| PeriodRow::new(*request, r)).collect())
}

/// Whom a row is about: `level`, `entity_id` and the dimension columns.
struct Entity {
    level: Label,
    entity_id: Label,
    dimensions: Dimensions,
}

/// The entity of a row whose dimensions other than `date` are `names` with the values `dims`,
/// or none for a new-vs-returning row other than `returning`.
fn entity_of(
    spec: &ReportSpec,
    names: &[String],
    dims: &[&str],
    property: &str,
) -> Result<Option<Entity>, String> {
    let value = |name: &str| names.iter().position(|n| n == name).and_then(|i| dims.get(i)).copied();
    if matches!(spec.kind, ReportKind::ReturningUsers | ReportKind::TrafficReturningUsers)
        && value("newVsReturning") != Some("returning")
    {
        return Ok(None);
    }
    let mut dimensions = Dimensions::default();
    let (level, entity_id) = match spec.kind {
        ReportKind::Traffic | ReportKind::TrafficReturningUsers => {
            let channel = value("sessionDefaultChannelGroup").unwrap_or_default();
            if channel.is_empty() {
                return Err("`sessionDefaultChannelGroup` is empty".into());
            }
            dimensions.channel = Some(Label::new(channel));
            // Day rows break the channel group down by source / medium; period rows are the
            // channel group's.
            if let (Some(source), Some(medium)) = (value("sessionSource"), value("sessionMedium")) {
                dimensions.source_medium = Some(Label::from(format!("{source} / {medium}")));
            }
            (spec.level().to_owned(), channel.to_owned())
        }
        ReportKind::PropertyTotals | ReportKind::ReturningUsers => {
            (spec.level().to_owned(), property.to_owned())
        }
        ReportKind::Custom => {
            let mut entity = Vec::new();
            for (name, value) in names.iter().zip(dims) {
                match dimension_column(name).and_then(|c| dimensions.slot_mut(c)) {
                    Some(slot) => *slot = Some(Label::new(value)),
                    None => entity.push(*value),
                }
            }
            let entity_id = if entity.is_empty() { property.to_owned() } else { entity.join(" | ") };
            (spec.level().to_owned(), entity_id)
        }
    };
    Ok(Some(Entity { level: Label::from(level), entity_id: Label::from(entity_id), dimensions }))
}

/// One metric row per metric of `row`, about `entity`, dated `date`.
fn metric_rows(
    row: &Value,
    page: &ReportPage,
    cx: RowContext<'_>,
    entity: &Entity,
    date: NaiveDate,
) -> Result<Vec<MetricRow>, String> {
    let metric_texts = values(row, "metricValues", page.metrics.len())?;
    let account = Label::new(cx.property);
    let mut rows = Vec::with_capacity(page.metrics.len());
    for ((name, metric_type), (api_name, value)) in
        page.metrics.iter().zip(cx.spec.metrics.iter().zip(metric_texts))
    {
        let value = value.ok_or_else(|| format!("`{api_name}` has no value"))?;
        let value = metric_type.read(value).map_err(|e| format!("`{api_name}`: {e}"))?;
        let currency = match name.unit() {
            kpipe_core::Unit::Currency => Some(page.currency.ok_or_else(|| {
                format!("`{api_name}` is money but the report names no currency (`metadata.currencyCode`)")
            })?),
            _ => None,
        };
        rows.push(MetricRow {
            platform: Label::from(PLATFORM),
            account_id: account.clone(),
            level: entity.level.clone(),
            entity_id: entity.entity_id.clone(),
            entity_name: None,
            date,
            dimensions: entity.dimensions.clone(),
            metric: name.clone(),
            value,
            currency,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpipe_core::Metric;
    use serde_json::json;

    fn traffic_page() -> Value {
        // The `RunReportResponse` shape of the notes, §3.
        json!({
            "dimensionHeaders": [{"name": "date"}, {"name": "sessionDefaultChannelGroup"},
                                 {"name": "sessionSource"}, {"name": "sessionMedium"}],
            "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"},
                              {"name": "engagedSessions", "type": "TYPE_INTEGER"},
                              {"name": "userEngagementDuration", "type": "TYPE_SECONDS"},
                              {"name": "screenPageViews", "type": "TYPE_INTEGER"},
                              {"name": "keyEvents", "type": "TYPE_FLOAT"},
                              {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"},
                              {"name": "newUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "Organic Search"},
                                          {"value": "google"}, {"value": "organic"}],
                      "metricValues": [{"value": "1532"}, {"value": "993"}, {"value": "187234.5"},
                                       {"value": "4100"}, {"value": "12"}, {"value": "2450.5"},
                                       {"value": "301"}]}],
            "rowCount": 1,
            "metadata": {"currencyCode": "USD", "timeZone": "America/Los_Angeles"},
            "propertyQuota": {"tokensPerHour": {"consumed": 3, "remaining": 39_961},
                              "concurrentRequests": {"remaining": 10}},
            "kind": "analyticsData#runReport"
        })
    }

    #[test]
    fn a_traffic_row_becomes_exact_channel_rows() {
        let spec = ReportSpec::traffic();
        let body = traffic_page();
        let page = read_page(&body, &spec, None).unwrap();
        assert_eq!(page.row_count, 1);
        assert_eq!(page.quota.as_ref().and_then(|q| q.concurrent_remaining), Some(10));
        let rows = normalize_row(&page.rows[0], &page, RowContext { property: "123", spec: &spec }).unwrap();
        let shown: Vec<(String, String, Option<String>)> = rows
            .iter()
            .map(|r| (r.metric.to_string(), r.value.to_string(), r.currency.map(|c| c.to_string())))
            .collect();
        assert_eq!(
            shown,
            [
                ("sessions".into(), "1532".into(), None),
                ("engaged_sessions".into(), "993".into(), None),
                ("session_duration_seconds".into(), "187234.5".into(), None),
                ("page_views".into(), "4100".into(), None),
                ("conversions".into(), "12".into(), None),
                ("revenue".into(), "2450.5".into(), Some("USD".into())),
                ("new_users".into(), "301".into(), None),
            ]
        );
        let r = &rows[0];
        assert_eq!(
            (r.level.as_str(), r.entity_id.as_str(), r.account_id.as_str()),
            ("channel", "Organic Search", "123")
        );
        assert_eq!(r.dimensions.source_medium.as_ref().map(Label::as_str), Some("google / organic"));
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2024, 5, 1).unwrap());
        // A requested currency wins over the property's.
        let eur = Currency::parse("EUR");
        let page = read_page(&body, &spec, eur).unwrap();
        let rows = normalize_row(&page.rows[0], &page, RowContext { property: "123", spec: &spec }).unwrap();
        assert_eq!(rows[5].currency, eur);
    }

    #[test]
    fn unreadable_rows_are_refused_with_the_reason() {
        let spec = ReportSpec::traffic();
        let page = read_page(&traffic_page(), &spec, None).unwrap();
        let cx = RowContext { property: "123", spec: &spec };
        let with = |pointer: &str, v: Value| {
            let mut row = page.rows[0].clone();
            *row.pointer_mut(pointer).unwrap() = v;
            normalize_row(&row, &page, cx).unwrap_err()
        };
        assert!(with("/metricValues/0/value", json!("n/a")).starts_with("`sessions`"));
        assert!(with("/metricValues/0/value", json!("15.5")).contains("whole number"));
        assert!(with("/dimensionValues/0/value", json!("2024-05-01")).contains("YYYYMMDD"));
        assert!(with("/metricValues", json!([])).contains("holds 0 values"));
        assert!(with("/metricValues/6", json!({})).contains("no value"));
    }

    #[test]
    fn headers_must_be_the_ones_asked_for() {
        let spec = ReportSpec::traffic();
        let mut body = traffic_page();
        body["metricHeaders"][5]["type"] = json!("TYPE_FLOAT");
        assert!(read_page(&body, &spec, None).unwrap_err().contains("purchaseRevenue"));
        let mut body = traffic_page();
        body["dimensionHeaders"][1]["name"] = json!("sessionSource");
        assert!(read_page(&body, &spec, None).unwrap_err().contains("dimension headers"));
        // An empty report: no rows, no rowCount, perhaps no headers.
        let page = read_page(&json!({"kind": "analyticsData#runReport"}), &spec, None).unwrap();
        assert_eq!((page.rows.len(), page.row_count), (0, 0));
    }

    #[test]
    fn returning_users_come_from_the_returning_row_only() {
        let spec = ReportSpec::returning_users();
        let body = json!({
            "dimensionHeaders": [{"name": "date"}, {"name": "newVsReturning"}],
            "metricHeaders": [{"name": "totalUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "new"}],
                      "metricValues": [{"value": "40"}]},
                     {"dimensionValues": [{"value": "20240501"}, {"value": "returning"}],
                      "metricValues": [{"value": "25"}]}],
            "rowCount": 2
        });
        let page = read_page(&body, &spec, None).unwrap();
        let cx = RowContext { property: "123", spec: &spec };
        assert!(normalize_row(&page.rows[0], &page, cx).unwrap().is_empty());
        let rows = normalize_row(&page.rows[1], &page, cx).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].metric, MetricName::from(Metric::ReturningUsers));
        assert_eq!((rows[0].level.as_str(), rows[0].value.to_string()), ("property", "25".to_owned()));
    }

    #[test]
    fn period_rows_belong_to_the_period_their_date_range_names() {
        let day = |d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let window = kpipe_core::DateWindow::new(day("2026-10-28"), day("2026-11-03")).unwrap();
        let periods = PeriodRequest::for_window(window);
        let spec = &ReportSpec::traffic().period_reports()[0];
        // The shape of a report of several date ranges: the requested dimensions, then
        // `dateRange` valued with the range's name.
        let body = json!({
            "dimensionHeaders": [{"name": "sessionDefaultChannelGroup"}, {"name": "dateRange"}],
            "metricHeaders": [{"name": "totalUsers", "type": "TYPE_INTEGER"},
                              {"name": "newUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "Direct"}, {"value": "month_20261101"}],
                      "metricValues": [{"value": "120"}, {"value": "45"}]},
                     {"dimensionValues": [{"value": "Direct"}, {"value": "date_range_7"}],
                      "metricValues": [{"value": "1"}, {"value": "1"}]}],
            "rowCount": 2
        });
        let page = read_period_page(&body, spec, &periods, None).unwrap();
        let cx = RowContext { property: "123", spec };
        let rows = normalize_period_row(&page.rows[0], &page, cx, &periods).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].request, periods[3]);
        assert!(rows[0].request.is_partial());
        let r = &rows[1].row;
        assert_eq!((r.metric.as_str(), r.value.to_string()), ("new_users", "45".to_owned()));
        assert_eq!(
            (r.level.as_str(), r.entity_id.as_str(), r.date),
            ("channel", "Direct", day("2026-11-01"))
        );
        assert_eq!(r.dimensions.channel.as_ref().map(Label::as_str), Some("Direct"));
        assert_eq!(r.dimensions.source_medium, None);
        assert!(rows.iter().all(|p| p.validate().is_ok()));
        assert!(
            normalize_period_row(&page.rows[1], &page, cx, &periods).unwrap_err().contains("date_range_7")
        );
        // Without `dateRange`, a report of several ranges is refused; one of a single range reads.
        let mut plain = body.clone();
        plain["dimensionHeaders"].as_array_mut().unwrap().pop();
        assert!(read_period_page(&plain, spec, &periods, None).unwrap_err().contains("dimension headers"));
        let page = read_period_page(&plain, spec, &periods[..1], None).unwrap();
        let mut row = plain["rows"][0].clone();
        row["dimensionValues"].as_array_mut().unwrap().pop();
        let rows = normalize_period_row(&row, &page, cx, &periods[..1]).unwrap();
        assert_eq!(rows[0].request, periods[0]);
        // A channel group's returning users come from its `returning` row only.
        let returning = &ReportSpec::traffic().period_reports()[1];
        let body = json!({
            "dimensionHeaders": [{"name": "sessionDefaultChannelGroup"}, {"name": "newVsReturning"}],
            "metricHeaders": [{"name": "totalUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "Email"}, {"value": "new"}], "metricValues": [{"value": "9"}]},
                     {"dimensionValues": [{"value": "Email"}, {"value": "returning"}],
                      "metricValues": [{"value": "4"}]}],
            "rowCount": 2
        });
        let page = read_period_page(&body, returning, &periods[..1], None).unwrap();
        let cx = RowContext { property: "123", spec: returning };
        assert!(normalize_period_row(&page.rows[0], &page, cx, &periods[..1]).unwrap().is_empty());
        let rows = normalize_period_row(&page.rows[1], &page, cx, &periods[..1]).unwrap();
        assert_eq!(
            (rows[0].row.metric.as_str(), rows[0].row.entity_id.as_str()),
            ("returning_users", "Email")
        );
        assert_eq!(rows[0].row.value.to_string(), "4");
    }

    #[test]
    fn custom_rows_fill_dimension_columns_and_name_their_entity() {
        let config = crate::config::CustomReportConfig {
            name: "landing_pages".into(),
            dimensions: vec!["landingPage".into(), "deviceCategory".into()],
            metrics: vec!["sessions".into(), "bounceRate".into()],
        };
        let spec = ReportSpec::custom(&config, 0).unwrap();
        let body = json!({
            "dimensionHeaders": [{"name": "date"}, {"name": "landingPage"}, {"name": "deviceCategory"}],
            "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"},
                              {"name": "bounceRate", "type": "TYPE_FLOAT"}],
            "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "/pricing"}, {"value": "mobile"}],
                      "metricValues": [{"value": "10"}, {"value": "0.25"}]}],
            "rowCount": 1
        });
        let page = read_page(&body, &spec, None).unwrap();
        let rows = normalize_row(&page.rows[0], &page, RowContext { property: "123", spec: &spec }).unwrap();
        assert_eq!((rows[0].level.as_str(), rows[0].entity_id.as_str()), ("landing_pages", "/pricing"));
        assert_eq!(rows[0].dimensions.device.as_ref().map(Label::as_str), Some("mobile"));
        assert_eq!(rows[1].metric.as_str(), "google_analytics.bounce_rate");
    }
}
