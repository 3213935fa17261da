//! Exact decimal values.
//!
//! Platforms report money as decimal strings (`"24.457317520310493"`, even `"-2E-18"`). A binary
//! float cannot hold those exactly, so every metric value is a fixed-point number with 18
//! fractional digits, stored as an `i128`. That is also the Parquet column type
//! (`DECIMAL(38, 18)`), so what an API sent is what a warehouse reads.

use std::fmt;
use std::str::FromStr;

/// Digits after the decimal point that every [`Decimal`] carries.
pub const SCALE: u32 = 18;
/// Total significant digits a [`Decimal`] can hold (the Parquet/Arrow precision).
pub const PRECISION: u8 = 38;

const ONE: i128 = 1_000_000_000_000_000_000;
/// Largest magnitude that fits `DECIMAL(38, 18)`: 10^38 - 1 units.
const MAX_UNITS: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// An exact decimal number with 18 fractional digits (`DECIMAL(38, 18)`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(i128);

/// Why a text could not be read as a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The text is not a decimal number.
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    /// The number has more fractional digits than can be kept exactly.
    #[error("`{0}` has more than {SCALE} digits after the decimal point and cannot be stored exactly")]
    TooPrecise(String),
    /// The number is too large.
    #[error("`{0}` is too large (at most 20 digits before the decimal point)")]
    OutOfRange(String),
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal(0);

    /// The value from its raw representation: `units` / 10^18.
    pub const fn from_units(units: i128) -> Option<Decimal> {
        if units > MAX_UNITS || units < -MAX_UNITS { None } else { Some(Decimal(units)) }
    }

    /// The raw representation: the value times 10^18.
    pub const fn units(self) -> i128 {
        self.0
    }

    /// A whole number.
    pub const fn from_i64(v: i64) -> Decimal {
        Decimal(v as i128 * ONE)
    }

    /// The sum, or `None` when it leaves the representable range.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        self.0.checked_add(other.0).and_then(Decimal::from_units)
    }

    /// True for a whole number (no fraction).
    pub const fn is_whole(self) -> bool {
        self.0 % ONE == 0
    }

    /// True for a value below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// True when the value has no fractional part.
    pub const fn is_integer(self) -> bool {
        self.0 % ONE == 0
    }

    /// The nearest `f64`, for display and approximate work only.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / ONE as f64
    }

    /// Reads a float exactly as its shortest round-trip text shows it, so that a JSON number such
    /// as `0.1` becomes the decimal 0.1 and not the binary neighbour of it.
    pub fn from_f64_shortest(v: f64) -> Result<Decimal, DecimalError> {
        if !v.is_finite() {
            return Err(DecimalError::Syntax(v.to_string()));
        }
        format!("{v:?}").parse()
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Accepts `123`, `-1.50`, `.5`, `+2`, `1e3` and `-2E-18`; rejects anything that would lose
    /// digits.
    fn from_str(text: &str) -> Result<Decimal, DecimalError> {
        let syntax = || DecimalError::Syntax(text.to_owned());
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &bytes[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &bytes[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let exp_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let exp_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Saturate: anything this large is out of range or too precise anyway.
                exponent = (exponent * 10 + i64::from(bytes[i] - b'0')).min(1_000_000);
                i += 1;
            }
            if i == exp_start {
                return Err(syntax());
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(syntax());
        }

        // Trailing fractional zeros carry no value; dropping them keeps `1.000…0` in range.
        while let [rest @ .., b'0'] = frac_digits {
            frac_digits = rest;
        }
        let mut mantissa: i128 = 0;
        let mut significant = false;
        for &d in int_digits.iter().chain(frac_digits) {
            if d != b'0' {
                significant = true;
            }
            if significant {
                mantissa = mantissa
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(i128::from(d - b'0')))
                    .ok_or_else(|| DecimalError::OutOfRange(text.to_owned()))?;
            }
        }
        if mantissa == 0 {
            return Ok(Decimal::ZERO);
        }
        // value = mantissa * 10^(exponent - frac_len); units = value * 10^SCALE.
        let shift = exponent - frac_digits.len() as i64 + i64::from(SCALE);
        let units = if shift >= 0 {
            let factor = 10i128
                .checked_pow(u32::try_from(shift).map_err(|_| DecimalError::OutOfRange(text.to_owned()))?)
                .ok_or_else(|| DecimalError::OutOfRange(text.to_owned()))?;
            mantissa.checked_mul(factor).ok_or_else(|| DecimalError::OutOfRange(text.to_owned()))?
        } else {
            let divisor = u32::try_from(-shift)
                .ok()
                .and_then(|s| 10i128.checked_pow(s))
                .ok_or_else(|| DecimalError::TooPrecise(text.to_owned()))?;
            if mantissa % divisor != 0 {
                return Err(DecimalError::TooPrecise(text.to_owned()));
            }
            mantissa / divisor
        };
        let units = if negative { -units } else { units };
        Decimal::from_units(units).ok_or_else(|| DecimalError::OutOfRange(text.to_owned()))
    }
}

