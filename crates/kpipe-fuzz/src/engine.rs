//! The mutation engine: a seeded xorshift generator and the mutations applied to seed inputs.
//!
//! Input `i` of a run is a pure function of the run's seed and `i` (no corpus grows from
//! feedback), so any input can be made again from its number alone: that is how an input that
//! killed the process is found after the fact, and how a hang's input is written out by the
//! watchdog while the parser is still stuck in it.

/// xorshift64* : small, fast and good enough to pick mutations; never zero.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    /// The generator of input `index` of a run seeded with `seed`.
    pub fn for_input(seed: u64, index: u64) -> Rng {
        Rng::new(mix(seed ^ mix(index.wrapping_add(0x9e37_79b9_7f4a_7c15))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// splitmix64's finaliser: spreads nearby seeds and indexes over the whole state.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Tokens that move a parser between its states: JSON and TOML structure, CSV separators and
/// quotes, formula operators, and values at the edges of what numbers and dates can hold.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"\"",
    b"'",
    b",",
    b":",
    b"=",
    b"\n",
    b"\r\n",
    b"\r",
    b"\t",
    b" ",
    b";",
    b"|",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\"\"",
    b"{}",
    b"[]",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-0",
    b"-1",
    b"1e309",
    b"-1e309",
    b"1e-400",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"Infinity",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"9223372036854775807",
    b"4294967296",
    b"99999999999999999999999999999999999999999999999999",
    b"0.000000000000000000000000000001",
    b"1.7976931348623157e308",
    b"2147483648",
    b"0x10",
    b"1_000",
    b"+1",
    b"00",
    b".5",
    b"5.",
    b"9999-12-31",
    b"0000-01-01",
    b"+262143-12-31",
    b"2024-02-30",
    b"2024-13-01",
    b"1970-01-01T00:00:00Z",
    b"20240501",
    b"99991231",
    b"T24:00:00",
    b"+99:99",
    b"-00:00",
    b"${",
    b"${X}",
    b"${NAME}",
    b"$$",
    b"#",
    b"(",
    b")",
    b"/",
    b"*",
    b"+",
    b"-",
    b"^",
    b"%",
    b"if(",
    b"start(",
    b"sum(",
    b"==",
    b"!=",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x98\x80",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x00",
    b"\x7f",
    b"urn:li:sponsoredCampaign:",
    b"act_",
    b"\"\"\"",
    b"'''",
];

/// At most this many bytes: a parser's cost grows with its input, and the budget is per input.
pub const MAX_LEN: usize = 64 * 1024;

/// `base` changed by one to eight mutations; `others` are the inputs splices take from.
pub fn mutate(rng: &mut Rng, base: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut data = base.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, others);
        if data.len() > MAX_LEN {
            data.truncate(MAX_LEN);
        }
    }
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(14) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.below(len);
            if let Some(b) = data.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        // Replace a byte with any byte.
        1 if len > 0 => {
            let at = rng.below(len);
            if let Some(b) = data.get_mut(at) {
                *b = rng.next_u64() as u8;
            }
        }
        // Insert random bytes.
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Delete a run.
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            data.drain(at..at + n);
        }
        // Truncate.
        4 if len > 0 => data.truncate(rng.below(len)),
        // Repeat a chunk: deep nesting, long lines, many records.
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let chunk = data[at..at + n].to_vec();
            let most = if rng.one_in(8) { 512 } else { 16 };
            let times = 1 + rng.below(most);
            let mut repeated = Vec::with_capacity(n * times);
            for _ in 0..times {
                repeated.extend_from_slice(&chunk);
            }
            data.splice(at..at, repeated);
        }
        // Splice a piece of another input in, at the same place or anywhere.
        6 | 7 => {
            if let Some(other) = rng.pick(others)
                && !other.is_empty()
            {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(512));
                let at = rng.below(len + 1);
                let cut = if rng.one_in(2) { (len - at).min(n) } else { 0 };
                data.splice(at..at + cut, other[from..from + n].iter().copied());
            }
        }
        // Swap two bytes.
        8 if len > 1 => {
            let (a, b) = (rng.below(len), rng.below(len));
            data.swap(a, b);
        }
        // A digit or a number changed: values at the edges of their types.
        9 => {
            let digits: Vec<usize> =
                data.iter().enumerate().filter(|(_, b)| b.is_ascii_digit()).map(|(i, _)| i).collect();
            if let Some(&at) = rng.pick(&digits) {
                let end = data[at..].iter().position(|b| !b.is_ascii_digit()).map_or(data.len(), |p| at + p);
                let token = rng.pick(TOKENS).copied().unwrap_or(b"0");
                data.splice(at..end, token.iter().copied());
            }
        }
        // Overwrite a byte run with a token.
        10 if len > 0 => {
            let at = rng.below(len);
            let n = rng.below((len - at).min(8));
            let token = rng.pick(TOKENS).copied().unwrap_or(b"");
            data.splice(at..at + n, token.iter().copied());
        }
        // Duplicate a line (or a record).
        11 => {
            let lines: Vec<usize> =
                data.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
            if lines.len() >= 2 {
                let i = rng.below(lines.len() - 1);
                let line = data[lines[i] + 1..=lines[i + 1]].to_vec();
                let at = lines[rng.below(lines.len())] + 1;
                data.splice(at..at, line);
            }
        }
        // Insert a structure token.
        _ => {
            let at = rng.below(len + 1);
            let token = rng.pick(TOKENS).copied().unwrap_or(b"");
            data.splice(at..at, token.iter().copied());
        }
    }
}
