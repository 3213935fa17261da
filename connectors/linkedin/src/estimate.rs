//! What a pull would cost, from the configuration alone: the same walk as [`crate::source`]'s
//! pull (accounts and their listings, company pages, date slices by pivot and field group, and
//! reach by week and month), counted instead of sent. LinkedIn publishes no daily numbers (each
//! app sees its limits per endpoint in the developer portal), so there is no quota share to give.

use chrono::NaiveDate;
use kpipe_core::{DateWindow, PeriodRequest, RequestEstimate};
use kpipe_http::RateLimit;

use crate::organization::earliest_day;
use crate::period::MAX_ACCOUNTS_PER_REQUEST;
use crate::restli::PeriodPivot;

/// What the estimate needs of a source's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Ad accounts.
    pub accounts: u64,
    /// Company pages.
    pub organizations: u64,
    /// Field groups per ad analytics request.
    pub field_groups: u64,
    /// Days per ad analytics request at most.
    pub days_per_request: u64,
    /// Elements per listing page.
    pub page_size: u64,
    /// The source's pace.
    pub rate_limit: RateLimit,
}

/// Pages of an offset listing of at most `elements` elements: a short (or empty) page ends it.
fn offset_pages(elements: u64, page_size: u64) -> u64 {
    elements / page_size.max(1) + 1
}

impl Plan {
    /// The requests of pulling `windows` (one pull each) on `today`.
    pub fn estimate(&self, windows: &[DateWindow], today: NaiveDate) -> RequestEstimate {
        let mut estimate = RequestEstimate::exactly(0);
        for window in windows {
            // Each account: its details, then its campaigns and creatives, a page or more each.
            estimate.add(3 * self.accounts, (self.accounts == 0).then_some(0));
            for _ in 0..self.organizations {
                let (min, max) = self.organization(*window, today);
                estimate.add(min, Some(max));
            }
            // Slices are as long as `days_per_request`, shorter for accounts with many
            // campaigns or creatives (down to a day); each asks every account by both pivots,
            // one request per field group.
            let per_slice = self.accounts * 2 * self.field_groups;
            let fewest = window.num_days().div_ceil(self.days_per_request.max(1));
            estimate.add(fewest * per_slice, Some(window.num_days() * per_slice));
            let (min, max) = self.periods(*window);
            estimate.add(min, Some(max));
        }
        let mut estimate = estimate
            .note(format!(
                "campaign and creative listings take one page per {} of each account's entities",
                self.page_size
            ))
            .note(
                "ad analytics slices get shorter for accounts with many entities, and a response that \
                 reaches the element cap is asked again in halves"
                    .to_owned(),
            )
            .note(format!(
                "reach by week and month: one request per week and month the window touches and per \
                 pivot (account, campaign group, campaign), for up to {MAX_ACCOUNTS_PER_REQUEST} accounts \
                 at once, fewer when their campaigns are many"
            ))
            .note("LinkedIn's daily limits are per endpoint and shown only in the app's developer portal");
        estimate.pace = Some(self.rate_limit.pace());
        estimate
    }

    /// Reach by week and month: for each week and month `window` touches, one request per
    /// pivot and batch of accounts; batches hold [`MAX_ACCOUNTS_PER_REQUEST`] accounts at most,
    /// and as few as one when the accounts' campaigns are many (the answer by campaign has an
    /// element per campaign).
    pub fn periods(&self, window: DateWindow) -> (u64, u64) {
        let per_pivot = PeriodRequest::for_window(window).len() as u64 * PeriodPivot::ALL.len() as u64;
        let fewest = self.accounts.div_ceil(MAX_ACCOUNTS_PER_REQUEST as u64);
        (per_pivot * fewest, per_pivot * self.accounts)
    }

    /// A company page: its name, follower gains from the first day of the earliest week or
    /// month the window touches to today (a bucket a day: the followers before each period are
    /// derived from them), the follower total, and the window's share statistics; nothing for
    /// days older than the 12 months LinkedIn keeps.
    fn organization(&self, window: DateWindow, today: NaiveDate) -> (u64, u64) {
        let Ok(covered) = DateWindow::new(window.start().max(earliest_day(today)), window.end().min(today))
        else {
            return (0, 0);
        };
        let from = PeriodRequest::for_window(covered)
            .iter()
            .map(|r| r.period.start)
            .min()
            .unwrap_or(covered.start())
            .max(earliest_day(today).succ_opt().unwrap_or(covered.start()))
            .min(covered.start());
        let gains = DateWindow::new(from, today).map_or(1, |w| w.num_days());
        let min = 1 + 1 + 1 + 1;
        let max =
            1 + offset_pages(gains, self.page_size) + 1 + offset_pages(covered.num_days(), self.page_size);
        (min, max)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn requests_follow_the_pull_walk() {
        let plan = Plan {
            accounts: 2,
            organizations: 1,
            field_groups: 1,
            days_per_request: 31,
            page_size: 100,
            rate_limit: RateLimit::new(10, Duration::from_secs(1)),
        };
        let window = DateWindow::new(day("2026-10-01"), day("2026-10-03")).unwrap();
        let e = plan.estimate(&[window], day("2026-11-23"));
        // Accounts: 2 x 3; page: name, 54 buckets of gains on one page, total, shares; one
        // slice by 2 accounts x 2 pivots; reach of the week of 2026-09-28 and of October, by 3
        // pivots for both accounts at once.
        assert_eq!(e.min_requests, 6 + 4 + 4 + 2 * 3);
        assert_eq!(plan.periods(window), (6, 12));
        assert_eq!(e.max_requests, None, "listings page through entities of unknown number");
        let pages_only = Plan { accounts: 0, ..plan.clone() };
        let e = pages_only.estimate(&[window], day("2026-11-23"));
        assert_eq!((e.min_requests, e.max_requests), (4, Some(4)));
        // Older than 12 months: no page statistics at all.
        let old = DateWindow::new(day("2024-01-01"), day("2024-01-31")).unwrap();
        assert_eq!(pages_only.estimate(&[old], day("2026-11-23")).max_requests, Some(0));
        // 120 accounts: three batches at least; 2026-09-01 to 28 touches 5 weeks and a month.
        let many = Plan { accounts: 120, ..plan.clone() };
        let four_weeks = DateWindow::new(day("2026-09-01"), day("2026-09-28")).unwrap();
        assert_eq!(many.periods(four_weeks), (6 * 3 * 3, 6 * 3 * 120));
        assert_eq!(offset_pages(0, 100), 1);
        assert_eq!(offset_pages(100, 100), 2);
    }
}
