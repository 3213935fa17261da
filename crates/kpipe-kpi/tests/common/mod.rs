//! Helpers shared by the KPI tests: metric rows from compact CSV, written through the real
//! Parquet sink, and KPI rows as one-line text.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::{
    Currency, DateWindow, Dimensions, Label, MetricBatch, MetricName, MetricRow, Sink, SinkTarget, Unit,
};
use kpipe_kpi::{KpiRow, Scope};
use kpipe_sink_parquet::ParquetSink;

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Rows of `source,platform,account,level,entity,date,metric,value,currency,channel` lines (a
/// header line first), grouped by source.
pub fn rows(csv: &str) -> BTreeMap<String, Vec<MetricRow>> {
    let mut out: BTreeMap<String, Vec<MetricRow>> = BTreeMap::new();
    for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 10, "{line}");
        let metric = MetricName::parse(f[6], Unit::Count).unwrap_or_else(|| panic!("metric {}", f[6]));
        let row = MetricRow {
            platform: Label::new(f[1]),
            account_id: Label::new(f[2]),
            level: Label::new(f[3]),
            entity_id: Label::new(f[4]),
            entity_name: None,
            date: day(f[5]),
            dimensions: Dimensions {
                channel: (!f[9].is_empty()).then(|| Label::new(f[9])),
                ..Dimensions::default()
            },
            metric,
            value: f[7].parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            currency: (!f[8].is_empty()).then(|| Currency::parse(f[8]).unwrap_or_else(|| panic!("{line}"))),
        };
        row.validate().unwrap_or_else(|e| panic!("{line}: {e}"));
        out.entry(f[0].to_owned()).or_default().push(row);
    }
    out
}

/// Writes each source's rows through the Parquet sink, replacing `window` of that source.
pub fn store(output: &Path, by_source: &BTreeMap<String, Vec<MetricRow>>, window: DateWindow) {
    let sink = ParquetSink::new(output);
    for (source, rows) in by_source {
        let target = SinkTarget {
            source: source.clone(),
            window,
            run_id: "test-run".into(),
            pulled_at: DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
        };
        let mut writer = sink.open(target).unwrap_or_else(|e| panic!("{e}"));
        writer.write(&MetricBatch::new(rows.clone())).unwrap_or_else(|e| panic!("{e}"));
        writer.commit().unwrap_or_else(|e| panic!("{e}"));
    }
}

fn text(d: Option<kpipe_core::Decimal>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

/// `kpi grain period_start scope who currency = value (numerator / denominator) unit stage`.
pub fn line(r: &KpiRow) -> String {
    let s = |l: &Option<Label>| l.as_deref().unwrap_or("?").to_owned();
    let who = match r.scope {
        Scope::Entity => format!(
            "{}:{}/{}/{}/{}",
            s(&r.platform),
            s(&r.source),
            s(&r.account_id),
            s(&r.level),
            s(&r.entity_id)
        ),
        Scope::Account => format!("{}:{}/{}", s(&r.platform), s(&r.source), s(&r.account_id)),
        Scope::Platform => s(&r.platform),
        Scope::All => "*".to_owned(),
    };
    format!(
        "{} {} {} {} {} {} = {} ({} / {}) {} {}",
        r.kpi,
        r.grain,
        r.period_start,
        r.scope,
        who,
        r.currency.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        text(r.value),
        text(r.numerator),
        text(r.denominator),
        r.unit,
        r.stage
    )
}

pub fn lines(rows: &[KpiRow]) -> Vec<String> {
    let mut out: Vec<String> = rows.iter().map(line).collect();
    out.sort();
    out
}
