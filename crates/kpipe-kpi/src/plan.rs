//! Formulas compiled against the metric registry: the terms to aggregate (a metric with a
//! filter), and per KPI a numerator and a denominator over those terms.

use std::collections::HashMap;

use kpipe_core::{Additivity, Dimensions, Metric, Unit, is_identifier};

use crate::arith::ONE;
use crate::formula::{Condition, Expr, FormulaError, MetricRef, Op};

/// A column a filter can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FilterKey {
    Platform,
    Source,
    AccountId,
    Level,
    EntityId,
    /// One of [`Dimensions::NAMES`], by index.
    Dimension(usize),
}

impl FilterKey {
    pub(crate) const NAMES: &'static str = "platform, source, account_id, level, entity_id or a dimension \
        (country, region, device, channel, source_medium, publisher_platform, age, gender)";

    pub(crate) fn from_name(name: &str) -> Option<FilterKey> {
        Some(match name {
            "platform" => FilterKey::Platform,
            "source" => FilterKey::Source,
            "account_id" => FilterKey::AccountId,
            "level" => FilterKey::Level,
            "entity_id" => FilterKey::EntityId,
            _ => FilterKey::Dimension(Dimensions::NAMES.iter().position(|d| *d == name)?),
        })
    }
}

/// Rows a term takes: every condition holds (a condition holds when the column has one of its
/// values). Kept sorted so that equal filters compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Filter(pub Vec<(FilterKey, Vec<String>)>);

impl Filter {
    pub(crate) fn and(&self, other: &Filter) -> Filter {
        let mut all: Vec<_> = self.0.iter().chain(&other.0).cloned().collect();
        for (_, values) in &mut all {
            values.sort();
            values.dedup();
        }
        all.sort();
        all.dedup();
        Filter(all)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a term aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TermKind {
    /// Rows of one metric.
    Metric(String),
    /// `coalesce(...)`: per entity and day, the first alternative with data.
    Coalesce(Vec<Node>),
}

/// A quantity summed (or taken, for snapshots) over a scope and a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub kind: TermKind,
    pub filter: Filter,
    pub additivity: Additivity,
    /// The unit where it is known (canonical metrics); `None` for extra metrics.
    pub unit: Option<Unit>,
    /// Some formula reads its value at the start of the period (`start(followers)`).
    pub needs_start: bool,
}

pub(crate) type TermId = u16;

/// A compiled expression over terms. Every operation keeps values exact; a constant factor is
/// applied as `× mul / div`, rounded half to even.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    Const(i128),
    Term { id: TermId, start: bool },
    Neg(Box<Node>),
    Add(Box<Node>, Box<Node>),
    Sub(Box<Node>, Box<Node>),
    Scale { node: Box<Node>, mul: i128, div: i128 },
}

impl Node {
    pub(crate) fn terms(&self, out: &mut Vec<TermId>) {
        match self {
            Node::Const(_) => {}
            Node::Term { id, .. } => out.push(*id),
            Node::Neg(n) | Node::Scale { node: n, .. } => n.terms(out),
            Node::Add(a, b) | Node::Sub(a, b) => {
                a.terms(out);
                b.terms(out);
            }
        }
    }
}

/// The registry of terms shared by every KPI of a catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct Terms {
    pub terms: Vec<Term>,
    index: HashMap<(TermKind, Filter), TermId>,
}

impl Terms {
    fn intern(&mut self, term: Term) -> Result<TermId, String> {
        let key = (term.kind.clone(), term.filter.clone());
        if let Some(&id) = self.index.get(&key) {
            if term.needs_start {
                self.terms[usize::from(id)].needs_start = true;
            }
            return Ok(id);
        }
        let id = TermId::try_from(self.terms.len()).map_err(|_| "too many distinct metrics".to_owned())?;
        self.terms.push(term);
        self.index.insert(key, id);
        Ok(id)
    }

    pub(crate) fn get(&self, id: TermId) -> &Term {
        &self.terms[usize::from(id)]
    }
}

/// A KPI's formula, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub numerator: Node,
    pub denominator: Option<Node>,
    /// Every term it reads, sorted, each once.
    pub terms: Vec<TermId>,
    /// The unit the formula gives, before any `unit` of the definition.
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    constant: bool,
    unit: Option<Unit>,
}

