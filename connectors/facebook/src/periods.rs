//! Reach over whole weeks and months, and the account's daily reach.
//!
//! Reach counts unique people: a week's reach is not the sum of its days', a campaign's is not
//! the sum of its ads', and an account's cannot be added up from its campaigns. So the account's
//! own daily reach is asked for (`level=account`, `time_increment=1`, `fields=reach`) when the
//! `account` level is not pulled anyway, and every ISO week and calendar month a pull window
//! touches ([`PeriodRequest::for_window`]) is asked for as one value per entity: a single
//! request per ad account and level gives all of them, with `time_ranges` (Meta's Ad Account
//! Insights reference: "Array of time range objects ... Each time range will have one result set
//! ... If `time_ranges` is specified, `date_preset`, `time_range` and `time_increment` are
//! ignored"; `level` is a parameter of the same edge). Each result row is the entity's reach over
//! one range (`date_start` its first day, `date_stop` its last) and becomes a [`kpipe_core::PeriodRow`].

use kpipe_core::{DateWindow, PeriodGrain, PeriodRequest};
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use crate::client::GraphObject;
use crate::listing::{Listing, Rows};
use crate::normalize::Level;
use crate::source::FacebookSource;

/// Ranges asked for in one request at most. Meta documents no limit on `time_ranges`; the cap
/// keeps the query string short (about 72 encoded characters a range, some 3.6 kB for 50): a
/// nightly window touches 5 to 8 periods, a year 65, so a year's backfill takes two requests per
/// account and level.
pub(crate) const MAX_RANGES_PER_REQUEST: usize = 50;

/// The distinct day ranges of `requests`, in order: a week and a month with the same days
/// (a month whose first day is a Monday, asked for in its first week) are asked for once.
pub(crate) fn time_ranges(requests: &[PeriodRequest]) -> Vec<DateWindow> {
    let mut ranges: Vec<DateWindow> = Vec::with_capacity(requests.len());
    for request in requests {
        let days = request.days();
        if !ranges.contains(&days) {
            ranges.push(days);
        }
    }
    ranges
}

/// The weeks of `window` that have ended by its last day: the ones a Page's rolling weekly value
/// can give (the value closing a Sunday covers Monday to Sunday).
pub(crate) fn whole_weeks(window: DateWindow) -> Vec<PeriodRequest> {
    PeriodRequest::for_window(window)
        .into_iter()
        .filter(|r| r.period.grain == PeriodGrain::Week && !r.is_partial())
        .collect()
}

fn range_json(range: DateWindow) -> Value {
    json!({"since": range.start().to_string(), "until": range.end().to_string()})
}

impl FacebookSource {
    /// Whether the account's daily reach needs a request of its own: the `account` level, when
    /// pulled, has it already.
    pub(crate) fn account_reach_needed(&self) -> bool {
        !self.settings.levels.contains(&Level::Account)
    }

    /// The levels whose reach is asked for per period: the account, then the pulled levels.
    pub(crate) fn period_levels(&self) -> Vec<Level> {
        let mut levels = vec![Level::Account];
        levels.extend(self.settings.levels.iter().copied().filter(|l| *l != Level::Account));
        levels
    }

    /// `GET /act_{id}/insights?level=account&fields=...reach...&time_range=&time_increment=1`:
    /// the account's own reach on each day of `range`.
    pub(crate) fn account_reach_request(&self, account: &GraphObject, range: DateWindow) -> ApiRequest {
        ApiRequest::get(&format!("{}/act_{}/insights", self.settings.api_version, account.id))
            .query("level", Level::Account.api_name())
            .query("fields", Level::Account.reach_fields())
            .query("time_range", range_json(range).to_string())
            .query("time_increment", "1")
    }

    /// The listings of every account's daily reach over `range`, when it needs requests.
    pub(crate) fn account_reach_listings(&self, range: DateWindow) -> Vec<Listing<'static>> {
        if !self.account_reach_needed() {
            return Vec::new();
        }
        self.accounts
            .iter()
            .enumerate()
            .map(|(index, account)| Listing {
                account: index,
                level: Level::Account,
                first: self.account_reach_request(account, range),
                rows: Rows::Days,
            })
            .collect()
    }

    /// `GET /act_{id}/insights?level=&fields=...reach...&time_ranges=[{"since","until"},...]`:
    /// the reach of every entity at `level` over each of `ranges`, one row per entity and range.
    pub(crate) fn period_request(
        &self,
        account: &GraphObject,
        level: Level,
        ranges: &[DateWindow],
    ) -> ApiRequest {
        let ranges: Vec<Value> = ranges.iter().map(|r| range_json(*r)).collect();
        ApiRequest::get(&format!("{}/act_{}/insights", self.settings.api_version, account.id))
            .query("level", level.api_name())
            .query("fields", level.reach_fields())
            .query("time_ranges", Value::Array(ranges).to_string())
    }

    /// The reach of every account at every period level over each of `requests`, as period
    /// rows: one request per account and level for every [`MAX_RANGES_PER_REQUEST`] ranges (and
    /// more pages when the rows need them). `Ok(false)` when a page was quarantined.
    pub(crate) async fn period_reach(
        &self,
        requests: &[PeriodRequest],
        out: &mut kpipe_core::Emitter,
    ) -> Result<bool, kpipe_core::SourceError> {
        let ranges = time_ranges(requests);
        if ranges.is_empty() {
            return Ok(true);
        }
        let mut listings = Vec::new();
        for (index, account) in self.accounts.iter().enumerate() {
            for level in self.period_levels() {
                for chunk in ranges.chunks(MAX_RANGES_PER_REQUEST) {
                    let first = self.period_request(account, level, chunk);
                    listings.push(Listing { account: index, level, first, rows: Rows::Periods(requests) });
                }
            }
        }
        self.read_listings(listings, out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn window(a: &str, b: &str) -> DateWindow {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        DateWindow::new(d(a), d(b)).unwrap()
    }

    #[test]
    fn a_week_and_a_month_with_the_same_days_are_one_range() {
        // 2026-06-01 is a Monday: its week and its month are asked for over the same three days.
        let requests = PeriodRequest::for_window(window("2026-06-01", "2026-06-03"));
        assert_eq!(requests.len(), 2);
        assert_eq!(time_ranges(&requests), [window("2026-06-01", "2026-06-03")]);
        let requests = PeriodRequest::for_window(window("2026-10-28", "2026-11-03"));
        let ranges = time_ranges(&requests);
        assert_eq!(
            ranges,
            [
                window("2026-10-26", "2026-11-01"),
                window("2026-11-02", "2026-11-03"),
                window("2026-10-01", "2026-10-31"),
                window("2026-11-01", "2026-11-03"),
            ]
        );
    }

    #[test]
    fn a_year_of_periods_takes_two_requests() {
        let ranges = time_ranges(&PeriodRequest::for_window(window("2026-01-01", "2026-12-31")));
        // 53 ISO weeks (2025-12-29 to 2027-01-03) and 12 months.
        assert_eq!(ranges.len(), 53 + 12);
        assert_eq!(ranges.chunks(MAX_RANGES_PER_REQUEST).count(), 2);
    }

    #[test]
    fn only_ended_weeks_can_come_from_a_rolling_weekly_value() {
        let weeks = whole_weeks(window("2026-10-28", "2026-11-03"));
        assert_eq!(weeks.len(), 1);
        assert_eq!(weeks[0].days(), window("2026-10-26", "2026-11-01"));
        assert!(whole_weeks(window("2026-11-02", "2026-11-07")).is_empty());
    }
}
