//! Splitting one configuration into shards that run as separate processes: each unit of work, a
//! (source, account) pair, belongs to exactly one shard of `N`, by a hash of the pair that does
//! not depend on the other units (adding an account moves no other) nor on the machine, the
//! Rust release or kpipe's version (the hash is defined here and pinned by tests).
//!
//! The shard of a unit is the jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory,
//! Consistent Hash Algorithm", 2014) of a 64-bit FNV-1a hash of `source`, a NUL byte and the
//! unit: going from `N` to `N + 1` shards moves only the units that the new shard takes (about
//! `1 / (N + 1)` of them), never one between two old shards.

use std::fmt;

/// The most shards a configuration can be split into.
pub const MAX_SHARDS: u32 = 4096;

/// Shard `index` of `count` (`index` from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// `--shard` text that is not `K/N` with `0 <= K < N <= MAX_SHARDS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a shard: {reason}")]
pub struct ShardError {
    text: String,
    reason: String,
}

impl Shard {
    /// The whole configuration: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        let fail = |reason: String| ShardError { text: format!("{index}/{count}"), reason };
        if count == 0 || count > MAX_SHARDS {
            return Err(fail(format!("the number of shards must be 1 to {MAX_SHARDS}")));
        }
        if index >= count {
            return Err(fail(format!("shards are numbered from 0 to {} (N - 1)", count - 1)));
        }
        Ok(Shard { index, count })
    }

    /// Reads `K/N`, such as `0/8` (shards are numbered from 0, as Kubernetes' indexed jobs and
    /// Airflow's mapped tasks number them).
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let fail = |reason: &str| ShardError { text: text.to_owned(), reason: reason.to_owned() };
        let (k, n) = text.trim().split_once('/').ok_or_else(|| fail("expected K/N, such as 0/8"))?;
        let k: u32 = k.trim().parse().map_err(|_| fail("K is not a whole number"))?;
        let n: u32 = n.trim().parse().map_err(|_| fail("N is not a whole number"))?;
        Shard::new(k, n).map_err(|e| ShardError { text: text.to_owned(), reason: e.reason })
    }

    /// The shard's number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this is the whole configuration (one shard).
    pub fn is_all(self) -> bool {
        self.count == 1
    }

    /// Whether the unit `unit` of `source` belongs to this shard. A source without units of its
    /// own (one portal, a set of files) is one unit, named by the empty string.
    pub fn owns(self, source: &str, unit: &str) -> bool {
        self.count == 1 || shard_of(source, unit, self.count) == self.index
    }

    /// What names of the shard's objects carry: `None` for the whole configuration (its names
    /// are those of an unsharded run), `-KofN` otherwise. Source names are snake_case, so the
    /// `-` cannot be part of one; and it is one of the characters object stores keep as they
    /// are in keys (`~`, say, is escaped).
    pub fn tag(self) -> Option<String> {
        (!self.is_all()).then(|| format!("-{}of{}", self.index, self.count))
    }

    /// Reads a [`Shard::tag`] (`-KofN`).
    pub fn from_tag(tag: &str) -> Option<Shard> {
        let (k, n) = tag.strip_prefix('-')?.split_once("of")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
        let k_ok = k == "0" || digits(k);
        if !k_ok || !digits(n) {
            return None;
        }
        let shard = Shard::new(k.parse().ok()?, n.parse().ok()?).ok()?;
        (!shard.is_all()).then_some(shard)
    }
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard, of `count`, that unit `unit` of `source` belongs to.
pub fn shard_of(source: &str, unit: &str, count: u32) -> u32 {
    jump_hash(unit_hash(source, unit), count.max(1))
}

/// FNV-1a (64 bits) of `source`, NUL, `unit`.
fn unit_hash(source: &str, unit: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in source.bytes().chain(std::iter::once(0)).chain(unit.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// Jump consistent hash: the bucket of `key` among `buckets`.
fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let shifted = ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / shifted)) as i64;
    }
    u32::try_from(bucket).unwrap_or(0)
}

