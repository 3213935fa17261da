//! The KPI catalog: the built-in definitions of docs/kpis.md, and the user's `[kpis.<name>]` tables
//! on top of them.

use std::collections::BTreeMap;

use kpipe_core::{ConfigError, Decimal, Unit, is_identifier};

use crate::config::{KpiDefinitionConfig, OneOrMany, Stage};
use crate::formula::{self, FormulaError};
use crate::plan::{self, Compiled, Filter, FilterKey, Terms};

/// A built-in definition.
struct Builtin {
    name: &'static str,
    formula: &'static str,
    stage: Stage,
    unit: Option<Unit>,
    filter: &'static [(&'static str, &'static str)],
    description: &'static str,
}

const fn b(name: &'static str, formula: &'static str, stage: Stage, description: &'static str) -> Builtin {
    Builtin { name, formula, stage, unit: None, filter: &[], description }
}

/// docs/kpis.md's catalog, in its order.
const BUILTINS: [Builtin; 28] = [
    b("ctr", "clicks / impressions", Stage::Consideration, "Click-through rate."),
    b("cpc", "spend / clicks", Stage::Consideration, "Cost per click, in the account currency."),
    b("cpm", "spend / impressions * 1000", Stage::Awareness, "Cost per thousand impressions."),
    b("cpl", "spend / leads", Stage::Decision, "Cost per lead."),
    b("cpa", "spend / conversions", Stage::Decision, "Cost per conversion."),
    b(
        "engagement_rate",
        "coalesce(engagements, likes + comments + shares + clicks) / impressions",
        Stage::Consideration,
        "Engagements per impression; where an entity reports no engagement total on a day, its \
         likes, comments, shares and clicks stand for it.",
    ),
    b(
        "content_engagement_rate",
        "(likes + comments + shares) / reach",
        Stage::Consideration,
        "Interactions relative to the people reached.",
    ),
    Builtin {
        name: "frequency",
        formula: "impressions / reach",
        stage: Stage::Awareness,
        // Times each person reached saw the content, on average: a count, not a fraction.
        unit: Some(Unit::Count),
        filter: &[],
        description: "Impressions per person reached: how often each person saw the content, on average.",
    },
    b(
        "cost_per_reach",
        "spend / reach",
        Stage::Awareness,
        "Spend per person reached, in the account currency.",
    ),
    Builtin {
        name: "amplification_rate",
        formula: "shares / posts",
        stage: Stage::Consideration,
        // Shares per post: a count (there can be many), not a fraction of one.
        unit: Some(Unit::Count),
        filter: &[],
        description: "Shares per published post.",
    },
    b(
        "follower_growth_rate",
        "follower_gains / start(followers)",
        Stage::Awareness,
        "Followers gained relative to the followers at the start of the period.",
    ),
    b("conversion_rate", "conversions / clicks", Stage::Decision, "Share of clicks that converted."),
    Builtin {
        name: "lead_conversion_rate",
        formula: "deals_won / leads",
        stage: Stage::Decision,
        unit: None,
        // CRM leads: ad platforms count leads too, and those would dilute the rate.
        filter: &[("platform", "hubspot")],
        description: "Deals won per CRM lead.",
    },
    b("roi", "(revenue - spend) / spend", Stage::Decision, "Return on investment."),
    b("roas", "revenue / spend", Stage::Decision, "Return on ad spend."),
    b(
        "bounce_rate",
        "(sessions - engaged_sessions) / sessions",
        Stage::Consideration,
        "Share of sessions that were not engaged.",
    ),
    b(
        "avg_session_duration",
        "session_duration_seconds / sessions",
        Stage::Consideration,
        "Average session duration, in seconds.",
    ),
    b(
        "returning_visitor_rate",
        "returning_users / users",
        Stage::Consideration,
        "Share of users who had visited before.",
    ),
    b(
        "social_traffic_share",
        "sessions[channel = 'Organic Social' | 'Paid Social'] / sessions",
        Stage::Awareness,
        "Share of website sessions from social channels (GA4 channel groups Organic Social and Paid \
         Social).",
    ),
    b(
        "brand_awareness",
        "mentions + shares + link_clicks + impressions",
        Stage::Awareness,
        "Mentions, shares, link clicks and impressions, summed over the period.",
    ),
    b(
        "email_open_rate",
        "emails_opened / emails_delivered",
        Stage::Consideration,
        "Marketing emails opened per delivered.",
    ),
    b(
        "email_click_rate",
        "emails_clicked / emails_delivered",
        Stage::Consideration,
        "Marketing emails clicked per delivered.",
    ),
    b(
        "form_conversion_rate",
        "form_submissions / page_views",
        Stage::Consideration,
        "Form submissions per page view.",
    ),
    Builtin {
        name: "nps",
        formula: "(nps_promoters - nps_detractors) / (nps_promoters + nps_passives + nps_detractors) * 100",
        stage: Stage::Loyalty,
        unit: Some(Unit::Score),
        filter: &[],
        description: "Net promoter score, -100 to 100, over the answers that gave a score.",
    },
    Builtin {
        name: "csat",
        formula: "csat_satisfied / survey_responses * 100",
        stage: Stage::Loyalty,
        unit: Some(Unit::Score),
        filter: &[],
        description: "Satisfied responses per 100 responses.",
    },
    b(
        "invite_accept_rate",
        "invites_accepted / invites_sent",
        Stage::Consideration,
        "Invitations accepted per invitation sent.",
    ),
    b("reply_rate", "replies / invites_accepted", Stage::Consideration, "Replies per accepted invitation."),
    b("interest_rate", "interested / replies", Stage::Decision, "Interested prospects per reply."),
];

