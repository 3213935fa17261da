//! What a connector can pull, declared next to the code that pulls it: its streams, the levels
//! and dimension columns of their rows, and every metric each stream yields with the platform
//! field it comes from ([`Source::catalog`](crate::Source::catalog)).
//!
//! `kpipe catalog` and the connector docs are generated from these declarations, and the
//! conformance suite checks every row a connector emits against them ([`check_row`]), so a
//! declaration cannot fall behind the code. A connector that has a field-to-metric table builds
//! its declaration from that table.

use std::fmt;

use crate::metric::{Additivity, Metric, Unit};
use crate::record::{Dimensions, MetricName, MetricRow};
use crate::source::StreamInfo;

/// Which rows a metric comes in: day rows, period rows (whole ISO weeks and calendar months,
/// [`crate::period`]), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grains {
    /// One value per day.
    Days,
    /// One value per day, and one per whole week and month.
    DaysAndPeriods,
    /// One value per whole week and month only.
    Periods,
}

impl Grains {
    /// Whether day rows carry the metric.
    pub fn days(self) -> bool {
        matches!(self, Grains::Days | Grains::DaysAndPeriods)
    }

    /// Whether period rows carry the metric.
    pub fn periods(self) -> bool {
        matches!(self, Grains::DaysAndPeriods | Grains::Periods)
    }

    /// The grains by name: `day`, `week`, `month`.
    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.days() {
            names.push("day");
        }
        if self.periods() {
            names.extend(["week", "month"]);
        }
        names
    }
}

/// A metric a stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogMetric {
    /// A metric of the canonical vocabulary; unit and additivity are the vocabulary's.
    Canonical(Metric),
    /// One `<platform>.<name>` extra.
    Extra {
        /// `<platform>.<name>`.
        name: String,
        /// The unit of its values.
        unit: Unit,
        /// How its values combine; `None` for values that do not add up (averages, rates).
        additivity: Option<Additivity>,
    },
    /// Extras named after what the platform or the configuration says (an action type, a
    /// configured report's metric): `<platform>.<prefix><placeholder>`.
    ExtraFamily {
        /// The platform part; `None` when the data names it (the files connector).
        platform: Option<String>,
        /// What every name starts with after the platform and the dot (may be empty).
        prefix: String,
        /// What stands for the rest of the name, in the docs (`action_type`).
        placeholder: String,
        /// The unit of their values; `None` when it depends on the member.
        unit: Option<Unit>,
        /// How their values combine; `None` when it depends on the member or they do not add up.
        additivity: Option<Additivity>,
    },
}

impl CatalogMetric {
    /// The name as written to the `metric` column; a family's with its placeholder in angle
    /// brackets (`facebook.action_<action_type>`).
    pub fn name(&self) -> String {
        match self {
            CatalogMetric::Canonical(m) => m.name().to_owned(),
            CatalogMetric::Extra { name, .. } => name.clone(),
            CatalogMetric::ExtraFamily { platform, prefix, placeholder, .. } => {
                let platform = platform.as_deref().unwrap_or("<platform>");
                format!("{platform}.{prefix}<{placeholder}>")
            }
        }
    }

    /// The unit of the values, where one unit holds for all of them.
    pub fn unit(&self) -> Option<Unit> {
        match self {
            CatalogMetric::Canonical(m) => Some(m.unit()),
            CatalogMetric::Extra { unit, .. } => Some(*unit),
            CatalogMetric::ExtraFamily { unit, .. } => *unit,
        }
    }

    /// How values combine, where it is known and they combine at all.
    pub fn additivity(&self) -> Option<Additivity> {
        match self {
            CatalogMetric::Canonical(m) => Some(m.additivity()),
            CatalogMetric::Extra { additivity, .. } | CatalogMetric::ExtraFamily { additivity, .. } => {
                *additivity
            }
        }
    }

    /// The canonical metric, if it is one.
    pub fn canonical(&self) -> Option<Metric> {
        match self {
            CatalogMetric::Canonical(m) => Some(*m),
            _ => None,
        }
    }

    /// Whether a row's metric is this one (or a member of this family).
    pub fn matches(&self, metric: &MetricName) -> bool {
        match (self, metric) {
            (CatalogMetric::Canonical(m), MetricName::Canonical(row)) => m == row,
            (CatalogMetric::Extra { name, unit, .. }, MetricName::Extra { name: row, unit: row_unit }) => {
                name == row.as_str() && unit == row_unit
            }
            (
                CatalogMetric::ExtraFamily { platform, prefix, unit, .. },
                MetricName::Extra { name: row, unit: row_unit },
            ) => {
                let Some((row_platform, rest)) = row.as_str().split_once('.') else { return false };
                platform.as_deref().is_none_or(|p| p == row_platform)
                    && rest.len() > prefix.len()
                    && rest.starts_with(prefix.as_str())
                    && unit.is_none_or(|u| u == *row_unit)
            }
            _ => false,
        }
    }

