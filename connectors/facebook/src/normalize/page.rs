//! One Page insights metric (`{"name", "period", "values": [{"value", "end_time"}]}`) to metric
//! rows at level `page`. Values are JSON numbers, or objects of counts by type (reactions), each
//! key of which becomes `facebook.<metric>_<key>`.

use chrono::{DateTime, NaiveDate, TimeDelta};
use kpipe_core::{DateWindow, Decimal, Dimensions, Label, MetricName, MetricRow, Unit};
use serde_json::Value;

use super::{PLATFORM, count};
use crate::mapping::PageMetrics;

/// What every row of one Page's insights shares.
#[derive(Debug, Clone, Copy)]
pub struct PageContext<'a> {
    /// The Page, the `account_id` and `entity_id` columns.
    pub page_id: &'a str,
    /// Its name.
    pub page_name: Option<&'a str>,
    /// The days asked for: values of other days (the API's range edges) are not rows.
    pub window: DateWindow,
    /// What each API metric becomes.
    pub metrics: &'a PageMetrics,
}

/// The day a daily value's `end_time` closes. Meta gives the end of the day in the Page's
/// reporting zone (Pacific: `T07:00:00+0000` or `T08:00:00+0000`); twelve hours earlier is
/// inside that day for any zone within UTC±12.
pub fn page_day(end_time: &str) -> Result<NaiveDate, String> {
    let at = DateTime::parse_from_str(end_time, "%Y-%m-%dT%H:%M:%S%z")
        .map_err(|_| format!("`end_time` {end_time:?} is not like 2026-03-09T07:00:00+0000"))?;
    let noon_before = at.to_utc() - TimeDelta::hours(12);
    Ok(noon_before.date_naive())
}

/// The metric rows of one element of a Page insights response, or why it cannot be read.
pub fn page_rows(element: &Value, cx: &PageContext<'_>) -> Result<Vec<MetricRow>, String> {
    let name = element.get("name").and_then(Value::as_str).ok_or("the element has no metric `name`")?;
    let metric = cx.metrics.metric(name).ok_or_else(|| format!("metric `{name}` was not asked for"))?;
    match element.get("period").and_then(Value::as_str) {
        None | Some("day") => {}
        Some(other) => return Err(format!("`{name}` has period {other:?}; `day` was asked for")),
    }
    let values = match element.get("values") {
        None => return Ok(Vec::new()),
        Some(v) => v.as_array().ok_or_else(|| format!("`{name}`: `values` is not an array"))?,
    };
    let mut out = Vec::new();
    let mut days: Vec<NaiveDate> = Vec::with_capacity(values.len());
    for (i, entry) in values.iter().enumerate() {
        let end_time = entry
            .get("end_time")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{name}` value {i} has no `end_time`"))?;
        let date = page_day(end_time)?;
        if days.contains(&date) {
            return Err(format!("`{name}` has two values for {date}"));
        }
        days.push(date);
        if !cx.window.contains(date) {
            continue;
        }
        let what = format!("`{name}` on {date}");
        match entry.get("value") {
            // No value is no observation; a zero is sent as 0.
            None | Some(Value::Null) => {}
            Some(Value::Object(parts)) => {
                for (key, n) in parts {
                    let extra = MetricName::extra(PLATFORM, &format!("{name}_{}", snake(key)), Unit::Count)
                        .ok_or_else(|| format!("{what}: key {key:?} makes no metric name"))?;
                    out.push(row(cx, date, extra, count(n, &format!("{what} {key}"))?));
                }
            }
            Some(v) => out.push(row(cx, date, metric.clone(), count(v, &what)?)),
        }
    }
    Ok(out)
}

/// The values of one element of a `period=week` Page insights response: each a count over the
/// seven days that end on the day its `end_time` closes, returned with that day and as a row
/// dated that day (a unique metric's weekly value is one number, never a breakdown). Values
/// closing outside `cx.window` are left out.
pub fn page_week_values(
    element: &Value,
    cx: &PageContext<'_>,
) -> Result<Vec<(NaiveDate, MetricRow)>, String> {
    let name = element.get("name").and_then(Value::as_str).ok_or("the element has no metric `name`")?;
    let metric = cx.metrics.metric(name).ok_or_else(|| format!("metric `{name}` was not asked for"))?;
    match element.get("period").and_then(Value::as_str) {
        Some("week") => {}
        other => return Err(format!("`{name}` has period {other:?}; `week` was asked for")),
    }
    let values = match element.get("values") {
        None => return Ok(Vec::new()),
        Some(v) => v.as_array().ok_or_else(|| format!("`{name}`: `values` is not an array"))?,
    };
    let mut out: Vec<(NaiveDate, MetricRow)> = Vec::new();
    for (i, entry) in values.iter().enumerate() {
        let end_time = entry
            .get("end_time")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{name}` value {i} has no `end_time`"))?;
        let date = page_day(end_time)?;
        if out.iter().any(|(d, _)| *d == date) {
            return Err(format!("`{name}` has two weekly values closing {date}"));
        }
        if !cx.window.contains(date) {
            continue;
        }
        let what = format!("`{name}` over the week closing {date}");
        match entry.get("value") {
            None | Some(Value::Null) => {}
            Some(v) => out.push((date, row(cx, date, metric.clone(), count(v, &what)?))),
        }
    }
    Ok(out)
}

