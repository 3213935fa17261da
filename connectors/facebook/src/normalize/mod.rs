//! Graph API payloads to metric rows: pure functions. An element that cannot be read as a
//! whole is refused with the reason (for the quarantine); nothing is half-written.

mod actions;
mod insights;
mod page;

pub use insights::{COUNT_FIELDS, InsightsReader, SPEND_FIELD};
pub use page::{PageContext, page_day, page_rows, page_week_values};

use kpipe_core::Decimal;
use serde_json::Value;

/// The `platform` column of every row.
pub const PLATFORM: &str = "facebook";

/// An insights `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The ad account.
    Account,
    /// Campaigns.
    Campaign,
    /// Ad sets.
    AdSet,
    /// Ads.
    Ad,
}

impl Level {
    /// The level named in the configuration (`ad_set`, or the API's `adset`).
    pub fn from_config(name: &str) -> Option<Level> {
        match name {
            "account" => Some(Level::Account),
            "campaign" => Some(Level::Campaign),
            "ad_set" | "adset" => Some(Level::AdSet),
            "ad" => Some(Level::Ad),
            _ => None,
        }
    }

    /// The API's `level` value.
    pub fn api_name(self) -> &'static str {
        match self {
            Level::Account => "account",
            Level::Campaign => "campaign",
            Level::AdSet => "adset",
            Level::Ad => "ad",
        }
    }

    /// The `level` column.
    pub fn label(self) -> &'static str {
        match self {
            Level::AdSet => "ad_set",
            other => other.api_name(),
        }
    }

    /// The field holding the entity's id.
    pub fn id_field(self) -> &'static str {
        match self {
            Level::Account => "account_id",
            Level::Campaign => "campaign_id",
            Level::AdSet => "adset_id",
            Level::Ad => "ad_id",
        }
    }

    /// The field holding the entity's name.
    pub fn name_field(self) -> &'static str {
        match self {
            Level::Account => "account_name",
            Level::Campaign => "campaign_name",
            Level::AdSet => "adset_name",
            Level::Ad => "ad_name",
        }
    }

    /// The `fields` parameter of an insights request at this level.
    pub fn fields(self) -> String {
        let mut fields = vec!["account_id", "account_name", "account_currency"];
        if self != Level::Account {
            fields.extend([self.id_field(), self.name_field()]);
        }
        fields.extend([
            "impressions",
            "reach",
            "clicks",
            "inline_link_clicks",
            "spend",
            "actions",
            "action_values",
            "date_start",
            "date_stop",
        ]);
        fields.join(",")
    }
}

impl Level {
    /// The `fields` of a request for this level's reach only: the ids and names that make a
    /// row's entity (as [`Level::fields`] has them), `reach`, and the days the row covers.
    pub fn reach_fields(self) -> String {
        let mut fields = vec!["account_id", "account_name"];
        if self != Level::Account {
            fields.extend([self.id_field(), self.name_field()]);
        }
        fields.extend(["reach", "date_start", "date_stop"]);
        fields.join(",")
    }
}

/// A number the API sent as a string (`"14.35"`) or, where it sends numbers, as a JSON number.
pub(crate) fn decimal(value: &Value, what: &str) -> Result<Decimal, String> {
    match value {
        Value::String(text) => text.trim().parse().map_err(|e| format!("{what}: {e}")),
        Value::Number(n) => n.to_string().parse().map_err(|e| format!("{what}: {e}")),
        other => Err(format!("{what}: expected a number, got {other}")),
    }
}

/// A count: a whole number, not negative.
pub(crate) fn count(value: &Value, what: &str) -> Result<Decimal, String> {
    let n = decimal(value, what)?;
    if !n.is_integer() || n.is_negative() {
        return Err(format!("{what}: {value} is a count but not a whole number of at least 0"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// shared/apis/facebook.md §2: every numeric insights metric is a string (`"14.35"`,
    /// `"1.594444"`); §4: Page values are JSON numbers.
    #[test]
    fn numbers_come_as_strings_or_numbers_and_are_exact() {
        assert_eq!(decimal(&json!("14.35"), "spend").unwrap().to_string(), "14.35");
        assert_eq!(decimal(&json!("1.594444"), "cpc").unwrap().to_string(), "1.594444");
        assert_eq!(decimal(&json!(185), "impressions").unwrap(), Decimal::from_i64(185));
        assert!(count(&json!("1.5"), "clicks").unwrap_err().contains("whole number"));
        assert!(count(&json!("-1"), "clicks").is_err());
        assert!(decimal(&json!(null), "spend").unwrap_err().starts_with("spend"));
        assert!(decimal(&json!("n/a"), "spend").is_err());
    }

    #[test]
    fn every_level_asks_for_its_id_and_name() {
        assert!(Level::AdSet.fields().contains("adset_id,adset_name"));
        assert_eq!(Level::Account.fields().matches("account_id").count(), 1);
        assert_eq!(Level::from_config("adset"), Some(Level::AdSet));
        assert_eq!(Level::AdSet.label(), "ad_set");
        assert_eq!(
            Level::Campaign.reach_fields(),
            "account_id,account_name,campaign_id,campaign_name,reach,date_start,date_stop"
        );
        assert_eq!(Level::Account.reach_fields(), "account_id,account_name,reach,date_start,date_stop");
    }
}
