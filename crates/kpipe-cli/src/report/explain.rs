//! Why a KPI has no value where the report shows one empty (docs/schema.md, "No value"): a
//! zero denominator, a unique metric that the period or the scope does not have, a starting
//! snapshot that is missing, or a part of the formula without data.

use std::fmt;

use kpipe_core::{Additivity, Metric};
use kpipe_kpi::{Grain, KpiRow, Scope};

/// The reason a KPI value is empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoValue {
    /// The denominator summed to zero (rule 3: no value rather than infinity or zero).
    ZeroDenominator {
        /// The denominator as the formula writes it (`impressions`).
        denominator: String,
    },
    /// A unique metric (reach, users) over a week or month without a period row: people are
    /// not summed over days.
    NoPeriodUnique {
        /// The unique metrics of the formula.
        metrics: Vec<String>,
    },
    /// A unique metric over a week or month of several accounts (a platform, all platforms):
    /// people are summed neither over days nor over accounts.
    NoBlendedPeriodUnique {
        /// The unique metrics of the formula.
        metrics: Vec<String>,
    },
    /// A unique metric over several accounts, entities or breakdown rows of a day: people are
    /// not added up across them.
    UniqueNotAdded {
        /// The unique metrics of the formula.
        metrics: Vec<String>,
    },
    /// `start(m)` has no value: no snapshot the day before the period.
    NoStartingSnapshot {
        /// The snapshot metric.
        metric: String,
    },
    /// A part of the formula has no data in the period and scope (ROI without revenue).
    MissingPart {
        /// The part without data, as the formula writes it, when it can be told.
        part: Option<String>,
    },
    /// No row at all for the period: nothing was stored for this KPI and scope then.
    NoRow,
}

impl fmt::Display for NoValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoValue::ZeroDenominator { denominator } => {
                write!(f, "no value: zero denominator ({denominator} = 0)")
            }
            NoValue::NoPeriodUnique { metrics } => write!(
                f,
                "no value: no period unique ({} {} not summed over days)",
                metrics.join("/"),
                if metrics.len() == 1 { "is" } else { "are" }
            ),
            NoValue::NoBlendedPeriodUnique { metrics } => write!(
                f,
                "no value: no period unique over several accounts ({} {} not summed over days or accounts)",
                metrics.join("/"),
                if metrics.len() == 1 { "is" } else { "are" }
            ),
            NoValue::UniqueNotAdded { metrics } => write!(
                f,
                "no value: {} {} not added up across accounts, entities or breakdowns (one person \
                 may be counted twice)",
                metrics.join("/"),
                if metrics.len() == 1 { "is" } else { "are" }
            ),
            NoValue::NoStartingSnapshot { metric } => write!(
                f,
                "no value: no starting {metric} (no {metric} snapshot on the day before the period)"
            ),
            NoValue::MissingPart { part: Some(part) } => {
                write!(f, "no value: {part} has no data in this period")
            }
            NoValue::MissingPart { part: None } => {
                f.write_str("no value: a part of the formula has no data in this period")
            }
            NoValue::NoRow => f.write_str("no data: nothing stored for this period"),
        }
    }
}

/// Why `row` has no value, or `None` when it has one. `formula` is the KPI's formula as the
/// catalog writes it, when the KPI is still defined.
pub fn explain(row: &KpiRow, formula: Option<&str>) -> Option<NoValue> {
    if row.value.is_some() {
        return None;
    }
    let (num_text, den_text) = match formula {
        Some(f) => split_fraction(f),
        None => (String::new(), None),
    };
    if row.denominator.is_some_and(|d| d.units() == 0) {
        return Some(NoValue::ZeroDenominator {
            denominator: den_text.unwrap_or_else(|| "the denominator".to_owned()),
        });
    }
    let whole = formula.unwrap_or_default();
    // The part without data: the numerator, the denominator, or both.
    let missing = match (row.numerator.is_none(), row.denominator.is_none() && den_text.is_some()) {
        (true, true) => whole.to_owned(),
        (false, true) => den_text.clone().unwrap_or_default(),
        (true, false) => num_text.clone(),
        (false, false) => String::new(),
    };
    if let Some(metric) =
        started_metric(&missing).or_else(|| started_metric(whole).filter(|_| missing.is_empty()))
    {
        return Some(NoValue::NoStartingSnapshot { metric });
    }
    let mut uniques = unique_metrics(&missing);
    if uniques.is_empty() {
        uniques = unique_metrics(whole);
    }
    if !uniques.is_empty() {
        return Some(match row.grain {
            Grain::Week | Grain::Month if is_blended(row.scope) => {
                NoValue::NoBlendedPeriodUnique { metrics: uniques }
            }
            Grain::Week | Grain::Month => NoValue::NoPeriodUnique { metrics: uniques },
            Grain::Day => NoValue::UniqueNotAdded { metrics: uniques },
        });
    }
    let part = (!missing.is_empty()).then(|| strip_parens(&missing).to_owned());
    Some(NoValue::MissingPart { part })
}

