//! A KPI over one scope and period: term aggregates in, numerator, denominator and value out,
//! with money never added across currencies (KPIS.md rules 3-5).

use crate::agg::{Agg, Val};
use crate::arith;
use crate::catalog::Kpi;
use crate::period::Grain;
use crate::plan::{Node, TermId, Terms};

/// An interned currency; 0 is "no currency" (counts).
pub(crate) type CurrencyId = u16;

/// A term's aggregate in one currency, for one part of a scope (an entity or an account).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub term: TermId,
    pub currency: CurrencyId,
    pub agg: Agg,
}

/// How amounts are converted: per currency id, the currency it is reported in and the rate
/// (units), if it is converted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversion {
    pub to: Vec<Option<(CurrencyId, i128)>>,
}

impl Conversion {
    fn target(&self, c: CurrencyId) -> CurrencyId {
        match self.to.get(usize::from(c)) {
            Some(Some((to, _))) => *to,
            _ => c,
        }
    }

    fn convert(&self, c: CurrencyId, agg: &Agg) -> Agg {
        match self.to.get(usize::from(c)) {
            Some(Some((to, rate))) if *to != c => agg.converted(|v| arith::mul(v, *rate)),
            _ => *agg,
        }
    }
}

/// One computed KPI row, before the scope's columns are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The currency of the money in it, if any.
    pub currency: CurrencyId,
    pub numerator: Option<i128>,
    pub denominator: Option<i128>,
    pub value: Option<i128>,
}

/// Which terms a scope has data for: a bit per term id (ids past 255 always count as present),
/// so that the many KPIs that do not apply to an entity are skipped without a lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TermSet([u64; 4]);

impl TermSet {
    /// Every term of `parts`.
    pub fn of(parts: &[&[Entry]]) -> TermSet {
        let mut set = TermSet::default();
        for e in parts.iter().flat_map(|p| p.iter()) {
            set.insert(e.term);
        }
        set
    }

    pub fn insert(&mut self, t: TermId) {
        if let Some(word) = self.0.get_mut(usize::from(t) / 64) {
            *word |= 1 << (t % 64);
        }
    }

    fn contains(&self, t: TermId) -> bool {
        self.0.get(usize::from(t) / 64).is_none_or(|w| w & (1 << (t % 64)) != 0)
    }
}

/// Reusable buffers, so that evaluating millions of entity rows allocates nothing per row.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    unit_currencies: Vec<Vec<CurrencyId>>,
    all: Vec<CurrencyId>,
    include: Vec<bool>,
    values: Vec<(TermId, Agg)>,
}

/// The entries of `part` for `term` (`part` is sorted by term, then currency).
fn entries_of(part: &[Entry], term: TermId) -> &[Entry] {
    let lo = part.partition_point(|e| e.term < term);
    let hi = lo + part[lo..].partition_point(|e| e.term == term);
    &part[lo..hi]
}

