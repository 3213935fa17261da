//! One ad analytics element (an entity on a day, `shared/apis/linkedin.md` §3.1) to one row per
//! field: counts are JSON integers, money a decimal string in the ad account's currency, dates
//! `{year, month, day}` objects with `start == end` for daily elements.

use std::collections::HashMap;

use chrono::NaiveDate;
use kpipe_core::{Currency, DateWindow, Decimal, Label, MetricRow};

use super::{Entity, count_json, decimal_json};
use crate::fields::{AnalyticsField, FieldKind};
use crate::json;
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

/// An element's members that make its rows, as JSON text: the key fields and, by position in
/// [`AnalyticsContext::fields`], the values asked for. Nothing else of the element is kept.
#[derive(Debug)]
struct ElementFields<'t> {
    pivot_values: Option<&'t str>,
    date_range: Option<&'t str>,
    values: Vec<Option<&'t str>>,
}

impl<'t> ElementFields<'t> {
    /// The members of `parts`, the element as each field group's answer sent it (one part when
    /// the fields fit one request); a member sent by several parts is taken from the last.
    fn read(parts: &[&'t str], fields: &[AnalyticsField]) -> Result<ElementFields<'t>, String> {
        let mut element =
            ElementFields { pivot_values: None, date_range: None, values: vec![None; fields.len()] };
        for part in parts {
            let is_object = json::members(part, |key, value| match key {
                "pivotValues" => element.pivot_values = Some(value),
                "dateRange" => element.date_range = Some(value),
                _ => {
                    if let Some(slot) = fields.iter().position(|f| f.api == key) {
                        element.values[slot] = Some(value);
                    }
                }
            })
            .map_err(|e| format!("the element cannot be read: {e}"))?;
            if !is_object {
                return Err("the element is not an object".into());
            }
        }
        Ok(element)
    }
}

/// The `start` and `end` members of a `dateRange`; none when it is not an object.
pub(crate) fn range_ends(range: &str) -> (Option<&str>, Option<&str>) {
    let (mut start, mut end) = (None, None);
    let read = json::members(range, |key, value| match key {
        "start" => start = Some(value),
        "end" => end = Some(value),
        _ => {}
    });
    if read.is_err() {
        return (None, None);
    }
    (start, end)
}

/// `{"year":2026,"month":10,"day":1}`.
pub(crate) fn date_of(value: Option<&str>, what: &str) -> Result<NaiveDate, String> {
    let value = value.ok_or_else(|| format!("no `dateRange.{what}`"))?;
    let (mut year, mut month, mut day) = (None, None, None);
    let read = json::members(value, |key, part| match key {
        "year" => year = json::integer(part),
        "month" => month = json::integer(part),
        "day" => day = json::integer(part),
        _ => {}
    });
    if read.is_err() {
        (year, month, day) = (None, None, None);
    }
    match (year, month, day) {
        (Some(y), Some(m), Some(d)) => i32::try_from(y)
            .ok()
            .zip(u32::try_from(m).ok().zip(u32::try_from(d).ok()))
            .and_then(|(y, (m, d))| NaiveDate::from_ymd_opt(y, m, d))
            .ok_or_else(|| format!("`dateRange.{what}` {value} is not a date")),
        _ => Err(format!("`dateRange.{what}` {value} is not a {{year, month, day}} object")),
    }
}

/// The day of a daily element from its `dateRange` text.
fn element_date(date_range: Option<&str>) -> Result<NaiveDate, String> {
    let (start, end) = range_ends(date_range.ok_or("no `dateRange`")?);
    let start = date_of(start, "start")?;
    if let Some(end) = end {
        let end = date_of(Some(end), "end")?;
        if end != start {
            return Err(format!("spans {start} to {end}, not one day"));
        }
    }
    Ok(start)
}

/// The entity id of an element from its `pivotValues` text, checked against the pivot.
fn element_entity(pivot_values: Option<&str>, pivot: Pivot) -> Result<u64, String> {
    let values = pivot_values.and_then(json::array).ok_or("no `pivotValues` array")?;
    let [urn] = values.as_slice() else {
        return Err(format!("{} pivot values, expected one", values.len()));
    };
    let urn = json::string(urn).ok_or("the pivot value is not a URN string")?;
    urn.strip_prefix(pivot.urn_prefix())
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| format!("pivot value `{urn}` is not a {}<id> URN", pivot.urn_prefix()))
}

/// Reads the elements of the answers about one account and pivot into rows. The entity id
/// labels are made once per entity and shared by all its rows, whatever the day.
#[derive(Debug)]
pub struct AnalyticsReader<'a> {
    cx: AnalyticsContext<'a>,
    usd: Option<Currency>,
    entity_ids: HashMap<u64, Label>,
}

