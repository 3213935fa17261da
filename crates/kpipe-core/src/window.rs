//! The inclusive range of days a run pulls and replaces.

use std::fmt;

use chrono::{Days, NaiveDate};

/// Days `start..=end`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DateWindow {
    start: NaiveDate,
    end: NaiveDate,
}

/// A window whose end is before its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the window ends ({end}) before it starts ({start})")]
pub struct InvertedWindow {
    /// The first day asked for.
    pub start: NaiveDate,
    /// The last day asked for.
    pub end: NaiveDate,
}

impl DateWindow {
    /// The days from `start` to `end`, both included.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<DateWindow, InvertedWindow> {
        if end < start { Err(InvertedWindow { start, end }) } else { Ok(DateWindow { start, end }) }
    }

    /// One day.
    pub fn day(date: NaiveDate) -> DateWindow {
        DateWindow { start: date, end: date }
    }

    /// The `lookback_days` days that end with `last` (a nightly run's re-pull window).
    pub fn lookback(last: NaiveDate, lookback_days: u32) -> DateWindow {
        let start =
            last.checked_sub_days(Days::new(u64::from(lookback_days.max(1)) - 1)).unwrap_or(NaiveDate::MIN);
        DateWindow { start, end: last }
    }

    /// The first day.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The last day.
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// True when `date` is in the window.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    /// How many days the window spans.
    pub fn num_days(&self) -> u64 {
        (self.end - self.start).num_days().unsigned_abs() + 1
    }

    /// The window with days before `floor` cut off; `None` if nothing is left.
    pub fn clamp_start(&self, floor: NaiveDate) -> Option<DateWindow> {
        DateWindow::new(self.start.max(floor), self.end).ok()
    }

    /// Every day of the window, oldest first.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let end = self.end;
        self.start.iter_days().take_while(move |d| *d <= end)
    }

    /// The window cut into consecutive windows of at most `days` days (at least one), oldest
    /// first: how a connector keeps each request within an API's limit on a date range.
    pub fn slices(&self, days: u64) -> Vec<DateWindow> {
        let step = days.max(1);
        let mut out = Vec::new();
        let mut start = self.start;
        while start <= self.end {
            let end =
                start.checked_add_days(chrono::Days::new(step - 1)).map_or(self.end, |e| e.min(self.end));
            out.push(DateWindow { start, end });
            match end.checked_add_days(chrono::Days::new(1)) {
                Some(next) => start = next,
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for DateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_window_in_order_within_the_limit() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let w = DateWindow::new(d(1, 1), d(12, 31)).unwrap();
        let parts = w.slices(90);
        assert_eq!(parts.len(), 5);
        assert_eq!((parts[0].start(), parts[0].end()), (d(1, 1), d(3, 31)));
        assert_eq!(parts[4].end(), d(12, 31));
        assert_eq!(parts.iter().map(DateWindow::num_days).sum::<u64>(), 365);
        assert!(parts.windows(2).all(|p| p[0].end().succ_opt() == Some(p[1].start())));
        assert_eq!(DateWindow::day(d(1, 1)).slices(90), [DateWindow::day(d(1, 1))]);
        assert_eq!(w.slices(0).len(), 365);
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn lookback_counts_the_last_day() {
        let w = DateWindow::lookback(d("2026-03-28"), 28);
        assert_eq!(w.start(), d("2026-03-01"));
        assert_eq!(w.num_days(), 28);
        assert_eq!(w.days().count(), 28);
        assert!(w.contains(d("2026-03-01")) && w.contains(d("2026-03-28")));
        assert!(!w.contains(d("2026-02-28")) && !w.contains(d("2026-03-29")));
    }

    #[test]
    fn inverted_windows_are_refused() {
        assert!(DateWindow::new(d("2026-03-02"), d("2026-03-01")).is_err());
        assert_eq!(DateWindow::new(d("2026-03-01"), d("2026-03-01")).map(|w| w.num_days()), Ok(1));
    }

    #[test]
    fn clamping_to_a_floor() {
        let w = DateWindow::lookback(d("2026-03-28"), 28);
        assert_eq!(w.clamp_start(d("2026-03-10")).map(|w| w.start()), Some(d("2026-03-10")));
        assert_eq!(w.clamp_start(d("2026-04-01")), None);
    }
}
