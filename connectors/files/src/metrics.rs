//! `kind = "metrics"`: one observation per line, in the long form of the metric schema.

use kpipe_core::{Currency, Decimal, Dimensions, Label, MetricName, MetricRow, Unit, is_identifier};

use crate::reader::{Header, parse_date};
use crate::source::LineKind;

const REQUIRED: &[&str] = &["date", "platform", "account", "level", "entity", "metric", "value"];
const OPTIONAL: &[&str] = &[
    "currency",
    "entity_name",
    "unit",
    "country",
    "region",
    "device",
    "channel",
    "source_medium",
    "publisher_platform",
    "age",
    "gender",
];

#[derive(Debug, Default)]
pub(crate) struct MetricLines {
    cols: Option<Columns>,
}

#[derive(Debug)]
struct Columns {
    date: usize,
    platform: usize,
    account: usize,
    level: usize,
    entity: usize,
    metric: usize,
    value: usize,
    currency: Option<usize>,
    entity_name: Option<usize>,
    unit: Option<usize>,
    dimensions: Vec<(&'static str, usize)>,
}

fn required(header: &Header, name: &str) -> usize {
    // Header::read has checked that every required column is there.
    header.position(name).unwrap_or(usize::MAX)
}

impl LineKind for MetricLines {
    fn columns(&self) -> (&'static [&'static str], &'static [&'static str]) {
        (REQUIRED, OPTIONAL)
    }

    fn start_file(&mut self, header: &Header) -> Result<(), String> {
        self.cols = Some(Columns {
            date: required(header, "date"),
            platform: required(header, "platform"),
            account: required(header, "account"),
            level: required(header, "level"),
            entity: required(header, "entity"),
            metric: required(header, "metric"),
            value: required(header, "value"),
            currency: header.position("currency"),
            entity_name: header.position("entity_name"),
            unit: header.position("unit"),
            dimensions: Dimensions::NAMES
                .iter()
                .filter_map(|d| header.position(d).map(|p| (*d, p)))
                .collect(),
        });
        Ok(())
    }

    fn line(&mut self, fields: &csv::StringRecord, _location: &str) -> Result<Vec<MetricRow>, String> {
        let c = self.cols.as_ref().ok_or("no header was read")?;
        let get = |i: usize| fields.get(i).map(str::trim).unwrap_or("");
        let text = |name: &str, i: usize| -> Result<Label, String> {
            let v = get(i);
            if v.is_empty() { Err(format!("`{name}` is empty")) } else { Ok(Label::new(v)) }
        };
        let date = parse_date(get(c.date))?;
        let platform = get(c.platform);
        if !is_identifier(platform) {
            return Err(format!("platform `{platform}` is not a snake_case name such as `linkedin`"));
        }
        let level = get(c.level);
        if !is_identifier(level) {
            return Err(format!("level `{level}` is not a snake_case name such as `campaign`"));
        }
        let extra_unit = match c.unit.map(get).filter(|u| !u.is_empty()) {
            None => Unit::Count,
            Some(u) => Unit::from_name(u)
                .ok_or_else(|| format!("unit `{u}` is not one of count, currency, seconds, ratio, score"))?,
        };
        let metric_text = get(c.metric);
        let metric = MetricName::parse(metric_text, extra_unit).ok_or_else(|| {
            format!(
                "unknown metric `{metric_text}`: expected a canonical metric (docs/schema.md) or `<platform>.<name>`"
            )
        })?;
        if let (MetricName::Canonical(m), Some(u)) = (&metric, c.unit.map(get).filter(|u| !u.is_empty()))
            && u != m.unit().as_str()
        {
            return Err(format!("metric `{m}` is measured in {}, not {u}", m.unit()));
        }
        let value_text = get(c.value);
        if value_text.is_empty() {
            return Err("`value` is empty".into());
        }
        let value: Decimal =
            value_text.parse().map_err(|e: kpipe_core::DecimalError| format!("`value`: {e}"))?;
        let currency = match c.currency.map(get).filter(|v| !v.is_empty()) {
            None => None,
            Some(code) => Some(
                Currency::parse(code)
                    .ok_or_else(|| format!("currency `{code}` is not an ISO 4217 code such as EUR"))?,
            ),
        };
        let mut dimensions = Dimensions::default();
        for (name, i) in &c.dimensions {
            let v = get(*i);
            if let (false, Some(slot)) = (v.is_empty(), dimensions.slot_mut(name)) {
                *slot = Some(Label::new(v));
            }
        }
        let row = MetricRow {
            platform: Label::new(platform),
            account_id: text("account", c.account)?,
            level: Label::new(level),
            entity_id: text("entity", c.entity)?,
            entity_name: c.entity_name.map(get).filter(|v| !v.is_empty()).map(Label::new),
            date,
            dimensions,
            metric,
            value,
            currency,
        };
        row.validate().map_err(|e| e.to_string())?;
        Ok(vec![row])
    }

    fn finish(&mut self) -> Vec<MetricRow> {
        Vec::new()
    }
}
