//! Numbers for reading: percentages for ratios, currency codes on money, thousands separators,
//! signed changes. The files keep the exact values; the report rounds them for people.

use kpipe_core::Unit;

/// The minus sign of signed numbers (typographic, as in the changes column).
const MINUS: char = '\u{2212}';

/// `x` with `decimals` digits after the point and a `,` between thousands; a value that rounds
/// to zero loses its sign.
pub fn number(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::with_capacity(text.len() + int.len() / 3 + 1);
    let negative = x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative {
        out.push(MINUS);
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A value of `unit` for reading: `1.41%`, `1,234.56 EUR`, `71.3 s`, `25.8`, `4,739,221`.
pub fn value(x: f64, unit: Unit, currency: Option<&str>) -> String {
    match unit {
        Unit::Ratio => format!("{}%", number(x * 100.0, 2)),
        Unit::Currency => match currency {
            Some(code) => format!("{} {code}", number(x, 2)),
            None => number(x, 2),
        },
        Unit::Seconds => format!("{} s", number(x, 1)),
        Unit::Score => number(x, 1),
        Unit::Count if x.fract() == 0.0 => number(x, 0),
        Unit::Count => number(x, 2),
    }
}

/// Which way a value moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher than before.
    Up,
    /// Lower than before.
    Down,
    /// The same, as shown.
    Flat,
}

/// The change from `previous` to `latest`, for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The absolute change, signed: `+0.12 pp` for ratios (percentage points), `−3.10 EUR`.
    pub absolute: String,
    /// The relative change, signed (`+8.5%`); `None` when `previous` is zero.
    pub relative: Option<String>,
    /// Which way it went.
    pub direction: Direction,
}

/// The change from `previous` to `latest` of a KPI of `unit`.
pub fn change(latest: f64, previous: f64, unit: Unit, currency: Option<&str>) -> Change {
    let delta = latest - previous;
    let absolute = match unit {
        Unit::Ratio => format!("{} pp", signed(delta * 100.0, 2)),
        Unit::Currency => match currency {
            Some(code) => format!("{} {code}", signed(delta, 2)),
            None => signed(delta, 2),
        },
        Unit::Seconds => format!("{} s", signed(delta, 1)),
        Unit::Score => signed(delta, 1),
        Unit::Count if delta.fract() == 0.0 => signed(delta, 0),
        Unit::Count => signed(delta, 2),
    };
    let relative = (previous != 0.0).then(|| format!("{}%", signed(delta / previous.abs() * 100.0, 1)));
    let shown_zero = !absolute.chars().any(|c| c.is_ascii_digit() && c != '0');
    let direction = if shown_zero {
        Direction::Flat
    } else if delta > 0.0 {
        Direction::Up
    } else {
        Direction::Down
    };
    Change { absolute, relative, direction }
}

/// `x` with its sign always shown: `+1.20`, `−0.50`, `±0.00`.
pub fn signed(x: f64, decimals: usize) -> String {
    let text = number(x, decimals);
    if text.starts_with(MINUS) || text == "n/a" {
        text
    } else if text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{text}")
    } else {
        format!("\u{b1}{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_thousands_separators_and_no_long_decimals() {
        assert_eq!(number(1234567.0, 0), "1,234,567");
        assert_eq!(number(-1234.5678, 2), "\u{2212}1,234.57");
        assert_eq!(number(-0.001, 2), "0.00");
        assert_eq!(number(12.0, 0), "12");
        assert_eq!(number(999.999, 2), "1,000.00");
    }

    #[test]
    fn values_by_unit() {
        assert_eq!(value(0.014123456789012345, Unit::Ratio, None), "1.41%");
        assert_eq!(value(15.86, Unit::Ratio, None), "1,586.00%");
        assert_eq!(value(1234.5, Unit::Currency, Some("EUR")), "1,234.50 EUR");
        assert_eq!(value(71.2857142857, Unit::Seconds, None), "71.3 s");
        assert_eq!(value(4_739_221.0, Unit::Count, None), "4,739,221");
        assert_eq!(value(82.583333, Unit::Count, None), "82.58");
        assert_eq!(value(25.8064516, Unit::Score, None), "25.8");
    }

    #[test]
    fn changes_are_signed() {
        let c = change(0.0141, 0.0129, Unit::Ratio, None);
        assert_eq!(c.absolute, "+0.12 pp");
        assert_eq!(c.relative.as_deref(), Some("+9.3%"));
        assert_eq!(c.direction, Direction::Up);
        let c = change(10.0, 13.1, Unit::Currency, Some("USD"));
        assert_eq!(c.absolute, "\u{2212}3.10 USD");
        assert_eq!(c.relative.as_deref(), Some("\u{2212}23.7%"));
        assert_eq!(c.direction, Direction::Down);
        let c = change(5.0, 0.0, Unit::Count, None);
        assert_eq!((c.absolute.as_str(), c.relative), ("+5", None));
        let c = change(1.0, 1.0, Unit::Count, None);
        assert_eq!((c.absolute.as_str(), c.direction), ("\u{b1}0", Direction::Flat));
    }
}
