//! One ad analytics element (an entity on a day, `shared/apis/linkedin.md` §3.1) to one row per
//! field: counts are JSON integers, money a decimal string in the ad account's currency, dates
//! `{year, month, day}` objects with `start == end` for daily elements.

use std::collections::HashMap;

use chrono::NaiveDate;
use kpipe_core::{Currency, DateWindow, Decimal, Label, MetricRow};
use serde_json::Value;

use super::{Entity, count, decimal};
use crate::fields::{AnalyticsField, FieldKind};
use crate::restli::Pivot;

/// What the elements of one response share.
#[derive(Debug, Clone, Copy)]
pub struct AnalyticsContext<'a> {
    /// The ad account asked for.
    pub account: &'a Label,
    /// Its currency.
    pub currency: Currency,
    /// The pivot asked for.
    pub pivot: Pivot,
    /// Entity names by id.
    pub names: &'a HashMap<u64, Option<Label>>,
    /// The days asked for.
    pub window: DateWindow,
    /// The fields asked for.
    pub fields: &'a [AnalyticsField],
}

/// `{"year":2026,"month":10,"day":1}`.
fn date_of(value: Option<&Value>, what: &str) -> Result<NaiveDate, String> {
    let value = value.ok_or_else(|| format!("no `dateRange.{what}`"))?;
    let part = |name: &str| value.get(name).and_then(Value::as_i64);
    match (part("year"), part("month"), part("day")) {
        (Some(y), Some(m), Some(d)) => i32::try_from(y)
            .ok()
            .zip(u32::try_from(m).ok().zip(u32::try_from(d).ok()))
            .and_then(|(y, (m, d))| NaiveDate::from_ymd_opt(y, m, d))
            .ok_or_else(|| format!("`dateRange.{what}` {value} is not a date")),
        _ => Err(format!("`dateRange.{what}` {value} is not a {{year, month, day}} object")),
    }
}

/// The day of a daily element.
pub fn element_date(element: &Value) -> Result<NaiveDate, String> {
    let range = element.get("dateRange").ok_or("no `dateRange`")?;
    let start = date_of(range.get("start"), "start")?;
    if let Some(end) = range.get("end") {
        let end = date_of(Some(end), "end")?;
        if end != start {
            return Err(format!("spans {start} to {end}, not one day"));
        }
    }
    Ok(start)
}

/// The entity id of an element, checked against the pivot.
pub fn element_entity(element: &Value, pivot: Pivot) -> Result<u64, String> {
    let values = element.get("pivotValues").and_then(Value::as_array).ok_or("no `pivotValues` array")?;
    let [urn] = values.as_slice() else {
        return Err(format!("{} pivot values, expected one", values.len()));
    };
    let urn = urn.as_str().ok_or("the pivot value is not a URN string")?;
    urn.strip_prefix(pivot.urn_prefix())
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| format!("pivot value `{urn}` is not a {}<id> URN", pivot.urn_prefix()))
}

