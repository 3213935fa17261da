//! Reading the stored metrics the periods need, day by day, straight from the Arrow columns.

use std::fs::File;
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_array::{Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, PeriodGrain, SinkError};
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

/// A stored period file (unique metrics over a whole week or month).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeriodFile {
    pub source: String,
    pub grain: Grain,
    pub start: NaiveDate,
    /// Its key.
    pub file: String,
}

/// What the computation reads of the stored metrics, as listed at one moment.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The day files within the read window, oldest first (then by source).
    pub partitions: Vec<Partition>,
    /// The period files of the periods computed, in the order listed.
    pub period_files: Vec<PeriodFile>,
}

impl Listing {
    /// The day files of every source within `computation`'s read window, and the period files
    /// of the weeks and months it computes.
    pub fn read(
        storage: &Storage,
        format: OutputFormat,
        computation: &Computation<'_>,
    ) -> Result<Listing, KpiError> {
        let listed = |folder: &str| {
            table_files(storage, format, folder)
                .map_err(|e| KpiError::Read { path: PathBuf::from(folder), message: e.to_string() })
        };
        let window = computation.read_window();
        let mut partitions = Vec::new();
        for entry in listed(layout::METRICS)? {
            let Some((source, date)) = layout::parse_metric_file(&entry.logical_key) else { continue };
            if window.contains(date) {
                partitions.push(Partition { date, source: source.to_owned(), file: entry.key.clone() });
            }
        }
        partitions.sort();
        let touched = computation.touched();
        let mut period_files = Vec::new();
        if touched.grains().iter().any(|g| *g != Grain::Day) {
            for entry in listed(layout::METRICS_PERIOD)? {
                let Some((source, grain, start)) = layout::parse_period_file(&entry.logical_key) else {
                    continue;
                };
                let grain = match grain {
                    PeriodGrain::Week => Grain::Week,
                    PeriodGrain::Month => Grain::Month,
                };
                if touched.contains(grain, start) {
                    period_files.push(PeriodFile {
                        source: source.to_owned(),
                        grain,
                        start,
                        file: entry.key,
                    });
                }
            }
        }
        Ok(Listing { partitions, period_files })
    }

    /// Every source with a file listed, by name.
    pub fn sources(&self) -> std::collections::BTreeSet<&str> {
        let days = self.partitions.iter().map(|p| p.source.as_str());
        days.chain(self.period_files.iter().map(|p| p.source.as_str())).collect()
    }

    /// `source`'s day files, oldest first.
    pub fn partitions_of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Partition> + 'a {
        self.partitions.iter().filter(move |p| p.source == source)
    }
}

/// Feeds `computation` `source`'s stored period rows (unique metrics over whole weeks and
/// months) of the periods it produces, as they are read (a batch at a time, not all of a
/// grain's rows at once); returns how many rows were read.
pub(crate) fn read_period_rows(
    storage: &Storage,
    listing: &Listing,
    source: &str,
    computation: &mut Computation<'_>,
) -> Result<u64, KpiError> {
    let fail =
        |e: SinkError| KpiError::Read { path: PathBuf::from(layout::METRICS_PERIOD), message: e.to_string() };
    let keys: Vec<String> =
        listing.period_files.iter().filter(|f| f.source == source).map(|f| f.file.clone()).collect();
    let mut read = 0;
    for stored in kpipe_sink_parquet::period::stream_period_files(storage, keys) {
        let stored = stored.map_err(fail)?;
        let grain = match stored.request.period.grain {
            PeriodGrain::Week => Grain::Week,
            PeriodGrain::Month => Grain::Month,
        };
        let row = RowRef::from_row(&stored.stored.row);
        computation.add_period_row(&stored.stored.source, grain, stored.request.period.start, &row);
        read += 1;
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
