//! One ad analytics element over a whole week or month (`timeGranularity=ALL`,
//! `shared/apis/linkedin.md` §3.1: the element's `dateRange` spans the days asked for) to the
//! entity it is about and its unique members. The caller knows which account and period the
//! entity belongs to and makes the period row.

use kpipe_core::{DateWindow, Decimal};

use super::analytics::{date_of, range_ends};
use super::count_json;
use crate::fields::REACH_FIELD;
use crate::json;
use crate::restli::PeriodPivot;

/// What a period element says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodElement {
    /// The entity's id (from `pivotValues`).
    pub id: u64,
    /// Its unique members over the days: `None` when the element leaves
    /// `approximateMemberReach` out or sends it null, which is no row (a unique count cannot be
    /// defaulted).
    pub reach: Option<Decimal>,
}

/// Reads the element `text` of an answer by `pivot` about `days`, or says why it cannot be
/// read: not an object, no `pivotValues` URN of the pivot's kind, no `dateRange` within the days
/// asked for, or a reach that is not a whole number of members.
pub fn period_element(text: &str, pivot: PeriodPivot, days: DateWindow) -> Result<PeriodElement, String> {
    let (mut pivot_values, mut date_range, mut reach) = (None, None, None);
    let is_object = json::members(text, |key, value| match key {
        "pivotValues" => pivot_values = Some(value),
        "dateRange" => date_range = Some(value),
        REACH_FIELD => reach = Some(value),
        _ => {}
    })
    .map_err(|e| format!("the element cannot be read: {e}"))?;
    if !is_object {
        return Err("the element is not an object".into());
    }
    let (start, end) = range_ends(date_range.ok_or("no `dateRange`")?);
    let (start, end) = (date_of(start, "start")?, date_of(end, "end")?);
    if start > end || !days.contains(start) || !days.contains(end) {
        return Err(format!("spans {start} to {end}, not within the requested {days}"));
    }
    let values = pivot_values.and_then(json::array).ok_or("no `pivotValues` array")?;
    let [urn] = values.as_slice() else {
        return Err(format!("{} pivot values, expected one", values.len()));
    };
    let urn = json::string(urn).ok_or("the pivot value is not a URN string")?;
    let id = urn
        .strip_prefix(pivot.urn_prefix())
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| format!("pivot value `{urn}` is not a {}<id> URN", pivot.urn_prefix()))?;
    let reach = reach.filter(|v| !json::is_null(v)).map(|v| count_json(v, REACH_FIELD)).transpose()?;
    Ok(PeriodElement { id, reach })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::{Value, json};

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn week() -> DateWindow {
        DateWindow::new(day("2026-10-26"), day("2026-11-01")).unwrap()
    }

    /// An element of `timeGranularity=ALL` by CAMPAIGN_GROUP (§3.1 shapes: `dateRange` spans the
    /// days asked for).
    fn element() -> Value {
        json!({"pivotValues": ["urn:li:sponsoredCampaignGroup:5080000011"],
               "dateRange": {"start": {"year": 2026, "month": 10, "day": 26},
                             "end": {"year": 2026, "month": 11, "day": 1}},
               "approximateMemberReach": 48211})
    }

    fn read(element: &Value) -> Result<PeriodElement, String> {
        period_element(&element.to_string(), PeriodPivot::CampaignGroup, week())
    }

    #[test]
    fn a_period_element_gives_its_entity_and_reach() {
        assert_eq!(
            read(&element()),
            Ok(PeriodElement { id: 5_080_000_011, reach: Some(Decimal::from_i64(48_211)) })
        );
        let mut absent = element();
        absent.as_object_mut().unwrap().remove("approximateMemberReach");
        assert_eq!(read(&absent).unwrap().reach, None);
        let mut null = element();
        null["approximateMemberReach"] = Value::Null;
        assert_eq!(read(&null).unwrap().reach, None);
    }

    #[test]
    fn unreadable_period_elements_say_why() {
        let with = |key: &str, value: Value| {
            let mut e = element();
            e[key] = value;
            read(&e).unwrap_err()
        };
        assert!(with("approximateMemberReach", json!(-3)).contains("negative"));
        assert!(with("approximateMemberReach", json!(2.5)).contains("not a whole number"));
        assert!(
            with("pivotValues", json!(["urn:li:sponsoredCampaign:1"])).contains("sponsoredCampaignGroup")
        );
        assert!(with("pivotValues", json!(["a", "b"])).contains("2 pivot values"));
        let longer = json!({"start": {"year": 2026, "month": 10, "day": 19},
                            "end": {"year": 2026, "month": 11, "day": 1}});
        assert!(with("dateRange", longer).contains("not within"));
        let no_end = json!({"start": {"year": 2026, "month": 10, "day": 26}});
        assert!(with("dateRange", no_end).contains("dateRange.end"));
        assert!(period_element("[1]", PeriodPivot::Account, week()).unwrap_err().contains("not an object"));
    }
}