/// Compiles `expr`; `filter` is the definition's filter, applied to every metric, and `scale`
/// the definition's factor (units).
pub(crate) fn compile(
    expr: &Expr,
    filter: &Filter,
    scale: i128,
    terms: &mut Terms,
) -> Result<Compiled, FormulaError> {
    let mut c = Compiler { filter, terms };
    // Constant factors around the top-level division are the KPI's scale.
    let (mut mul, mut div) = (scale, ONE);
    let mut top = expr;
    loop {
        match top {
            Expr::Binary { op: Op::Mul, left, right, .. } if constant(right).is_some() => {
                mul =
                    crate::arith::mul(mul, constant(right).unwrap_or(ONE)).ok_or_else(|| too_large(right))?;
                top = left;
            }
            Expr::Binary { op: Op::Mul, left, right, .. } if constant(left).is_some() => {
                mul = crate::arith::mul(mul, constant(left).unwrap_or(ONE)).ok_or_else(|| too_large(left))?;
                top = right;
            }
            Expr::Binary { op: Op::Div, left, right, column } if constant(right).is_some() => {
                let k = constant(right).unwrap_or(ONE);
                if k == 0 {
                    return Err(FormulaError::new(*column, "division by zero"));
                }
                div = crate::arith::mul(div, k).ok_or_else(|| too_large(right))?;
                top = left;
            }
            _ => break,
        }
    }
    let (num_expr, den_expr) = match top {
        Expr::Binary { op: Op::Div, left, right, .. } => (&**left, Some(&**right)),
        other => (other, None),
    };
    let (num, num_shape) = c.side(num_expr)?;
    if num_shape.constant {
        return Err(FormulaError::new(1, "the numerator names no metric"));
    }
    let (numerator, denominator, unit) = match den_expr {
        None => {
            let scaled = scaled(num, mul, div);
            (scaled, None, num_shape.unit.unwrap_or(Unit::Count))
        }
        Some(d) => {
            let (den, den_shape) = c.side(d)?;
            if den_shape.constant {
                return Err(FormulaError::new(1, "the denominator names no metric"));
            }
            let unit = match (num_shape.unit, den_shape.unit) {
                (Some(Unit::Currency), Some(u)) if u != Unit::Currency => Unit::Currency,
                (Some(Unit::Seconds), Some(Unit::Count)) => Unit::Seconds,
                _ => Unit::Ratio,
            };
            (scaled(num, mul, ONE), Some(scaled(den, div, ONE)), unit)
        }
    };
    let mut used = Vec::new();
    numerator.terms(&mut used);
    if let Some(d) = &denominator {
        d.terms(&mut used);
    }
    used.sort_unstable();
    used.dedup();
    Ok(Compiled { numerator, denominator, terms: used, unit })
}

fn scaled(node: Node, mul: i128, div: i128) -> Node {
    if mul == div { node } else { Node::Scale { node: Box::new(node), mul, div } }
}

fn constant(e: &Expr) -> Option<i128> {
    match e {
        Expr::Number(n) => Some(n.units()),
        Expr::Neg(inner) => constant(inner).map(|v| -v),
        _ => None,
    }
}

fn too_large(_e: &Expr) -> FormulaError {
    FormulaError::new(1, "the constant factors are too large")
}

/// `name` as a metric: a canonical one, or `<platform>.<name>` (dotted, snake_case parts).
fn metric_of(name: &str) -> Option<(Additivity, Option<Unit>)> {
    if let Some(m) = Metric::from_name(name) {
        return Some((m.additivity(), Some(m.unit())));
    }
    let (platform, rest) = name.split_once('.')?;
    let ok = is_identifier(platform)
        && rest.split('.').all(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    // Extra metrics are not in the registry: they add up.
    ok.then_some((Additivity::Sum, None))
}

pub(crate) fn filter_of(conditions: &[Condition]) -> Result<Filter, FormulaError> {
    let mut out = Vec::new();
    for c in conditions {
        let key = FilterKey::from_name(&c.key).ok_or_else(|| {
            FormulaError::new(
                c.column,
                format!("unknown filter key `{}`; expected {}", c.key, FilterKey::NAMES),
            )
        })?;
        out.push((key, c.values.clone()));
    }
    Ok(Filter::default().and(&Filter(out)))
}

struct Compiler<'a> {
    filter: &'a Filter,
    terms: &'a mut Terms,
}

