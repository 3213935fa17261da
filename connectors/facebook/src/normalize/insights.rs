//! One ads insights row (an entity on a day) to metric rows: impressions, reach, clicks,
//! link clicks and spend from their fields, and the `actions` / `action_values` arrays through
//! the action mapping, every type no canonical metric took kept as `facebook.action_<type>`.
//!
//! An element is read straight from the page's bytes: the fields kpipe uses are borrowed as raw
//! JSON text and only those are interpreted, so a page of thousands of rows costs no more than its
//! bytes, and numbers keep their exact decimal text. What repeats from row to row of a listing
//! (an entity's id and name, the day, what an action type becomes) is made once and shared.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, Metric, MetricName, MetricRow, Unit};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::actions::ActionTable;
use super::{Level, PLATFORM};
use crate::mapping::ActionMapping;

/// Fields that hold a count each, and their metric.
pub const COUNT_FIELDS: [(&str, Metric); 4] = [
    ("impressions", Metric::Impressions),
    ("reach", Metric::Reach),
    ("clicks", Metric::Clicks),
    ("inline_link_clicks", Metric::LinkClicks),
];

/// The field that holds `spend`, in the account currency.
pub const SPEND_FIELD: &str = "spend";

/// A field present in the element, `null` included (serde's `Option` would take `null` for
/// absent, and a metric sent as `null` must be refused, not skipped).
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
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

    fn count_field(&self, field: &str) -> Option<&'a RawValue> {
        match field {
            "impressions" => self.impressions,
            "reach" => self.reach,
            "clicks" => self.clicks,
            "inline_link_clicks" => self.inline_link_clicks,
            _ => None,
        }
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes; `None` for anything else.
pub(super) fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
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
fn id<'a>(raw: Option<&'a RawValue>, field: &str) -> Result<Cow<'a, str>, String> {
    let raw = raw.ok_or_else(|| format!("`{field}` is missing"))?;
    if let Some(s) = text(Some(raw)) {
        return Ok(s);
    }
    let digits = raw.get();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Cow::Borrowed(digits));
    }
    Err(format!("`{field}` {digits} is not an id"))
}

/// A number the API sent as a string (`"14.35"`) or as a JSON number, read from its exact text.
/// `what` names the value in the message of an error; it is only formatted then.
pub(super) fn decimal(raw: &RawValue, what: &dyn std::fmt::Display) -> Result<Decimal, String> {
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
pub(super) fn amount(raw: &RawValue, what: &dyn std::fmt::Display) -> Result<Decimal, String> {
    let n = decimal(raw, what)?;
    if n.is_negative() {
        return Err(format!("{what}: {} is negative", raw.get()));
    }
    Ok(n)
}

/// Reads the insights elements of one listing (an account at a level) into metric rows. The
/// labels every row of the listing shares, each entity's labels, and what each action type
/// becomes are made once, not per row.
#[derive(Debug)]
pub struct InsightsReader<'a> {
    /// The ad account (without `act_`), the `account_id` column.
    account_id: &'a str,
    level: Level,
    account: Label,
    level_label: Label,
    /// The `actions` array: count metrics and `facebook.action_<type>` extras.
    actions: ActionTable,
    /// The `action_values` array: revenue and `facebook.action_value_<type>` extras.
    action_values: ActionTable,
    /// The entities met in the listing, by id, with the name last read for each.
    entities: HashMap<Label, Option<Label>>,
    /// The last `date_start` read and its day; a page holds runs of rows of one day.
    last_day: (String, Option<NaiveDate>),
    /// Rows of the last element, to size the next one's.
    last_rows: usize,
}

