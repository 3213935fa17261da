//! The built-in KPI catalog as data for listings (`kpipe catalog`): each KPI's formula, stage,
//! unit and the metrics it reads, and whether a set of metrics is enough to compute it.

use kpipe_core::Unit;

use crate::catalog::Catalog;
use crate::config::Stage;
use crate::formula::{self, Expr};

/// A built-in KPI, as `kpipe catalog` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinKpi {
    /// The name, written to the `kpi` column.
    pub name: String,
    /// The formula, as docs/kpis.md writes it.
    pub formula: String,
    /// The buyer's-journey stage.
    pub stage: Stage,
    /// The unit of its values.
    pub unit: Unit,
    /// What it measures.
    pub description: String,
    /// Every metric its formula names, sorted, each once.
    pub metrics: Vec<String>,
    /// The sets of metrics that are each enough to compute it, sorted: one set for a plain
    /// formula, one per alternative of a `coalesce(...)`.
    pub requires_any_of: Vec<Vec<String>>,
    /// Conditions on the rows it reads, as `(key, values)` (`platform = hubspot`).
    pub filter: Vec<(String, Vec<String>)>,
}

impl BuiltinKpi {
    /// Whether the metrics `has` says are there are enough to compute it.
    pub fn computable_from(&self, has: impl Fn(&str) -> bool) -> bool {
        self.requires_any_of.iter().any(|set| set.iter().all(|m| has(m)))
    }

    /// The values its `key` filter allows (`platform`), if it has one.
    pub fn filter_values(&self, key: &str) -> Option<&[String]> {
        self.filter.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

/// The built-in KPIs of docs/kpis.md, in its order.
pub fn builtins() -> Vec<BuiltinKpi> {
    Catalog::builtin()
        .definitions()
        .map(|def| {
            // The built-in formulas are tested to parse; an unparsable one lists no metric.
            let sets = formula::parse(&def.formula).map(|e| alternatives(&e)).unwrap_or_default();
            let mut metrics: Vec<String> = sets.iter().flatten().cloned().collect();
            metrics.sort();
            metrics.dedup();
            BuiltinKpi {
                name: def.name.clone(),
                formula: def.formula.clone(),
                stage: def.stage,
                unit: def.unit,
                description: def.description.clone(),
                metrics,
                requires_any_of: sets,
                filter: def.filter.clone(),
            }
        })
        .collect()
}

/// The sets of metrics that are each enough for `expr`: every term of an operation is needed,
/// any one alternative of a `coalesce`.
fn alternatives(expr: &Expr) -> Vec<Vec<String>> {
    let mut sets = match expr {
        Expr::Number(_) => vec![Vec::new()],
        Expr::Metric(m) | Expr::Start(m) => vec![vec![m.name.clone()]],
        Expr::Neg(inner) => alternatives(inner),
        Expr::Coalesce { alternatives: options, .. } => options.iter().flat_map(alternatives).collect(),
        Expr::Binary { left, right, .. } => {
            let (left, right) = (alternatives(left), alternatives(right));
            let mut both = Vec::with_capacity(left.len() * right.len());
            for l in &left {
                for r in &right {
                    both.push(l.iter().chain(r).cloned().collect());
                }
            }
            both
        }
    };
    for set in &mut sets {
        set.sort();
        set.dedup();
    }
    sets.dedup();
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kpi(name: &str) -> BuiltinKpi {
        builtins().into_iter().find(|k| k.name == name).unwrap()
    }

    #[test]
    fn every_builtin_is_listed_with_what_it_needs() {
        let all = builtins();
        assert_eq!(all.len(), Catalog::builtin().len());
        assert!(all.iter().all(|k| !k.metrics.is_empty() && !k.requires_any_of.is_empty()));
        let ctr = kpi("ctr");
        assert_eq!(
            (ctr.formula.as_str(), ctr.unit, ctr.stage),
            ("clicks / impressions", Unit::Ratio, Stage::Consideration)
        );
        assert_eq!(ctr.requires_any_of, [["clicks", "impressions"]]);
        assert_eq!(kpi("follower_growth_rate").metrics, ["follower_gains", "followers"]);
        assert_eq!(kpi("lead_conversion_rate").filter_values("platform"), Some(&["hubspot".to_owned()][..]));
    }

    #[test]
    fn a_coalesce_makes_alternatives() {
        let rate = kpi("engagement_rate");
        assert_eq!(
            rate.requires_any_of,
            [
                vec!["engagements", "impressions"],
                vec!["clicks", "comments", "impressions", "likes", "shares"]
            ]
        );
        assert!(rate.computable_from(|m| ["engagements", "impressions"].contains(&m)));
        assert!(rate.computable_from(|m| m != "engagements"));
        assert!(!rate.computable_from(|m| m != "impressions"));
    }
}
