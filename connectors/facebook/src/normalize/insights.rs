//! One ads insights row (an entity on a day) to metric rows: impressions, reach, clicks,
//! link clicks and spend from their fields, and the `actions` / `action_values` arrays through
//! the action mapping, every type no canonical metric took kept as `facebook.action_<type>`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, Metric, MetricName, MetricRow, Unit};
use serde_json::{Map, Value};

use super::{Level, PLATFORM, amount, count, decimal};
use crate::mapping::{ActionMapping, action_extra};

/// What every row of one listing shares.
#[derive(Debug, Clone, Copy)]
pub struct InsightsContext<'a> {
    /// The ad account (without `act_`), the `account_id` column.
    pub account_id: &'a str,
    /// The listing's level.
    pub level: Level,
    /// Action types to metrics.
    pub actions: &'a ActionMapping,
}

/// Fields that hold a count each, and their metric.
const COUNT_FIELDS: [(&str, Metric); 4] = [
    ("impressions", Metric::Impressions),
    ("reach", Metric::Reach),
    ("clicks", Metric::Clicks),
    ("inline_link_clicks", Metric::LinkClicks),
];

fn text<'a>(row: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    row.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// An id field: the API sends ids as strings; a number is accepted as its digits.
fn id(row: &Map<String, Value>, field: &str) -> Result<String, String> {
    match row.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!("`{field}` {other} is not an id")),
        None => Err(format!("`{field}` is missing")),
    }
}

fn date(row: &Map<String, Value>) -> Result<NaiveDate, String> {
    let start = text(row, "date_start").ok_or("`date_start` is missing")?;
    let day = NaiveDate::parse_from_str(start, "%Y-%m-%d")
        .map_err(|_| format!("`date_start` {start:?} is not YYYY-MM-DD"))?;
    if let Some(stop) = text(row, "date_stop")
        && stop != start
    {
        return Err(format!("the row spans {start}..{stop}; daily rows (time_increment=1) were asked for"));
    }
    Ok(day)
}

/// `[{"action_type": "lead", "value": "3", "7d_click": "3"}, ...]` as (type, value) pairs; the
/// attribution-window keys repeat parts of `value` and are not read.
fn action_list(row: &Map<String, Value>, field: &str, money: bool) -> Result<Vec<(String, Decimal)>, String> {
    let Some(list) = row.get(field) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| format!("`{field}` is not an array"))?;
    let mut out: Vec<(String, Decimal)> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let kind = entry
            .get("action_type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("`{field}[{i}]` has no `action_type`"))?;
        let what = format!("`{field}` {kind}");
        let raw = entry.get("value").ok_or_else(|| format!("{what} has no `value`"))?;
        let value = if money { decimal(raw, &what)? } else { amount(raw, &what)? };
        if out.iter().any(|(t, _)| t == kind) {
            return Err(format!("{what} appears twice"));
        }
        out.push((kind.to_owned(), value));
    }
    Ok(out)
}

/// The metric rows of one insights element, or why it cannot be read.
pub fn insights_rows(element: &Value, cx: &InsightsContext<'_>) -> Result<Vec<MetricRow>, String> {
    let row = element.as_object().ok_or("the element is not a JSON object")?;
    let date = date(row)?;
    if let Some(account) = text(row, "account_id")
        && account != cx.account_id
    {
        return Err(format!("the row is of account {account}, in the listing of account {}", cx.account_id));
    }
    let entity_id = Label::from(id(row, cx.level.id_field())?);
    let entity_name = text(row, cx.level.name_field()).map(Label::new);
    let currency = match text(row, "account_currency") {
        Some(code) => Some(
            Currency::parse(code).ok_or_else(|| format!("`account_currency` {code:?} is not ISO 4217"))?,
        ),
        None => None,
    };
    let mut values: Vec<(MetricName, Decimal)> = Vec::new();
    for (field, metric) in COUNT_FIELDS {
        if let Some(v) = row.get(field) {
            values.push((metric.into(), count(v, &format!("`{field}`"))?));
        }
    }
    if let Some(v) = row.get("spend") {
        values.push((Metric::Spend.into(), decimal(v, "`spend`")?));
    }
    let actions = action_list(row, "actions", false)?;
    let mut taken = BTreeSet::new();
    for (metric, types) in cx.actions.counts() {
        if let Some((kind, value)) = types.iter().find_map(|t| actions.iter().find(|(k, _)| k == t)) {
            taken.insert(kind.as_str());
            values.push(((*metric).into(), *value));
        }
    }
    extras(&actions, &taken, Unit::Count, &mut values)?;
    let action_values = action_list(row, "action_values", true)?;
    let mut taken = BTreeSet::new();
    if let Some((kind, value)) =
        cx.actions.revenue().iter().find_map(|t| action_values.iter().find(|(k, _)| k == t))
    {
        taken.insert(kind.as_str());
        values.push((Metric::Revenue.into(), *value));
    }
    extras(&action_values, &taken, Unit::Currency, &mut values)?;

    let money = values.iter().any(|(m, _)| m.unit() == Unit::Currency);
    if money && currency.is_none() {
        return Err("the row has money (spend or action values) but no `account_currency`".into());
    }
    let account = Label::new(cx.account_id);
    let (level, platform) = (Label::from(cx.level.label()), Label::from(PLATFORM));
    Ok(values
        .into_iter()
        .map(|(metric, value)| MetricRow {
            platform: platform.clone(),
            account_id: account.clone(),
            level: level.clone(),
            entity_id: entity_id.clone(),
            entity_name: entity_name.clone(),
            date,
            dimensions: Dimensions::default(),
            currency: (metric.unit() == Unit::Currency).then_some(currency).flatten(),
            metric,
            value,
        })
        .collect())
}