/// A KPI definition as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiDef {
    /// The name, written to the `kpi` column.
    pub name: String,
    /// The formula as written.
    pub formula: String,
    /// The buyer's-journey stage.
    pub stage: Stage,
    /// The unit of its values.
    pub unit: Unit,
    /// A factor applied to the value (100 for a percentage), folded into the numerator.
    pub scale: Decimal,
    /// Conditions on the rows it reads, as `(key, values)`.
    pub filter: Vec<(String, Vec<String>)>,
    /// What it measures.
    pub description: String,
    /// True for a definition of docs/kpis.md's catalog as shipped (not overridden).
    pub builtin: bool,
}

/// A KPI with its compiled formula.
#[derive(Debug, Clone)]
pub(crate) struct Kpi {
    pub def: KpiDef,
    pub compiled: Compiled,
}

/// The KPIs a run computes.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) kpis: Vec<Kpi>,
    pub(crate) terms: Terms,
}

impl Catalog {
    /// The built-in catalog of docs/kpis.md.
    pub fn builtin() -> Catalog {
        // The built-in formulas are tested to compile; an empty catalog would only follow a
        // broken build.
        Catalog::new(&BTreeMap::new())
            .unwrap_or_else(|_| Catalog { kpis: Vec::new(), terms: Terms::default() })
    }

