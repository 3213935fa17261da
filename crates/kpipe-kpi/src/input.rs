//! Reading the stored metrics the periods need, day by day, straight from the Arrow columns.

use std::fs::File;
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_array::{Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use kpipe_core::{Currency, DateWindow, Decimal, Dimensions, PeriodGrain, SinkError};
use kpipe_sink_parquet::table::table_files;
use kpipe_sink_parquet::{OutputFormat, Storage, layout};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use crate::compute::Computation;
use crate::error::KpiError;
use crate::period::Grain;
use crate::row::RowRef;

/// Rows per batch read.
const BATCH_ROWS: usize = 16 * 1024;

/// One source's day file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Partition {
    pub date: NaiveDate,
    pub source: String,
    /// Its key.
    pub file: String,
}

/// The day partitions of every source within `window`, oldest first (then by source).
pub(crate) fn partitions(
    storage: &Storage,
    format: OutputFormat,
    window: DateWindow,
) -> Result<Vec<Partition>, KpiError> {
    let mut out = Vec::new();
    let files = table_files(storage, format, layout::METRICS)
        .map_err(|e| KpiError::Read { path: PathBuf::from(layout::METRICS), message: e.to_string() })?;
    for entry in files {
        let Some((source, date)) = layout::parse_metric_file(&entry.logical_key) else { continue };
        if window.contains(date) {
            out.push(Partition { date, source: source.to_owned(), file: entry.key.clone() });
        }
    }
    out.sort();
    Ok(out)
}

/// Feeds `computation` the stored period rows (unique metrics over whole weeks and months) of
/// the periods it produces, as they are read (a batch at a time, not all of a grain's rows at
/// once); returns how many period files' rows were read.
pub(crate) fn read_period_rows(
    storage: &Storage,
    format: OutputFormat,
    computation: &mut Computation<'_>,
) -> Result<u64, KpiError> {
    let fail =
        |e: SinkError| KpiError::Read { path: PathBuf::from(layout::METRICS_PERIOD), message: e.to_string() };
    let mut read = 0;
    let grains: Vec<Grain> = computation.touched().grains().to_vec();
    for grain in grains {
        let period_grain = match grain {
            Grain::Day => continue,
            Grain::Week => PeriodGrain::Week,
            Grain::Month => PeriodGrain::Month,
        };
        let periods = computation.touched().periods(grain);
        let (Some(first), Some(last)) = (periods.first(), periods.last()) else { continue };
        let rows =
            kpipe_sink_parquet::period::stream_period_rows(storage, format, period_grain, (first.0, last.0))
                .map_err(fail)?;
        for stored in rows {
            let stored = stored.map_err(fail)?;
            let row = RowRef::from_row(&stored.stored.row);
            computation.add_period_row(&stored.stored.source, grain, stored.request.period.start, &row);
            read += 1;
        }
    }
    Ok(read)
}

const COLUMNS: [&str; 15] = [
    "platform",
    "account_id",
    "level",
    "entity_id",
    "country",
    "region",
    "device",
    "channel",
    "source_medium",
    "publisher_platform",
    "age",
    "gender",
    "metric",
    "value",
    "currency",
];

/// Feeds one partition's rows to `computation` (whose current day must be the partition's).
pub(crate) fn read_partition(
    storage: &Storage,
    p: &Partition,
    computation: &mut Computation<'_>,
) -> Result<(), KpiError> {
    debug_assert_eq!(&Dimensions::NAMES[..], &COLUMNS[4..12]);
    let key = &p.file;
    let path = PathBuf::from(storage.describe_key(key));
    let fail = |message: String| KpiError::Read { path: path.clone(), message };
    // A local file is read in place; an object is fetched whole (one day of one source).
    match storage.local_path(key) {
        Some(local) => {
            let file = File::open(&local).map_err(KpiError::io("open", &local))?;
            feed_file(file, &p.source, computation).map_err(fail)?;
        }
        None => {
            let object = storage.get(key).map_err(KpiError::storage)?;
            let bytes = object.ok_or_else(|| fail("the file is gone".into()))?.bytes;
            feed_file(bytes, &p.source, computation).map_err(fail)?;
        }
    }
    Ok(())
}

fn feed_file<R: ChunkReader + 'static>(
    input: R,
    source: &str,
    computation: &mut Computation<'_>,
) -> Result<(), String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(|e| e.to_string())?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), COLUMNS);
    let reader =
        builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(|e| e.to_string())?;
    for batch in reader {
        feed(&batch.map_err(|e| e.to_string())?, source, computation)?;
    }
    Ok(())
}

fn feed(batch: &RecordBatch, source: &str, computation: &mut Computation<'_>) -> Result<(), String> {
    let text = |name: &str| -> Result<&StringArray, String> {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("column `{name}` is missing: not a metric file"))?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column `{name}` is not text: not a metric file"))
    };
    let (platform, account, level, entity, metric, currency) = (
        text("platform")?,
        text("account_id")?,
        text("level")?,
        text("entity_id")?,
        text("metric")?,
        text("currency")?,
    );
    let mut dims = Vec::with_capacity(Dimensions::NAMES.len());
    for d in Dimensions::NAMES {
        dims.push(text(d)?);
    }
    let value = batch
        .column_by_name("value")
        .and_then(|c| c.as_primitive_opt::<Decimal128Type>())
        .ok_or("column `value` is missing or not DECIMAL(38, 18)")?;
    if value.scale() != 18 {
        return Err(format!("column `value` has scale {}, not 18", value.scale()));
    }
    let any_dims = dims.iter().any(|d| d.null_count() < d.len());
    for i in 0..batch.num_rows() {
        let mut dimensions = [None; 8];
        if any_dims {
            for (slot, d) in dimensions.iter_mut().zip(&dims) {
                if !d.is_null(i) {
                    *slot = Some(d.value(i));
                }
            }
        }
        let units = value.value(i);
        let row = RowRef {
            platform: platform.value(i),
            account_id: account.value(i),
            level: level.value(i),
            entity_id: entity.value(i),
            dimensions,
            metric: metric.value(i),
            value: Decimal::from_units(units).ok_or_else(|| format!("row {i}: value out of range"))?,
            currency: if currency.is_null(i) {
                None
            } else {
                Some(
                    Currency::parse(currency.value(i))
                        .ok_or_else(|| format!("row {i}: `{}` is not a currency code", currency.value(i)))?,
                )
            },
        };
        computation.add_row(source, &row);
    }
    Ok(())
}
