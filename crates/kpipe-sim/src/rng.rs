//! A small deterministic pseudo-random number generator (SplitMix64).
//!
//! There is no global state: every consumer derives its own generator from the server seed and a
//! stream label (and usually a counter), so the same seed gives the same responses whatever the
//! order in which unrelated requests arrive.

/// The SplitMix64 finalizer: a bijective 64-bit mix with good avalanche.
#[must_use]
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a hash of a label, used to turn stream names into numbers.
#[must_use]
pub const fn hash_label(label: &str) -> u64 {
    let bytes = label.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator: tiny, fast, deterministic, not cryptographic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one independent stream: `seed` mixed with a `label` and an `index`
    /// (e.g. `("latency", request_number)`).
    #[must_use]
    pub const fn derive(seed: u64, label: &str, index: u64) -> Self {
        let a = mix64(seed ^ hash_label(label));
        Self { state: mix64(a ^ mix64(index.wrapping_add(GOLDEN))) }
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// A float uniformly distributed in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // 53 random bits: the mantissa of an f64.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An integer in `[low, high)`; `low` when the range is empty.
    pub const fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// `n` random bytes written as lowercase hex (`2 * n` characters).
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n * 2);
        let mut left = n;
        while left > 0 {
            let word = self.next_u64().to_le_bytes();
            for byte in word.iter().take(left.min(8)) {
                out.push(hex_digit(byte >> 4));
                out.push(hex_digit(byte & 0x0f));
            }
            left = left.saturating_sub(8);
        }
        out
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SimRng::new(42);
        let mut b = SimRng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SimRng::new(1).next_u64(), SimRng::new(2).next_u64());
    }

    #[test]
    fn derived_streams_differ_by_label_and_index() {
        let x = SimRng::derive(7, "latency", 1).next_u64();
        assert_eq!(x, SimRng::derive(7, "latency", 1).next_u64());
        assert_ne!(x, SimRng::derive(7, "latency", 2).next_u64());
        assert_ne!(x, SimRng::derive(7, "token", 1).next_u64());
        assert_ne!(x, SimRng::derive(8, "latency", 1).next_u64());
    }

    #[test]
    fn floats_and_ranges_stay_in_bounds() {
        let mut rng = SimRng::new(3);
        for _ in 0..10_000 {
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
            let r = rng.range(150, 600);
            assert!((150..600).contains(&r));
        }
        assert_eq!(rng.range(5, 5), 5);
    }

    #[test]
    fn hex_has_the_requested_length() {
        let mut rng = SimRng::new(9);
        assert_eq!(rng.hex(16).len(), 32);
        assert_eq!(rng.hex(5).len(), 10);
        assert!(rng.hex(12).chars().all(|c| c.is_ascii_hexdigit()));
    }
}