/// The reason given for a scope and period without any row (`NoRow`), or for an entity scope
/// when the KPI never had data there.
pub fn no_row() -> NoValue {
    NoValue::NoRow
}

/// True when the KPI's formula reads a unique metric or a starting snapshot: its value over a
/// platform or over all platforms may not exist, and its values per account are worth showing.
pub fn needs_single_counts(formula: &str) -> bool {
    !unique_metrics(formula).is_empty() || started_metric(formula).is_some()
}

/// Whether a scope is one over several accounts (where unique counts are never added).
pub fn is_blended(scope: Scope) -> bool {
    matches!(scope, Scope::Platform | Scope::All)
}

/// The numerator and denominator texts of a formula, split at its top-level `/`; the
/// denominator without the constant factors that follow it (`impressions * 1000` gives
/// `impressions`).
pub fn split_fraction(formula: &str) -> (String, Option<String>) {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in formula.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, '/' | '\u{f7}') if depth == 0 => {
                let numerator = formula[..i].trim().to_owned();
                let rest = formula[i + c.len_utf8()..].trim();
                return (numerator, Some(strip_constant_factors(rest).to_owned()));
            }
            _ => {}
        }
    }
    (formula.trim().to_owned(), None)
}

/// `x * 1000` -> `x`: the trailing top-level products and quotients by numbers.
fn strip_constant_factors(text: &str) -> &str {
    let mut text = text.trim();
    loop {
        let Some(at) = text.rfind(['*', '/', '\u{d7}', '\u{f7}']) else { return text };
        let tail = text[at..].chars().skip(1).collect::<String>();
        let tail = tail.trim();
        if !tail.is_empty() && tail.parse::<f64>().is_ok() {
            text = text[..at].trim_end();
        } else {
            return text;
        }
    }
}

/// `(a + b)` -> `a + b`, when the parentheses enclose the whole text.
fn strip_parens(text: &str) -> &str {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        let mut depth = 0i32;
        for c in inner.chars() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return t,
                ')' => depth -= 1,
                _ => {}
            }
        }
        return inner.trim();
    }
    t
}

/// The names of a formula outside filters (`[...]`) and quotes, in order, each once.
fn names(formula: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut word = String::new();
    for c in formula.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        let in_word = c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if in_word && depth == 0 {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            // A name followed by `(` is a function: `start(`, `coalesce(`.
            let called = c == '(';
            if !out.iter().any(|(w, f)| *w == word && *f == called) {
                out.push((std::mem::take(&mut word), called));
            }
            word.clear();
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
    }
    if !word.is_empty() && !out.iter().any(|(w, _)| *w == word) {
        out.push((word, false));
    }
    out
}

/// The unique metrics (reach, users, ...) a formula reads.
fn unique_metrics(formula: &str) -> Vec<String> {
    names(formula)
        .into_iter()
        .filter(|(_, called)| !called)
        .filter(|(n, _)| Metric::from_name(n).is_some_and(|m| m.additivity() == Additivity::Unique))
        .map(|(n, _)| n)
        .collect()
}

