//! Weeks and months, and the rows that hold a unique metric's value over one of them.
//!
//! Reach and users count distinct people: a week's reach is not the sum of its days' reach (the
//! same person is counted once a week but on each day seen), so a week's or a month's value has
//! to come from the platform, asked for that period (docs/kpis.md rule 2). A connector that can
//! ask emits a [`PeriodRow`] per period; they are stored apart from the day rows (the
//! `metrics_period` table of docs/schema.md), so that nobody summing `value` over the day rows
//! ever adds a period's value in.
//!
//! A snapshot metric (`followers`) in a period row is the period's opening value: the snapshot
//! at the end of the day before the period's first day. Growth over a period divides by it
//! (`follower_gains / start(followers)`), and a run whose window starts with the period has not
//! pulled that day.

use std::fmt;

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::metric::Additivity;
use crate::record::{MetricName, MetricRow, RowError};
use crate::window::DateWindow;

/// The length of a period a unique metric is pulled over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodGrain {
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl PeriodGrain {
    /// Both grains, shorter first.
    pub const ALL: [PeriodGrain; 2] = [PeriodGrain::Week, PeriodGrain::Month];

    /// The name written to the `grain` column and to file names.
    pub const fn as_str(self) -> &'static str {
        match self {
            PeriodGrain::Week => "week",
            PeriodGrain::Month => "month",
        }
    }

    /// The grain called `name`.
    pub fn from_name(name: &str) -> Option<PeriodGrain> {
        PeriodGrain::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

impl fmt::Display for PeriodGrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ISO week or calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Period {
    /// Week or month.
    pub grain: PeriodGrain,
    /// Its first day (a Monday, or the first of a month).
    pub start: NaiveDate,
}

impl Period {
    /// The period of `grain` that holds `date`.
    pub fn containing(grain: PeriodGrain, date: NaiveDate) -> Period {
        let start = match grain {
            PeriodGrain::Week => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .unwrap_or(date),
            PeriodGrain::Month => date.with_day(1).unwrap_or(date),
        };
        Period { grain, start }
    }

    /// Its last day.
    pub fn end(&self) -> NaiveDate {
        let next = match self.grain {
            PeriodGrain::Week => self.start.checked_add_days(Days::new(7)),
            PeriodGrain::Month => self.start.checked_add_months(Months::new(1)),
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX)
    }

    /// Every day of it.
    pub fn days(&self) -> DateWindow {
        DateWindow::new(self.start, self.end()).unwrap_or_else(|_| DateWindow::day(self.start))
    }

    /// The weeks, then the months, that hold a day of `window`.
    pub fn touched_by(window: DateWindow) -> Vec<Period> {
        let mut periods = Vec::new();
        for grain in PeriodGrain::ALL {
            let mut period = Period::containing(grain, window.start());
            while period.start <= window.end() {
                periods.push(period);
                match period.end().succ_opt() {
                    Some(next) => period = Period { grain, start: next },
                    None => break,
                }
            }
        }
        periods
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}..={}", self.grain, self.start, self.end())
    }
}

/// What to ask a platform for: a period's unique values over its days up to `through` (the
/// period's last day, or the last day of data when the period has not ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PeriodRequest {
    /// The period.
    pub period: Period,
    /// The last day the values cover.
    pub through: NaiveDate,
}

impl PeriodRequest {
    /// The periods a pull of `window` touches, each asked for up to the window's last day at
    /// most: a nightly run's window ends yesterday, so the current week and month are asked
    /// for what has happened so far, and are partial until a later run asks again.
    pub fn for_window(window: DateWindow) -> Vec<PeriodRequest> {
        Period::touched_by(window)
            .into_iter()
            .map(|period| PeriodRequest { period, through: period.end().min(window.end()) })
            .collect()
    }

    /// The days asked for: the period's first day to `through`.
    pub fn days(&self) -> DateWindow {
        DateWindow::new(self.period.start, self.through).unwrap_or_else(|_| DateWindow::day(self.through))
    }

    /// True when the values do not cover the whole period yet.
    pub fn is_partial(&self) -> bool {
        self.through < self.period.end()
    }
}

/// A unique metric's value over a whole period, or a snapshot metric's opening value (at the end
/// of the day before the period): `row` holds it, dated the period's first day.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodRow {
    /// The period and the days the value covers.
    pub request: PeriodRequest,
    /// The value, with `date` the period's first day.
    pub row: MetricRow,
}