impl Compiler<'_> {
    /// A numerator or a denominator: sums, differences and constant factors of terms.
    fn side(&mut self, e: &Expr) -> Result<(Node, Shape), FormulaError> {
        self.expr(e, false)
    }

    fn metric(
        &mut self,
        m: &MetricRef,
        start: bool,
        in_coalesce: bool,
    ) -> Result<(Node, Shape), FormulaError> {
        let (additivity, unit) = metric_of(&m.name)
            .ok_or_else(|| FormulaError::new(m.column, format!("unknown metric \"{}\"", m.name)))?;
        if start && additivity != Additivity::Snapshot {
            return Err(FormulaError::new(
                m.column,
                format!("start() takes a snapshot metric such as followers; `{}` is not one", m.name),
            ));
        }
        if in_coalesce && additivity != Additivity::Sum {
            return Err(FormulaError::new(
                m.column,
                format!("coalesce() combines metrics that add up; `{}` does not", m.name),
            ));
        }
        let filter = self.filter.and(&filter_of(&m.filter)?);
        let term =
            Term { kind: TermKind::Metric(m.name.clone()), filter, additivity, unit, needs_start: start };
        let id = self.terms.intern(term).map_err(|e| FormulaError::new(m.column, e))?;
        Ok((Node::Term { id, start }, Shape { constant: false, unit }))
    }

    fn expr(&mut self, e: &Expr, in_coalesce: bool) -> Result<(Node, Shape), FormulaError> {
        match e {
            Expr::Number(n) => Ok((Node::Const(n.units()), Shape { constant: true, unit: None })),
            Expr::Metric(m) => self.metric(m, false, in_coalesce),
            Expr::Start(m) => {
                if in_coalesce {
                    return Err(FormulaError::new(m.column, "start() cannot be used inside coalesce()"));
                }
                self.metric(m, true, false)
            }
            Expr::Coalesce { alternatives, column } => {
                if in_coalesce {
                    return Err(FormulaError::new(*column, "coalesce() cannot be nested"));
                }
                let mut nodes = Vec::new();
                let mut unit: Option<Option<Unit>> = None;
                for alt in alternatives {
                    let (node, shape) = self.expr(alt, true)?;
                    if shape.constant {
                        return Err(FormulaError::new(
                            *column,
                            "each alternative of coalesce() names a metric",
                        ));
                    }
                    if let (Some(Some(a)), Some(b)) = (unit, shape.unit)
                        && a != b
                    {
                        return Err(FormulaError::new(*column, format!("coalesce() mixes {a} and {b}")));
                    }
                    unit = Some(unit.flatten().or(shape.unit));
                    nodes.push(node);
                }
                let unit = unit.flatten();
                let term = Term {
                    kind: TermKind::Coalesce(nodes),
                    filter: Filter::default(),
                    additivity: Additivity::Sum,
                    unit,
                    needs_start: false,
                };
                let id = self.terms.intern(term).map_err(|e| FormulaError::new(*column, e))?;
                Ok((Node::Term { id, start: false }, Shape { constant: false, unit }))
            }
            Expr::Neg(inner) => {
                let (n, s) = self.expr(inner, in_coalesce)?;
                Ok((if let Node::Const(v) = n { Node::Const(-v) } else { Node::Neg(Box::new(n)) }, s))
            }
            Expr::Binary { op, left, right, column } => {
                let (l, ls) = self.expr(left, in_coalesce)?;
                let (r, rs) = self.expr(right, in_coalesce)?;
                match op {
                    Op::Add | Op::Sub => {
                        if let (false, false, Some(a), Some(b)) = (ls.constant, rs.constant, ls.unit, rs.unit)
                            && a != b
                        {
                            let verb = if *op == Op::Add { "adds" } else { "subtracts" };
                            return Err(FormulaError::new(
                                *column,
                                format!("{verb} {b} and {a}: the units differ"),
                            ));
                        }
                        let shape = Shape {
                            constant: ls.constant && rs.constant,
                            unit: if ls.constant { rs.unit } else { ls.unit },
                        };
                        let node = if *op == Op::Add {
                            Node::Add(Box::new(l), Box::new(r))
                        } else {
                            Node::Sub(Box::new(l), Box::new(r))
                        };
                        Ok((node, shape))
                    }
                    Op::Mul => match (l, r) {
                        (Node::Const(k), n) | (n, Node::Const(k)) => {
                            let shape = if ls.constant { rs } else { ls };
                            if let Node::Const(v) = n {
                                let p = crate::arith::mul(v, k)
                                    .ok_or_else(|| FormulaError::new(*column, "the product is too large"))?;
                                return Ok((Node::Const(p), shape));
                            }
                            Ok((Node::Scale { node: Box::new(n), mul: k, div: ONE }, shape))
                        }
                        _ => Err(FormulaError::new(
                            *column,
                            "a product of two metrics is not a KPI; multiply by numbers only",
                        )),
                    },
                    Op::Div => match r {
                        Node::Const(0) => Err(FormulaError::new(*column, "division by zero")),
                        Node::Const(k) => Ok((Node::Scale { node: Box::new(l), mul: ONE, div: k }, ls)),
                        _ => Err(FormulaError::new(
                            *column,
                            "a formula divides by metrics once, at the top: numerator / denominator",
                        )),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formula::parse;

    fn compile_text(text: &str) -> Result<(Compiled, Terms), String> {
        let mut terms = Terms::default();
        let e = parse(text).map_err(|e| e.to_string())?;
        let c = compile(&e, &Filter::default(), ONE, &mut terms).map_err(|e| e.to_string())?;
        Ok((c, terms))
    }

    #[test]
    fn ratios_split_into_numerator_and_denominator() {
        let (c, t) = compile_text("spend / impressions * 1000").unwrap();
        assert_eq!(c.unit, Unit::Currency);
        assert_eq!(t.terms.len(), 2);
        assert!(matches!(c.numerator, Node::Scale { mul, div: ONE, .. } if mul == 1000 * ONE));
        assert!(matches!(c.denominator, Some(Node::Term { id: 1, start: false })));
        let (c, _) = compile_text("session_duration_seconds / sessions").unwrap();
        assert_eq!(c.unit, Unit::Seconds);
        let (c, t) = compile_text("mentions + shares + link_clicks + impressions").unwrap();
        assert!(c.denominator.is_none());
        assert_eq!((c.unit, c.terms.len(), t.terms.len()), (Unit::Count, 4, 4));
        let (c, _) = compile_text("clicks / impressions / 2").unwrap();
        assert!(matches!(c.denominator, Some(Node::Scale { mul, .. }) if mul == 2 * ONE));
    }

    #[test]
    fn terms_are_shared_and_filters_merge() {
        let (c, t) = compile_text("sessions[channel = 'Paid Social' | 'Organic Social'] / sessions").unwrap();
        assert_eq!(t.terms.len(), 2);
        assert_eq!(c.terms, [0, 1]);
        assert_eq!(
            t.terms[0].filter.0,
            [(FilterKey::Dimension(3), vec!["Organic Social".into(), "Paid Social".into()])]
        );
        let (c, t) = compile_text("coalesce(engagements, likes + comments) / impressions").unwrap();
        assert_eq!(t.terms.len(), 5, "engagements, likes, comments, the coalesce, impressions");
        assert_eq!(c.terms.len(), 2);
        let (_, t) = compile_text("follower_gains / start(followers)").unwrap();
        assert!(t.terms[1].needs_start);
        let (_, t) = compile_text("facebook.action.foo / clicks").unwrap();
        assert_eq!(t.terms[0].unit, None);
    }

    #[test]
    fn meaningless_formulas_are_refused() {
        let e = |t: &str| compile_text(t).err().unwrap_or_default();
        assert_eq!(e("clickz / impressions"), "column 1: unknown metric \"clickz\"");
        assert_eq!(e("(likes + comments + clickz) / reach"), "column 21: unknown metric \"clickz\"");
        assert_eq!(
            e("clicks * impressions"),
            "column 8: a product of two metrics is not a KPI; multiply by numbers only"
        );
        assert_eq!(
            e("clicks / (impressions / reach)"),
            "column 23: a formula divides by metrics once, at the top: numerator / denominator"
        );
        assert_eq!(
            e("(spend + clicks) / impressions"),
            "column 8: adds count and currency: the units differ"
        );
        assert_eq!(e("clicks / 0"), "column 8: division by zero");
        assert_eq!(
            e("clicks / start(reach)"),
            "column 16: start() takes a snapshot metric such as followers; `reach` is not one"
        );
        assert_eq!(
            e("coalesce(reach, clicks) / impressions"),
            "column 10: coalesce() combines metrics that add up; `reach` does not"
        );
        assert_eq!(
            e("clicks[colour = 'red'] / impressions").split(';').next(),
            Some("column 8: unknown filter key `colour`")
        );
        assert_eq!(e("100 / clicks"), "column 1: the numerator names no metric");
        assert_eq!(e("Clicks / impressions"), "column 1: unknown metric \"Clicks\"");
    }
}