impl<'a> AnalyticsReader<'a> {
    /// A reader of the elements `cx` describes.
    pub fn new(cx: AnalyticsContext<'a>) -> AnalyticsReader<'a> {
        AnalyticsReader { cx, usd: Currency::parse("USD"), entity_ids: HashMap::new() }
    }

    /// The rows of one element, or why it cannot be read. `parts` is the element's JSON text as
    /// received, one per field group. An absent or null field is 0 for what adds up (LinkedIn
    /// leaves out nothing it was asked for, but the notes warn not to rely on it) and no row for
    /// reach and averages, which cannot be defaulted.
    pub fn rows(&mut self, parts: &[&str]) -> Result<Vec<MetricRow>, String> {
        let cx = &self.cx;
        let element = ElementFields::read(parts, cx.fields)?;
        let date = element_date(element.date_range)?;
        if !cx.window.contains(date) {
            return Err(format!("dated {date}, outside the requested {}", cx.window));
        }
        let id = element_entity(element.pivot_values, cx.pivot)?;
        let entity = Entity {
            account_id: cx.account.clone(),
            level: Label::from(cx.pivot.level()),
            entity_id: self.entity_ids.entry(id).or_insert_with(|| Label::from(id.to_string())).clone(),
            entity_name: cx.names.get(&id).cloned().flatten(),
        };
        let mut rows = Vec::with_capacity(cx.fields.len());
        for (field, value) in cx.fields.iter().zip(element.values) {
            let value = value.filter(|v| !json::is_null(v));
            let (value, currency) = match (field.kind, value) {
                (FieldKind::Count | FieldKind::Unique, Some(v)) => (count_json(v, field.api)?, None),
                (FieldKind::LocalMoney, Some(v)) => (decimal_json(v, field.api)?, Some(cx.currency)),
                (FieldKind::UsdMoney, Some(v)) => (decimal_json(v, field.api)?, self.usd),
                (FieldKind::Measure, Some(v)) => (decimal_json(v, field.api)?, None),
                (FieldKind::Count, None) => (Decimal::ZERO, None),
                (FieldKind::LocalMoney, None) => (Decimal::ZERO, Some(cx.currency)),
                (FieldKind::UsdMoney, None) => (Decimal::ZERO, self.usd),
                (FieldKind::Unique | FieldKind::Measure, None) => continue,
            };
            rows.push(entity.row(date, field.metric.clone(), value, currency));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;
    use kpipe_core::Metric;
    use serde_json::{Value, json};

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
        AnalyticsReader::new(cx).rows(&[&element.to_string()])
    }

    /// The element of the notes' fixture `adanalytics_daily.json` (§3.1).
    fn fixture() -> Value {
        json!({"pivotValues": ["urn:li:sponsoredCampaign:252074216"],
               "dateRange": {"start": {"year": 2024, "month": 5, "day": 1},
                             "end": {"year": 2024, "month": 5, "day": 1}},
               "impressions": 19464, "clicks": 106, "landingPageClicks": 98, "likes": 12, "comments": 1,
               "shares": 2, "follows": 3, "totalEngagements": 130, "videoViews": 0,
               "costInLocalCurrency": "99.99999999999996", "costInUsd": "99.99999999999996",
               "externalWebsiteConversions": 0, "oneClickLeads": 4, "approximateMemberReach": 15877})
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
        object.remove("approximateMemberReach");
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
