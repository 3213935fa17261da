//! What `kpipe catalog --json` prints, built from the connectors' own declarations
//! ([`kpipe_core::catalog`]), their configuration schemas and the built-in KPIs. The types derive
//! their JSON Schema (`kpipe catalog --json-schema`), so the schema follows the output.

use std::collections::BTreeMap;

use kpipe_core::{Additivity, CatalogMetric, ConnectorFactory, Grains, MetricOrigin, StreamCatalog, Unit};
use kpipe_kpi::{BuiltinKpi, Stage};
use schemars::JsonSchema;
use serde::Serialize;

use super::keys::{ConfigKey, config_keys};

/// The whole catalog.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Catalog {
    /// The connectors of this build (or the one asked for), in registry order.
    pub connectors: Vec<ConnectorEntry>,
    /// The built-in KPIs, in docs/kpis.md's order.
    pub kpis: Vec<KpiEntry>,
}

/// One connector.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConnectorEntry {
    /// The `type` value that selects it.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it pulls.
    pub description: String,
    /// Every stream it can pull.
    pub streams: Vec<StreamEntry>,
    /// Its `[sources.<name>]` table (without `type`).
    pub config: ConfigEntry,
    /// The configuration keys that list its units of work (`kpipe run --shard`).
    pub unit_keys: Vec<String>,
    /// The built-in KPIs its metrics alone are enough for.
    pub kpis: Vec<String>,
}

/// A connector's configuration.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigEntry {
    /// The JSON Schema (draft 2020-12) of the table; secrets are `writeOnly` with `x-secret`.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub schema: serde_json::Value,
    /// Its keys, nested tables' keys dotted (`rate_limit.requests`, `reports[].name`).
    pub keys: Vec<ConfigKey>,
}

/// One stream.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamEntry {
    /// Its name, as run summaries and state files say it.
    pub name: String,
    /// What it pulls.
    pub description: String,
    /// The `level` values of its rows.
    pub levels: Vec<String>,
    /// Where the level comes from when the data or the configuration names it.
    pub levels_from: Option<String>,
    /// The dimension columns its rows may fill.
    pub dimensions: Vec<String>,
    /// What it yields.
    pub metrics: Vec<MetricEntry>,
}

/// What a metric declaration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A metric of the canonical vocabulary (docs/schema.md).
    Canonical,
    /// One `<platform>.<name>` extra.
    Extra,
    /// Extras named after the data or the configuration; `metric` shows the pattern.
    ExtraFamily,
}

/// The `unit` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitName {
    /// A number of things or events.
    Count,
    /// Money, with a `currency`.
    Currency,
    /// Seconds.
    Seconds,
    /// A fraction.
    Ratio,
    /// A score.
    Score,
}

impl From<Unit> for UnitName {
    fn from(unit: Unit) -> UnitName {
        match unit {
            Unit::Count => UnitName::Count,
            Unit::Currency => UnitName::Currency,
            Unit::Seconds => UnitName::Seconds,
            Unit::Ratio => UnitName::Ratio,
            Unit::Score => UnitName::Score,
        }
    }
}

/// How values combine across days and entities (docs/kpis.md, rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdditivityName {
    /// Values add up.
    Sum,
    /// Unique people: never summed.
    Unique,
    /// A level at a point in time: a period takes its last value.
    Snapshot,
}

impl From<Additivity> for AdditivityName {
    fn from(additivity: Additivity) -> AdditivityName {
        match additivity {
            Additivity::Sum => AdditivityName::Sum,
            Additivity::Unique => AdditivityName::Unique,
            Additivity::Snapshot => AdditivityName::Snapshot,
        }
    }
}

/// A row grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrainName {
    /// Day rows.
    Day,
    /// Period rows of whole ISO weeks.
    Week,
    /// Period rows of calendar months.
    Month,
}

fn grains(grains: Grains) -> Vec<GrainName> {
    let mut out = Vec::new();
    if grains.days() {
        out.push(GrainName::Day);
    }
    if grains.periods() {
        out.extend([GrainName::Week, GrainName::Month]);
    }
    out
}

/// One metric a stream yields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MetricEntry {
    /// The `metric` column; a family's pattern with its placeholder in angle brackets.
    pub metric: String,
    /// Canonical, one extra, or a family of extras.
    pub kind: MetricKind,
    /// The unit of its values; null when it depends on the member of a family.
    pub unit: Option<UnitName>,
    /// How values combine; null for values that do not add up or when it depends.
    pub additivity: Option<AdditivityName>,
    /// The platform's field (or fields, or file columns) it is read from.
    pub platform_field: String,
    /// The rows that carry it.
    pub grains: Vec<GrainName>,
    /// Pulled only when the configuration asks for it.
    pub configured: bool,
    /// What a reader needs to know.
    pub note: Option<String>,
    /// The vocabulary's meaning, for a canonical metric.
    pub meaning: Option<String>,
}

