//! Aggregates of one term over a scope and a period, following the metric's additivity
//! (docs/kpis.md rule 2).

use std::hash::{BuildHasherDefault, Hasher};

use kpipe_core::Additivity;

use crate::period::Grain;

// Flags, in the top bits of `Agg::counts`.
/// A unique metric had several rows for one entity and day (a breakdown): they cannot be summed.
const MULTI: u32 = 1 << 29;
/// A sum left the representable range.
const OVERFLOW: u32 = 1 << 30;
/// The period has a starting value (the snapshot on the day before it).
const HAS_START: u32 = 1 << 31;
/// A unique metric's value for the whole period, as the platform reported it for the period.
const PERIOD_VALUE: u32 = 1 << 28;
const FLAGS: u32 = PERIOD_VALUE | MULTI | OVERFLOW | HAS_START;
/// The count, in the low bits of `Agg::counts`. It saturates: a formula only tells no
/// contribution, one and several apart, so a count past 2^28 - 1 changes nothing.
const N_MAX: u32 = (1 << 28) - 1;

/// One term over one scope and one period, as a period holds it, for every cell seen: either
/// its days, or its starting value (the snapshot on the day before the period). The two are
/// kept apart because only the few terms read at a period's start have one: a cell of days
/// stays at 24 bytes (the flags share a word with the count, and 8-byte alignment avoids
/// padding after the 16-byte sum), and [`Total`] puts the two back together for a formula.
///
/// - sum: the sum of the days' values;
/// - unique: a value only where exactly one row gives it (one entity, one day, no breakdown);
/// - snapshot: the value of the period's last day with data (summed over the scope's entities
///   on that day);
/// - a start (flagged `HAS_START`): `sum` is the snapshot on the day before the period, summed
///   over the scope's entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed(8))]
pub(crate) struct Agg {
    sum: i128,
    /// Contributions (entity-days), up to `N_MAX`, and the flags above it.
    counts: u32,
    /// For snapshots: the day of `sum` (`NaiveDate::num_days_from_ce`).
    last_date: i32,
}

/// What a term contributes to a formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val {
    /// No row of the term in the scope and period.
    Missing,
    /// Rows exist, but they give no value (a unique metric over several days, an overflow).
    Null,
    /// A number written in the formula.
    Const(i128),
    /// A value from the data.
    Value(i128),
}

impl Agg {
    /// Adds one entity-day: `value`, from `single` row or several (a breakdown).
    pub fn add(&mut self, additivity: Additivity, date: i32, value: i128, single: bool, overflow: bool) {
        if overflow {
            self.counts |= OVERFLOW;
        }
        match additivity {
            Additivity::Snapshot => {
                if self.n() == 0 || date > self.last_date {
                    self.last_date = date;
                    self.sum = value;
                } else if date == self.last_date {
                    self.add_sum(value);
                }
            }
            Additivity::Unique => {
                if !single {
                    self.counts |= MULTI;
                }
                self.add_sum(value);
            }
            Additivity::Sum => self.add_sum(value),
        }
        self.add_n(1);
    }

    /// A unique metric's value over a whole period, from one row at that period (`single`) or
    /// several (a breakdown, which gives no value).
    pub fn period_value(value: i128, single: bool) -> Agg {
        let mut agg = Agg { sum: value, counts: PERIOD_VALUE | 1, last_date: 0 };
        if !single {
            agg.counts |= MULTI;
        }
        agg
    }

    /// Whether it holds a unique metric's value for a whole period.
    pub fn is_period_value(&self) -> bool {
        self.has(PERIOD_VALUE)
    }

    /// Contributions: entity-days (saturating at `N_MAX`).
    fn n(&self) -> u32 {
        self.counts & N_MAX
    }

    fn add_n(&mut self, n: u32) {
        let sum = self.n().saturating_add(n).min(N_MAX);
        self.counts = (self.counts & FLAGS) | sum;
    }

    fn has(&self, flag: u32) -> bool {
        self.counts & flag != 0
    }

