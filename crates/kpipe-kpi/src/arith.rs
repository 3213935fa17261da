//! Exact arithmetic on decimal units (value × 10^18, as in [`kpipe_core::Decimal`]) beyond
//! addition: a product or a quotient, computed on 256 bits and rounded once, half to even, to
//! 18 decimals. Half to even because it has no bias: over many KPI rows, ties round up as often
//! as down.

/// 10^18: the units of 1.
pub(crate) const ONE: i128 = 1_000_000_000_000_000_000;

/// Largest magnitude of `DECIMAL(38, 18)`: 10^38 - 1 units.
const MAX_UNITS: u128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// `a × b / c`, rounded half to even; `None` when `c` is zero or the result does not fit
/// `DECIMAL(38, 18)`.
pub(crate) fn mul_div(a: i128, b: i128, c: i128) -> Option<i128> {
    if c == 0 {
        return None;
    }
    let negative = ((a < 0) != (b < 0)) != (c < 0);
    let (hi, lo) = mul_wide(a.unsigned_abs(), b.unsigned_abs());
    let d = c.unsigned_abs();
    let (mut q, r) = div_wide(hi, lo, d)?;
    // Half to even: compare the remainder with what is left to the divisor, without 2r
    // overflowing.
    let rest = d - r;
    if r > rest || (r == rest && q & 1 == 1) {
        q = q.checked_add(1)?;
    }
    if q > MAX_UNITS {
        return None;
    }
    let q = i128::try_from(q).ok()?;
    Some(if negative { -q } else { q })
}

/// The quotient `num / den` of two decimals in units, rounded half to even.
pub(crate) fn div(num: i128, den: i128) -> Option<i128> {
    mul_div(num, ONE, den)
}

/// The product of two decimals in units, rounded half to even.
pub(crate) fn mul(a: i128, b: i128) -> Option<i128> {
    mul_div(a, b, ONE)
}

/// The 256-bit product of two 128-bit numbers as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Sum of the middle terms and the carry out of the low half, each below 2^66.
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let lo = (p00 & MASK) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// `(hi·2^128 + lo) / d` as (quotient, remainder); `None` when the quotient needs more than 128
/// bits.
fn div_wide(hi: u128, lo: u128, d: u128) -> Option<(u128, u128)> {
    if hi >= d {
        return None;
    }
    if hi == 0 {
        return Some((lo / d, lo % d));
    }
    // Long division in digits of as many bits as `d` leaves free: the remainder stays below `d`,
    // so shifting it by that many bits cannot overflow, and each digit is one 128-bit division.
    // KPI denominators are far below 2^127: a few digits instead of 128 one-bit steps.
    let free = d.leading_zeros();
    if free == 0 {
        return Some(div_wide_bits(hi, lo, d));
    }
    let mut r = hi;
    let mut q: u128 = 0;
    let mut left = 128;
    while left > 0 {
        let step = free.min(left);
        left -= step;
        let digit = (lo >> left) & ((1u128 << step) - 1);
        let n = (r << step) | digit;
        q = (q << step) | (n / d);
        r = n % d;
    }
    Some((q, r))
}

/// [`div_wide`] one bit at a time, for divisors of 128 bits; `hi < d`.
fn div_wide_bits(hi: u128, lo: u128, d: u128) -> (u128, u128) {
    // The bit shifted out of the remainder says it exceeded 2^128 for a moment, which is then
    // certainly at least `d`.
    let mut r = hi;
    let mut q: u128 = 0;
    for i in (0..128).rev() {
        let carry = r >> 127;
        r = (r << 1) | ((lo >> i) & 1);
        if carry == 1 || r >= d {
            r = r.wrapping_sub(d);
            q |= 1 << i;
        }
    }
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> i128 {
        s.parse::<kpipe_core::Decimal>().unwrap().units()
    }

    #[test]
    fn quotients_round_half_to_even() {
        assert_eq!(div(units("1"), units("3")), Some(333_333_333_333_333_333));
        assert_eq!(div(units("2"), units("3")), Some(666_666_666_666_666_667));
        assert_eq!(div(units("-2"), units("3")), Some(-666_666_666_666_666_667));
        assert_eq!(div(units("2"), units("-3")), Some(-666_666_666_666_666_667));
        // 0.5e-18 is a tie: to the even neighbour.
        assert_eq!(div(1, units("2")), Some(0));
        assert_eq!(div(3, units("2")), Some(2));
        assert_eq!(div(5, units("2")), Some(2));
        assert_eq!(div(units("1"), 0), None);
    }

    #[test]
    fn large_values_use_the_full_width() {
        // 10^19 / 3: the product 10^37 × 10^18 needs 186 bits.
        assert_eq!(
            div(units("10000000000000000000"), units("3")),
            Some(units("3333333333333333333.333333333333333333"))
        );
        let big = units("99999999999999999999.999999999999999999");
        assert_eq!(div(big, units("1")), Some(big));
        assert_eq!(div(big, units("0.5")), None, "out of DECIMAL(38, 18)");
        assert_eq!(mul(units("1234.5"), units("1000")), Some(units("1234500")));
        assert_eq!(mul(units("0.000000000000000001"), units("0.5")), Some(0));
        assert_eq!(mul(units("0.000000000000000003"), units("0.5")), Some(2));
    }

    #[test]
    fn digit_division_matches_bit_division() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let wide = |a: u64, b: u64| (u128::from(a) << 64) | u128::from(b);
        for bits in 1..=127u32 {
            for _ in 0..20 {
                let d = (wide(next(), next()) >> (128 - bits)) | (1 << (bits - 1));
                let hi = wide(next(), next()) % d;
                let lo = wide(next(), next());
                assert_eq!(div_wide(hi, lo, d), Some(div_wide_bits(hi, lo, d)), "{hi} {lo} {d}");
            }
        }
        let d = u128::MAX - 5;
        assert_eq!(div_wide(d - 1, 77, d), Some(div_wide_bits(d - 1, 77, d)));
    }

    #[test]
    fn wide_multiplication_matches_a_reference() {
        let cases = [(u128::MAX, u128::MAX), (u128::MAX, 2), (1 << 100, 1 << 100), (12345, 67890)];
        for (a, b) in cases {
            let (hi, lo) = mul_wide(a, b);
            // Check through the division: (a·b) / b == a.
            if b != 0 {
                assert_eq!(div_wide(hi, lo, b), Some((a, 0)), "{a} {b}");
            }
        }
    }
}