/// The rows of one element, or why it cannot be read. An absent or null field is 0 for what
/// adds up (LinkedIn leaves out nothing it was asked for, but the notes warn not to rely on it)
/// and no row for reach and averages, which cannot be defaulted.
pub fn analytics_rows(element: &Value, cx: &AnalyticsContext<'_>) -> Result<Vec<MetricRow>, String> {
    if !element.is_object() {
        return Err("the element is not an object".into());
    }
    let date = element_date(element)?;
    if !cx.window.contains(date) {
        return Err(format!("dated {date}, outside the requested {}", cx.window));
    }
    let id = element_entity(element, cx.pivot)?;
    let entity = Entity {
        account_id: cx.account.clone(),
        level: Label::from(cx.pivot.level()),
        entity_id: Label::from(id.to_string()),
        entity_name: cx.names.get(&id).cloned().flatten(),
    };
    let usd = Currency::parse("USD");
    let mut rows = Vec::with_capacity(cx.fields.len());
    for field in cx.fields {
        let value = element.get(field.api).filter(|v| !v.is_null());
        let (value, currency) = match (field.kind, value) {
            (FieldKind::Count | FieldKind::Unique, Some(v)) => (count(v, field.api)?, None),
            (FieldKind::LocalMoney, Some(v)) => (decimal(v, field.api)?, Some(cx.currency)),
            (FieldKind::UsdMoney, Some(v)) => (decimal(v, field.api)?, usd),
            (FieldKind::Measure, Some(v)) => (decimal(v, field.api)?, None),
            (FieldKind::Count, None) => (Decimal::ZERO, None),
            (FieldKind::LocalMoney, None) => (Decimal::ZERO, Some(cx.currency)),
            (FieldKind::UsdMoney, None) => (Decimal::ZERO, usd),
            (FieldKind::Unique | FieldKind::Measure, None) => continue,
        };
        rows.push(entity.row(date, field.metric.clone(), value, currency));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;
    use kpipe_core::Metric;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rows(element: Value) -> Result<Vec<MetricRow>, String> {
        let account = Label::from("508720451");
        let mut names = HashMap::new();
        names.insert(252_074_216, Some(Label::from("Spring launch")));
        let fields = fields::canonical();
        let cx = AnalyticsContext {
            account: &account,
            currency: Currency::parse("EUR").unwrap(),
            pivot: Pivot::Campaign,
            names: &names,
            window: DateWindow::new(day("2024-05-01"), day("2024-05-03")).unwrap(),
            fields: &fields,
        };
        analytics_rows(&element, &cx)
    }

    /// The element of the notes' fixture `adanalytics_daily.json` (§3.1).
    fn fixture() -> Value {
        json!({"pivotValues": ["urn:li:sponsoredCampaign:252074216"],
               "dateRange": {"start": {"year": 2024, "month": 5, "day": 1},
                             "end": {"year": 2024, "month": 5, "day": 1}},
               "impressions": 19464, "clicks": 106, "landingPageClicks": 98, "likes": 12, "comments": 1,
               "shares": 2, "follows": 3, "totalEngagements": 130, "videoViews": 0,
               "costInLocalCurrency": "99.99999999999996", "costInUsd": "99.99999999999996",
               "externalWebsiteConversions": 0, "oneClickLeads": 4, "approximateUniqueImpressions": 15877})
    }

    #[test]
    fn an_element_becomes_one_exact_row_per_field() {
        let rows = rows(fixture()).unwrap();
        assert_eq!(rows.len(), 13);
        let value =
            |m: Metric| rows.iter().find(|r| r.metric == m.into()).map(|r| (r.value.to_string(), r.currency));
        assert_eq!(value(Metric::Spend), Some(("99.99999999999996".into(), Currency::parse("EUR"))));
        assert_eq!(value(Metric::LinkClicks), Some(("98".into(), None)));
        assert_eq!(value(Metric::Reach), Some(("15877".into(), None)));
        assert_eq!(value(Metric::FollowerGains), Some(("3".into(), None)));
        assert!(rows.iter().all(|r| r.entity_id == "252074216"
            && r.level == "campaign"
            && r.entity_name.as_deref() == Some("Spring launch")
            && r.date == day("2024-05-01")));
    }

    #[test]
    fn absent_sums_are_zero_but_absent_reach_is_no_row() {
        let mut element = fixture();
        let object = element.as_object_mut().unwrap();
        object.remove("clicks");
        object.remove("approximateUniqueImpressions");
        object.insert("oneClickLeads".into(), Value::Null);
        let rows = rows(element).unwrap();
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().any(|r| r.metric == Metric::Clicks.into() && r.value == Decimal::ZERO));
        assert!(!rows.iter().any(|r| r.metric == Metric::Reach.into()));
    }

    #[test]
    fn unreadable_elements_are_refused_with_the_reason() {
        let with = |key: &str, value: Value| {
            let mut element = fixture();
            element[key] = value;
            rows(element).unwrap_err()
        };
        assert!(with("impressions", json!("n/a")).starts_with("`impressions`"));
        assert!(with("clicks", json!(-4)).contains("negative"));
        assert!(with("costInLocalCurrency", json!("12,50")).starts_with("`costInLocalCurrency`"));
        assert!(with("pivotValues", json!(["urn:li:sponsoredCreative:1"])).contains("sponsoredCampaign"));
        assert!(with("pivotValues", json!([])).contains("0 pivot values"));
        let two_days = json!({"start": {"year": 2024, "month": 5, "day": 1},
                              "end": {"year": 2024, "month": 5, "day": 2}});
        assert!(with("dateRange", two_days).contains("not one day"));
        let outside = json!({"start": {"year": 2024, "month": 6, "day": 1}});
        assert!(with("dateRange", outside).contains("outside"));
        assert!(with("dateRange", json!({"start": "2024-05-01"})).contains("not a {year, month, day}"));
        assert!(rows(json!([1])).unwrap_err().contains("not an object"));
    }
}