/// A key of a connector's configuration that lists units of work (ad accounts, pages,
/// properties): shards keep the ones they own.
#[derive(Debug, Clone, Copy)]
pub struct UnitKey {
    /// The key, an array of strings.
    pub key: &'static str,
    /// The unit's name as the rows' `account_id` carries it, from the configured text (which
    /// may have a prefix such as `act_` or a URN): a unit's rows must belong to the shard that
    /// owns it, so that a shard can tell its rows from other shards' in a shared file.
    pub label: fn(&str) -> String,
}

/// A rate limit that the platform counts per application (all of a client id's tokens
/// together), not per account: `N` shards share it, each taking its part of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedRateLimit {
    /// The key of the connector's configuration holding it (`rate_limit`, a table with
    /// `requests`, `per_seconds` and `burst`).
    pub key: &'static str,
    /// Requests per period when the key is not given.
    pub requests: u32,
    /// The period, in seconds, when the key is not given.
    pub per_seconds: f64,
    /// The burst when the key is not given.
    pub burst: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Shard::parse("3/8").unwrap(), Shard::new(3, 8).unwrap());
        assert_eq!(Shard::parse(" 0 / 1 ").unwrap(), Shard::ALL);
        assert_eq!(Shard::new(3, 8).unwrap().to_string(), "3/8");
        for bad in ["8/8", "1", "a/2", "0/0", "-1/2", "1/99999"] {
            let e = Shard::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim()), "{e}");
        }
        assert!(Shard::parse("8/8").unwrap_err().to_string().contains("0 to 7"));
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(Shard::ALL.tag(), None);
        let s = Shard::new(3, 8).unwrap();
        assert_eq!(s.tag().as_deref(), Some("-3of8"));
        assert_eq!(Shard::from_tag("-3of8"), Some(s));
        assert_eq!(Shard::from_tag("-0of2"), Some(Shard::new(0, 2).unwrap()));
        for bad in ["-0of1", "-8of8", "-03of8", "3of8", "-3of", "-of8", "-3of08", "-3of8x"] {
            assert_eq!(Shard::from_tag(bad), None, "{bad}");
        }
    }

    /// The assignment is part of the output's contract (a unit's rows are found by it): these
    /// values must never change.
    #[test]
    fn the_assignment_is_pinned() {
        assert_eq!(unit_hash("", ""), 0xaf63_bd4c_8601_b7df);
        assert_eq!(unit_hash("li", "508000001"), {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in b"li\x00508000001" {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        });
        // Published reference values of jump consistent hash.
        assert_eq!(jump_hash(1, 1), 0);
        assert_eq!(jump_hash(0, 10), 0);
        let got: Vec<u32> = (0..8).map(|k| shard_of("li", &format!("50800000{k}"), 8)).collect();
        assert_eq!(got, PINNED, "the shard of a unit changed: outputs written before would be split wrongly");
    }

    const PINNED: [u32; 8] = [6, 3, 0, 1, 1, 4, 4, 0];

    #[test]
    fn every_unit_has_exactly_one_shard_and_growing_moves_few() {
        let units: Vec<String> = (0..5000).map(|i| format!("{}", 100_000 + i * 7)).collect();
        for n in 1..=8u32 {
            let shards: Vec<Shard> = (0..n).map(|k| Shard::new(k, n).unwrap()).collect();
            let mut sizes = vec![0usize; n as usize];
            for u in &units {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns("fb", u)).collect();
                assert_eq!(owners.len(), 1, "{u} of {n}");
                sizes[owners[0].index() as usize] += 1;
            }
            let even = units.len() / n as usize;
            assert!(sizes.iter().all(|s| s.abs_diff(even) < even / 5 + 20), "{n}: {sizes:?}");
        }
        let moved = units.iter().filter(|u| shard_of("fb", u, 8) != shard_of("fb", u, 9)).count();
        assert!(moved < units.len() / 9 + 100, "moved {moved}");
        assert!(units.iter().all(|u| {
            let (a, b) = (shard_of("fb", u, 8), shard_of("fb", u, 9));
            a == b || b == 8
        }));
    }
}
