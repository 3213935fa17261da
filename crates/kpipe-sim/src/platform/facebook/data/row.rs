//! An insights row with every figure the simulator reports, and how Meta writes money and
//! ratios.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use super::structure::{Entity, InsightsLevel};

/// One element of `actions` or `action_values` as the API sends it: the value is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionStat {
    /// `link_click`, `lead`, `offsite_conversion.fb_pixel_purchase`, ...
    pub action_type: String,
    /// The count, or the value in the account currency for `action_values`.
    pub value: String,
}

/// One insights row (an entity on a day) with every field the simulator can report. The
/// response holds the requested fields only, rendered by the API's rules (numbers as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsRow {
    /// The account, without `act_`.
    pub account_id: String,
    /// The account name.
    pub account_name: String,
    /// The account currency.
    pub account_currency: String,
    /// The row's level.
    pub level: InsightsLevel,
    /// The campaign (levels campaign, ad set and ad).
    pub campaign: Option<Entity>,
    /// The ad set (levels ad set and ad).
    pub adset: Option<Entity>,
    /// The ad (level ad).
    pub ad: Option<Entity>,
    /// The day, in the account's time zone; the first day of a row over a range.
    pub date: NaiveDate,
    /// The last day the row covers (`date_stop`): `date` for a daily row.
    pub date_stop: NaiveDate,
    /// Times shown.
    pub impressions: u64,
    /// Unique people reached.
    pub reach: u64,
    /// Clicks of any kind.
    pub clicks: u64,
    /// Clicks on links to a destination.
    pub inline_link_clicks: u64,
    /// Amount spent, in minor units of the account currency.
    pub spend_cents: u64,
    /// Non-zero actions by type, in the API's order.
    pub actions: Vec<(String, u64)>,
    /// Non-zero action values by type, in minor units.
    pub action_values_cents: Vec<(String, u64)>,
}

impl InsightsRow {
    /// The id of the row's entity (the account id at level account).
    #[must_use]
    pub fn entity_id(&self) -> &str {
        self.entity().map_or(self.account_id.as_str(), |e| e.id.as_str())
    }

    /// The name of the row's entity.
    #[must_use]
    pub fn entity_name(&self) -> &str {
        self.entity().map_or(self.account_name.as_str(), |e| e.name.as_str())
    }

    fn entity(&self) -> Option<&Entity> {
        match self.level {
            InsightsLevel::Account => None,
            InsightsLevel::Campaign => self.campaign.as_ref(),
            InsightsLevel::Adset => self.adset.as_ref(),
            InsightsLevel::Ad => self.ad.as_ref(),
        }
    }

    /// `spend` as the API writes it (`"14.35"`, `"88.4"`, `"12"`).
    #[must_use]
    pub fn spend(&self) -> String {
        money(self.spend_cents)
    }

    /// The `actions` array.
    #[must_use]
    pub fn action_stats(&self) -> Vec<ActionStat> {
        self.actions
            .iter()
            .map(|(t, n)| ActionStat { action_type: t.clone(), value: n.to_string() })
            .collect()
    }

    /// The `action_values` array.
    #[must_use]
    pub fn action_value_stats(&self) -> Vec<ActionStat> {
        self.action_values_cents
            .iter()
            .map(|(t, c)| ActionStat { action_type: t.clone(), value: money(*c) })
            .collect()
    }
}

/// Minor units as Meta writes money: up to two decimals, no trailing zeros.
#[must_use]
pub fn money(cents: u64) -> String {
    Money(cents).to_string()
}

/// Minor units written as [`money`] does, without a `String` of their own (rows are written
/// straight to the response).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Money(pub(crate) u64);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0;
        match cents % 100 {
            0 => write!(f, "{}", cents / 100),
            c if c % 10 == 0 => write!(f, "{}.{}", cents / 100, c / 10),
            c => write!(f, "{}.{c:02}", cents / 100),
        }
    }
}

/// `numerator / denominator` with at most six decimals and no trailing zeros, the way Meta
/// writes derived ratios (`"1.594444"`).
#[must_use]
pub fn ratio(numerator: u128, denominator: u128) -> Option<String> {
    if denominator == 0 {
        return None;
    }
    let scaled = numerator * 1_000_000 / denominator;
    let (whole, frac) = (scaled / 1_000_000, scaled % 1_000_000);
    if frac == 0 {
        return Some(whole.to_string());
    }
    let digits = format!("{frac:06}");
    Some(format!("{whole}.{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shared/apis/facebook.md §2: up to six decimals, no trailing zeros (`"14.35"`, `"88.4"`).
    #[test]
    fn money_and_ratios_are_written_like_meta() {
        assert_eq!(money(1435), "14.35");
        assert_eq!(money(8840), "88.4");
        assert_eq!(money(1200), "12");
        assert_eq!(money(5), "0.05");
        assert_eq!(ratio(1435, 900).as_deref(), Some("1.594444"));
        assert_eq!(ratio(4, 2).as_deref(), Some("2"));
        assert_eq!(ratio(1, 0), None);
    }
}
