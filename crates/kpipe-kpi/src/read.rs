//! Reading KPI files back: for `kpipe kpis --show`, the demo and tests.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type};
use arrow_array::{Array, RecordBatch};
use chrono::{Days, NaiveDate};
use kpipe_core::{Currency, Decimal, Label, Unit};
use kpipe_sink_parquet::{OutputFormat, Storage, layout};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use crate::config::Stage;
use crate::error::KpiError;
use crate::period::{Grain, Scope};
use crate::row::KpiRow;

/// Every KPI row stored below `<output>/kpis` of a local output (or of one grain).
pub fn read_kpis(output: &Path, grain: Option<Grain>) -> Result<Vec<KpiRow>, KpiError> {
    read_stored_kpis(&Storage::local(output), OutputFormat::Parquet, grain)
}

/// Every KPI row of an output, local or in an object store (or of one grain).
pub fn read_stored_kpis(
    storage: &Storage,
    format: OutputFormat,
    grain: Option<Grain>,
) -> Result<Vec<KpiRow>, KpiError> {
    let keys: Vec<String> = stored_periods(storage, format, grain)?.into_iter().map(|(_, key)| key).collect();
    read_stored_kpi_files(storage, &keys)
}

/// The KPI files of an output (of one grain, or all), by period start then grain: each one's
/// period start and key.
pub fn stored_periods(
    storage: &Storage,
    format: OutputFormat,
    grain: Option<Grain>,
) -> Result<Vec<(NaiveDate, String)>, KpiError> {
    let mut found = Vec::new();
    let files = kpipe_sink_parquet::table::table_files(storage, format, layout::KPIS)
        .map_err(|e| KpiError::Read { path: PathBuf::from(layout::KPIS), message: e.to_string() })?;
    for entry in files {
        let Some((name, start)) = layout::parse_kpi_file(&entry.logical_key) else { continue };
        if grain.is_none_or(|g| g.as_str() == name) {
            found.push((start, entry.key));
        }
    }
    found.sort();
    Ok(found)
}

/// Every KPI row of the files `keys` of an output.
pub fn read_stored_kpi_files(storage: &Storage, keys: &[String]) -> Result<Vec<KpiRow>, KpiError> {
    let mut rows = Vec::new();
    for key in keys {
        let path = PathBuf::from(storage.describe_key(key));
        let fail = |message: String| KpiError::Read { path: path.clone(), message };
        let Some(object) = storage.get(key).map_err(KpiError::storage)? else { continue };
        read_into(object.bytes, &mut rows).map_err(fail)?;
    }
    Ok(rows)
}

/// Every KPI row of the `*.parquet` files below `dir`.
pub fn read_kpi_dir(dir: &Path) -> Result<Vec<KpiRow>, KpiError> {
    let files = kpipe_sink_parquet::read::parquet_files(dir).map_err(KpiError::io("list", dir))?;
    let mut rows = Vec::new();
    for path in files {
        let file = File::open(&path).map_err(KpiError::io("open", &path))?;
        read_into(file, &mut rows).map_err(|message| KpiError::Read { path: path.clone(), message })?;
    }
    Ok(rows)
}

fn read_into<R: ChunkReader + 'static>(input: R, rows: &mut Vec<KpiRow>) -> Result<(), String> {
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(input).and_then(|b| b.build()).map_err(|e| e.to_string())?;
    for batch in reader {
        decode(&batch.map_err(|e| e.to_string())?, rows)?;
    }
    Ok(())
}

fn decode(batch: &RecordBatch, out: &mut Vec<KpiRow>) -> Result<(), String> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| format!("column `{name}` is missing: not a KPI file"))
    };
    let dec = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Decimal128Type>())
            .ok_or_else(|| format!("column `{name}` is missing: not a KPI file"))
    };
    let date = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Date32Type>())
            .ok_or_else(|| format!("column `{name}` is missing: not a KPI file"))
    };
    let (kpi, grain, scope, platform, source) =
        (text("kpi")?, text("grain")?, text("scope")?, text("platform")?, text("source")?);
    let (account, level, entity, unit, currency, stage) = (
        text("account_id")?,
        text("level")?,
        text("entity_id")?,
        text("unit")?,
        text("currency")?,
        text("stage")?,
    );
    let (value, numerator, denominator) = (dec("value")?, dec("numerator")?, dec("denominator")?);
    let (starts, ends) = (date("period_start")?, date("period_end")?);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    let day = |days: i32| {
        if days >= 0 {
            epoch.checked_add_days(Days::new(days as u64))
        } else {
            epoch.checked_sub_days(Days::new(u64::from(days.unsigned_abs())))
        }
        .ok_or_else(|| format!("day {days} is out of range"))
    };
    let opt = |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| Label::new(a.value(i)));
    let num = |a: &arrow_array::PrimitiveArray<Decimal128Type>, i: usize| {
        (!a.is_null(i)).then(|| Decimal::from_units(a.value(i))).flatten()
    };
    for i in 0..batch.num_rows() {
        let stage = match stage.value(i) {
            "awareness" => Stage::Awareness,
            "consideration" => Stage::Consideration,
            "decision" => Stage::Decision,
            "loyalty" => Stage::Loyalty,
            other => return Err(format!("unknown stage `{other}`")),
        };
        out.push(KpiRow {
            kpi: Label::new(kpi.value(i)),
            grain: Grain::from_name(grain.value(i))
                .ok_or_else(|| format!("unknown grain `{}`", grain.value(i)))?,
            period_start: day(starts.value(i))?,
            period_end: day(ends.value(i))?,
            scope: Scope::from_name(scope.value(i))
                .ok_or_else(|| format!("unknown scope `{}`", scope.value(i)))?,
            platform: opt(platform, i),
            source: opt(source, i),
            account_id: opt(account, i),
            level: opt(level, i),
            entity_id: opt(entity, i),
            value: num(value, i),
            numerator: num(numerator, i),
            denominator: num(denominator, i),
            unit: Unit::from_name(unit.value(i))
                .ok_or_else(|| format!("unknown unit `{}`", unit.value(i)))?,
            currency: if currency.is_null(i) {
                None
            } else {
                Some(Currency::parse(currency.value(i)).ok_or("bad currency")?)
            },
            stage,
        });
    }
    Ok(())
}