impl From<&MetricOrigin> for MetricEntry {
    fn from(origin: &MetricOrigin) -> MetricEntry {
        let kind = match origin.metric {
            CatalogMetric::Canonical(_) => MetricKind::Canonical,
            CatalogMetric::Extra { .. } => MetricKind::Extra,
            CatalogMetric::ExtraFamily { .. } => MetricKind::ExtraFamily,
        };
        MetricEntry {
            metric: origin.metric.name(),
            kind,
            unit: origin.metric.unit().map(UnitName::from),
            additivity: origin.metric.additivity().map(AdditivityName::from),
            platform_field: origin.platform_field.clone(),
            grains: grains(origin.grains),
            configured: origin.configured,
            note: Some(origin.note.clone()).filter(|n| !n.is_empty()),
            meaning: origin.metric.canonical().map(|m| m.def().description.to_owned()),
        }
    }
}

impl From<&StreamCatalog> for StreamEntry {
    fn from(stream: &StreamCatalog) -> StreamEntry {
        StreamEntry {
            name: stream.stream.name.to_owned(),
            description: stream.stream.description.to_owned(),
            levels: stream.levels.clone(),
            levels_from: stream.levels_from.map(str::to_owned),
            dimensions: stream.dimensions.iter().map(|d| (*d).to_owned()).collect(),
            metrics: stream.metrics.iter().map(MetricEntry::from).collect(),
        }
    }
}

/// The buyer's-journey stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    /// Being seen.
    Awareness,
    /// Being considered.
    Consideration,
    /// Deciding.
    Decision,
    /// Staying.
    Loyalty,
}

impl From<Stage> for StageName {
    fn from(stage: Stage) -> StageName {
        match stage {
            Stage::Awareness => StageName::Awareness,
            Stage::Consideration => StageName::Consideration,
            Stage::Decision => StageName::Decision,
            Stage::Loyalty => StageName::Loyalty,
        }
    }
}

/// A built-in KPI.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KpiEntry {
    /// The `kpi` column.
    pub name: String,
    /// The formula over canonical metrics.
    pub formula: String,
    /// The buyer's-journey stage.
    pub stage: StageName,
    /// The unit of its values.
    pub unit: UnitName,
    /// What it measures.
    pub description: String,
    /// Every metric the formula names.
    pub metrics: Vec<String>,
    /// Sets of metrics each enough to compute it (one per alternative of a `coalesce`).
    pub requires_any_of: Vec<Vec<String>>,
    /// Conditions on the rows it reads (`platform = hubspot`), by key.
    pub filter: BTreeMap<String, Vec<String>>,
    /// The connectors whose metrics alone are enough for it.
    pub connectors: Vec<String>,
}

/// Whether `kpi` can be computed from what `streams` yield, for a connector of type `kind`: every
/// metric of one of its alternatives is declared (configured ones included), and a `platform`
/// filter lets the connector's rows in.
fn computable(kpi: &BuiltinKpi, kind: &str, streams: &[StreamCatalog]) -> bool {
    let has = |name: &str| {
        streams
            .iter()
            .flat_map(|s| &s.metrics)
            .any(|o| o.metric.canonical().is_some_and(|m| m.name() == name))
    };
    let platform_ok = kpi.filter_values("platform").is_none_or(|values| values.iter().any(|v| v == kind));
    platform_ok && kpi.computable_from(has)
}

/// The catalog of `connectors`.
pub fn build(connectors: &[ConnectorFactory]) -> Catalog {
    let builtins = kpipe_kpi::builtins();
    let declared: Vec<(&ConnectorFactory, Vec<StreamCatalog>)> =
        connectors.iter().map(|c| (c, c.catalog())).collect();
    let connectors = declared
        .iter()
        .map(|(factory, streams)| {
            let schema = serde_json::Value::from(factory.config_schema());
            ConnectorEntry {
                kind: factory.kind.to_owned(),
                description: factory.description.to_owned(),
                streams: streams.iter().map(StreamEntry::from).collect(),
                config: ConfigEntry { keys: config_keys(&schema), schema },
                unit_keys: factory.unit_keys.iter().map(|k| k.key.to_owned()).collect(),
                kpis: builtins
                    .iter()
                    .filter(|k| computable(k, factory.kind, streams))
                    .map(|k| k.name.clone())
                    .collect(),
            }
        })
        .collect();
    let kpis = builtins
        .iter()
        .map(|k| KpiEntry {
            name: k.name.clone(),
            formula: k.formula.clone(),
            stage: k.stage.into(),
            unit: k.unit.into(),
            description: k.description.clone(),
            metrics: k.metrics.clone(),
            requires_any_of: k.requires_any_of.clone(),
            filter: k.filter.iter().cloned().collect(),
            connectors: declared
                .iter()
                .filter(|(factory, streams)| computable(k, factory.kind, streams))
                .map(|(factory, _)| factory.kind.to_owned())
                .collect(),
        })
        .collect();
    Catalog { connectors, kpis }
}