impl fmt::Display for Decimal {
    /// The shortest exact text: `24.457317520310493`, `-0.000000000000000002`, `1500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / ONE as u128;
        let frac = abs % ONE as u128;
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:018}");
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

impl From<i64> for Decimal {
    fn from(v: i64) -> Decimal {
        Decimal::from_i64(v)
    }
}

impl From<u32> for Decimal {
    fn from(v: u32) -> Decimal {
        Decimal::from_i64(i64::from(v))
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    /// Accepts strings (exact) and JSON/TOML numbers (integers exactly; floats by their shortest
    /// text).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number or a string holding one")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal::from_i64(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Decimal::from_units(i128::from(v) * ONE)
                    .ok_or_else(|| E::custom(DecimalError::OutOfRange(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                Decimal::from_f64_shortest(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_platform_money_exactly() {
        assert_eq!(d("24.457317520310493").units(), 24_457_317_520_310_493_000);
        assert_eq!(d("24.457317520310493").to_string(), "24.457317520310493");
        assert_eq!(d("-2E-18").units(), -2);
        assert_eq!(d("-2E-18").to_string(), "-0.000000000000000002");
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("1.5E+2").to_string(), "150");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("5.").to_string(), "5");
        assert_eq!(d("+7").to_string(), "7");
        assert_eq!(d("-0").to_string(), "0");
        assert_eq!(d("0012.3400").to_string(), "12.34");
    }

    #[test]
    fn trailing_zeros_beyond_the_scale_are_fine() {
        assert_eq!(d("1.0000000000000000000000000000000000000000000").to_string(), "1");
        assert_eq!(d("12000000000000000000000e-5").to_string(), "120000000000000000");
    }

    #[test]
    fn refuses_to_round() {
        assert!(matches!("0.0000000000000000001".parse::<Decimal>(), Err(DecimalError::TooPrecise(_))));
        assert!(matches!("1E-19".parse::<Decimal>(), Err(DecimalError::TooPrecise(_))));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert!(matches!("1e20".parse::<Decimal>(), Err(DecimalError::OutOfRange(_))));
        assert!("99999999999999999999.999999999999999999".parse::<Decimal>().is_ok());
        assert!(matches!("1e999999999".parse::<Decimal>(), Err(DecimalError::OutOfRange(_))));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "1e+", " 1", "1 ", "NaN", "inf", "1,5", "0x10"] {
            assert!(matches!(bad.parse::<Decimal>(), Err(DecimalError::Syntax(_))), "{bad:?}");
        }
    }

    #[test]
    fn json_numbers_keep_their_text() {
        let v: Decimal = serde_json::from_str("0.1").unwrap();
        assert_eq!(v.to_string(), "0.1");
        let v: Decimal = serde_json::from_str("\"-2E-18\"").unwrap();
        assert_eq!(v.units(), -2);
        let v: Decimal = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(v.to_string(), "18446744073709551615");
        assert_eq!(serde_json::to_string(&d("1.25")).unwrap(), "\"1.25\"");
    }

    #[test]
    fn addition_is_exact() {
        let sum = d("0.1").checked_add(d("0.2")).unwrap();
        assert_eq!(sum, d("0.3"));
        assert!(!sum.is_integer());
        assert!(d("3").is_integer());
    }
}
