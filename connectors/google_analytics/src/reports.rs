//! The reports pulled for every property, and their `runReport` request bodies (Analytics Data
//! API v1beta, `RunReportRequest`): the day reports, and the period reports that ask the unique
//! user counts of whole weeks and months (one value per period, no `date`).

use kpipe_core::{ConfigError, DateWindow, Metric, PeriodRequest, is_identifier};
use serde_json::{Value, json};

use crate::config::CustomReportConfig;
use crate::vocabulary::{CANONICAL_METRICS, dimension_column};

/// The largest `limit` the API accepts.
pub const MAX_PAGE_SIZE: u32 = 250_000;
/// Dimensions per request at most (`date` included).
pub const MAX_DIMENSIONS: usize = 9;
/// Metrics per request at most.
pub const MAX_METRICS: usize = 10;
/// `dateRanges` per request at most (`DateRange`: "Requests are allowed up to 4 date ranges").
pub const MAX_DATE_RANGES: usize = 4;
/// The dimension GA4 adds after the requested ones when a request has several `dateRanges`,
/// valued with the range's `name`.
pub const DATE_RANGE_DIMENSION: &str = "dateRange";

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Traffic by day, channel group and source / medium: `level = "channel"`.
    Traffic,
    /// The property's totals by day, unique users included: `level = "property"`.
    PropertyTotals,
    /// Returning users by day (`newVsReturning`), at the property's level.
    ReturningUsers,
    /// Returning users by channel group (`newVsReturning`): a period report only, at the traffic
    /// report's level.
    TrafficReturningUsers,
    /// A configured report: `level` is its name.
    Custom,
}

/// One report asked of every property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// What its rows are.
    pub kind: ReportKind,
    /// Its name: the level of a custom report's rows; quarantine locations name it.
    pub name: String,
    /// Dimension API names, `date` first in a day report; a period report has no `date`.
    pub dimensions: Vec<String>,
    /// Metric API names.
    pub metrics: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Metrics of the traffic and property reports, besides the unique user counts.
const TRAFFIC_METRICS: [&str; 7] = [
    "sessions",
    "engagedSessions",
    "userEngagementDuration",
    "screenPageViews",
    "keyEvents",
    "purchaseRevenue",
    "newUsers",
];

/// The stream of the custom reports' rows and requests.
pub const CUSTOM_STREAM: &str = "custom_reports";

impl ReportSpec {
    /// The source's stream the report belongs to: `traffic`, `property` (the totals and the
    /// returning users) or [`CUSTOM_STREAM`].
    pub fn stream(&self) -> &str {
        match self.kind {
            ReportKind::Custom => CUSTOM_STREAM,
            _ => &self.name,
        }
    }

    /// The `level` of its rows: `channel` for traffic, `property` for the property's totals,
    /// the report's name for a custom report.
    pub fn level(&self) -> &str {
        match self.kind {
            ReportKind::Traffic | ReportKind::TrafficReturningUsers => "channel",
            ReportKind::PropertyTotals | ReportKind::ReturningUsers => "property",
            ReportKind::Custom => &self.name,
        }
    }

