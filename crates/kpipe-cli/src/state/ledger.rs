//! One source's ledger and cursors, held as ranges of days: a state for thousands of accounts
//! over years of days stays a few megabytes.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::{DateWindow, Period};

use super::ranges::DayRanges;
use super::{AccountDays, Committed, DayPlan, is_final};

/// Whether a day's numbers may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// Pulled within the restatement horizon: pulled again by every run that covers it.
    Provisional,
    /// Pulled after the horizon: not pulled again unless `--full-refresh`.
    Final,
}

/// What the ledger knows of a day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayRecord {
    /// Provisional or final.
    pub status: DayStatus,
    /// The run's "today", which decides finality.
    pub pulled_on: NaiveDate,
    /// When the rows were committed.
    pub pulled_at: DateTime<Utc>,
    /// The run that wrote them.
    pub run_id: String,
}

/// How far one (source, stream, account) has been written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The high-water mark: the last day committed with the stream's rows of the account.
    /// Earlier days may still have holes (a backfill newest first); the ledger knows them.
    pub through: NaiveDate,
    /// The run that last moved it.
    pub run_id: String,
    /// When it moved, after the commit.
    pub advanced_at: DateTime<Utc>,
}

/// One source's part of the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// The days committed, with when and by which run.
    pub days: DayRanges<DayRecord>,
    /// Per account, the days committed with rows of it.
    pub accounts: BTreeMap<String, DayRanges<DayStatus>>,
    /// Per stream, the days that pulled it.
    pub streams: BTreeMap<String, DayRanges<DayStatus>>,
    /// Cursors by stream, then by account.
    pub cursors: BTreeMap<String, BTreeMap<String, Cursor>>,
    /// Weeks and months whose published period rows are partial, with the last day they cover:
    /// a run whose window ends after such a period asks for its last day again, so that the
    /// period is pulled whole.
    pub partial_periods: BTreeMap<Period, NaiveDate>,
}

/// Consecutive days of `days` with the same status: (first, last, status).
fn runs(
    days: &BTreeSet<NaiveDate>,
    status: impl Fn(NaiveDate) -> DayStatus,
) -> Vec<(NaiveDate, NaiveDate, DayStatus)> {
    let mut out: Vec<(NaiveDate, NaiveDate, DayStatus)> = Vec::new();
    for &day in days {
        let s = status(day);
        match out.last_mut() {
            Some((_, end, last)) if end.succ_opt() == Some(day) && *last == s => *end = day,
            _ => out.push((day, day, s)),
        }
    }
    out
}

impl SourceState {
    /// The day's record, if the day was committed.
    pub fn day(&self, day: NaiveDate) -> Option<&DayRecord> {
        self.days.get(day)
    }

    /// The accounts with rows on `day`.
    pub fn accounts_on(&self, day: NaiveDate) -> BTreeSet<&str> {
        self.accounts.iter().filter(|(_, r)| r.get(day).is_some()).map(|(a, _)| a.as_str()).collect()
    }

    /// The streams pulled on `day`.
    pub fn streams_on(&self, day: NaiveDate) -> BTreeSet<&str> {
        self.streams.iter().filter(|(_, r)| r.get(day).is_some()).map(|(s, _)| s.as_str()).collect()
    }

    /// Which days of `window` a run must pull: every missing or provisional day, and with
    /// `full_refresh` every day.
    pub fn plan(&self, window: DateWindow, full_refresh: bool) -> DayPlan {
        let mut plan = DayPlan::default();
        let mut run: Option<(NaiveDate, NaiveDate)> = None;
        for day in window.days() {
            let pull = match self.days.get(day).map(|r| r.status) {
                None => {
                    plan.missing += 1;
                    true
                }
                Some(DayStatus::Provisional) => {
                    plan.provisional += 1;
                    true
                }
                Some(DayStatus::Final) => {
                    if !full_refresh {
                        plan.skipped_final += 1;
                    }
                    full_refresh
                }
            };
            run = match (run, pull) {
                (Some((start, _)), true) => Some((start, day)),
                (None, true) => Some((day, day)),
                (Some((start, end)), false) => {
                    plan.pull.extend(DateWindow::new(start, end).ok());
                    None
                }
                (None, false) => None,
            };
        }
        if let Some((start, end)) = run {
            plan.pull.extend(DateWindow::new(start, end).ok());
        }
        // A period published partial has ended by the window's last day: pulling its last day
        // asks the platform for the whole period again (a pull asks for every period its
        // window touches), unless a planned window already holds that day.
        for period in self.partial_periods.keys() {
            let last = period.end();
            if last <= window.end() && !plan.pull.iter().any(|w| w.contains(last)) {
                plan.pull.push(DateWindow::day(last));
                plan.periods_to_complete += 1;
            }
        }
        plan.pull.sort_by_key(DateWindow::start);
        plan.pull.dedup();
        plan
    }

