//! API elements to metric rows: pure functions, one element in, its rows or the reason it
//! cannot be read out (for the quarantine). Nothing here panics on what the API sends.

pub mod analytics;
pub mod organization;

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, MetricName, MetricRow};
use serde_json::Value;

/// The `platform` column of every row.
pub const PLATFORM: &str = "linkedin";

/// What every row of one entity shares.
#[derive(Debug, Clone)]
pub struct Entity {
    /// `account_id`: the ad account, or the organization for page statistics.
    pub account_id: Label,
    /// `level`: `campaign`, `creative` or `organization`.
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
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("`{field}` is {}, not a number", kind(other))),
    };
    text.parse::<Decimal>().map_err(|e| format!("`{field}`: {e}"))
}

/// A count: a whole number, zero or more.
pub fn count(value: &Value, field: &str) -> Result<Decimal, String> {
    let number = decimal(value, field)?;
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
}
