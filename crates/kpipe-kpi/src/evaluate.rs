//! A KPI over one scope and period: term aggregates in, numerator, denominator and value out,
//! with money never added across currencies (docs/kpis.md rules 3-5).

use crate::agg::{Agg, Total, Val};
use crate::arith;
use crate::catalog::Kpi;
use crate::period::Grain;
use crate::plan::{Node, TermId, Terms};

/// An interned currency; 0 is "no currency" (counts).
pub(crate) type CurrencyId = u16;

/// A term's aggregate in one currency, for one part of a scope (an entity or an account): its
/// days or its start, which are two entries under the same key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Owner, term and currency packed as `owner << 32 | term << 16 | currency`: sorting by it
    /// sorts a part by term, then currency.
    pub key: u64,
    pub agg: Agg,
}

impl Entry {
    pub fn term(&self) -> TermId {
        ((self.key >> 16) & 0xffff) as TermId
    }

    pub fn currency(&self) -> CurrencyId {
        (self.key & 0xffff) as CurrencyId
    }
}

/// One part of a scope: its entries, sorted by term then currency, and their terms alongside,
/// so that finding a term reads a few packed ids rather than a cache line per probed entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part<'a> {
    pub terms: &'a [TermId],
    pub entries: &'a [Entry],
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
    /// Every term of `entries`.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> TermSet {
        let mut set = TermSet::default();
        for e in entries {
            set.insert(e.term());
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

/// The money a part holds in a KPI's terms, after conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartMoney {
    None,
    One(CurrencyId),
    Several,
}

/// Reusable buffers, so that evaluating millions of entity rows allocates nothing per row.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Per part, then per term of the KPI: the part's entries of that term.
    ranges: Vec<(usize, usize)>,
    money: Vec<PartMoney>,
    all: Vec<CurrencyId>,
    include: Vec<bool>,
    /// Per term of the KPI, its aggregate over the scope.
    aggs: Vec<Total>,
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
    parts: &[Part<'_>],
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
    let Scratch { ranges, money, all, include, aggs } = scratch;
    // Find each term's entries once per part; `used` and each part are sorted by term, so the
    // search for the next term starts where the last one ended.
    ranges.clear();
    money.clear();
    all.clear();
    for part in parts {
        let mut from = 0;
        let mut held = PartMoney::None;
        for &t in used {
            let lo = from + part.terms[from..].partition_point(|x| *x < t);
            let hi = lo + part.terms[lo..].partition_point(|x| *x == t);
            ranges.push((lo, hi));
            from = hi;
            for e in &part.entries[lo..hi] {
                if e.currency() == 0 {
                    continue;
                }
                let c = conversion.target(e.currency());
                held = match held {
                    PartMoney::None => PartMoney::One(c),
                    PartMoney::One(h) if h == c => held,
                    _ => PartMoney::Several,
                };
                if !all.contains(&c) {
                    all.push(c);
                }
            }
        }
        money.push(held);
    }
    let parts = Located { parts, ranges, terms_per_part: used.len(), money };
    if all.len() <= 1 {
        let currency = all.first().copied().unwrap_or(0);
        include.clear();
        include.resize(parts.parts.len(), true);
        compute(kpi, terms, &parts, include, currency, grain, conversion, aggs, out);
    } else {
        all.sort_unstable();
        for &c in all.iter() {
            include.clear();
            include.extend(parts.money.iter().map(|m| *m == PartMoney::One(c)));
            if include.iter().any(|i| *i) {
                compute(kpi, terms, &parts, include, c, grain, conversion, aggs, out);
            }
        }
    }
}

/// The parts of a scope with each KPI term's entries located.
struct Located<'a, 'p> {
    parts: &'a [Part<'p>],
    ranges: &'a [(usize, usize)],
    terms_per_part: usize,
    money: &'a [PartMoney],
}

impl<'p> Located<'_, 'p> {
    /// The entries of the KPI's `i`th term in part `p`.
    fn entries(&self, p: usize, i: usize) -> &'p [Entry] {
        let (lo, hi) = self.ranges[p * self.terms_per_part + i];
        &self.parts[p].entries[lo..hi]
    }
}

/// Computes the KPI over the included parts, in `currency`. An included part's money is all in
/// `currency` (or it holds none), so every entry of it counts.
#[allow(clippy::too_many_arguments)]
fn compute(
    kpi: &Kpi,
    terms: &Terms,
    parts: &Located<'_, '_>,
    include: &[bool],
    currency: CurrencyId,
    grain: Grain,
    conversion: &Conversion,
    aggs: &mut Vec<Total>,
    out: &mut Vec<Outcome>,
) {
    let used = &kpi.compiled.terms;
    aggs.clear();
    for (i, &t) in used.iter().enumerate() {
        let additivity = terms.get(t).additivity;
        let mut agg = Total::default();
        for (p, _) in include.iter().enumerate().filter(|(_, i)| **i) {
            for e in parts.entries(p, i) {
                agg.merge(additivity, &conversion.convert(e.currency(), &e.agg));
            }
        }
        aggs.push(agg);
    }
    let lookup = |id: TermId, start: bool| -> Val {
        match used.binary_search(&id) {
            Ok(i) => aggs[i].value(terms.get(id).additivity, grain, start),
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
    let money = parts.money.iter().zip(include).any(|(m, i)| *i && *m != PartMoney::None);
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
