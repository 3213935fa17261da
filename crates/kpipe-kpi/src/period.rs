//! Grains, scopes and the periods a window touches.

use std::fmt;

use chrono::{Datelike, Days, Months, NaiveDate};
use kpipe_core::DateWindow;

/// The length of the periods a KPI is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    /// One day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Grain {
    /// Every grain, finest first.
    pub const ALL: [Grain; 3] = [Grain::Day, Grain::Week, Grain::Month];

    /// The name written to the `grain` column and the folder names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
        }
    }

    /// The grain called `name`.
    pub fn from_name(name: &str) -> Option<Grain> {
        Grain::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The first day of the period holding `date`.
    pub fn period_start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Grain::Day => date,
            Grain::Week => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .unwrap_or(date),
            Grain::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The last day of the period holding `date`.
    pub fn period_end(self, date: NaiveDate) -> NaiveDate {
        let start = self.period_start(date);
        let next = match self {
            Grain::Day => start.checked_add_days(Days::new(1)),
            Grain::Week => start.checked_add_days(Days::new(7)),
            Grain::Month => start.checked_add_months(Months::new(1)),
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX)
    }
}

impl fmt::Display for Grain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a KPI row is computed over (docs/kpis.md rule 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One entity: an ad, a campaign, a page, a GA4 channel, a survey, ...
    Entity,
    /// One account of one source: an ad account, a page, a portal, a property.
    Account,
    /// Every account of one platform, across the sources that pull it.
    Platform,
    /// Every platform together (blended).
    All,
}

impl Scope {
    /// Every scope, narrowest first.
    pub const ALL: [Scope; 4] = [Scope::Entity, Scope::Account, Scope::Platform, Scope::All];

    /// The name written to the `scope` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Entity => "entity",
            Scope::Account => "account",
            Scope::Platform => "platform",
            Scope::All => "all",
        }
    }

    /// The scope called `name`.
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The periods a run recomputes: every period of every selected grain that holds a day of the
/// window, whole (docs/kpis.md: a re-pulled day changes its week and its month).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    window: DateWindow,
    grains: Vec<Grain>,
}

impl Touched {
    /// The periods of `grains` touched by `window`.
    pub fn new(window: DateWindow, grains: &[Grain]) -> Touched {
        let mut grains = grains.to_vec();
        grains.sort();
        grains.dedup();
        Touched { window, grains }
    }

    /// The window.
    pub fn window(&self) -> DateWindow {
        self.window
    }

    /// The grains, finest first.
    pub fn grains(&self) -> &[Grain] {
        &self.grains
    }

    /// True when the period of `grain` starting on `start` is recomputed. Days outside the window
    /// are not: only their weeks and months need them.
    pub fn contains(&self, grain: Grain, start: NaiveDate) -> bool {
        if !self.grains.contains(&grain) {
            return false;
        }
        match grain {
            Grain::Day => self.window.contains(start),
            _ => grain.period_start(self.window.start()) <= start && start <= self.window.end(),
        }
    }

    /// The days whose stored metrics the periods need: each period whole, and the day before
    /// the earliest one, whose snapshots are the first period's starting values.
    pub fn read_window(&self) -> DateWindow {
        let (mut first, mut last) = (self.window.start(), self.window.end());
        for g in &self.grains {
            first = first.min(g.period_start(self.window.start()));
            last = last.max(g.period_end(self.window.end()));
        }
        let first = first.pred_opt().unwrap_or(first);
        DateWindow::new(first, last).unwrap_or(self.window)
    }

    /// Every touched period of `grain` as (start, end), oldest first.
    pub fn periods(&self, grain: Grain) -> Vec<(NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        if !self.grains.contains(&grain) {
            return out;
        }
        let mut day = grain.period_start(self.window.start());
        while day <= self.window.end() {
            let end = grain.period_end(day);
            out.push((day, end));
            match end.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_of_a_day() {
        // 2026-10-01 is a Thursday.
        assert_eq!(Grain::Week.period_start(d("2026-10-01")), d("2026-09-28"));
        assert_eq!(Grain::Week.period_end(d("2026-10-01")), d("2026-10-04"));
        assert_eq!(Grain::Week.period_start(d("2026-09-28")), d("2026-09-28"));
        assert_eq!(Grain::Week.period_end(d("2026-10-04")), d("2026-10-04"));
        assert_eq!(Grain::Month.period_start(d("2026-10-31")), d("2026-10-01"));
        assert_eq!(Grain::Month.period_end(d("2024-02-10")), d("2024-02-29"));
        assert_eq!(Grain::Month.period_end(d("2026-12-10")), d("2026-12-31"));
        assert_eq!(Grain::Day.period_end(d("2026-12-31")), d("2026-12-31"));
    }

    #[test]
    fn a_window_touches_whole_periods() {
        let w = DateWindow::new(d("2026-10-01"), d("2026-10-06")).unwrap();
        let t = Touched::new(w, &Grain::ALL);
        assert_eq!(t.read_window(), DateWindow::new(d("2026-09-27"), d("2026-10-31")).unwrap());
        assert_eq!(
            t.periods(Grain::Week),
            [(d("2026-09-28"), d("2026-10-04")), (d("2026-10-05"), d("2026-10-11"))]
        );
        assert_eq!(t.periods(Grain::Month), [(d("2026-10-01"), d("2026-10-31"))]);
        assert_eq!(t.periods(Grain::Day).len(), 6);
        assert!(t.contains(Grain::Week, d("2026-09-28")));
        assert!(!t.contains(Grain::Week, d("2026-09-21")));
        assert!(!t.contains(Grain::Day, d("2026-09-30")));
        let days_only = Touched::new(w, &[Grain::Day]);
        assert_eq!(days_only.read_window(), DateWindow::new(d("2026-09-30"), d("2026-10-06")).unwrap());
        assert!(!days_only.contains(Grain::Week, d("2026-09-28")));
    }
}
