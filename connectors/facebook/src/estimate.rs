//! What a pull would cost, from the configuration alone: the same walk as the pull (slices,
//! accounts by level, Pages by range), counted instead of sent. Meta's budgets are hourly, per
//! ad account and Page, and steered by the usage headers at run time: there is no daily quota
//! to take a share of.

use kpipe_core::{DateWindow, RequestEstimate};

use crate::page_insights::MAX_DAYS_PER_REQUEST;
use crate::periods::{MAX_RANGES_PER_REQUEST, time_ranges, whole_weeks};
use crate::source::FacebookSource;

impl FacebookSource {
    /// The requests of pulling `windows`, one pull each.
    pub(crate) fn estimate(&self, windows: &[DateWindow]) -> RequestEstimate {
        let reports = self.settings.reports;
        let accounts = self.accounts.len() as u64;
        let pages = self.pages.len() as u64;
        let levels = self.settings.levels.len() as u64;
        let account_reach = if self.account_reach_needed() { accounts } else { 0 };
        let period_levels = self.period_levels().len() as u64;
        let page_reach = self.page_reach_metric(None).is_some();
        let mut estimate = RequestEstimate::exactly(0);
        let mut by_runs = false;
        for window in windows {
            let runs = window.num_days() > reports.after_days;
            by_runs |= runs;
            let parts = if runs { window.slices(reports.slice_days) } else { vec![*window] };
            // Each Page's name and token, once per pull.
            estimate.add(pages, Some(pages));
            for part in &parts {
                // A synchronous report is a page or more; a report run is started, polled at
                // least once, and its results read, a page or more.
                let per_report = if runs { 3 } else { 1 };
                let reports = accounts * levels;
                estimate.add(reports * per_report, (reports == 0).then_some(0));
                // Every metric of a Page in one request per range of at most 90 days.
                let ranges = part.num_days().div_ceil(MAX_DAYS_PER_REQUEST);
                estimate.add(pages * ranges, Some(pages * ranges));
                // The account's own daily reach, a synchronous report per account.
                estimate.add(account_reach, (account_reach == 0).then_some(0));
            }
            // Reach over every week and month the window touches: one report per account and
            // period level, the periods in it (`time_ranges`, up to 50 a request).
            let ranges = time_ranges(&kpipe_core::PeriodRequest::for_window(*window)).len();
            let chunks = ranges.div_ceil(MAX_RANGES_PER_REQUEST) as u64;
            let reports = accounts * period_levels * chunks;
            estimate.add(reports, (reports == 0).then_some(0));
            // A Page's followers on the day before each period that starts before the window:
            // one request per 90 such days.
            if let (true, Some(days)) =
                (self.page_followers_metric(None).is_some(), crate::page_openings::opening_days(*window))
            {
                let ranges = pages * days.num_days().div_ceil(MAX_DAYS_PER_REQUEST);
                estimate.add(ranges, Some(ranges));
            }
            // A Page's weekly reach: one request per 90 days of the weeks that have ended.
            let weeks = whole_weeks(*window);
            if let (true, Some(first), Some(last)) = (page_reach, weeks.first(), weeks.last()) {
                let sundays = (last.through - first.through).num_days().unsigned_abs() + 1;
                let ranges = pages * sundays.div_ceil(MAX_DAYS_PER_REQUEST);
                estimate.add(ranges, Some(ranges));
            }
        }
        if accounts > 0 {
            estimate = estimate.note(format!(
                "insights take one page per {} rows of each account and level",
                self.settings.page_size
            ));
        }
        if by_runs {
            estimate = estimate.note(format!(
                "windows over {} days go through report runs, polled until done; a run that fails is \
                 split in two",
                reports.after_days
            ));
        }
        estimate = estimate.note(
            "Meta's budgets are hourly per ad account and Page; the run pauses as the usage headers \
             near usage_threshold_pct",
        );
        estimate.pace = Some(self.rate_limit.pace());
        estimate
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{BuildContext, NaiveDate, Source};

    use crate::FacebookSource;

    fn source(accounts: &str) -> FacebookSource {
        let config = toml::from_str(&format!(
            "access_token = \"t\"\nad_account_ids = [{accounts}]\npage_ids = [\"200\"]"
        ))
        .unwrap();
        let cx = BuildContext { source_name: "fb".into(), config_dir: std::env::temp_dir() };
        FacebookSource::build(config, &cx).unwrap()
    }

    fn window(a: &str, b: &str) -> kpipe_core::DateWindow {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        kpipe_core::DateWindow::new(d(a), d(b)).unwrap()
    }

    #[test]
    fn short_windows_are_synchronous_reports_and_long_ones_report_runs() {
        let s = source(r#""act_101", "102""#);
        // 2 accounts x 3 levels, one page each; the Page's token, one range.
        let e = s.estimate(&[window("2026-10-01", "2026-10-03")]);
        // And each account's daily reach (2), and its reach per period at the account and the
        // three levels (2 x 4).
        // And the Page's followers before the periods that start before the window (1).
        assert_eq!((e.min_requests, e.max_requests), (6 + 1 + 1 + 2 + 2 * 4 + 1, None));
        // 61 days: report runs over slices of 30 days (3 slices), 3 requests at least each, and
        // the daily reach of each account in each slice; the periods once.
        let e = s.estimate(&[window("2026-08-01", "2026-09-30")]);
        assert_eq!(e.min_requests, 3 * 6 * 3 + 1 + 3 + 3 * 2 + 2 * 4 + 1);
        let pages_only = source("");
        let e = pages_only.estimate(&[window("2026-01-01", "2026-12-31")]);
        // 365 days in 30-day slices: 13 slices, each one range of Page insights.
        assert_eq!((e.min_requests, e.max_requests), (1 + 13 + 1, Some(1 + 13 + 1)));
        // A year: 65 periods, two requests per account and period level.
        let e = s.estimate(&[window("2026-01-01", "2026-12-31")]);
        assert_eq!(e.min_requests, 13 * 6 * 3 + 1 + 13 + 13 * 2 + 2 * 4 * 2 + 1);
        assert!(e.daily_quota.is_none() && e.pace.is_some());
    }

    #[test]
    fn the_account_level_has_its_daily_reach_and_a_page_reach_metric_its_weeks() {
        let config = toml::from_str(concat!(
            "access_token = \"t\"\nad_account_ids = [\"1\"]\npage_ids = [\"200\"]\n",
            "levels = [\"account\", \"campaign\"]\n",
            "page_metrics = [\"page_media_view\", \"page_total_media_view_unique\"]"
        ))
        .unwrap();
        let cx = BuildContext { source_name: "fb".into(), config_dir: std::env::temp_dir() };
        let s = FacebookSource::build(config, &cx).unwrap();
        // 2026-10-28..2026-11-03: 2 reports, no separate daily reach; the periods at the account
        // and campaign levels (2); the Page token, its days, and its one whole week (1).
        let e = s.estimate(&[window("2026-10-28", "2026-11-03")]);
        assert_eq!(e.min_requests, 2 + 2 + 1 + 1 + 1);
        // 2026-01-01..2026-06-30: 26 whole weeks (the first from 2025-12-29); their Sundays span
        // 176 days, two requests.
        let e = s.estimate(&[window("2026-01-01", "2026-06-30")]);
        let slices = 181_u64.div_ceil(30);
        assert_eq!(e.min_requests, slices * 2 * 3 + 2 + 1 + slices + 2);
    }
}
