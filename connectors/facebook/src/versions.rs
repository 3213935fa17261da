//! When the Marketing API versions kpipe may be configured with stop being served. Meta serves
//! each version's ads requests for about a year after the next one is out, then upgrades or
//! refuses them (`(#2635) You are calling a deprecated version of the Ads API`): a nightly run
//! should hear of it weeks before, not on the morning its Facebook data is missing.

use chrono::NaiveDate;

/// Versions and the last day Meta serves their Marketing API (ads) requests, as Meta's version
/// history publishes them (connectors/facebook/README.md, "API versions and sunset dates").
const MARKETING_API_LAST_DAY: [(&str, (i32, u32, u32)); 1] = [("v25.0", (2027, 2, 23))];

/// How many days before a version's last day the connector starts saying so.
pub const WARN_DAYS_BEFORE: i64 = 90;

/// The last day Meta serves the Marketing API requests of `version`, where it is announced.
pub fn marketing_api_last_day(version: &str) -> Option<NaiveDate> {
    MARKETING_API_LAST_DAY
        .iter()
        .find(|(v, _)| *v == version)
        .and_then(|(_, (y, m, d))| NaiveDate::from_ymd_opt(*y, *m, *d))
}

/// A notice when `version`'s ads requests stop being served within [`WARN_DAYS_BEFORE`] days of
/// `today`, or already have.
pub fn expiry_notice(version: &str, today: NaiveDate) -> Option<String> {
    let last = marketing_api_last_day(version)?;
    let left = (last - today).num_days();
    if left > WARN_DAYS_BEFORE {
        return None;
    }
    let when = if left >= 0 {
        format!("until {last} ({left} day(s) left)")
    } else {
        format!("no longer (its last day was {last})")
    };
    Some(format!(
        "Meta serves the Marketing API {version} {when}: set `api_version` to a later version \
         (docs/connectors/facebook.md, \"Version expiry\")"
    ))
}

impl crate::source::FacebookSource {
    /// The notice of the configured version's end, for a source that pulls ads (Page
    /// requests are served longer); `None` when far off or not announced.
    pub(crate) fn version_notice(&self) -> Option<String> {
        if self.accounts.is_empty() {
            return None;
        }
        expiry_notice(&self.settings.api_version, chrono::Utc::now().date_naive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_version_is_announced_to_end_from_ninety_days_before_its_last_day() {
        assert_eq!(expiry_notice("v25.0", day("2026-11-24")), None);
        let notice = expiry_notice("v25.0", day("2026-12-07")).unwrap_or_default();
        assert!(notice.contains("until 2027-02-23 (78 day(s) left)"), "{notice}");
        let after = expiry_notice("v25.0", day("2027-03-01")).unwrap_or_default();
        assert!(after.contains("no longer (its last day was 2027-02-23)"), "{after}");
        assert_eq!(expiry_notice("v26.0", day("2027-03-01")), None, "no day announced");
    }
}
