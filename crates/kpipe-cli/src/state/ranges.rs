//! Sets of days with a value per day, stored as ranges of consecutive days with the same value:
//! what makes the ledger of years of days and thousands of accounts small.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Non-overlapping ranges of days, each with one value; neighbouring ranges with equal values
/// are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRanges<T> {
    /// Start -> (last day, value).
    ranges: BTreeMap<NaiveDate, (NaiveDate, T)>,
}

impl<T> Default for DayRanges<T> {
    fn default() -> DayRanges<T> {
        DayRanges { ranges: BTreeMap::new() }
    }
}

fn next(d: NaiveDate) -> NaiveDate {
    d.succ_opt().unwrap_or(d)
}

fn previous(d: NaiveDate) -> NaiveDate {
    d.pred_opt().unwrap_or(d)
}

impl<T: Clone + PartialEq> DayRanges<T> {
    /// The value of `day`.
    pub fn get(&self, day: NaiveDate) -> Option<&T> {
        let (_, (end, value)) = self.ranges.range(..=day).next_back()?;
        (*end >= day).then_some(value)
    }

    /// Whether no day has a value.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, oldest first: (first day, last day, value).
    pub fn iter(&self) -> impl Iterator<Item = (NaiveDate, NaiveDate, &T)> {
        self.ranges.iter().map(|(start, (end, value))| (*start, *end, value))
    }

    /// The ranges' parts within `from..=to`, oldest first.
    pub fn within(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = (NaiveDate, NaiveDate, &T)> {
        let first = self.ranges.range(..from).next_back().filter(|(_, (end, _))| *end >= from);
        first
            .into_iter()
            .chain(self.ranges.range(from..=to))
            .map(move |(start, (end, value))| ((*start).max(from), (*end).min(to), value))
    }

    /// The days with a value within `from..=to`: (days, value) per range.
    pub fn count_days(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = (u64, &T)> {
        self.within(from, to).map(|(a, b, v)| ((b - a).num_days() as u64 + 1, v))
    }

    /// Removes the values of `from..=to`.
    pub fn clear(&mut self, from: NaiveDate, to: NaiveDate) {
        let overlapping: Vec<NaiveDate> = self
            .ranges
            .range(..=to)
            .rev()
            .take_while(|(_, (end, _))| *end >= from)
            .map(|(start, _)| *start)
            .collect();
        // Ranges do not overlap: walking back from `to`, the first one ending before `from`
        // has only such ones before it.
        for start in overlapping {
            let Some((end, value)) = self.ranges.remove(&start) else { continue };
            if start < from {
                self.ranges.insert(start, (previous(from), value.clone()));
            }
            if end > to {
                self.ranges.insert(next(to), (end, value));
            }
        }
    }

    /// Gives `from..=to` the value `value`.
    pub fn set(&mut self, from: NaiveDate, to: NaiveDate, value: T) {
        self.clear(from, to);
        let (mut start, mut end) = (from, to);
        if let Some((&left, (left_end, left_value))) = self.ranges.range(..from).next_back()
            && *left_end == previous(from)
            && *left_value == value
        {
            start = left;
            self.ranges.remove(&left);
        }
        if let Some((&right, (right_end, right_value))) = self.ranges.range(next(to)..).next()
            && right == next(to)
            && *right_value == value
        {
            end = *right_end;
            self.ranges.remove(&right);
        }
        self.ranges.insert(start, (end, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, n).unwrap()
    }

    fn ranges(r: &DayRanges<char>) -> Vec<(u32, u32, char)> {
        use chrono::Datelike;
        r.iter().map(|(a, b, v)| (a.day(), b.day(), *v)).collect()
    }

    #[test]
    fn set_splits_and_merges() {
        let mut r = DayRanges::default();
        r.set(d(1), d(10), 'a');
        r.set(d(4), d(5), 'b');
        assert_eq!(ranges(&r), [(1, 3, 'a'), (4, 5, 'b'), (6, 10, 'a')]);
        r.set(d(4), d(5), 'a');
        assert_eq!(ranges(&r), [(1, 10, 'a')]);
        r.set(d(12), d(14), 'a');
        r.set(d(11), d(11), 'a');
        assert_eq!(ranges(&r), [(1, 14, 'a')]);
        r.clear(d(2), d(2));
        r.clear(d(14), d(20));
        assert_eq!(ranges(&r), [(1, 1, 'a'), (3, 13, 'a')]);
        assert_eq!(r.get(d(2)), None);
        assert_eq!(r.get(d(13)), Some(&'a'));
        r.set(d(1), d(20), 'c');
        assert_eq!(ranges(&r), [(1, 20, 'c')]);
    }

    #[test]
    fn clear_across_many_ranges_and_within() {
        let mut r = DayRanges::default();
        for (i, v) in [(1, 'a'), (3, 'b'), (5, 'a'), (7, 'b')] {
            r.set(d(i), d(i + 1), v);
        }
        r.clear(d(2), d(7));
        assert_eq!(ranges(&r), [(1, 1, 'a'), (8, 8, 'b')]);
        let mut r = DayRanges::default();
        r.set(d(1), d(10), 'a');
        use chrono::Datelike;
        let parts: Vec<_> = r.within(d(3), d(4)).map(|(a, b, v)| (a.day(), b.day(), *v)).collect();
        assert_eq!(parts, [(3, 4, 'a')]);
        assert_eq!(r.count_days(d(9), d(30)).map(|(n, _)| n).sum::<u64>(), 2);
    }
}
