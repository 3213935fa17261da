//! API records to facts the tally counts. All CRM property values arrive as strings (§2 of the
//! wire notes), whatever the property's type: each reader here checks one, and a value that does
//! not read (`"134376773869;137654776000"` in a number property) refuses the whole record with
//! the reason, for the quarantine. Nothing here panics on what the API sends.

mod crm;
mod marketing;

pub use crm::{
    ContactFacts, ContactSettings, DealFacts, FeedbackFacts, SurveyAnswer, contact, deal, feedback,
    nps_bucket,
};
pub use marketing::{EMAIL_COUNTERS, EmailDayFacts, FormInfo, email_interval, form, submission_time};

use kpipe_core::Decimal;
use serde_json::{Map, Value};

use crate::portal::parse_instant;

/// A CRM object from a search result: its id and its properties.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// `id`.
    pub id: &'a str,
    properties: &'a Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Record<'a> {
    /// Reads `{"id": "..", "properties": {..}}`.
    pub fn of(value: &'a Value) -> Result<Record<'a>, String> {
        let id = match value.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.as_str(),
            Some(other) => return Err(format!("`id` is {}, not an object id", kind(other))),
            None => return Err("the record has no `id`".to_owned()),
        };
        let properties = value
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("record {id} has no `properties` object"))?;
        Ok(Record { id, properties })
    }

    /// A property's text; `None` when absent, null or empty.
    pub fn text(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.properties.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("`{name}` is {}; property values are strings", kind(other))),
        }
    }

    /// A property that must be set.
    pub fn required(&self, name: &str) -> Result<&'a str, String> {
        self.text(name)?.ok_or_else(|| format!("`{name}` is missing"))
    }

    /// A datetime property (ISO-8601, or epoch milliseconds) as epoch milliseconds.
    pub fn instant(&self, name: &str) -> Result<Option<i64>, String> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) => {
                parse_instant(text).map(Some).ok_or_else(|| format!("`{name}` {text:?} is not a datetime"))
            }
        }
    }

    /// A number property, exact.
    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, String> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse::<Decimal>()
                .map(Some)
                .map_err(|e| format!("`{name}` {text:?} is not a number: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn property_values_are_read_as_strings() {
        // §2: every property value is a string or null.
        let value = json!({"id": "51", "properties": {
            "amount": "12500.50", "closedate": "2024-04-30T16:00:00Z", "blank": "", "gone": null,
            "poisoned": "134376773869;137654776000", "typed": 12}});
        let record = Record::of(&value).unwrap();
        assert_eq!(record.id, "51");
        assert_eq!(record.decimal("amount").unwrap().map(|d| d.to_string()), Some("12500.5".to_owned()));
        assert_eq!(record.instant("closedate").unwrap(), Some(1_714_492_800_000));
        assert_eq!(record.text("blank").unwrap(), None);
        assert_eq!(record.text("gone").unwrap(), None);
        assert_eq!(record.text("absent").unwrap(), None);
        let poisoned = record.decimal("poisoned").unwrap_err();
        assert!(
            poisoned.starts_with("`poisoned` \"134376773869;137654776000\" is not a number"),
            "{poisoned}"
        );
        assert!(record.text("typed").unwrap_err().contains("a number"));
        assert!(record.instant("amount").unwrap_err().contains("not a datetime"));
        assert_eq!(record.required("gone").unwrap_err(), "`gone` is missing");
        assert!(Record::of(&json!({"id": 51, "properties": {}})).is_err());
        assert!(Record::of(&json!({"id": "51"})).is_err());
    }
}
