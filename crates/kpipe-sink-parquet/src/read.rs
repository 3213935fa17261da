//! Reading metric files back into rows: for tests, for checks, and for stages that work on what
//! is stored.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, Days, NaiveDate, Utc};
use kpipe_core::{Currency, Decimal, Dimensions, Label, MetricName, MetricRow, SinkError, Unit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::schema::metric_schema;

/// A row as stored, with its lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The configured source that wrote it.
    pub source: String,
    /// The run that wrote it.
    pub run_id: String,
    /// When it was pulled.
    pub pulled_at: DateTime<Utc>,
    /// The row.
    pub row: MetricRow,
}

/// Every `*.parquet` file below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one metric file.
pub fn read_file(path: &Path) -> Result<Vec<StoredRow>, SinkError> {
    let fail = |e: &dyn std::fmt::Display| SinkError::new(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(|e| fail(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| fail(&e))?
        .build()
        .map_err(|e| fail(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| fail(&e))?;
        decode(&batch, &mut rows).map_err(|e| fail(&e))?;
    }
    Ok(rows)
}

/// Reads every metric file below `dir` (an output directory or its `metrics/`).
pub fn read_dir(dir: &Path) -> Result<Vec<StoredRow>, SinkError> {
    let mut rows = Vec::new();
    let files =
        parquet_files(dir).map_err(|e| SinkError::new(format!("cannot list {}: {e}", dir.display())))?;
    for file in files {
        rows.extend(read_file(&file)?);
    }
    Ok(rows)
}

/// Reads every metric file (`*.parquet`) below `prefix` of `storage`, local or in an object
/// store.
pub fn read_stored(storage: &kpipe_storage::Storage, prefix: &str) -> Result<Vec<StoredRow>, SinkError> {
    let entries =
        storage.list(prefix).map_err(|e| SinkError::new("cannot list the metric files").with_source(e))?;
    read_keys(storage, entries.iter().map(|e| e.key.as_str()).filter(|k| k.ends_with(".parquet")))
}

/// Every row of the metric table as `format` keeps it: the files of the newest Delta version,
/// or those below `metrics/`.
pub fn read_metric_table(
    storage: &kpipe_storage::Storage,
    format: crate::OutputFormat,
) -> Result<Vec<StoredRow>, SinkError> {
    let files = crate::table::table_files(storage, format, crate::layout::METRICS)?;
    read_keys(storage, files.iter().map(|f| f.key.as_str()))
}

fn read_keys<'k>(
    storage: &kpipe_storage::Storage,
    keys: impl Iterator<Item = &'k str>,
) -> Result<Vec<StoredRow>, SinkError> {
    let mut rows = Vec::new();
    for key in keys {
        read_object(storage, key, &mut rows)?;
    }
    Ok(rows)
}

/// Appends the rows of the stored file `key` to `rows`; `false` when the file is gone (replaced
/// away between a listing and the read: a day rewritten meanwhile).
pub(crate) fn read_object(
    storage: &kpipe_storage::Storage,
    key: &str,
    rows: &mut Vec<StoredRow>,
) -> Result<bool, SinkError> {
    let fail =
        |e: &dyn std::fmt::Display| SinkError::new(format!("cannot read {}: {e}", storage.describe_key(key)));
    let Some(object) = storage.get(key).map_err(|e| fail(&e))? else { return Ok(false) };
    let reader = ParquetRecordBatchReaderBuilder::try_new(object.bytes)
        .map_err(|e| fail(&e))?
        .build()
        .map_err(|e| fail(&e))?;
    for batch in reader {
        let batch = batch.map_err(|e| fail(&e))?;
        decode(&batch, rows).map_err(|e| fail(&e))?;
    }
    Ok(true)
}

pub(crate) fn decode(batch: &RecordBatch, out: &mut Vec<StoredRow>) -> Result<(), String> {
    if batch.schema().fields() != metric_schema().fields() {
        return Err("the file does not have the metric schema".into());
    }
    let text = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>().clone());
    let col = |name: &str| text(name).ok_or_else(|| format!("column `{name}` is missing"));
    let (platform, source, account, level, entity, entity_name) = (
        col("platform")?,
        col("source")?,
        col("account_id")?,
        col("level")?,
        col("entity_id")?,
        col("entity_name")?,
    );
    let dims = Dimensions::NAMES.map(text);
    let (metric, unit, currency, run_id) = (col("metric")?, col("unit")?, col("currency")?, col("run_id")?);
    let date = batch.column_by_name("date").ok_or("column `date` is missing")?.as_primitive::<Date32Type>();
    let value =
        batch.column_by_name("value").ok_or("column `value` is missing")?.as_primitive::<Decimal128Type>();
    let pulled = batch
        .column_by_name("pulled_at")
        .ok_or("column `pulled_at` is missing")?
        .as_primitive::<TimestampMicrosecondType>();
    let opt = |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| Label::new(a.value(i)));
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    for i in 0..batch.num_rows() {
        let unit_name = unit.value(i);
        let unit = Unit::from_name(unit_name).ok_or_else(|| format!("unknown unit `{unit_name}`"))?;
        let days = date.value(i);
        let day = if days >= 0 {
            epoch.checked_add_days(Days::new(days as u64))
        } else {
            epoch.checked_sub_days(Days::new(days.unsigned_abs() as u64))
        }
        .ok_or("date out of range")?;
        let mut dimensions = Dimensions::default();
        for (name, array) in Dimensions::NAMES.iter().zip(&dims) {
            if let (Some(slot), Some(array)) = (dimensions.slot_mut(name), array) {
                *slot = opt(array, i);
            }
        }
        out.push(StoredRow {
            source: source.value(i).to_owned(),
            run_id: run_id.value(i).to_owned(),
            pulled_at: DateTime::from_timestamp_micros(pulled.value(i)).ok_or("pulled_at out of range")?,
            row: MetricRow {
                platform: Label::new(platform.value(i)),
                account_id: Label::new(account.value(i)),
                level: Label::new(level.value(i)),
                entity_id: Label::new(entity.value(i)),
                entity_name: opt(&entity_name, i),
                date: day,
                dimensions,
                metric: MetricName::parse(metric.value(i), unit)
                    .ok_or_else(|| format!("unknown metric `{}`", metric.value(i)))?,
                value: Decimal::from_units(value.value(i)).ok_or("value out of range")?,
                currency: if currency.is_null(i) {
                    None
                } else {
                    Some(Currency::parse(currency.value(i)).ok_or("bad currency")?)
                },
            },
        });
    }
    Ok(())
}