/// The metric of the formula's `start(m)`, if any.
fn started_metric(formula: &str) -> Option<String> {
    let at = formula.find("start(")?;
    let rest = &formula[at + "start(".len()..];
    let end = rest.find(')')?;
    Some(rest[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use kpipe_core::{Decimal, Label, Unit};
    use kpipe_kpi::Stage;

    use super::*;

    fn row(grain: Grain, scope: Scope, num: Option<i64>, den: Option<i64>) -> KpiRow {
        let day = kpipe_core::NaiveDate::from_ymd_opt(2026, 10, 5).unwrap_or_default();
        KpiRow {
            kpi: Label::new("k"),
            grain,
            period_start: day,
            period_end: day,
            scope,
            platform: Some(Label::new("linkedin")),
            source: None,
            account_id: None,
            level: None,
            entity_id: None,
            value: None,
            numerator: num.map(Decimal::from_i64),
            denominator: den.map(Decimal::from_i64),
            unit: Unit::Ratio,
            currency: None,
            stage: Stage::Consideration,
        }
    }

    #[test]
    fn zero_denominator_names_the_denominator() {
        let r = row(Grain::Day, Scope::Platform, Some(3), Some(0));
        let why = explain(&r, Some("spend / impressions * 1000"));
        assert_eq!(why, Some(NoValue::ZeroDenominator { denominator: "impressions".into() }));
        assert_eq!(
            why.map(|w| w.to_string()).as_deref(),
            Some("no value: zero denominator (impressions = 0)")
        );
        let nps = "(nps_promoters - nps_detractors) / (nps_promoters + nps_passives + nps_detractors) * 100";
        let why = explain(&r, Some(nps)).map(|w| w.to_string());
        assert_eq!(
            why.as_deref(),
            Some("no value: zero denominator ((nps_promoters + nps_passives + nps_detractors) = 0)")
        );
        assert_eq!(
            explain(&r, None).map(|w| w.to_string()).as_deref(),
            Some("no value: zero denominator (the denominator = 0)")
        );
    }

    #[test]
    fn unique_metrics_over_weeks_and_over_accounts() {
        let week = row(Grain::Week, Scope::Account, Some(10), None);
        assert_eq!(
            explain(&week, Some("impressions / reach")).map(|w| w.to_string()).as_deref(),
            Some("no value: no period unique (reach is not summed over days)")
        );
        let platform = row(Grain::Week, Scope::Platform, Some(10), None);
        assert_eq!(
            explain(&platform, Some("impressions / reach")).map(|w| w.to_string()).as_deref(),
            Some(
                "no value: no period unique over several accounts (reach is not summed over days or accounts)"
            )
        );
        let both = row(Grain::Month, Scope::Entity, None, None);
        assert_eq!(
            explain(&both, Some("returning_users / users")),
            Some(NoValue::NoPeriodUnique { metrics: vec!["returning_users".into(), "users".into()] })
        );
        let day = row(Grain::Day, Scope::All, Some(10), None);
        let why = explain(&day, Some("spend / reach")).map(|w| w.to_string()).unwrap_or_default();
        assert!(why.starts_with("no value: reach is not added up across accounts"), "{why}");
    }

    #[test]
    fn starting_snapshot_and_missing_parts() {
        let r = row(Grain::Month, Scope::Account, Some(4), None);
        assert_eq!(
            explain(&r, Some("follower_gains / start(followers)")),
            Some(NoValue::NoStartingSnapshot { metric: "followers".into() })
        );
        let roi = row(Grain::Week, Scope::Platform, None, Some(100));
        assert_eq!(
            explain(&roi, Some("(revenue - spend) / spend")).map(|w| w.to_string()).as_deref(),
            Some("no value: revenue - spend has no data in this period")
        );
        // A filter's column names and values are not metrics.
        assert!(unique_metrics("sessions[channel = 'users' | \"reach\"] / sessions").is_empty());
        let mut valued = row(Grain::Week, Scope::All, Some(1), Some(2));
        valued.value = Some(Decimal::from_i64(1));
        assert_eq!(explain(&valued, Some("clicks / impressions")), None);
        assert_eq!(no_row().to_string(), "no data: nothing stored for this period");
    }
}