    /// The built-in catalog with the user's definitions: a name of the catalog overrides that
    /// KPI (keys left out keep the built-in's), any other name adds one. Error paths are relative
    /// to the `[kpis]` table (`my_kpi.formula`).
    pub fn new(user: &BTreeMap<String, KpiDefinitionConfig>) -> Result<Catalog, Vec<ConfigError>> {
        // (definition, explicit unit, key path of the user's table or "" for a built-in as shipped)
        let mut defs: Vec<(KpiDef, Option<Unit>, String)> = Vec::new();
        let mut errors = Vec::new();
        for b in &BUILTINS {
            let base = KpiDef {
                name: b.name.to_owned(),
                formula: b.formula.to_owned(),
                stage: b.stage,
                unit: b.unit.unwrap_or(Unit::Ratio),
                scale: Decimal::from_i64(1),
                filter: b.filter.iter().map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()])).collect(),
                description: b.description.to_owned(),
                builtin: true,
            };
            match user.get(b.name) {
                None => defs.push((base, b.unit, String::new())),
                Some(u) if u.enabled == Some(false) => {}
                Some(u) => match merge(Some((base, b.unit)), b.name, u) {
                    Ok((d, unit)) => defs.push((d, unit, b.name.to_owned())),
                    Err(e) => errors.push(e),
                },
            }
        }
        for (name, u) in user {
            if BUILTINS.iter().any(|b| b.name == name) || u.enabled == Some(false) {
                continue;
            }
            if !is_identifier(name) {
                errors.push(ConfigError::new(
                    name.clone(),
                    "KPI names are snake_case (lower-case letters, digits, `_`): they are written to the \
                     `kpi` column",
                ));
                continue;
            }
            match merge(None, name, u) {
                Ok((d, unit)) => defs.push((d, unit, name.clone())),
                Err(e) => errors.push(e),
            }
        }
        let mut terms = Terms::default();
        let mut kpis = Vec::new();
        for (mut def, unit, path) in defs {
            let at = |key: &str| {
                if path.is_empty() {
                    format!("(built-in {}).{key}", def.name)
                } else {
                    format!("{path}.{key}")
                }
            };
            let filter = match def_filter(&def.filter) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(ConfigError::new(at("filter"), e));
                    continue;
                }
            };
            let compiled = formula::parse(&def.formula)
                .and_then(|e| plan::compile(&e, &filter, def.scale.units(), &mut terms));
            match compiled {
                Ok(compiled) => {
                    def.unit = unit.unwrap_or(compiled.unit);
                    kpis.push(Kpi { def, compiled });
                }
                Err(FormulaError { column, message }) => {
                    errors.push(ConfigError::new(at("formula"), format!("column {column}: {message}")));
                }
            }
        }
        if errors.is_empty() { Ok(Catalog { kpis, terms }) } else { Err(errors) }
    }

    /// The definitions, built-in ones first in docs/kpis.md's order, then the user's by name.
    pub fn definitions(&self) -> impl Iterator<Item = &KpiDef> {
        self.kpis.iter().map(|k| &k.def)
    }

    /// The definition called `name`.
    pub fn get(&self, name: &str) -> Option<&KpiDef> {
        self.definitions().find(|d| d.name == name)
    }

    /// How many KPIs it holds.
    pub fn len(&self) -> usize {
        self.kpis.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.kpis.is_empty()
    }
}

/// A definition from a built-in one (if any, with its explicit unit) and the user's table; also
/// the unit given explicitly, if any (otherwise the formula's).
fn merge(
    base: Option<(KpiDef, Option<Unit>)>,
    name: &str,
    u: &KpiDefinitionConfig,
) -> Result<(KpiDef, Option<Unit>), ConfigError> {
    let at = |key: &str| format!("{name}.{key}");
    let (mut def, mut unit) = match base {
        Some(b) => b,
        None => {
            let formula = u.formula.clone().ok_or_else(|| {
                ConfigError::new(
                    at("formula"),
                    "missing; expected arithmetic over metrics, e.g. \"clicks / impressions\"",
                )
            })?;
            let stage = u.stage.ok_or_else(|| {
                ConfigError::new(
                    at("stage"),
                    "missing; expected \"awareness\", \"consideration\", \"decision\" or \"loyalty\"",
                )
            })?;
            let def = KpiDef {
                name: name.to_owned(),
                description: formula.clone(),
                formula,
                stage,
                unit: Unit::Ratio,
                scale: Decimal::from_i64(1),
                filter: Vec::new(),
                builtin: false,
            };
            (def, None)
        }
    };
    def.builtin = false;
    if let Some(f) = &u.formula
        && *f != def.formula
    {
        def.formula = f.clone();
        def.description = f.clone();
    }
    if let Some(s) = u.stage {
        def.stage = s;
    }
    if let Some(scale) = u.scale {
        if scale.units() == 0 {
            return Err(ConfigError::new(at("scale"), "is 0; expected a factor such as 100"));
        }
        def.scale = scale;
    }
    if u.unit.is_some() {
        unit = u.unit;
    }
    if let Some(d) = &u.description {
        def.description = d.clone();
    }
    if !u.filter.is_empty() {
        def.filter = u.filter.iter().map(|(k, v)| (k.clone(), OneOrMany::values(v))).collect();
    }
    Ok((def, unit))
}