    /// Nothing was added: every added day counts in `n`, and a start sets `HAS_START`.
    pub fn is_empty(&self) -> bool {
        self.n() == 0 && !self.has(HAS_START)
    }

    /// Adds a snapshot of the day before the period to a start.
    pub fn add_start(&mut self, value: i128) {
        self.add_sum(value);
        self.counts |= HAS_START;
    }

    fn add_sum(&mut self, value: i128) {
        match self.sum.checked_add(value) {
            Some(s) => self.sum = s,
            None => self.counts |= OVERFLOW,
        }
    }

    /// The same aggregate with its amount converted by `convert`.
    pub fn converted(&self, convert: impl Fn(i128) -> Option<i128>) -> Agg {
        let mut out = *self;
        match convert(self.sum) {
            Some(sum) => out.sum = sum,
            None => out.counts |= OVERFLOW,
        }
        out
    }
}

/// One term over a whole scope and period, days and start together: what a formula reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Total {
    days: Agg,
    start: i128,
}

impl Total {
    /// Combines the aggregate of a part of the scope: its days or its start.
    pub fn merge(&mut self, additivity: Additivity, other: &Agg) {
        self.days.counts |= other.counts & FLAGS;
        if other.has(HAS_START) {
            match self.start.checked_add(other.sum) {
                Some(s) => self.start = s,
                None => self.days.counts |= OVERFLOW,
            }
            return;
        }
        if other.n() == 0 {
            return;
        }
        let days = &mut self.days;
        if additivity == Additivity::Snapshot {
            if days.n() == 0 || other.last_date > days.last_date {
                days.last_date = other.last_date;
                days.sum = other.sum;
            } else if other.last_date == days.last_date {
                days.add_sum(other.sum);
            }
        } else {
            days.add_sum(other.sum);
        }
        days.add_n(other.n());
    }

    /// Its value in a formula, at `grain`; `start` reads the snapshot before the period.
    pub fn value(&self, additivity: Additivity, grain: Grain, start: bool) -> Val {
        let days = &self.days;
        if start {
            return if days.has(HAS_START) && !days.has(OVERFLOW) {
                Val::Value(self.start)
            } else if days.n() > 0 || days.has(HAS_START) {
                Val::Null
            } else {
                Val::Missing
            };
        }
        if days.n() == 0 {
            return Val::Missing;
        }
        if days.has(OVERFLOW) {
            return Val::Null;
        }
        match additivity {
            // Never summed across days or entities: only a single row is a value.
            // A week or month has a value only from a row of the platform's for that period.
            Additivity::Unique
                if (grain != Grain::Day && !days.has(PERIOD_VALUE)) || days.n() != 1 || days.has(MULTI) =>
            {
                Val::Null
            }
            _ => Val::Value(days.sum),
        }
    }
}

/// Keys of the aggregation maps are packed integers from our own interning, not from an
/// adversary, so SipHash's cost buys nothing. A multiply alone would leave the low bits (which
/// pick the bucket) depending only on the key's low bits, and the entity sits in the high bits:
/// `finish` mixes all bits down (MurmurHash3's 64-bit finalizer).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