/// Why a period row cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodRowError {
    /// The row itself breaks the schema's rules.
    #[error(transparent)]
    Row(#[from] RowError),
    /// Only unique metrics need a period's own value, and snapshots an opening one; sums are
    /// computed from days.
    #[error(
        "metric `{0}` is neither a unique nor a snapshot metric: its period value is computed from the days"
    )]
    NotUnique(String),
    /// The row is not dated the period's first day.
    #[error("the row is dated {date}, not the first day of {period}")]
    WrongDate {
        /// The row's date.
        date: NaiveDate,
        /// The period.
        period: Period,
    },
    /// `through` lies outside the period.
    #[error("{period} cannot cover days through {through}")]
    ThroughOutside {
        /// The period.
        period: Period,
        /// The last day claimed.
        through: NaiveDate,
    },
}

impl PeriodRow {
    /// A period row for `request`, dating `row` the period's first day.
    pub fn new(request: PeriodRequest, mut row: MetricRow) -> PeriodRow {
        row.date = request.period.start;
        PeriodRow { request, row }
    }

    /// Checks the rules a period row keeps before it may be written.
    pub fn validate(&self) -> Result<(), PeriodRowError> {
        self.row.validate()?;
        let unique = match &self.row.metric {
            MetricName::Canonical(m) => m.additivity() != Additivity::Sum,
            MetricName::Extra { .. } => false,
        };
        if !unique {
            return Err(PeriodRowError::NotUnique(self.row.metric.to_string()));
        }
        let period = self.request.period;
        if self.row.date != period.start {
            return Err(PeriodRowError::WrongDate { date: self.row.date, period });
        }
        if self.request.through < period.start || self.request.through > period.end() {
            return Err(PeriodRowError::ThroughOutside { period, through: self.request.through });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dimensions, Metric};

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn weeks_are_iso_and_months_calendar() {
        let week = Period::containing(PeriodGrain::Week, day("2026-03-01"));
        assert_eq!((week.start, week.end()), (day("2026-02-23"), day("2026-03-01")));
        let month = Period::containing(PeriodGrain::Month, day("2024-02-10"));
        assert_eq!((month.start, month.end()), (day("2024-02-01"), day("2024-02-29")));
    }

    #[test]
    fn a_window_touches_every_week_and_month_it_overlaps() {
        let window = DateWindow::new(day("2026-10-28"), day("2026-11-03")).unwrap_or_else(|e| panic!("{e}"));
        let requests = PeriodRequest::for_window(window);
        let shown: Vec<String> =
            requests.iter().map(|r| format!("{} {} {}", r.period.grain, r.period.start, r.through)).collect();
        assert_eq!(
            shown,
            [
                "week 2026-10-26 2026-11-01",
                "week 2026-11-02 2026-11-03",
                "month 2026-10-01 2026-10-31",
                "month 2026-11-01 2026-11-03",
            ]
        );
        assert!(!requests[0].is_partial() && requests[1].is_partial());
        assert_eq!(requests[3].days().num_days(), 3);
    }

    #[test]
    fn a_period_row_holds_a_unique_metric_dated_its_first_day() {
        let request = PeriodRequest::for_window(DateWindow::day(day("2026-03-11")))[1];
        let row = MetricRow {
            platform: "facebook".into(),
            account_id: "act_1".into(),
            level: "account".into(),
            entity_id: "act_1".into(),
            entity_name: None,
            date: day("2026-03-11"),
            dimensions: Dimensions::default(),
            metric: Metric::Reach.into(),
            value: "1200".parse().unwrap_or_default(),
            currency: None,
        };
        let period_row = PeriodRow::new(request, row.clone());
        assert_eq!(period_row.row.date, day("2026-03-01"));
        assert_eq!(period_row.validate(), Ok(()));
        let mut clicks = PeriodRow::new(request, row);
        clicks.row.metric = Metric::Clicks.into();
        assert_eq!(clicks.validate(), Err(PeriodRowError::NotUnique("clicks".into())));
        clicks.row.metric = Metric::Followers.into();
        assert_eq!(clicks.validate(), Ok(()), "a snapshot's opening value");
        clicks.row.metric = Metric::Reach.into();
        clicks.request.through = day("2026-04-01");
        assert!(matches!(clicks.validate(), Err(PeriodRowError::ThroughOutside { .. })));
    }
}
