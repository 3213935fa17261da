//! One ads insights row (an entity on a day) to metric rows: impressions, reach, clicks,
//! link clicks and spend from their fields, and the `actions` / `action_values` arrays through
//! the action mapping, every type no canonical metric took kept as `facebook.action_<type>`.
//!
//! An element is read straight from the page's bytes: the fields kpipe uses are borrowed as raw
//! JSON text and only those are interpreted, so a page of thousands of rows costs no more than its
//! bytes, and numbers keep their exact decimal text.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, Metric, MetricName, MetricRow, Unit};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{Level, PLATFORM};
use crate::mapping::{ActionMapping, action_extra};

/// Fields that hold a count each, and their metric.
const COUNT_FIELDS: [Metric; 4] = [Metric::Impressions, Metric::Reach, Metric::Clicks, Metric::LinkClicks];

/// A field present in the element, `null` included (serde's `Option` would take `null` for
/// absent, and a metric sent as `null` must be refused, not skipped).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The fields of an insights element that kpipe reads; any other field is skipped unread.
#[derive(Deserialize, Default)]
struct InsightsElement<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    account_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    account_name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    account_currency: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    campaign_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    campaign_name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    adset_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    adset_name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    ad_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    ad_name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    impressions: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    reach: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    clicks: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    inline_link_clicks: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    spend: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    actions: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    action_values: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    date_start: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    date_stop: Option<&'a RawValue>,
}

impl<'a> InsightsElement<'a> {
    fn id_and_name(&self, level: Level) -> (Option<&'a RawValue>, Option<&'a RawValue>) {
        match level {
            Level::Account => (self.account_id, self.account_name),
            Level::Campaign => (self.campaign_id, self.campaign_name),
            Level::AdSet => (self.adset_id, self.adset_name),
            Level::Ad => (self.ad_id, self.ad_name),
        }
    }

    fn count_field(&self, metric: Metric) -> (&'static str, Option<&'a RawValue>) {
        match metric {
            Metric::Impressions => ("impressions", self.impressions),
            Metric::Reach => ("reach", self.reach),
            Metric::Clicks => ("clicks", self.clicks),
            _ => ("inline_link_clicks", self.inline_link_clicks),
        }
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes; `None` for anything else.
fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A non-empty string field, trimmed; a missing field, `null`, a non-string or blanks are `None`.
fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let value = string_of(raw?)?;
    if value.trim().is_empty() {
        return None;
    }
    Some(match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    })
}

/// An id field: the API sends ids as strings; a number is accepted as its digits.
fn id(raw: Option<&RawValue>, field: &str) -> Result<String, String> {
    let raw = raw.ok_or_else(|| format!("`{field}` is missing"))?;
    if let Some(s) = string_of(raw).filter(|s| !s.trim().is_empty()) {
        return Ok(s.trim().to_owned());
    }
    let digits = raw.get();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(digits.to_owned());
    }
    Err(format!("`{field}` {digits} is not an id"))
}

/// A number the API sent as a string (`"14.35"`) or as a JSON number, read from its exact text.
/// `what` names the value in the message of an error; it is only formatted then.
fn decimal(raw: &RawValue, what: &dyn std::fmt::Display) -> Result<Decimal, String> {
    let text = raw.get();
    let digits = match string_of(raw) {
        Some(s) => s,
        None if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => Cow::Borrowed(text),
        None => return Err(format!("{what}: expected a number, got {text}")),
    };
    digits.trim().parse().map_err(|e| format!("{what}: {e}"))
}

/// A count: a whole number, not negative.
fn count(raw: &RawValue, what: &dyn std::fmt::Display) -> Result<Decimal, String> {
    let n = decimal(raw, what)?;
    if !n.is_integer() || n.is_negative() {
        return Err(format!("{what}: {} is a count but not a whole number of at least 0", raw.get()));
    }
    Ok(n)
}

/// An amount of events that attribution may split (`"1.5"` conversions): not negative.
fn amount(raw: &RawValue, what: &dyn std::fmt::Display) -> Result<Decimal, String> {
    let n = decimal(raw, what)?;
    if n.is_negative() {
        return Err(format!("{what}: {} is negative", raw.get()));
    }
    Ok(n)
}

fn date(element: &InsightsElement<'_>) -> Result<NaiveDate, String> {
    let start = text(element.date_start).ok_or("`date_start` is missing")?;
    let day = NaiveDate::parse_from_str(&start, "%Y-%m-%d")
        .map_err(|_| format!("`date_start` {start:?} is not YYYY-MM-DD"))?;
    if let Some(stop) = text(element.date_stop)
        && stop != start
    {
        return Err(format!("the row spans {start}..{stop}; daily rows (time_increment=1) were asked for"));
    }
    Ok(day)
}

