//! Aggregates of one term over a scope and a period, following the metric's additivity
//! (KPIS.md rule 2).

use std::hash::{BuildHasherDefault, Hasher};

use kpipe_core::Additivity;

use crate::period::Grain;

/// A unique metric had several rows for one entity and day (a breakdown): they cannot be summed.
const MULTI: u8 = 1;
/// A sum left the representable range.
const OVERFLOW: u8 = 2;
/// The period has a starting value (the snapshot on the day before it).
const HAS_START: u8 = 4;

/// One term over one scope and one period.
///
/// - sum: the sum of the days' values;
/// - unique: a value only where exactly one row gives it (one entity, one day, no breakdown);
/// - snapshot: the value of the period's last day with data (summed over the scope's entities
///   on that day), and `start`, the same on the day before the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Agg {
    pub sum: i128,
    pub start: i128,
    /// Contributions: entity-days.
    pub n: u32,
    /// For snapshots: the day of `sum`, as days since 1970.
    pub last_date: i32,
    flags: u8,
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
            self.flags |= OVERFLOW;
        }
        match additivity {
            Additivity::Snapshot => {
                if self.n == 0 || date > self.last_date {
                    self.last_date = date;
                    self.sum = value;
                } else if date == self.last_date {
                    self.add_sum(value);
                }
            }
            Additivity::Unique => {
                if !single {
                    self.flags |= MULTI;
                }
                self.add_sum(value);
            }
            Additivity::Sum => self.add_sum(value),
        }
        self.n += 1;
    }

    /// Nothing was added: every added day counts in `n`, and a start sets `HAS_START`.
    pub fn is_empty(&self) -> bool {
        self.n == 0 && self.flags & HAS_START == 0
    }

    /// Adds a snapshot of the day before the period.
    pub fn add_start(&mut self, value: i128) {
        match self.start.checked_add(value) {
            Some(s) => self.start = s,
            None => self.flags |= OVERFLOW,
        }
        self.flags |= HAS_START;
    }

    fn add_sum(&mut self, value: i128) {
        match self.sum.checked_add(value) {
            Some(s) => self.sum = s,
            None => self.flags |= OVERFLOW,
        }
    }

    /// Combines the aggregates of two parts of a scope.
    pub fn merge(&mut self, additivity: Additivity, other: &Agg) {
        self.flags |= other.flags;
        if other.flags & HAS_START != 0 {
            self.add_start(other.start);
        }
        if other.n == 0 {
            return;
        }
        if additivity == Additivity::Snapshot {
            if self.n == 0 || other.last_date > self.last_date {
                self.last_date = other.last_date;
                self.sum = other.sum;
            } else if other.last_date == self.last_date {
                self.add_sum(other.sum);
            }
        } else {
            self.add_sum(other.sum);
        }
        self.n += other.n;
    }

    /// The same aggregate with its amounts converted by `convert`.
    pub fn converted(&self, convert: impl Fn(i128) -> Option<i128>) -> Agg {
        let mut out = *self;
        match (convert(self.sum), convert(self.start)) {
            (Some(sum), Some(start)) => {
                out.sum = sum;
                out.start = start;
            }
            _ => out.flags |= OVERFLOW,
        }
        out
    }

    /// Its value in a formula, at `grain`; `start` reads the snapshot before the period.
    pub fn value(&self, additivity: Additivity, grain: Grain, start: bool) -> Val {
        if start {
            return if self.flags & HAS_START != 0 && self.flags & OVERFLOW == 0 {
                Val::Value(self.start)
            } else if self.n > 0 || self.flags & HAS_START != 0 {
                Val::Null
            } else {
                Val::Missing
            };
        }
        if self.n == 0 {
            return Val::Missing;
        }
        if self.flags & OVERFLOW != 0 {
            return Val::Null;
        }
        match additivity {
            // Never summed across days or entities: only a single row is a value.
            Additivity::Unique if grain != Grain::Day || self.n != 1 || self.flags & MULTI != 0 => Val::Null,
            _ => Val::Value(self.sum),
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

    #[test]
    fn additivity_rules() {
        let mut sum = Agg::default();
        sum.add(Additivity::Sum, 1, 5, true, false);
        sum.add(Additivity::Sum, 2, 7, false, false);
        assert_eq!(sum.value(Additivity::Sum, Grain::Week, false), Val::Value(12));

        let mut reach = Agg::default();
        reach.add(Additivity::Unique, 1, 5, true, false);
        assert_eq!(reach.value(Additivity::Unique, Grain::Day, false), Val::Value(5));
        assert_eq!(reach.value(Additivity::Unique, Grain::Week, false), Val::Null);
        reach.add(Additivity::Unique, 1, 6, true, false);
        assert_eq!(reach.value(Additivity::Unique, Grain::Day, false), Val::Null, "two entities");
        let mut broken_down = Agg::default();
        broken_down.add(Additivity::Unique, 1, 5, false, false);
        assert_eq!(broken_down.value(Additivity::Unique, Grain::Day, false), Val::Null);

        let mut followers = Agg::default();
        followers.add_start(90);
        followers.add(Additivity::Snapshot, 1, 100, true, false);
        followers.add(Additivity::Snapshot, 3, 120, true, false);
        followers.add(Additivity::Snapshot, 3, 30, true, false);
        assert_eq!(followers.value(Additivity::Snapshot, Grain::Month, false), Val::Value(150));
        assert_eq!(followers.value(Additivity::Snapshot, Grain::Month, true), Val::Value(90));
        let mut other = Agg::default();
        other.add(Additivity::Snapshot, 2, 1000, true, false);
        followers.merge(Additivity::Snapshot, &other);
        assert_eq!(
            followers.value(Additivity::Snapshot, Grain::Month, false),
            Val::Value(150),
            "day 3 is later"
        );
        assert_eq!(Agg::default().value(Additivity::Snapshot, Grain::Day, true), Val::Missing);
        let mut no_start = Agg::default();
        no_start.add(Additivity::Snapshot, 1, 100, true, false);
        assert_eq!(no_start.value(Additivity::Snapshot, Grain::Day, true), Val::Null);
    }

    #[test]
    fn overflow_gives_no_value() {
        let mut a = Agg::default();
        a.add(Additivity::Sum, 1, i128::MAX, true, false);
        a.add(Additivity::Sum, 1, 1, true, false);
        assert_eq!(a.value(Additivity::Sum, Grain::Day, false), Val::Null);
    }
}