impl<'a> InsightsReader<'a> {
    /// A reader for the listing of `account_id` at `level`, with `actions` mapping action types.
    pub fn new(account_id: &'a str, level: Level, actions: &ActionMapping) -> InsightsReader<'a> {
        let counts = actions.counts().iter().map(|(metric, kinds)| (*metric, kinds.as_slice()));
        InsightsReader {
            account_id,
            level,
            account: Label::new(account_id),
            level_label: Label::from(level.label()),
            actions: ActionTable::new("actions", Unit::Count, counts),
            action_values: ActionTable::new(
                "action_values",
                Unit::Currency,
                [(Metric::Revenue, actions.revenue())],
            ),
            entities: HashMap::new(),
            last_day: (String::new(), None),
            last_rows: 0,
        }
    }

    /// The metric rows of one insights element (its JSON text), or why it cannot be read.
    pub fn rows(&mut self, element: &str) -> Result<Vec<MetricRow>, String> {
        self.read(element, true).map(|(rows, _)| rows)
    }

    /// The metric rows of one element of a report over whole ranges (`time_ranges`, one result
    /// set per range), dated the range's first day (`date_start`), and the range's last day
    /// (`date_stop`); or why the element cannot be read.
    pub fn range_rows(&mut self, element: &str) -> Result<(Vec<MetricRow>, NaiveDate), String> {
        self.read(element, false)
    }

    /// The rows of `element` and its `date_stop`; `daily` refuses an element spanning days.
    fn read(&mut self, element: &str, daily: bool) -> Result<(Vec<MetricRow>, NaiveDate), String> {
        // Checked first: serde would also read a struct from an array, by position.
        if !element.trim_start().starts_with('{') {
            return Err("the element is not a JSON object".into());
        }
        let row: InsightsElement<'_> =
            serde_json::from_str(element).map_err(|e| format!("the element cannot be read: {e}"))?;
        let (date, stop) = self.dates(&row, daily)?;
        if let Some(account) = text(row.account_id)
            && account != self.account_id
        {
            return Err(format!(
                "the row is of account {account}, in the listing of account {}",
                self.account_id
            ));
        }
        let (entity_id, entity_name) = self.entity(&row)?;
        let currency = match text(row.account_currency) {
            Some(code) => Some(
                Currency::parse(&code)
                    .ok_or_else(|| format!("`account_currency` {code:?} is not ISO 4217"))?,
            ),
            None => None,
        };
        let platform = Label::from(PLATFORM);
        let (account, level) = (&self.account, &self.level_label);
        let metric_row = |metric: MetricName, value: Decimal| MetricRow {
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
        };
        let mut rows = Vec::with_capacity(self.last_rows.max(8));
        for (field, metric) in COUNT_FIELDS {
            if let Some(v) = row.count_field(field) {
                rows.push(metric_row(metric.into(), count(v, &field_name(field))?));
            }
        }
        if let Some(v) = row.spend {
            rows.push(metric_row(Metric::Spend.into(), decimal(v, &"`spend`")?));
        }
        self.actions.read(row.actions, |metric, value| rows.push(metric_row(metric, value)))?;
        self.action_values.read(row.action_values, |metric, value| rows.push(metric_row(metric, value)))?;

        let money = rows.iter().any(|r| r.metric.unit() == Unit::Currency);
        if money && currency.is_none() {
            return Err("the row has money (spend or action values) but no `account_currency`".into());
        }
        self.last_rows = rows.len();
        Ok((rows, stop))
    }

    /// The row's first and last day. With `daily`, a single day, as daily rows
    /// (`time_increment=1`) were asked for; else a range, `date_stop` not before `date_start`.
    fn dates(
        &mut self,
        element: &InsightsElement<'_>,
        daily: bool,
    ) -> Result<(NaiveDate, NaiveDate), String> {
        let start = text(element.date_start).ok_or("`date_start` is missing")?;
        let day = match &self.last_day {
            (known, Some(day)) if *known == *start => *day,
            _ => {
                let day = NaiveDate::parse_from_str(&start, "%Y-%m-%d")
                    .map_err(|_| format!("`date_start` {start:?} is not YYYY-MM-DD"))?;
                self.last_day.0.clear();
                self.last_day.0.push_str(&start);
                self.last_day.1 = Some(day);
                day
            }
        };
        let Some(stop) = text(element.date_stop).filter(|stop| *stop != start) else { return Ok((day, day)) };
        if daily {
            return Err(format!(
                "the row spans {start}..{stop}; daily rows (time_increment=1) were asked for"
            ));
        }
        let last = NaiveDate::parse_from_str(&stop, "%Y-%m-%d")
            .map_err(|_| format!("`date_stop` {stop:?} is not YYYY-MM-DD"))?;
        if last < day {
            return Err(format!("the row ends ({stop}) before it starts ({start})"));
        }
        Ok((day, last))
    }

    /// The `entity_id` and `entity_name` labels of the row, shared with the entity's earlier
    /// rows while its name stays the same.
    fn entity(&mut self, element: &InsightsElement<'_>) -> Result<(Label, Option<Label>), String> {
        let (id_raw, name_raw) = element.id_and_name(self.level);
        let id = id(id_raw, self.level.id_field())?;
        let name = text(name_raw);
        let (id, name) = match self.entities.get_key_value(id.as_ref()) {
            Some((known, last)) if last.as_deref() == name.as_deref() => {
                return Ok((known.clone(), last.clone()));
            }
            Some((known, _)) => (known.clone(), name.map(|name| Label::new(&name))),
            None => (Label::new(&id), name.map(|name| Label::new(&name))),
        };
        self.entities.insert(id.clone(), name.clone());
        Ok((id, name))
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

    /// Ad Account Insights reference, `time_ranges`: one row per entity and range, `date_start`
    /// and `date_stop` its first and last day.
    #[test]
    fn a_row_over_a_range_is_dated_its_first_day_with_its_last() {
        let mapping = ActionMapping::default();
        let row = json!({"account_id": "798085168510957", "account_name": "Acme",
                         "campaign_id": "23854404676180548", "campaign_name": "Spring Sale",
                         "reach": "1204", "date_start": "2026-03-02", "date_stop": "2026-03-08"});
        let (rows, stop) = reader(&mapping).range_rows(&row.to_string()).unwrap();
        assert_eq!(stop, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].metric.as_str(), rows[0].value.to_string()), ("reach", "1204".to_owned()));
        assert_eq!(rows[0].date, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert!(reader(&mapping).rows(&row.to_string()).unwrap_err().contains("daily rows"));
        let mut one_day = row.clone();
        one_day["date_stop"] = json!("2026-03-02");
        assert_eq!(reader(&mapping).range_rows(&one_day.to_string()).unwrap().1, rows[0].date);
        let mut inverted = row.clone();
        inverted["date_stop"] = json!("2026-03-01");
        assert!(reader(&mapping).range_rows(&inverted.to_string()).unwrap_err().contains("before it starts"));
        let mut bad = row;
        bad["date_stop"] = json!("8 March");
        assert!(reader(&mapping).range_rows(&bad.to_string()).unwrap_err().contains("`date_stop`"));
    }

    fn with_actions(actions: Value) -> Value {
        let mut e = element();
        e["actions"] = actions;
        e
    }

    fn action(kind: &str, value: &str) -> Value {
        json!({"action_type": kind, "value": value, "7d_click": value})
    }

    /// The metrics and values taken from the `actions` array (the rows after spend, before
    /// the action values).
    fn action_metrics(rows: &[MetricRow]) -> Vec<(String, String)> {
        rows.iter()
            .skip(5)
            .filter(|r| r.metric.unit() == Unit::Count)
            .map(|r| (r.metric.as_str().to_owned(), r.value.to_string()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(m, v)| ((*m).to_owned(), (*v).to_owned())).collect()
    }

    /// Rows of one listing list their types in varying orders and subsets; each row's metrics
    /// come from its own entries, extras in its own order (shared/apis/facebook.md §2).
    #[test]
    fn each_row_keeps_its_own_action_order_through_one_reader() {
        let mapping = ActionMapping::default();
        let mut reader = reader(&mapping);
        let first = with_actions(json!([
            action("link_click", "7"),
            action("lead", "3"),
            action("post_reaction", "4"),
            action("comment", "1")
        ]));
        let rows = insights_rows(&first, &mut reader).unwrap();
        assert_eq!(
            action_metrics(&rows),
            pairs(&[("leads", "3"), ("likes", "4"), ("comments", "1"), ("facebook.action_link_click", "7")])
        );
        let second = with_actions(json!([
            action("comment", "2"),
            action("onsite_conversion.lead_grouped", "5"),
            action("video_view", "8"),
            action("link_click", "6")
        ]));
        let rows = insights_rows(&second, &mut reader).unwrap();
        assert_eq!(
            action_metrics(&rows),
            pairs(&[
                ("leads", "5"),
                ("comments", "2"),
                ("video_views", "8"),
                ("facebook.action_link_click", "6")
            ])
        );
        let third = with_actions(json!([action("link_click", "9"), action("comment", "3")]));
        let rows = insights_rows(&third, &mut reader).unwrap();
        assert_eq!(action_metrics(&rows), pairs(&[("comments", "3"), ("facebook.action_link_click", "9")]));
    }

    #[test]
    fn a_type_listed_twice_for_a_metric_keeps_its_first_preference() {
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert(
            "leads".to_owned(),
            vec![
                "onsite_conversion.lead_grouped".to_owned(),
                "lead".to_owned(),
                "onsite_conversion.lead_grouped".to_owned(),
            ],
        );
        let mapping = ActionMapping::with_overrides(&overrides).unwrap();
        let e = with_actions(json!([action("lead", "3"), action("onsite_conversion.lead_grouped", "2")]));
        let rows = insights_rows(&e, &mut reader(&mapping)).unwrap();
        assert_eq!(action_metrics(&rows), pairs(&[("leads", "2"), ("facebook.action_lead", "3")]));
        let e = with_actions(json!([action("lead", "3")]));
        let rows = insights_rows(&e, &mut reader(&mapping)).unwrap();
        assert_eq!(action_metrics(&rows), pairs(&[("leads", "3")]));
    }

    #[test]
    fn two_types_writing_one_extra_name_are_refused_in_one_row_only() {
        let mapping = ActionMapping::default();
        let mut reader = reader(&mapping);
        let both = with_actions(json!([action("custom.a", "1"), action("custom_a", "2")]));
        let reason = insights_rows(&both, &mut reader).unwrap_err();
        assert_eq!(reason, "action type \"custom_a\" and another one both make `facebook.action_custom_a`");
        for (kind, value) in [("custom_a", "2"), ("custom.a", "1")] {
            let rows = insights_rows(&with_actions(json!([action(kind, value)])), &mut reader).unwrap();
            assert_eq!(action_metrics(&rows), pairs(&[("facebook.action_custom_a", value)]));
        }
    }

    /// An array or entry of the wrong shape is refused with the position of the first one.
    #[test]
    fn misshapen_action_arrays_name_the_entry() {
        let mapping = ActionMapping::default();
        let refused =
            |actions: Value| insights_rows(&with_actions(actions), &mut reader(&mapping)).unwrap_err();
        assert_eq!(refused(json!({"lead": "1"})), "`actions` is not an array");
        assert_eq!(refused(json!(null)), "`actions` is not an array");
        assert_eq!(refused(json!([action("lead", "1"), ["lead", "2"]])), "`actions[1]` is not an object");
        assert_eq!(
            refused(json!([action("lead", "x"), ["lead", "2"]])),
            "`actions` lead: `x` is not a decimal number"
        );
        assert_eq!(
            refused(json!([action("lead", "1"), action("lead", "2")])),
            "`actions` lead appears twice"
        );
        assert_eq!(refused(json!([action("lead", "-1")])), "`actions` lead: \"-1\" is negative");
        let text = with_actions(json!([action("lead", "1")]))
            .to_string()
            .replace("\"value\":\"1\"", "\"value\":\"1\",\"value\":\"2\"");
        let reason = reader(&mapping).rows(&text).unwrap_err();
        assert!(reason.starts_with("`actions[0]`: duplicate field `value`"), "{reason}");
        let mut e = element();
        e["action_values"] = json!([{"action_type": "purchase"}]);
        assert_eq!(
            insights_rows(&e, &mut reader(&mapping)).unwrap_err(),
            "`action_values` purchase has no `value`"
        );
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