    /// The period reports of this day report: the unique user counts (`users`, `new_users`,
    /// `returning_users`) over whole weeks and months of the entities of its rows, without
    /// `date`, one value per entity, metric and period. The traffic report's entity is the
    /// channel group (its day rows break it down by source / medium): `totalUsers` and `newUsers`
    /// by `sessionDefaultChannelGroup`, and the returning users by it and `newVsReturning`. The
    /// property totals' are `totalUsers` and `newUsers` of the property; the returning users',
    /// `totalUsers` by `newVsReturning`; a custom report's, the unique metrics among its own
    /// (`totalUsers`, `newUsers`) by its dimensions, none if it has none.
    pub fn period_reports(&self) -> Vec<ReportSpec> {
        let undated = |dimensions: &[String]| -> Vec<String> {
            dimensions.iter().filter(|d| *d != "date").cloned().collect()
        };
        let period = |kind: ReportKind, dimensions: Vec<String>, metrics: &[&str]| ReportSpec {
            kind,
            name: self.name.clone(),
            dimensions,
            metrics: names(metrics),
        };
        match self.kind {
            ReportKind::Traffic => {
                let by_channel = names(&["sessionDefaultChannelGroup"]);
                let by_kind = names(&["sessionDefaultChannelGroup", "newVsReturning"]);
                vec![
                    period(ReportKind::Traffic, by_channel, &["totalUsers", "newUsers"]),
                    period(ReportKind::TrafficReturningUsers, by_kind, &["totalUsers"]),
                ]
            }
            ReportKind::PropertyTotals => {
                vec![period(ReportKind::PropertyTotals, Vec::new(), &["totalUsers", "newUsers"])]
            }
            ReportKind::ReturningUsers => {
                vec![period(ReportKind::ReturningUsers, undated(&self.dimensions), &["totalUsers"])]
            }
            ReportKind::TrafficReturningUsers => Vec::new(),
            ReportKind::Custom => {
                let unique: Vec<&str> = self
                    .metrics
                    .iter()
                    .map(String::as_str)
                    .filter(|m| {
                        CANONICAL_METRICS
                            .iter()
                            .any(|(n, c)| n == m && c.additivity() == kpipe_core::Additivity::Unique)
                    })
                    .collect();
                if unique.is_empty() {
                    return Vec::new();
                }
                vec![period(ReportKind::Custom, undated(&self.dimensions), &unique)]
            }
        }
    }

    /// The metric a report's metric column becomes, when the kind decides it: `totalUsers` of
    /// the new-vs-returning reports is `returning_users`.
    pub fn fixed_metric(&self) -> Option<Metric> {
        match self.kind {
            ReportKind::ReturningUsers | ReportKind::TrafficReturningUsers => Some(Metric::ReturningUsers),
            _ => None,
        }
    }

    /// Sessions and their outcomes by day and traffic source.
    pub fn traffic() -> ReportSpec {
        ReportSpec {
            kind: ReportKind::Traffic,
            name: "traffic".into(),
            dimensions: names(&["date", "sessionDefaultChannelGroup", "sessionSource", "sessionMedium"]),
            metrics: names(&TRAFFIC_METRICS),
        }
    }

    /// The property's totals by day, with `totalUsers` counted by GA4 at that grain.
    pub fn property_totals() -> ReportSpec {
        let mut metrics = names(&TRAFFIC_METRICS);
        metrics.push("totalUsers".into());
        ReportSpec {
            kind: ReportKind::PropertyTotals,
            name: "property".into(),
            dimensions: names(&["date"]),
            metrics,
        }
    }

    /// Users by day split into new and returning; the returning row is `returning_users`.
    pub fn returning_users() -> ReportSpec {
        ReportSpec {
            kind: ReportKind::ReturningUsers,
            name: "property".into(),
            dimensions: names(&["date", "newVsReturning"]),
            metrics: names(&["totalUsers"]),
        }
    }