    /// Records a commit: `committed.days` were replaced in the output by `run_id` (a committed
    /// day without rows is recorded as pulled, with no account), and the cursor of every
    /// (stream, account) with rows in them moves to the last of those days (never back).
    pub fn record(
        &mut self,
        committed: &Committed,
        run_id: &str,
        today: NaiveDate,
        horizon_days: Option<u32>,
    ) {
        let pulled_at = Utc::now();
        let status =
            |day| if is_final(day, today, horizon_days) { DayStatus::Final } else { DayStatus::Provisional };
        let spans = runs(&committed.days, status);
        for &(from, to, status) in &spans {
            let record = DayRecord { status, pulled_on: today, pulled_at, run_id: run_id.to_owned() };
            self.days.set(from, to, record);
            // The days' old accounts and streams are replaced by what this commit holds.
            for ranges in self.accounts.values_mut().chain(self.streams.values_mut()) {
                ranges.clear(from, to);
            }
            for stream in &committed.streams {
                self.streams.entry(stream.clone()).or_default().set(from, to, status);
            }
        }
        let mut with_rows: BTreeMap<(&String, Option<&String>), BTreeSet<NaiveDate>> = BTreeMap::new();
        for ((day, account, stream), n) in &committed.rows {
            if *n > 0 && committed.days.contains(day) {
                with_rows.entry((account, stream.as_ref())).or_default().insert(*day);
            }
        }
        for ((account, stream), days) in &with_rows {
            for (from, to, status) in runs(days, status) {
                self.accounts.entry((*account).clone()).or_default().set(from, to, status);
                if let Some(stream) = stream {
                    self.streams.entry((*stream).clone()).or_default().set(from, to, status);
                }
            }
        }
        self.accounts.retain(|_, r| !r.is_empty());
        self.streams.retain(|_, r| !r.is_empty());
        for request in &committed.periods {
            if request.is_partial() {
                self.partial_periods.insert(request.period, request.through);
            } else {
                self.partial_periods.remove(&request.period);
            }
        }
        let Some(last) = committed.days.last() else { return };
        for (stream, account) in with_rows.keys().filter_map(|(a, s)| Some((s.as_ref()?, *a))) {
            let fresh = Cursor { through: *last, run_id: run_id.to_owned(), advanced_at: pulled_at };
            match self.cursors.entry((*stream).clone()).or_default().entry(account.clone()) {
                Entry::Vacant(slot) => {
                    slot.insert(fresh);
                }
                // A backfill newest first commits older days later: the mark never moves back.
                Entry::Occupied(mut slot) => {
                    if slot.get().through < *last {
                        slot.insert(fresh);
                    }
                }
            }
        }
    }

    /// Forgets `window` (every day when `None`) so that the next run pulls it again: the days,
    /// their accounts and streams, and the cursors (of `stream` only, with one) are moved back
    /// to the day before the window (removed without a window, or when that is before them).
    pub fn reset(&mut self, stream: Option<&str>, window: Option<DateWindow>) {
        let (from, to) = match window {
            Some(w) => (w.start(), w.end()),
            None => (NaiveDate::MIN, NaiveDate::MAX),
        };
        self.days.clear(from, to);
        for ranges in self.accounts.values_mut().chain(self.streams.values_mut()) {
            ranges.clear(from, to);
        }
        self.accounts.retain(|_, r| !r.is_empty());
        self.streams.retain(|_, r| !r.is_empty());
        let before = from.pred_opt();
        for (name, accounts) in &mut self.cursors {
            if stream.is_some_and(|s| s != name) {
                continue;
            }
            accounts.retain(|_, c| {
                if c.through < from {
                    return true;
                }
                match window {
                    // Days after the window stay written: the mark stays where it is.
                    Some(w) if c.through > w.end() => true,
                    Some(_) => before.map(|day| c.through = day).is_some(),
                    None => false,
                }
            });
        }
        self.cursors.retain(|_, a| !a.is_empty());
    }