/// A `HashMap` hashed with [`FxHasher`].
pub(crate) type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula's view of one part's aggregates.
    fn total(additivity: Additivity, parts: &[Agg]) -> Total {
        let mut t = Total::default();
        for p in parts {
            t.merge(additivity, p);
        }
        t
    }

    #[test]
    fn additivity_rules() {
        let mut sum = Agg::default();
        sum.add(Additivity::Sum, 1, 5, true, false);
        sum.add(Additivity::Sum, 2, 7, false, false);
        assert_eq!(total(Additivity::Sum, &[sum]).value(Additivity::Sum, Grain::Week, false), Val::Value(12));

        let unique =
            |parts: &[Agg], grain| total(Additivity::Unique, parts).value(Additivity::Unique, grain, false);
        let mut reach = Agg::default();
        reach.add(Additivity::Unique, 1, 5, true, false);
        assert_eq!(unique(&[reach], Grain::Day), Val::Value(5));
        assert_eq!(unique(&[reach], Grain::Week), Val::Null);
        let mut other_reach = Agg::default();
        other_reach.add(Additivity::Unique, 1, 6, true, false);
        assert_eq!(unique(&[reach, other_reach], Grain::Day), Val::Null, "two entities");
        reach.add(Additivity::Unique, 1, 6, true, false);
        assert_eq!(unique(&[reach], Grain::Day), Val::Null, "two entity-days");
        let mut broken_down = Agg::default();
        broken_down.add(Additivity::Unique, 1, 5, false, false);
        assert_eq!(unique(&[broken_down], Grain::Day), Val::Null);

        let snapshot = Additivity::Snapshot;
        let mut start = Agg::default();
        start.add_start(90);
        assert!(!start.is_empty());
        let mut followers = Agg::default();
        followers.add(snapshot, 1, 100, true, false);
        followers.add(snapshot, 3, 120, true, false);
        followers.add(snapshot, 3, 30, true, false);
        let month = total(snapshot, &[start, followers]);
        assert_eq!(month.value(snapshot, Grain::Month, false), Val::Value(150));
        assert_eq!(month.value(snapshot, Grain::Month, true), Val::Value(90));
        let mut other = Agg::default();
        other.add(snapshot, 2, 1000, true, false);
        assert_eq!(
            total(snapshot, &[start, followers, other]).value(snapshot, Grain::Month, false),
            Val::Value(150),
            "day 3 is later"
        );
        assert_eq!(total(snapshot, &[other, start, followers]), total(snapshot, &[followers, other, start]));
        assert_eq!(Total::default().value(snapshot, Grain::Day, true), Val::Missing);
        assert_eq!(total(snapshot, &[start]).value(snapshot, Grain::Day, false), Val::Missing);
        assert_eq!(total(snapshot, &[other]).value(snapshot, Grain::Day, true), Val::Null, "no start");
    }

    #[test]
    fn sizes_stay_small() {
        // Periods hold one aggregate per cell, a closed period one entry per cell.
        assert_eq!(std::mem::size_of::<Agg>(), 24);
        assert_eq!(std::mem::size_of::<crate::evaluate::Entry>(), 32);
    }

    #[test]
    fn counts_saturate_and_keep_the_flags() {
        let mut a = Agg::default();
        a.add(Additivity::Unique, 1, 5, false, false);
        a.add_n(N_MAX);
        assert_eq!(a.n(), N_MAX);
        assert!(a.has(MULTI) && !a.has(OVERFLOW) && !a.has(HAS_START));
        a.add(Additivity::Unique, 1, 5, true, false);
        assert_eq!((a.n(), a.sum), (N_MAX, 10));
        let t = total(Additivity::Sum, &[a, a]);
        assert_eq!(t.value(Additivity::Sum, Grain::Month, false), Val::Value(20));
        assert_eq!(t.value(Additivity::Unique, Grain::Day, false), Val::Null, "still several");
    }

    #[test]
    fn overflow_gives_no_value() {
        let mut a = Agg::default();
        a.add(Additivity::Sum, 1, i128::MAX, true, false);
        a.add(Additivity::Sum, 1, 1, true, false);
        assert_eq!(total(Additivity::Sum, &[a]).value(Additivity::Sum, Grain::Day, false), Val::Null);

        // An overflowing start leaves no value of the period either, and the other way round.
        let mut start = Agg::default();
        start.add_start(i128::MAX);
        let mut more = Agg::default();
        more.add_start(1);
        let mut days = Agg::default();
        days.add(Additivity::Snapshot, 1, 5, true, false);
        let t = total(Additivity::Snapshot, &[start, more, days]);
        assert_eq!(t.value(Additivity::Snapshot, Grain::Day, false), Val::Null);
        assert_eq!(t.value(Additivity::Snapshot, Grain::Day, true), Val::Null);
        let t = total(Additivity::Snapshot, &[more, a]);
        assert_eq!(t.value(Additivity::Snapshot, Grain::Day, true), Val::Null);
    }
}