/// One entry of `actions` / `action_values`; the attribution-window keys (`7d_click`, ...)
/// repeat parts of `value` and are not read.
#[derive(Deserialize)]
struct ActionEntry<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    action_type: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
}

/// `[{"action_type": "lead", "value": "3", "7d_click": "3"}, ...]` as (type, value) pairs.
fn action_list<'a>(
    raw: Option<&'a RawValue>,
    field: &str,
    money: bool,
) -> Result<Vec<(Cow<'a, str>, Decimal)>, String> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let list: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| format!("`{field}` is not an array"))?;
    let mut out: Vec<(Cow<'a, str>, Decimal)> = Vec::with_capacity(list.len());
    for (i, entry) in list.into_iter().enumerate() {
        if !entry.get().starts_with('{') {
            return Err(format!("`{field}[{i}]` is not an object"));
        }
        let entry: ActionEntry<'a> =
            serde_json::from_str(entry.get()).map_err(|e| format!("`{field}[{i}]`: {e}"))?;
        let kind = entry
            .action_type
            .and_then(string_of)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("`{field}[{i}]` has no `action_type`"))?;
        let what = format_args!("`{field}` {kind}");
        let raw = entry.value.ok_or_else(|| format!("{what} has no `value`"))?;
        let value = if money { decimal(raw, &what)? } else { amount(raw, &what)? };
        if out.iter().any(|(t, _)| *t == kind) {
            return Err(format!("{what} appears twice"));
        }
        out.push((kind, value));
    }
    Ok(out)
}

/// Reads the insights elements of one listing (an account at a level) into metric rows. The
/// labels every row of the listing shares, and the names of the extra action metrics, are made
/// once, not per row.
#[derive(Debug)]
pub struct InsightsReader<'a> {
    /// The ad account (without `act_`), the `account_id` column.
    account_id: &'a str,
    level: Level,
    actions: &'a ActionMapping,
    account: Label,
    level_label: Label,
    /// `facebook.action_<type>` names by action type: counts, then money.
    extras: [HashMap<String, MetricName>; 2],
}

