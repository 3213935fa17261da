//! The statistics of a data file's `add` action (numRecords, minValues, maxValues, nullCount),
//! taken from the column chunk statistics in the file's own footer, so that readers skip files
//! without opening them.
//!
//! Delta Lake stores them as JSON typed by the table schema
//! (<https://github.com/delta-io/delta/blob/master/PROTOCOL.md#per-file-statistics>): strings,
//! dates as `YYYY-MM-DD`, timestamps as ISO-8601 in UTC with milliseconds. Where a bound would
//! be inexact it is left out rather than written too tight: a reader would otherwise skip a
//! file that holds matching rows.

use std::path::Path;

use arrow_schema::{DataType, Schema};
use chrono::{DateTime, NaiveDate};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;
use serde_json::{Map, Value};

/// The statistics JSON of the Parquet file at `path`, whose columns are `schema`'s fields in
/// order; `partition_columns` get none (their values are in the action itself).
pub(crate) fn file_stats(path: &Path, schema: &Schema, partition_columns: &[&str]) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&file).map_err(|e| e.to_string())?;
    Ok(stats_json(&metadata, schema, partition_columns).to_string())
}

fn stats_json(metadata: &ParquetMetaData, schema: &Schema, partition_columns: &[&str]) -> Value {
    let rows: i64 = metadata.row_groups().iter().map(|g| g.num_rows()).sum();
    let mut min_values = Map::new();
    let mut max_values = Map::new();
    let mut null_count = Map::new();
    for (index, field) in schema.fields().iter().enumerate() {
        if partition_columns.contains(&field.name().as_str()) {
            continue;
        }
        let mut column = ColumnBounds::default();
        for group in metadata.row_groups() {
            let Some(chunk) = group.columns().get(index) else {
                column.unknown();
                continue;
            };
            match chunk.statistics() {
                Some(stats) => column.add(stats, field.data_type()),
                None => column.unknown(),
            }
        }
        if let Some(nulls) = column.nulls {
            null_count.insert(field.name().clone(), Value::from(nulls));
        }
        if let (Some(min), Some(max)) = (column.min, column.max) {
            min_values.insert(field.name().clone(), min.json(Bound::Min));
            max_values.insert(field.name().clone(), max.json(Bound::Max));
        }
    }
    let mut stats = Map::new();
    stats.insert("numRecords".into(), Value::from(rows));
    stats.insert("minValues".into(), Value::Object(min_values));
    stats.insert("maxValues".into(), Value::Object(max_values));
    stats.insert("nullCount".into(), Value::Object(null_count));
    Value::Object(stats)
}

#[derive(Clone, Copy)]
enum Bound {
    Min,
    Max,
}

/// A column value that has a JSON form in Delta statistics.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum StatValue {
    Text(String),
    Date(i32),
    TimestampMicros(i64),
}

impl StatValue {
    fn json(&self, bound: Bound) -> Value {
        match self {
            StatValue::Text(text) => Value::String(text.clone()),
            StatValue::Date(days) => Value::String(date_text(*days)),
            StatValue::TimestampMicros(micros) => {
                // Milliseconds: a minimum rounds down, a maximum up, so the bounds still hold.
                let millis = match bound {
                    Bound::Min => micros.div_euclid(1000),
                    Bound::Max => micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0),
                };
                match DateTime::from_timestamp_millis(millis) {
                    Some(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
                    None => Value::Null,
                }
            }
        }
    }
}

fn date_text(days: i32) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(i64::from(days))))
        .map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// Bounds and null count of one column across the row groups; a row group without exact
/// statistics makes the column's bounds (or null count) unknown.
#[derive(Default)]
struct ColumnBounds {
    min: Option<StatValue>,
    max: Option<StatValue>,
    nulls: Option<u64>,
    seen: bool,
    bounds_unknown: bool,
    nulls_unknown: bool,
}

impl ColumnBounds {
    fn unknown(&mut self) {
        self.bounds_unknown = true;
        self.nulls_unknown = true;
        self.min = None;
        self.max = None;
        self.nulls = None;
    }

    fn add(&mut self, stats: &Statistics, data_type: &DataType) {
        let first = !self.seen;
        self.seen = true;
        if !self.nulls_unknown {
            match stats.null_count_opt() {
                Some(n) => self.nulls = Some(self.nulls.unwrap_or(0) + n),
                None => {
                    self.nulls_unknown = true;
                    self.nulls = None;
                }
            }
        }
        if self.bounds_unknown {
            return;
        }
        let (min, max) = match (value(stats, data_type, Bound::Min), value(stats, data_type, Bound::Max)) {
            (Some(min), Some(max)) => (min, max),
            // An all-null chunk has no bounds and narrows nothing.
            _ if stats.null_count_opt().is_some() && stats.min_bytes_opt().is_none() => return,
            _ => {
                self.bounds_unknown = true;
                self.min = None;
                self.max = None;
                return;
            }
        };
        if first || self.min.as_ref().is_none_or(|m| min < *m) {
            self.min = Some(min);
        }
        if first || self.max.as_ref().is_none_or(|m| max > *m) {
            self.max = Some(max);
        }
    }
}

/// A chunk's exact bound as a statistics value; `None` for types Delta statistics are not
/// written for here (decimals: JSON numbers of 38 digits do not survive readers' doubles; a
/// bound rounded the wrong way would skip matching files) or for inexact bounds.
fn value(stats: &Statistics, data_type: &DataType, bound: Bound) -> Option<StatValue> {
    let exact = match bound {
        Bound::Min => stats.min_is_exact(),
        Bound::Max => stats.max_is_exact(),
    };
    if !exact {
        return None;
    }
    let bytes = match bound {
        Bound::Min => stats.min_bytes_opt()?,
        Bound::Max => stats.max_bytes_opt()?,
    };
    match (stats, data_type) {
        (Statistics::ByteArray(_), DataType::Utf8) => {
            std::str::from_utf8(bytes).ok().map(|s| StatValue::Text(s.to_owned()))
        }
        (Statistics::Int32(_), DataType::Date32) => {
            Some(StatValue::Date(i32::from_le_bytes(bytes.try_into().ok()?)))
        }
        (Statistics::Int64(_), DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _)) => {
            Some(StatValue::TimestampMicros(i64::from_le_bytes(bytes.try_into().ok()?)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximum_timestamp_rounds_up_to_the_millisecond_and_a_minimum_down() {
        let t = StatValue::TimestampMicros(1_700_000_000_123_456);
        assert_eq!(t.json(Bound::Min), Value::String("2023-11-14T22:13:20.123Z".into()));
        assert_eq!(t.json(Bound::Max), Value::String("2023-11-14T22:13:20.124Z".into()));
        let exact = StatValue::TimestampMicros(1_700_000_000_123_000);
        assert_eq!(exact.json(Bound::Max), Value::String("2023-11-14T22:13:20.123Z".into()));
    }

    #[test]
    fn dates_are_written_as_days() {
        assert_eq!(StatValue::Date(0).json(Bound::Min), Value::String("1970-01-01".into()));
        assert_eq!(StatValue::Date(20_454).json(Bound::Max), Value::String("2026-01-01".into()));
    }
}