fn snake(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

fn row(cx: &PageContext<'_>, date: NaiveDate, metric: MetricName, value: Decimal) -> MetricRow {
    MetricRow {
        platform: Label::from(PLATFORM),
        account_id: Label::new(cx.page_id),
        level: Label::from("page"),
        entity_id: Label::new(cx.page_id),
        entity_name: cx.page_name.map(Label::new),
        date,
        dimensions: Dimensions::default(),
        metric,
        value,
        currency: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn end_times_close_the_day_before_in_any_zone() {
        // The captured v20.0 response (shared/apis/facebook.md §4): Pacific daylight time.
        assert_eq!(page_day("2024-06-27T07:00:00+0000").unwrap(), day("2024-06-26"));
        assert_eq!(page_day("2026-01-10T08:00:00+0000").unwrap(), day("2026-01-09"));
        assert_eq!(page_day("2026-01-09T22:00:00+0000").unwrap(), day("2026-01-09"));
        assert!(page_day("2026-01-10").is_err());
    }

    /// Values shaped like the captured v20.0 response of shared/apis/facebook.md §4 (numbers, and
    /// objects for reactions by type).
    #[test]
    fn values_in_the_window_become_rows_and_breakdowns_become_extras() {
        let metrics =
            PageMetrics::new(&["page_follows".to_owned(), "page_actions_post_reactions_total".to_owned()])
                .unwrap();
        let cx = PageContext {
            page_id: "298712583335639",
            page_name: Some("Acme"),
            window: DateWindow::new(day("2024-06-26"), day("2024-06-27")).unwrap(),
            metrics: &metrics,
        };
        let followers = json!({"name": "page_follows", "period": "day", "values": [
            {"value": 1200, "end_time": "2024-06-26T07:00:00+0000"},
            {"value": 1203, "end_time": "2024-06-27T07:00:00+0000"},
            {"value": 1201, "end_time": "2024-06-28T07:00:00+0000"}
        ]});
        let rows = page_rows(&followers, &cx).unwrap();
        assert_eq!(rows.len(), 2, "the value of 2024-06-25 is outside the window");
        assert_eq!(
            (rows[0].metric.as_str(), rows[0].value.to_string(), rows[0].date),
            ("followers", "1203".into(), day("2024-06-26"))
        );
        assert_eq!(rows[0].level.as_ref(), "page");
        let reactions = json!({"name": "page_actions_post_reactions_total", "period": "day", "values": [
            {"value": {"like": 3, "love": 1}, "end_time": "2024-06-27T07:00:00+0000"},
            {"value": {}, "end_time": "2024-06-28T07:00:00+0000"}
        ]});
        let rows = page_rows(&reactions, &cx).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            names,
            [
                "facebook.page_actions_post_reactions_total_like",
                "facebook.page_actions_post_reactions_total_love"
            ]
        );
        assert!(
            page_rows(&json!({"name": "page_fans", "values": []}), &cx).unwrap_err().contains("not asked")
        );
        let bad = json!({"name": "page_follows",
                         "values": [{"value": "many", "end_time": "2024-06-27T07:00:00+0000"}]});
        assert!(page_rows(&bad, &cx).unwrap_err().contains("page_follows"));
    }

    /// The Page insights reference shows a `week` value for every day (`"period": "week"`,
    /// `values` with daily `end_time`s): a rolling week ending on the day each closes.
    #[test]
    fn weekly_values_are_read_with_the_day_they_close() {
        let metrics = PageMetrics::new(&["page_total_media_view_unique".to_owned()]).unwrap();
        let cx = PageContext {
            page_id: "298712583335639",
            page_name: Some("Acme"),
            window: DateWindow::new(day("2026-03-08"), day("2026-03-15")).unwrap(),
            metrics: &metrics,
        };
        let weekly = json!({"name": "page_total_media_view_unique", "period": "week", "values": [
            {"value": 5100, "end_time": "2026-03-09T07:00:00+0000"},
            {"value": 5230, "end_time": "2026-03-10T07:00:00+0000"},
            {"value": 4990, "end_time": "2026-03-16T07:00:00+0000"},
            {"value": 4000, "end_time": "2026-03-17T07:00:00+0000"}
        ]});
        let values = page_week_values(&weekly, &cx).unwrap();
        let got: Vec<(NaiveDate, String, String)> =
            values.iter().map(|(d, r)| (*d, r.metric.to_string(), r.value.to_string())).collect();
        assert_eq!(
            got,
            [
                (day("2026-03-08"), "reach".to_owned(), "5100".to_owned()),
                (day("2026-03-09"), "reach".to_owned(), "5230".to_owned()),
                (day("2026-03-15"), "reach".to_owned(), "4990".to_owned()),
            ]
        );
        let daily = json!({"name": "page_total_media_view_unique", "period": "day", "values": []});
        assert!(page_week_values(&daily, &cx).unwrap_err().contains("`week` was asked for"));
    }
}