    /// A configured report, checked.
    pub fn custom(config: &CustomReportConfig, index: usize) -> Result<ReportSpec, ConfigError> {
        let key = |field: &str| format!("reports[{index}].{field}");
        if !is_identifier(&config.name) {
            return Err(ConfigError::new(key("name"), "must be a snake_case name (the level of its rows)"));
        }
        if ["channel", "property", "traffic"].contains(&config.name.as_str()) {
            return Err(ConfigError::new(key("name"), "is a built-in report's name; choose another"));
        }
        let api_name = |n: &String| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut dimensions = vec!["date".to_owned()];
        for d in &config.dimensions {
            if !api_name(d) {
                return Err(ConfigError::new(
                    key("dimensions"),
                    format!("`{d}` is not a GA4 dimension API name"),
                ));
            }
            if dimensions.contains(d) {
                let why = if d == "date" { "is implied" } else { "is given twice" };
                return Err(ConfigError::new(key("dimensions"), format!("`{d}` {why}")));
            }
            dimensions.push(d.clone());
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(ConfigError::new(
                key("dimensions"),
                format!("at most {} dimensions besides `date`", MAX_DIMENSIONS - 1),
            ));
        }
        let mut columns: Vec<&str> = dimensions.iter().filter_map(|d| dimension_column(d)).collect();
        columns.sort_unstable();
        if let Some(pair) = columns.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::new(
                key("dimensions"),
                format!("two dimensions fill the `{}` column; keep one", pair[0]),
            ));
        }
        if config.metrics.is_empty() || config.metrics.len() > MAX_METRICS {
            return Err(ConfigError::new(key("metrics"), format!("give 1 to {MAX_METRICS} metrics")));
        }
        let mut metrics: Vec<String> = Vec::new();
        for m in &config.metrics {
            if !api_name(m) {
                return Err(ConfigError::new(key("metrics"), format!("`{m}` is not a GA4 metric API name")));
            }
            if metrics.contains(m) {
                return Err(ConfigError::new(key("metrics"), format!("`{m}` is given twice")));
            }
            // Two GA4 names for one canonical metric would write one row twice.
            let canonical = |n: &str| CANONICAL_METRICS.iter().find(|(a, _)| *a == n).map(|(_, c)| *c);
            if let Some(c) = canonical(m)
                && metrics.iter().any(|o| canonical(o) == Some(c))
            {
                return Err(ConfigError::new(
                    key("metrics"),
                    format!("two metrics become `{}`; keep one", c.name()),
                ));
            }
            metrics.push(m.clone());
        }
        Ok(ReportSpec { kind: ReportKind::Custom, name: config.name.clone(), dimensions, metrics })
    }

    /// The `runReport` body for the days of `window`: every dimension in `orderBys` so that
    /// offset paging is stable, the page as `offset`/`limit` (int64 as strings), and the
    /// property quota returned for pacing.
    pub fn body(&self, window: DateWindow, offset: u64, limit: u64, currency: Option<&str>) -> Value {
        let range = json!({"startDate": window.start().to_string(), "endDate": window.end().to_string()});
        self.body_over(vec![range], offset, limit, currency)
    }

    fn body_over(&self, date_ranges: Vec<Value>, offset: u64, limit: u64, currency: Option<&str>) -> Value {
        let mut body = json!({
            "dateRanges": date_ranges,
            "dimensions": self.dimensions.iter().map(|d| json!({"name": d})).collect::<Vec<_>>(),
            "metrics": self.metrics.iter().map(|m| json!({"name": m})).collect::<Vec<_>>(),
            "orderBys": self
                .dimensions
                .iter()
                .map(|d| json!({"dimension": {"dimensionName": d}}))
                .collect::<Vec<_>>(),
            "limit": limit.to_string(),
            "offset": offset.to_string(),
            "returnPropertyQuota": true,
        });
        if let Some(code) = currency {
            body["currencyCode"] = Value::String(code.to_owned());
        }
        body
    }

    /// The `runReport` body of a period report over `periods` (one to four): one named date
    /// range per period, each from the period's first day through its `through` day. With
    /// several ranges GA4 adds the `dateRange` dimension, valued with the range's name, after the
    /// requested ones (the "Multiple date ranges" section of Google's "Create a report" guide).
    /// Rows are ordered by the requested dimensions, which GA4 keeps with several ranges.
    pub fn period_body(
        &self,
        periods: &[PeriodRequest],
        offset: u64,
        limit: u64,
        currency: Option<&str>,
    ) -> Value {
        let ranges: Vec<Value> = periods
            .iter()
            .map(|p| {
                let days = p.days();
                json!({
                    "startDate": days.start().to_string(),
                    "endDate": days.end().to_string(),
                    "name": range_name(p),
                })
            })
            .collect();
        self.body_over(ranges, offset, limit, currency)
    }
}