fn def_filter(filter: &[(String, Vec<String>)]) -> Result<Filter, String> {
    let mut out = Vec::new();
    for (key, values) in filter {
        let k = FilterKey::from_name(key)
            .ok_or_else(|| format!("unknown filter key `{key}`; expected {}", FilterKey::NAMES))?;
        if values.is_empty() {
            return Err(format!("`{key}` lists no value"));
        }
        out.push((k, values.clone()));
    }
    Ok(Filter::default().and(&Filter(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Result<Catalog, Vec<String>> {
        let defs: BTreeMap<String, KpiDefinitionConfig> =
            toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        Catalog::new(&defs).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_builtin_catalog_is_kpis_md() {
        let c = Catalog::new(&BTreeMap::new()).unwrap();
        assert_eq!(c.len(), 28);
        let names: Vec<&str> = c.definitions().map(|d| d.name.as_str()).collect();
        assert_eq!(names[..5], ["ctr", "cpc", "cpm", "cpl", "cpa"]);
        assert_eq!(names[27], "interest_rate");
        let unit = |n: &str| c.get(n).map(|d| d.unit);
        assert_eq!(unit("ctr"), Some(Unit::Ratio));
        assert_eq!(unit("cpc"), Some(Unit::Currency));
        assert_eq!(unit("cpm"), Some(Unit::Currency));
        assert_eq!(unit("roas"), Some(Unit::Ratio));
        assert_eq!(unit("avg_session_duration"), Some(Unit::Seconds));
        assert_eq!(unit("brand_awareness"), Some(Unit::Count));
        assert_eq!(unit("nps"), Some(Unit::Score));
        assert!(c.definitions().all(|d| d.builtin));
        assert_eq!(unit("frequency"), Some(Unit::Count));
        assert_eq!(unit("cost_per_reach"), Some(Unit::Currency));
        assert_eq!(Catalog::builtin().len(), 28);
    }

    #[test]
    fn user_definitions_add_and_override() {
        let c = user(
            "[social_engagement]\nformula = \"(likes + comments + shares) / reach\"\nstage = \"consideration\"\nscale = 100\n\
             filter = { platform = \"linkedin\", level = [\"organization\", \"page\"] }\n\
             [ctr]\nscale = 100\nunit = \"score\"\n[cpm]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(c.len(), 28);
        assert!(c.get("cpm").is_none());
        let ctr = c.get("ctr").unwrap();
        assert_eq!((ctr.scale.to_string().as_str(), ctr.unit, ctr.builtin), ("100", Unit::Score, false));
        assert_eq!(ctr.formula, "clicks / impressions");
        let s = c.get("social_engagement").unwrap();
        assert_eq!(s.stage, Stage::Consideration);
        assert_eq!(
            s.filter,
            [
                ("level".to_owned(), vec!["organization".to_owned(), "page".to_owned()]),
                ("platform".to_owned(), vec!["linkedin".to_owned()])
            ]
        );
        let c = user("[cpc]\nformula = \"spend / link_clicks\"\n").unwrap();
        assert_eq!(c.get("cpc").map(|d| d.unit), Some(Unit::Currency));
        let c =
            user("[nps]\nformula = \"(nps_promoters - nps_detractors) / survey_responses * 100\"\n").unwrap();
        assert_eq!(c.get("nps").map(|d| d.unit), Some(Unit::Score), "an explicit built-in unit stays");
    }

    #[test]
    fn mistakes_name_the_key_and_the_column() {
        assert_eq!(
            user("[my_kpi]\nformula = \"(clicks + clickz) / impressions\"\nstage = \"decision\"\n")
                .unwrap_err(),
            ["my_kpi.formula: column 11: unknown metric \"clickz\""]
        );
        assert_eq!(
            user("[my_kpi]\nformula = \"clicks\"\n").unwrap_err(),
            ["my_kpi.stage: missing; expected \"awareness\", \"consideration\", \"decision\" or \"loyalty\""]
        );
        assert_eq!(
            user("[Bad]\nformula = \"clicks\"\nstage = \"decision\"\n").unwrap_err()[0].split(':').next(),
            Some("Bad")
        );
        assert_eq!(
            user("[ctr]\nfilter = { colour = \"red\" }\n").unwrap_err()[0].split(';').next(),
            Some("ctr.filter: unknown filter key `colour`")
        );
        assert!(
            user("[x]\nformula = \"clicks\"\nstage = \"nope\"\n").unwrap_err()[0].contains("unknown variant")
        );
    }
}
