//! The simulated Meta dataset: ad accounts with campaigns, ad sets and ads delivering every day,
//! and Pages with daily insights. Everything is derived from the server seed and the entity and
//! day, so any range can be computed on its own; this is the truth tests compare against.
//!
//! Ad-level figures are drawn per ad and day; ad sets, campaigns and the account add their
//! children up, except reach, which counts unique people and is drawn between the largest child
//! and the children's sum (people overlap across ads).
//!
//! Over a range of days ([`range_insights`], what `time_ranges` or `time_increment=all_days`
//! return), the additive figures are the days' sums and reach is drawn again, people overlapping
//! across days too: an ad's between its largest day and the sum of its days; an ad set's,
//! campaign's or account's between the larger of its largest day and its ads' largest range
//! reach, and the smaller of the sum of its days and the sum of its ads' range reach. Both
//! intervals are never empty, and with two days or more of delivery the value is below the sum
//! of the days.

mod daily;
mod page;
mod range;
mod row;
mod structure;

use chrono::NaiveDate;

pub use daily::insights;
pub use page::{
    PAGE_METRICS, PAGE_WEEK_METRICS, PageMetricDef, PageValue, SimPage, pacific_dst_at_midnight,
    page_end_time, page_metric, page_week_metric,
};
pub use range::{range_insights, ranges_insights};
pub(crate) use row::Money;
pub use row::{ActionStat, InsightsRow, money, ratio};
pub use structure::{Entity, InsightsLevel, SimAdAccount, Structure};

/// The first day with data; earlier windows are empty.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2025, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// The custom conversion every simulated pixel reports (an action type outside any mapping).
pub const CUSTOM_CONVERSION: &str = "offsite_conversion.custom.271828182845904";

/// What the submodules' tests share: days written as in requests, one account and a small shape.
#[cfg(test)]
mod fixtures {
    use chrono::NaiveDate;

    use super::{SimAdAccount, Structure};

    pub(super) fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    pub(super) fn account() -> SimAdAccount {
        SimAdAccount::new("101000000000001", "Acme US", "USD", "America/Los_Angeles", -7)
    }

    pub(super) const SHAPE: Structure = Structure { campaigns: 2, adsets: 2, ads: 2 };
}