    /// Per account, the days of `window` with rows of it.
    pub fn account_days(&self, window: DateWindow) -> BTreeMap<String, AccountDays> {
        let mut out: BTreeMap<String, AccountDays> = BTreeMap::new();
        for (account, ranges) in &self.accounts {
            let mut days = AccountDays::default();
            for (n, status) in ranges.count_days(window.start(), window.end()) {
                match status {
                    DayStatus::Final => days.final_days += n,
                    DayStatus::Provisional => days.provisional_days += n,
                }
            }
            if days != AccountDays::default() {
                out.insert(account.clone(), days);
            }
        }
        out
    }

    /// Final and provisional days.
    pub fn counts(&self) -> (u64, u64) {
        let days = self.days.iter().map(|(a, b, r)| ((b - a).num_days() as u64 + 1, r.status));
        count(days)
    }

    /// Final and provisional days that recorded `stream`.
    pub fn stream_counts(&self, stream: &str) -> (u64, u64) {
        let Some(ranges) = self.streams.get(stream) else { return (0, 0) };
        count(ranges.iter().map(|(a, b, s)| ((b - a).num_days() as u64 + 1, *s)))
    }
}

fn count(days: impl Iterator<Item = (u64, DayStatus)>) -> (u64, u64) {
    days.fold((0, 0), |(f, p), (n, status)| match status {
        DayStatus::Final => (f + n, p),
        DayStatus::Provisional => (f, p + n),
    })
}

#[cfg(test)]
mod tests {
    use kpipe_core::{PeriodGrain, PeriodRequest};

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap_or_default()
    }

    fn window(a: u32, b: u32) -> DateWindow {
        DateWindow::new(day(a), day(b)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A commit of `days` that replaced the period rows of every week and month they touch.
    fn commit(days: DateWindow) -> Committed {
        Committed {
            days: days.days().collect(),
            streams: vec!["ads".into()],
            periods: PeriodRequest::for_window(days),
            ..Committed::default()
        }
    }

    #[test]
    fn a_period_published_partial_has_its_last_day_pulled_once_it_has_ended() {
        let mut state = SourceState::default();
        // Pulled through Wednesday the 14th: that week (12..=18) and October are partial.
        state.record(&commit(window(1, 14)), "r1", day(15), Some(28));
        let week = Period::containing(PeriodGrain::Week, day(14));
        let month = Period::containing(PeriodGrain::Month, day(14));
        assert_eq!(state.partial_periods.get(&week), Some(&day(14)));
        assert_eq!(state.partial_periods.get(&month), Some(&day(14)));
        assert_eq!(
            state.partial_periods.len(),
            2,
            "the whole weeks are complete: {:?}",
            state.partial_periods
        );

        // A run over the 20th to the 21st: the week has ended, and its last day (the 18th) is
        // pulled too, which asks for the whole week; October has not ended.
        let plan = state.plan(window(20, 21), false);
        assert_eq!(plan.pull, [DateWindow::day(day(18)), window(20, 21)]);
        assert_eq!(plan.periods_to_complete, 1);
        // A window that holds that day already asks for the week whole.
        assert_eq!(state.plan(window(15, 21), false).pull, [window(15, 21)]);

        // Once the week is published whole, it is no longer partial; the state file keeps the rest.
        state.record(&commit(DateWindow::day(day(18))), "r2", day(22), Some(28));
        assert!(!state.partial_periods.contains_key(&week));
        assert_eq!(state.partial_periods.get(&month), Some(&day(18)));
        let bytes = super::super::file::encode("s", &state).unwrap_or_default();
        let (_, read) = super::super::file::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.partial_periods, state.partial_periods);
        assert_eq!(state.plan(window(20, 21), false).pull, [window(20, 21)]);
    }
}