impl<'a> InsightsReader<'a> {
    /// A reader for the listing of `account_id` at `level`, with `actions` mapping action types.
    pub fn new(account_id: &'a str, level: Level, actions: &'a ActionMapping) -> InsightsReader<'a> {
        InsightsReader {
            account_id,
            level,
            actions,
            account: Label::new(account_id),
            level_label: Label::from(level.label()),
            extras: [HashMap::new(), HashMap::new()],
        }
    }

    /// The metric rows of one insights element (its JSON text), or why it cannot be read.
    pub fn rows(&mut self, element: &str) -> Result<Vec<MetricRow>, String> {
        // Checked first: serde would also read a struct from an array, by position.
        if !element.trim_start().starts_with('{') {
            return Err("the element is not a JSON object".into());
        }
        let row: InsightsElement<'_> =
            serde_json::from_str(element).map_err(|e| format!("the element cannot be read: {e}"))?;
        let date = date(&row)?;
        if let Some(account) = text(row.account_id)
            && account != self.account_id
        {
            return Err(format!(
                "the row is of account {account}, in the listing of account {}",
                self.account_id
            ));
        }
        let (id_raw, name_raw) = row.id_and_name(self.level);
        let entity_id = Label::from(id(id_raw, self.level.id_field())?);
        let entity_name = text(name_raw).map(|name| Label::new(&name));
        let currency = match text(row.account_currency) {
            Some(code) => Some(
                Currency::parse(&code)
                    .ok_or_else(|| format!("`account_currency` {code:?} is not ISO 4217"))?,
            ),
            None => None,
        };
        let mut values: Vec<(MetricName, Decimal)> = Vec::with_capacity(16);
        for metric in COUNT_FIELDS {
            if let (field, Some(v)) = row.count_field(metric) {
                values.push((metric.into(), count(v, &field_name(field))?));
            }
        }
        if let Some(v) = row.spend {
            values.push((Metric::Spend.into(), decimal(v, &"`spend`")?));
        }
        let actions = action_list(row.actions, "actions", false)?;
        let mut taken: Vec<&str> = Vec::new();
        for (metric, types) in self.actions.counts() {
            if let Some((kind, value)) = types.iter().find_map(|t| actions.iter().find(|(k, _)| k == t)) {
                taken.push(kind);
                values.push(((*metric).into(), *value));
            }
        }
        self.extras(&actions, &taken, Unit::Count, &mut values)?;
        let action_values = action_list(row.action_values, "action_values", true)?;
        let mut taken: Vec<&str> = Vec::new();
        if let Some((kind, value)) =
            self.actions.revenue().iter().find_map(|t| action_values.iter().find(|(k, _)| k == t))
        {
            taken.push(kind);
            values.push((Metric::Revenue.into(), *value));
        }
        self.extras(&action_values, &taken, Unit::Currency, &mut values)?;

        let money = values.iter().any(|(m, _)| m.unit() == Unit::Currency);
        if money && currency.is_none() {
            return Err("the row has money (spend or action values) but no `account_currency`".into());
        }
        let platform = Label::from(PLATFORM);
        Ok(values
            .into_iter()
            .map(|(metric, value)| MetricRow {
                platform: platform.clone(),
                account_id: self.account.clone(),
                level: self.level_label.clone(),
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
        &mut self,
        entries: &[(Cow<'_, str>, Decimal)],
        taken: &[&str],
        unit: Unit,
        values: &mut Vec<(MetricName, Decimal)>,
    ) -> Result<(), String> {
        for (kind, value) in entries.iter().filter(|(k, _)| !taken.contains(&k.as_ref())) {
            let known = &mut self.extras[usize::from(unit == Unit::Currency)];
            let name = match known.get(kind.as_ref()) {
                Some(name) => name.clone(),
                None => {
                    let name = action_extra(kind, unit)
                        .ok_or_else(|| format!("action type {kind:?} makes no metric name"))?;
                    known.insert(kind.to_string(), name.clone());
                    name
                }
            };
            if values.iter().any(|(m, _)| *m == name) {
                return Err(format!("action type {kind:?} and another one both make `{name}`"));
            }
            values.push((name, *value));
        }
        Ok(())
    }
}

/// The quoted field name used in messages.
fn field_name(field: &'static str) -> &'static str {
    match field {
        "impressions" => "`impressions`",
        "reach" => "`reach`",
        "clicks" => "`clicks`",
        _ => "`inline_link_clicks`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn reader(mapping: &ActionMapping) -> InsightsReader<'_> {
        InsightsReader::new("798085168510957", Level::Campaign, mapping)
    }

    fn insights_rows(element: &Value, reader: &mut InsightsReader<'_>) -> Result<Vec<MetricRow>, String> {
        reader.rows(&element.to_string())
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
        let rows = insights_rows(&element(), &mut reader(&mapping)).unwrap();
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
        assert_eq!(insights_rows(&e, &mut reader(&mapping)).unwrap().len(), 5);
    }

    #[test]
    fn unreadable_rows_are_refused_with_the_reason() {
        let mapping = ActionMapping::default();
        let with = |k: &str, v: Value| {
            let mut e = element();
            e[k] = v;
            insights_rows(&e, &mut reader(&mapping)).unwrap_err()
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
        assert!(insights_rows(&e, &mut reader(&mapping)).unwrap_err().contains("account_currency"));
        assert!(insights_rows(&json!([1]), &mut reader(&mapping)).is_err());
    }

    /// shared/apis/facebook.md §2: metrics are strings; a JSON number is read from its exact
    /// text, and a metric sent as `null` is refused rather than skipped.
    #[test]
    fn numbers_are_read_from_their_exact_text() {
        let mapping = ActionMapping::default();
        // A JSON number keeps every digit it was sent with (no float on the way).
        let text = element().to_string().replace("\"spend\":\"14.35\"", "\"spend\":14.350000000000000001");
        assert!(text.contains("14.350000000000000001"), "{text}");
        let rows = reader(&mapping).rows(&text).unwrap();
        let spend = rows.iter().find(|r| r.metric.as_str() == "spend").unwrap();
        assert_eq!(spend.value.to_string(), "14.350000000000000001");
        let rows = insights_rows(&element(), &mut reader(&mapping)).unwrap();
        let spend = rows.iter().find(|r| r.metric.as_str() == "spend").unwrap();
        assert_eq!(spend.value.to_string(), "14.35");
        let mut e = element();
        e["impressions"] = json!(185);
        let rows = insights_rows(&e, &mut reader(&mapping)).unwrap();
        assert_eq!(rows[0].value, Decimal::from_i64(185));
        let mut e = element();
        e["reach"] = Value::Null;
        assert!(insights_rows(&e, &mut reader(&mapping)).unwrap_err().starts_with("`reach`"));
        let mut e = element();
        e["campaign_name"] = json!("Caf\u{e9} \"Sale\"");
        let rows = insights_rows(&e, &mut reader(&mapping)).unwrap();
        assert_eq!(rows[0].entity_name.as_deref(), Some("Caf\u{e9} \"Sale\""));
        assert!(reader(&mapping).rows("[1]").unwrap_err().contains("not a JSON object"));
        assert!(reader(&mapping).rows("{\"date_start\": ").unwrap_err().contains("cannot be read"));
    }
}