/// Evaluates `kpi` over a scope made of `parts` (each sorted by term and currency) and appends
/// one outcome per currency it is computed in (none when it has no data there).
///
/// The money of a KPI is never added across currencies: when the parts hold money in one
/// currency (after conversion), the whole scope is computed in it; when they hold several, the
/// KPI is computed per currency over the parts whose money is all in that currency. Parts
/// without money in this KPI's terms (a CRM's lead counts) join only a single-currency scope;
/// parts with money in several currencies join none.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    kpi: &Kpi,
    terms: &Terms,
    parts: &[&[Entry]],
    present: &TermSet,
    grain: Grain,
    conversion: &Conversion,
    scratch: &mut Scratch,
    out: &mut Vec<Outcome>,
) {
    let used = &kpi.compiled.terms;
    if !used.iter().any(|t| present.contains(*t)) {
        return;
    }
    let Scratch { unit_currencies, all, include, values } = scratch;
    all.clear();
    if unit_currencies.len() < parts.len() {
        unit_currencies.resize_with(parts.len(), Vec::new);
    }
    for (part, set) in parts.iter().zip(unit_currencies.iter_mut()) {
        set.clear();
        for t in used {
            for e in entries_of(part, *t) {
                if e.currency != 0 {
                    let c = conversion.target(e.currency);
                    if !set.contains(&c) {
                        set.push(c);
                    }
                    if !all.contains(&c) {
                        all.push(c);
                    }
                }
            }
        }
    }
    all.sort_unstable();
    if all.len() <= 1 {
        let currency = all.first().copied().unwrap_or(0);
        include.clear();
        include.resize(parts.len(), true);
        compute(kpi, terms, parts, include, currency, grain, conversion, values, out);
    } else {
        for &c in all.iter() {
            include.clear();
            include.extend(unit_currencies[..parts.len()].iter().map(|set| set.len() == 1 && set[0] == c));
            if include.iter().any(|i| *i) {
                compute(kpi, terms, parts, include, c, grain, conversion, values, out);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn compute(
    kpi: &Kpi,
    terms: &Terms,
    parts: &[&[Entry]],
    include: &[bool],
    currency: CurrencyId,
    grain: Grain,
    conversion: &Conversion,
    values: &mut Vec<(TermId, Agg)>,
    out: &mut Vec<Outcome>,
) {
    values.clear();
    for &t in &kpi.compiled.terms {
        let additivity = terms.get(t).additivity;
        let mut agg = Agg::default();
        for (part, _) in parts.iter().zip(include).filter(|(_, i)| **i) {
            for e in entries_of(part, t) {
                if e.currency == 0 || conversion.target(e.currency) == currency {
                    agg.merge(additivity, &conversion.convert(e.currency, &e.agg));
                }
            }
        }
        values.push((t, agg));
    }
    let lookup = |id: TermId, start: bool| -> Val {
        match values.binary_search_by_key(&id, |(t, _)| *t) {
            Ok(i) => values[i].1.value(terms.get(id).additivity, grain, start),
            Err(_) => Val::Missing,
        }
    };
    let numerator = eval(&kpi.compiled.numerator, &lookup);
    if numerator == Val::Missing {
        return;
    }
    let denominator = kpi.compiled.denominator.as_ref().map(|d| eval(d, &lookup));
    if denominator == Some(Val::Missing) {
        return;
    }
    let numerator = number(numerator);
    let denominator = denominator.and_then(number);
    let value = match (kpi.compiled.denominator.is_some(), numerator, denominator) {
        (false, n, _) => n,
        // Division by zero gives no value (rule 3).
        (true, Some(n), Some(d)) if d != 0 => arith::div(n, d),
        _ => None,
    };
    let money = kpi.compiled.terms.iter().any(|t| {
        parts.iter().zip(include).any(|(p, i)| *i && entries_of(p, *t).iter().any(|e| e.currency != 0))
    });
    out.push(Outcome { currency: if money { currency } else { 0 }, numerator, denominator, value });
}

/// A number that fits the output column, if `v` is one.
fn number(v: Val) -> Option<i128> {
    match v {
        Val::Value(x) | Val::Const(x) => kpipe_core::Decimal::from_units(x).map(|d| d.units()),
        Val::Missing | Val::Null => None,
    }
}

/// Evaluates a compiled expression. A term without rows counts as 0 in a sum of terms that has
/// other data (a platform that reports no comments), but a difference needs both sides (ROI
/// without revenue is not -100%).
pub(crate) fn eval(node: &Node, lookup: &impl Fn(TermId, bool) -> Val) -> Val {
    match node {
        Node::Const(v) => Val::Const(*v),
        Node::Term { id, start } => lookup(*id, *start),
        Node::Neg(n) => match eval(n, lookup) {
            Val::Value(v) => Val::Value(-v),
            Val::Const(v) => Val::Const(-v),
            other => other,
        },
        Node::Add(a, b) => add(eval(a, lookup), eval(b, lookup), false),
        Node::Sub(a, b) => add(eval(a, lookup), eval(b, lookup), true),
        Node::Scale { node, mul, div } => match eval(node, lookup) {
            Val::Value(v) => arith::mul_div(v, *mul, *div).map_or(Val::Null, Val::Value),
            Val::Const(v) => arith::mul_div(v, *mul, *div).map_or(Val::Null, Val::Const),
            other => other,
        },
    }
}

fn add(a: Val, b: Val, subtract: bool) -> Val {
    use Val::{Const, Missing, Null, Value};
    let b = match b {
        Value(v) if subtract => Value(-v),
        Const(v) if subtract => Const(-v),
        other => other,
    };
    match (a, b) {
        (Missing, _) | (_, Missing) if subtract => Missing,
        (Missing, Missing) | (Missing, Const(_)) | (Const(_), Missing) => Missing,
        (Missing, x) | (x, Missing) => x,
        (Null, _) | (_, Null) => Null,
        (Const(x), Const(y)) => x.checked_add(y).map_or(Null, Const),
        (Const(x) | Value(x), Const(y) | Value(y)) => x.checked_add(y).map_or(Null, Value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Val::{Const, Missing, Null, Value};

    #[test]
    fn sums_tolerate_a_missing_part_differences_do_not() {
        assert_eq!(add(Value(2), Missing, false), Value(2));
        assert_eq!(add(Missing, Value(2), false), Value(2));
        assert_eq!(add(Missing, Missing, false), Missing);
        assert_eq!(add(Missing, Const(1), false), Missing);
        assert_eq!(add(Value(5), Value(2), true), Value(3));
        assert_eq!(add(Value(5), Missing, true), Missing);
        assert_eq!(add(Missing, Value(5), true), Missing);
        assert_eq!(add(Null, Value(5), false), Null);
        assert_eq!(add(Const(1), Value(5), true), Value(-4));
        assert_eq!(add(Value(i128::MAX), Value(1), false), Null);
    }
}
