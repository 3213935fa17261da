//! API elements to metric rows: pure functions, one element in, its rows or the reason it
//! cannot be read out (for the quarantine). Nothing here panics on what the API sends.

pub mod analytics;
pub mod organization;
pub mod period;

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, DecimalError, Dimensions, Label, MetricName, MetricRow};
use serde_json::Value;

use crate::json;

/// The `platform` column of every row.
pub const PLATFORM: &str = "linkedin";

/// What every row of one entity shares.
#[derive(Debug, Clone)]
pub struct Entity {
    /// `account_id`: the ad account, or the organization for page statistics.
    pub account_id: Label,
    /// `level`: `account`, `campaign_group`, `campaign`, `creative` or `organization`.
    pub level: Label,
    /// `entity_id`.
    pub entity_id: Label,
    /// `entity_name`, where known.
    pub entity_name: Option<Label>,
}

impl Entity {
    /// The row of `metric` on `date`.
    pub fn row(
        &self,
        date: NaiveDate,
        metric: MetricName,
        value: Decimal,
        currency: Option<Currency>,
    ) -> MetricRow {
        MetricRow {
            platform: Label::from(PLATFORM),
            account_id: self.account_id.clone(),
            level: self.level.clone(),
            entity_id: self.entity_id.clone(),
            entity_name: self.entity_name.clone(),
            date,
            dimensions: Dimensions::default(),
            metric,
            value,
            currency,
        }
    }
}

/// A JSON number or numeric string as an exact decimal: strings exactly as written (money comes
/// as `"24.457317520310493"` or `"-2E-18"`), numbers by their JSON text.
pub fn decimal(value: &Value, field: &str) -> Result<Decimal, String> {
    match value {
        Value::String(s) => decimal_string(s, field),
        Value::Number(n) => decimal_number(&n.to_string(), field),
        other => Err(format!("`{field}` is {}, not a number", kind(other))),
    }
}

/// [`decimal`] of a JSON value's text as received (`19464`, `"24.457317520310493"`): numbers
/// are read from the digits sent, with no float in between.
pub fn decimal_json(text: &str, field: &str) -> Result<Decimal, String> {
    let text = text.trim();
    match text.as_bytes().first() {
        Some(b'"') => match json::string(text) {
            Some(s) => decimal_string(&s, field),
            None => Err(format!("`{field}` is not a readable string")),
        },
        Some(b'-' | b'0'..=b'9') => decimal_number(text, field),
        _ => Err(format!("`{field}` is {}, not a number", json::kind(text))),
    }
}

fn decimal_string(text: &str, field: &str) -> Result<Decimal, String> {
    text.trim().parse::<Decimal>().map_err(|e| format!("`{field}`: {e}"))
}

/// A JSON number's text. A float written with more digits than a double holds (averages) is
/// read as the double it stands for, as it is where JSON numbers are parsed into `f64`.
fn decimal_number(text: &str, field: &str) -> Result<Decimal, String> {
    text.parse::<Decimal>()
        .or_else(|e| match e {
            DecimalError::TooPrecise(_) => {
                text.parse::<f64>().ok().and_then(|f| Decimal::from_f64_shortest(f).ok()).ok_or(e)
            }
            other => Err(other),
        })
        .map_err(|e| format!("`{field}`: {e}"))
}

/// A count: a whole number, zero or more.
pub fn count(value: &Value, field: &str) -> Result<Decimal, String> {
    whole_count(decimal(value, field)?, field)
}

/// [`count`] of a JSON value's text as received.
pub fn count_json(text: &str, field: &str) -> Result<Decimal, String> {
    whole_count(decimal_json(text, field)?, field)
}

fn whole_count(number: Decimal, field: &str) -> Result<Decimal, String> {
    if !number.is_integer() {
        return Err(format!("`{field}` is a count but {number} is not a whole number"));
    }
    if number.is_negative() {
        return Err(format!("`{field}` is a count but {number} is negative"));
    }
    Ok(number)
}

/// A whole number that may be negative (net follower gains).
pub fn signed_whole(value: &Value, field: &str) -> Result<i64, String> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("`{field}` is {n}, not a whole number")),
        Value::String(s) => {
            s.trim().parse::<i64>().map_err(|_| format!("`{field}` is {s:?}, not a whole number"))
        }
        other => Err(format!("`{field}` is {}, not a number", kind(other))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_exactly() {
        assert_eq!(decimal(&json!("24.457317520310493"), "c").unwrap().to_string(), "24.457317520310493");
        assert_eq!(decimal(&json!("-2E-18"), "c").unwrap(), "-0.000000000000000002".parse().unwrap());
        assert_eq!(decimal(&json!(0.0307), "e").unwrap().to_string(), "0.0307");
        assert_eq!(count(&json!(19_464), "i").unwrap(), Decimal::from_i64(19_464));
        assert_eq!(count(&json!(106.0), "i").unwrap(), Decimal::from_i64(106));
        assert!(count(&json!(1.5), "i").unwrap_err().contains("not a whole number"));
        assert!(count(&json!(-1), "i").unwrap_err().contains("negative"));
        assert!(count(&json!("n/a"), "i").unwrap_err().starts_with("`i`"));
        assert!(count(&json!([1]), "i").unwrap_err().contains("an array"));
        assert_eq!(signed_whole(&json!(-3), "g").unwrap(), -3);
        assert!(signed_whole(&json!(2.5), "g").is_err());
    }

    #[test]
    fn received_text_is_read_as_the_parsed_value_is() {
        // §3.1 "Number formats": money as decimal strings, counts as integers.
        assert_eq!(decimal_json(r#""24.457317520310493""#, "c").unwrap().to_string(), "24.457317520310493");
        assert_eq!(decimal_json(r#"" -2E-18 ""#, "c").unwrap(), "-0.000000000000000002".parse().unwrap());
        assert_eq!(decimal_json("0.0307", "e").unwrap().to_string(), "0.0307");
        // Digits a float could not hold are no longer lost on the way.
        assert_eq!(decimal_json("12345678901234567.25", "e").unwrap().to_string(), "12345678901234567.25");
        // More fractional digits than a decimal keeps: read as the double it stands for.
        assert_eq!(decimal_json("0.12345678901234567891", "e").unwrap().to_string(), "0.12345678901234568");
        assert_eq!(count_json("1e3", "i").unwrap(), Decimal::from_i64(1_000));
        assert_eq!(count_json("106.0", "i").unwrap(), Decimal::from_i64(106));
        assert!(count_json("1.5", "i").unwrap_err().contains("not a whole number"));
        assert!(count_json("-1", "i").unwrap_err().contains("negative"));
        assert!(count_json(r#""n/a""#, "i").unwrap_err().starts_with("`i`"));
        assert!(count_json("[1]", "i").unwrap_err().contains("an array"));
        assert!(count_json("true", "i").unwrap_err().contains("a boolean"));
        assert!(decimal_json("{}", "c").unwrap_err().contains("an object"));
    }
}