    /// Why the declaration is not a canonical metric or a well-formed `<platform>.<name>`
    /// extra of `platform` (where the connector names its platform).
    pub fn check(&self, platform: Option<&str>) -> Result<(), String> {
        let own = |p: &str| match platform {
            Some(own) if own != p => Err(format!("`{}` is not of the platform `{own}`", self.name())),
            _ => Ok(()),
        };
        match self {
            CatalogMetric::Canonical(_) => Ok(()),
            CatalogMetric::Extra { name, unit, .. } => match MetricName::parse(name, *unit) {
                Some(MetricName::Extra { .. }) => own(name.split('.').next().unwrap_or_default()),
                Some(MetricName::Canonical(_)) => {
                    Err(format!("`{name}` is a canonical metric, declared as an extra"))
                }
                None => Err(format!("`{name}` is neither canonical nor `<platform>.<name>`")),
            },
            CatalogMetric::ExtraFamily { platform: family, prefix, placeholder, .. } => {
                let shape = prefix.is_empty() || crate::record::is_identifier(prefix);
                if !shape || placeholder.is_empty() {
                    return Err(format!("`{}` is not a family of `<platform>.<name>` names", self.name()));
                }
                match family {
                    Some(p) if !crate::record::is_identifier(p) => {
                        Err(format!("`{}`: `{p}` is not a platform name", self.name()))
                    }
                    Some(p) => own(p),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for CatalogMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One metric a stream yields and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOrigin {
    /// The metric.
    pub metric: CatalogMetric,
    /// The platform's field (or expression of fields, or file column) it is read from:
    /// `approximateMemberReach`, `actions[action_type = lead]`.
    pub platform_field: String,
    /// Day rows, period rows, or both.
    pub grains: Grains,
    /// Pulled only when the configuration asks for it (`extra_fields`, `page_metrics`, custom
    /// reports); otherwise always.
    pub configured: bool,
    /// Anything a reader needs to know (how it is derived, when it is left out); may be empty.
    pub note: String,
}

impl MetricOrigin {
    /// `metric` in day rows, read from `platform_field`.
    pub fn canonical(metric: Metric, platform_field: impl Into<String>) -> MetricOrigin {
        MetricOrigin::of(CatalogMetric::Canonical(metric), platform_field)
    }

    /// The metric a connector's own mapping code names (canonical or extra), in day rows. An
    /// extra's additivity is the connector's to say.
    pub fn named(
        metric: &MetricName,
        additivity: Option<Additivity>,
        platform_field: impl Into<String>,
    ) -> MetricOrigin {
        let metric = match metric {
            MetricName::Canonical(m) => CatalogMetric::Canonical(*m),
            MetricName::Extra { name, unit } => {
                CatalogMetric::Extra { name: name.as_str().to_owned(), unit: *unit, additivity }
            }
        };
        MetricOrigin::of(metric, platform_field)
    }

    /// Any declaration, in day rows.
    pub fn of(metric: CatalogMetric, platform_field: impl Into<String>) -> MetricOrigin {
        MetricOrigin {
            metric,
            platform_field: platform_field.into(),
            grains: Grains::Days,
            configured: false,
            note: String::new(),
        }
    }

    /// The same, in the rows of `grains`.
    pub fn grains(self, grains: Grains) -> MetricOrigin {
        MetricOrigin { grains, ..self }
    }

    /// The same, pulled only when the configuration asks for it.
    pub fn configured(self) -> MetricOrigin {
        MetricOrigin { configured: true, ..self }
    }

    /// The same, with a note for readers.
    pub fn note(self, note: impl Into<String>) -> MetricOrigin {
        MetricOrigin { note: note.into(), ..self }
    }
}

/// One stream of a connector as its catalog declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCatalog {
    /// The stream's name and description, as [`Source::streams`](crate::Source::streams) gives
    /// them.
    pub stream: StreamInfo,
    /// The `level` values of its rows.
    pub levels: Vec<String>,
    /// Where the level comes from when the data or the configuration names it (a file's
    /// `level` column, a custom report's name): then any level may appear.
    pub levels_from: Option<&'static str>,
    /// The dimension columns its rows may fill ([`Dimensions::NAMES`]).
    pub dimensions: Vec<&'static str>,
    /// What it yields.
    pub metrics: Vec<MetricOrigin>,
}

impl StreamCatalog {
    /// A stream without levels, dimensions or metrics yet.
    pub fn new(stream: StreamInfo) -> StreamCatalog {
        StreamCatalog {
            stream,
            levels: Vec::new(),
            levels_from: None,
            dimensions: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &'static str {
        self.stream.name
    }

    /// With these levels.
    pub fn levels<S: AsRef<str>>(mut self, levels: impl IntoIterator<Item = S>) -> StreamCatalog {
        for level in levels {
            let level = level.as_ref();
            if !self.levels.iter().any(|l| l == level) {
                self.levels.push(level.to_owned());
            }
        }
        self
    }

    /// With levels named by `from` (any level may appear).
    pub fn levels_from(self, from: &'static str) -> StreamCatalog {
        StreamCatalog { levels_from: Some(from), ..self }
    }

    /// With these dimension columns.
    pub fn dimensions(mut self, dimensions: &[&'static str]) -> StreamCatalog {
        for dimension in dimensions {
            if !self.dimensions.contains(dimension) {
                self.dimensions.push(dimension);
            }
        }
        self
    }

    /// With these metrics.
    pub fn metrics(mut self, metrics: impl IntoIterator<Item = MetricOrigin>) -> StreamCatalog {
        self.metrics.extend(metrics);
        self
    }

    /// Why the declaration is malformed: unknown dimension columns, levels that are not
    /// snake_case, extras of another platform than `platform` (where the connector names one),
    /// a metric declared twice from the same field.
    pub fn check(&self, platform: Option<&str>) -> Result<(), String> {
        let at = |e: String| format!("stream `{}`: {e}", self.stream.name);
        if !crate::record::is_identifier(self.stream.name) {
            return Err(at("the name is not snake_case".into()));
        }
        for d in &self.dimensions {
            if !Dimensions::NAMES.contains(d) {
                return Err(at(format!(
                    "`{d}` is not a dimension column ({})",
                    Dimensions::NAMES.join(", ")
                )));
            }
        }
        for level in &self.levels {
            if !crate::record::is_identifier(level) {
                return Err(at(format!("level `{level}` is not snake_case")));
            }
        }
        if self.levels.is_empty() && self.levels_from.is_none() {
            return Err(at("it declares no level".into()));
        }
        if self.metrics.is_empty() {
            return Err(at("it declares no metric".into()));
        }
        for (i, origin) in self.metrics.iter().enumerate() {
            origin.metric.check(platform).map_err(at)?;
            if origin.platform_field.trim().is_empty() {
                return Err(at(format!("`{}` names no platform field", origin.metric)));
            }
            let twice = self.metrics[..i]
                .iter()
                .any(|o| o.metric == origin.metric && o.platform_field == origin.platform_field);
            if twice {
                return Err(at(format!(
                    "`{}` from `{}` is declared twice",
                    origin.metric, origin.platform_field
                )));
            }
        }
        Ok(())
    }
}

/// Why `row` is not what `catalog` declares, or `Ok`. `stream` is the stream it was emitted
/// under ([`Emitter::set_stream`](crate::Emitter::set_stream); `None` for a source that did not
/// say, which is fine when it has one stream); `period` is true for a period row, which carries
/// no stream and is checked against every stream that declares the metric over periods.
pub fn check_row(
    catalog: &[StreamCatalog],
    stream: Option<&str>,
    row: &MetricRow,
    period: bool,
) -> Result<(), String> {
    let candidates: Vec<&StreamCatalog> = match (period, stream) {
        (false, Some(name)) => {
            let found: Vec<_> = catalog.iter().filter(|s| s.stream.name == name).collect();
            if found.is_empty() {
                return Err(format!("stream `{name}` is not in the catalog"));
            }
            found
        }
        _ => catalog.iter().collect(),
    };
    let kind = if period { "period rows" } else { "day rows" };
    let declared = |s: &&StreamCatalog| {
        s.metrics.iter().any(|o| {
            o.metric.matches(&row.metric) && if period { o.grains.periods() } else { o.grains.days() }
        })
    };
    let homes: Vec<&StreamCatalog> = candidates.iter().copied().filter(declared).collect();
    if homes.is_empty() {
        let streams: Vec<&str> = candidates.iter().map(|s| s.stream.name).collect();
        return Err(format!(
            "metric `{}` ({}) in {kind} is not declared by stream {}",
            row.metric,
            row.metric.unit(),
            streams.join(" or ")
        ));
    }
    // A period row may belong to any stream that declares its metric: one that also declares
    // its level and dimensions will do.
    let mut first_error = None;
    for home in homes {
        match level_and_dimensions(home, row) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

/// Why `row`'s level or dimension columns are not what `home` declares.
fn level_and_dimensions(home: &StreamCatalog, row: &MetricRow) -> Result<(), String> {
    let level = row.level.as_str();
    if home.levels_from.is_none() && !home.levels.iter().any(|l| l == level) {
        return Err(format!(
            "level `{level}` of metric `{}` is not declared by stream `{}` ({})",
            row.metric,
            home.stream.name,
            home.levels.join(", ")
        ));
    }
    for (name, value) in Dimensions::NAMES.iter().zip(row.dimensions.values()) {
        if value.is_some() && !home.dimensions.contains(name) {
            return Err(format!(
                "dimension `{name}` of metric `{}` is not declared by stream `{}`",
                row.metric, home.stream.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Label;
    use crate::record::Dimensions;

    fn stream() -> StreamCatalog {
        StreamCatalog::new(StreamInfo { name: "ads", description: "Ads" })
            .levels(["campaign"])
            .dimensions(&["country"])
            .metrics([
                MetricOrigin::canonical(Metric::Clicks, "clicks"),
                MetricOrigin::canonical(Metric::Reach, "reach").grains(Grains::Periods),
                MetricOrigin::of(
                    CatalogMetric::ExtraFamily {
                        platform: Some("acme".into()),
                        prefix: "action_".into(),
                        placeholder: "action_type".into(),
                        unit: Some(Unit::Count),
                        additivity: Some(Additivity::Sum),
                    },
                    "actions",
                ),
            ])
    }

    fn row(metric: MetricName) -> MetricRow {
        MetricRow {
            platform: "acme".into(),
            account_id: "a".into(),
            level: "campaign".into(),
            entity_id: "c".into(),
            entity_name: None,
            date: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap_or_default(),
            dimensions: Dimensions::default(),
            metric,
            value: crate::Decimal::from_i64(1),
            currency: None,
        }
    }

    #[test]
    fn rows_are_checked_against_their_stream() {
        let catalog = [stream()];
        assert_eq!(check_row(&catalog, Some("ads"), &row(Metric::Clicks.into()), false), Ok(()));
        assert_eq!(check_row(&catalog, None, &row(Metric::Clicks.into()), false), Ok(()));
        let impressions = check_row(&catalog, Some("ads"), &row(Metric::Impressions.into()), false);
        assert_eq!(
            impressions,
            Err("metric `impressions` (count) in day rows is not declared by stream ads".into())
        );
        assert!(check_row(&catalog, Some("pages"), &row(Metric::Clicks.into()), false).is_err());
        // Reach is declared over periods only.
        assert!(check_row(&catalog, Some("ads"), &row(Metric::Reach.into()), false).is_err());
        assert_eq!(check_row(&catalog, None, &row(Metric::Reach.into()), true), Ok(()));
        let member = MetricName::extra("acme", "action_lead", Unit::Count).unwrap();
        assert_eq!(check_row(&catalog, Some("ads"), &row(member), false), Ok(()));
        let other = MetricName::extra("other", "action_lead", Unit::Count).unwrap();
        assert!(check_row(&catalog, Some("ads"), &row(other), false).is_err());
        let money = MetricName::extra("acme", "action_lead", Unit::Currency).unwrap();
        assert!(check_row(&catalog, Some("ads"), &row(money), false).is_err());
        let mut wrong_level = row(Metric::Clicks.into());
        wrong_level.level = "ad".into();
        assert!(check_row(&catalog, Some("ads"), &wrong_level, false).unwrap_err().contains("level `ad`"));
        let mut by_device = row(Metric::Clicks.into());
        by_device.dimensions.device = Some(Label::from("mobile"));
        assert!(check_row(&catalog, Some("ads"), &by_device, false).unwrap_err().contains("`device`"));
    }

    #[test]
    fn declarations_are_checked() {
        assert_eq!(stream().check(Some("acme")), Ok(()));
        assert!(stream().check(Some("other")).unwrap_err().contains("not of the platform"));
        let bad = stream().dimensions(&["colour"]);
        assert!(bad.check(None).unwrap_err().contains("`colour`"));
        let extra = |name: &str| {
            CatalogMetric::Extra { name: name.into(), unit: Unit::Count, additivity: None }.check(None)
        };
        assert!(extra("clicks").is_err());
        assert!(extra("Acme.x").is_err());
        assert_eq!(extra("acme.video_starts"), Ok(()));
        let twice = stream().metrics([MetricOrigin::canonical(Metric::Clicks, "clicks")]);
        assert!(twice.check(None).unwrap_err().contains("twice"));
    }

    #[test]
    fn names_and_grains_read_as_in_the_docs() {
        let family = &stream().metrics[2].metric;
        assert_eq!(family.name(), "acme.action_<action_type>");
        assert_eq!(Grains::DaysAndPeriods.names(), ["day", "week", "month"]);
        assert_eq!(Grains::Periods.names(), ["week", "month"]);
        assert_eq!(
            CatalogMetric::ExtraFamily {
                platform: None,
                prefix: String::new(),
                placeholder: "name".into(),
                unit: None,
                additivity: None
            }
            .name(),
            "<platform>.<name>"
        );
    }
}