/// The `name` of a period's date range, and so the `dateRange` value of its rows: the grain and
/// the first day, `week_20261026` or `month_20261001` (names may not begin with `date_range_` or
/// `RESERVED_`).
pub fn range_name(request: &PeriodRequest) -> String {
    format!("{}_{}", request.period.grain, request.period.start.format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpipe_core::NaiveDate;

    fn custom(name: &str, dimensions: &[&str], metrics: &[&str]) -> Result<ReportSpec, ConfigError> {
        let config =
            CustomReportConfig { name: name.into(), dimensions: names(dimensions), metrics: names(metrics) };
        ReportSpec::custom(&config, 0)
    }

    #[test]
    fn request_bodies_follow_the_run_report_shape() {
        let day = |d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let window = DateWindow::new(day("2026-10-01"), day("2026-10-03")).unwrap();
        let body = ReportSpec::traffic().body(window, 200, 100, Some("EUR"));
        assert_eq!(body["dateRanges"], json!([{"startDate": "2026-10-01", "endDate": "2026-10-03"}]));
        assert_eq!(body["orderBys"][3], json!({"dimension": {"dimensionName": "sessionMedium"}}));
        assert_eq!((body["limit"].as_str(), body["offset"].as_str()), (Some("100"), Some("200")));
        assert_eq!(body["currencyCode"], "EUR");
        assert_eq!(body["returnPropertyQuota"], true);
        assert!(ReportSpec::property_totals().body(window, 0, 1, None).get("currencyCode").is_none());
    }

    #[test]
    fn period_bodies_name_one_date_range_per_period_and_ask_no_date() {
        let day = |d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let window = DateWindow::new(day("2026-10-28"), day("2026-11-03")).unwrap();
        let periods = PeriodRequest::for_window(window);
        let reports = ReportSpec::traffic().period_reports();
        assert_eq!(reports.len(), 2);
        let body = reports[1].period_body(&periods, 0, 100, None);
        // `DateRange`: startDate, endDate, name; through the window's last day for open periods.
        assert_eq!(
            body["dateRanges"],
            json!([
                {"startDate": "2026-10-26", "endDate": "2026-11-01", "name": "week_20261026"},
                {"startDate": "2026-11-02", "endDate": "2026-11-03", "name": "week_20261102"},
                {"startDate": "2026-10-01", "endDate": "2026-10-31", "name": "month_20261001"},
                {"startDate": "2026-11-01", "endDate": "2026-11-03", "name": "month_20261101"},
            ])
        );
        let dimensions: Vec<&str> =
            body["dimensions"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(dimensions, ["sessionDefaultChannelGroup", "newVsReturning"]);
        assert_eq!(body["metrics"], json!([{"name": "totalUsers"}]));
        assert_eq!(reports[1].fixed_metric(), Some(Metric::ReturningUsers));
        let totals = &ReportSpec::property_totals().period_reports()[0];
        assert_eq!(
            (totals.dimensions.len(), totals.metrics.clone()),
            (0, names(&["totalUsers", "newUsers"]))
        );
        assert_eq!(ReportSpec::returning_users().period_reports()[0].dimensions, ["newVsReturning"]);
        // A custom report's period report asks its unique metrics only, or is not made.
        let users = custom("devices", &["deviceCategory"], &["sessions", "totalUsers"]).unwrap();
        let period = users.period_reports();
        assert_eq!(
            (period[0].dimensions.clone(), period[0].metrics.clone()),
            (names(&["deviceCategory"]), names(&["totalUsers"]))
        );
        assert!(
            custom("x", &["deviceCategory"], &["sessions", "activeUsers"])
                .unwrap()
                .period_reports()
                .is_empty()
        );
    }

    #[test]
    fn custom_reports_are_checked() {
        let ok = custom("devices", &["deviceCategory"], &["sessions", "engagementRate"]).unwrap();
        assert_eq!(ok.dimensions, ["date", "deviceCategory"]);
        assert!(custom("Devices", &[], &["sessions"]).is_err());
        assert!(custom("channel", &[], &["sessions"]).is_err());
        assert!(custom("x", &["date"], &["sessions"]).is_err());
        assert!(custom("x", &["country", "countryId"], &["sessions"]).is_err());
        assert!(custom("x", &[], &[]).is_err());
        assert!(custom("x", &[], &["keyEvents", "conversions"]).is_err());
        assert!(custom("x", &[], &["sessions", "sessions"]).is_err());
        assert!(custom("x", &["page path"], &["sessions"]).is_err());
        assert!(custom("x", &["customEvent:plan"], &["customEvent:seats"]).is_ok());
    }
}