/// Every entry no canonical metric took, as `facebook.action_<type>` (or `action_value_`).
fn extras(
    entries: &[(String, Decimal)],
    taken: &BTreeSet<&str>,
    unit: Unit,
    values: &mut Vec<(MetricName, Decimal)>,
) -> Result<(), String> {
    for (kind, value) in entries.iter().filter(|(k, _)| !taken.contains(k.as_str())) {
        let name =
            action_extra(kind, unit).ok_or_else(|| format!("action type {kind:?} makes no metric name"))?;
        if values.iter().any(|(m, _)| *m == name) {
            return Err(format!("action type {kind:?} and another one both make `{name}`"));
        }
        values.push((name, *value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx(mapping: &ActionMapping) -> InsightsContext<'_> {
        InsightsContext { account_id: "798085168510957", level: Level::Campaign, actions: mapping }
    }

    /// A row shaped like `fixtures/facebook/insights_page1.json` (shared/apis/facebook.md §2).
    fn element() -> Value {
        json!({
            "account_id": "798085168510957", "account_currency": "USD",
            "campaign_id": "23854404676180548", "campaign_name": "Spring Sale",
            "impressions": "185", "reach": "171", "clicks": "9", "inline_link_clicks": "7", "spend": "14.35",
            "actions": [
                {"action_type": "link_click", "value": "7", "7d_click": "7", "1d_view": "0"},
                {"action_type": "onsite_conversion.lead_grouped", "value": "2"},
                {"action_type": "lead", "value": "3"},
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2", "7d_click": "2"},
                {"action_type": "purchase", "value": "2"},
                {"action_type": "post_reaction", "value": "4"},
                {"action_type": "offsite_conversion.custom.271828", "value": "1"}
            ],
            "action_values": [
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "189.9"},
                {"action_type": "purchase", "value": "189.9"}
            ],
            "date_start": "2024-05-01", "date_stop": "2024-05-01"
        })
    }

    fn values(rows: &[MetricRow]) -> Vec<(String, String, Option<String>)> {
        rows.iter()
            .map(|r| {
                (r.metric.as_str().to_owned(), r.value.to_string(), r.currency.map(|c| c.as_str().to_owned()))
            })
            .collect()
    }

    #[test]
    fn spend_is_exact_with_its_currency_and_actions_map_as_documented() {
        let mapping = ActionMapping::default();
        let rows = insights_rows(&element(), &cx(&mapping)).unwrap();
        let got = values(&rows);
        let want = |m: &str, v: &str, c: Option<&str>| (m.to_owned(), v.to_owned(), c.map(str::to_owned));
        assert_eq!(
            got,
            [
                want("impressions", "185", None),
                want("reach", "171", None),
                want("clicks", "9", None),
                want("link_clicks", "7", None),
                want("spend", "14.35", Some("USD")),
                // `lead` is the total: the more specific types are kept as extras, not added.
                want("leads", "3", None),
                want("conversions", "2", None),
                want("likes", "4", None),
                want("facebook.action_link_click", "7", None),
                want("facebook.action_onsite_conversion_lead_grouped", "2", None),
                want("facebook.action_purchase", "2", None),
                want("facebook.action_offsite_conversion_custom_271828", "1", None),
                want("revenue", "189.9", Some("USD")),
                want("facebook.action_value_purchase", "189.9", Some("USD")),
            ]
        );
        let spend = rows.iter().find(|r| r.metric.as_str() == "spend").unwrap();
        assert_eq!(spend.value, "14.35".parse::<Decimal>().unwrap());
        assert!(
            rows.iter()
                .all(|r| r.entity_id.as_ref() == "23854404676180548" && r.level.as_ref() == "campaign")
        );
        assert!(rows.iter().all(|r| r.date == NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()));
        assert!(rows.iter().all(|r| r.validate().is_ok()));
    }

    #[test]
    fn a_row_without_actions_gives_its_fields_only() {
        let mapping = ActionMapping::default();
        let mut e = element();
        let object = e.as_object_mut().unwrap();
        object.remove("actions");
        object.remove("action_values");
        assert_eq!(insights_rows(&e, &cx(&mapping)).unwrap().len(), 5);
    }

    #[test]
    fn unreadable_rows_are_refused_with_the_reason() {
        let mapping = ActionMapping::default();
        let with = |k: &str, v: Value| {
            let mut e = element();
            e[k] = v;
            insights_rows(&e, &cx(&mapping)).unwrap_err()
        };
        assert!(with("impressions", json!("n/a")).starts_with("`impressions`"));
        assert!(with("clicks", json!("1.5")).contains("whole number"));
        assert!(with("date_start", json!("05/01/2024")).contains("YYYY-MM-DD"));
        assert!(with("date_stop", json!("2024-05-02")).contains("daily rows"));
        assert!(with("campaign_id", json!(null)).contains("campaign_id"));
        assert!(with("account_currency", json!("usd")).contains("ISO 4217"));
        assert!(with("account_id", json!("1")).contains("listing of account"));
        assert!(with("actions", json!([{"value": "1"}])).contains("action_type"));
        assert!(
            with(
                "actions",
                json!([{"action_type": "lead", "value": "1"}, {"action_type": "lead", "value": "2"}])
            )
            .contains("twice")
        );
        let mut e = element();
        e.as_object_mut().unwrap().remove("account_currency");
        assert!(insights_rows(&e, &cx(&mapping)).unwrap_err().contains("account_currency"));
        assert!(insights_rows(&json!([1]), &cx(&mapping)).is_err());
    }
}
