//! The `metrics_period` table: unique metrics (reach, users) over whole weeks and months, as the
//! platforms report them for the period. Kept out of `metrics/` so that a query summing `value`
//! over the day rows never adds a period's value in (docs/schema.md, "Period rows").
//!
//! A period file holds every column of the metric schema, `date` being the period's first day,
//! then `grain`, `period_end`, `data_through` and `partial`. Period rows are few (a value per
//! entity, unique metric and period), so they are built with Arrow's builders and written by
//! `ArrowWriter` in one row group, rather than by the day files' column encoder.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::{Days, NaiveDate};
use kpipe_core::decimal::{PRECISION, SCALE};
use kpipe_core::{
    Currency, Decimal, Dimensions, MetricName, Period, PeriodGrain, PeriodRequest, PeriodRow, SinkError,
};
use kpipe_storage::Storage;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterVersion};

use crate::columns::Lineage;
use crate::layout;
use crate::read::StoredRow;
use crate::schema::{SCHEMA_VERSION, metric_schema};

/// The columns a period file has after the metric schema's.
pub const PERIOD_COLUMNS: [&str; 4] = ["grain", "period_end", "data_through", "partial"];

static PERIOD_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = metric_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new("grain", DataType::Utf8, false),
        Field::new("period_end", DataType::Date32, false),
        Field::new("data_through", DataType::Date32, false),
        Field::new("partial", DataType::Boolean, false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The schema of the period files.
pub fn period_schema() -> SchemaRef {
    PERIOD_SCHEMA.clone()
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    i32::try_from((date - epoch).num_days()).unwrap_or(i32::MAX)
}

fn date_from_epoch(days: i32) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    if days >= 0 {
        epoch.checked_add_days(Days::new(days as u64))
    } else {
        epoch.checked_sub_days(Days::new(u64::from(days.unsigned_abs())))
    }
}

/// A period row to encode, borrowed from wherever it is held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PeriodRowRef<'a> {
    pub platform: &'a str,
    pub account_id: &'a str,
    pub level: &'a str,
    pub entity_id: &'a str,
    pub entity_name: Option<&'a str>,
    /// The period's first day.
    pub date: NaiveDate,
    /// `None` for a row without dimensions.
    pub dimensions: Option<&'a Dimensions>,
    pub metric: &'a MetricName,
    pub value: Decimal,
    pub currency: Option<&'a Currency>,
    pub request: PeriodRequest,
}

impl<'a> From<&'a PeriodRow> for PeriodRowRef<'a> {
    fn from(r: &'a PeriodRow) -> PeriodRowRef<'a> {
        PeriodRowRef {
            platform: &r.row.platform,
            account_id: &r.row.account_id,
            level: &r.row.level,
            entity_id: &r.row.entity_id,
            entity_name: r.row.entity_name.as_deref(),
            date: r.row.date,
            dimensions: Some(&r.row.dimensions),
            metric: &r.row.metric,
            value: r.row.value,
            currency: r.row.currency.as_ref(),
            request: r.request,
        }
    }
}

/// One period's rows as a Parquet file, in the order `rows` gives them (it is gone through once
/// per column).
pub(crate) fn encode<'a, I>(rows: I, lineage: &Lineage, zstd_level: i32) -> Result<Bytes, SinkError>
where
    I: Iterator<Item = PeriodRowRef<'a>> + Clone,
{
    let fail = |e: &dyn std::fmt::Display| SinkError::new(format!("cannot encode period rows: {e}"));
    let count = rows.clone().count();
    let text = |value: fn(PeriodRowRef<'a>) -> Option<&'a str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for row in rows.clone() {
            b.append_option(value(row));
        }
        Arc::new(b.finish())
    };
    let same = |value: &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        (0..count).for_each(|_| b.append_value(value));
        Arc::new(b.finish())
    };
    let date = |value: fn(PeriodRowRef<'a>) -> NaiveDate| -> ArrayRef {
        let mut b = Date32Builder::new();
        rows.clone().for_each(|r| b.append_value(days_since_epoch(value(r))));
        Arc::new(b.finish())
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(|r| Some(r.platform)),
        same(&lineage.source),
        text(|r| Some(r.account_id)),
        text(|r| Some(r.level)),
        text(|r| Some(r.entity_id)),
        text(|r| r.entity_name),
        date(|r| r.date),
    ];
    for slot in 0..Dimensions::NAMES.len() {
        let mut b = StringBuilder::new();
        for row in rows.clone() {
            b.append_option(row.dimensions.and_then(|d| d.values()[slot]).map(|l| l.as_str()));
        }
        columns.push(Arc::new(b.finish()));
    }
    let mut value = Decimal128Builder::new();
    rows.clone().for_each(|r| value.append_value(r.value.units()));
    let value = value.finish().with_precision_and_scale(PRECISION, SCALE as i8).map_err(|e| fail(&e))?;
    let mut pulled = TimestampMicrosecondBuilder::new();
    (0..count).for_each(|_| pulled.append_value(lineage.pulled_at_micros));
    let mut partial = BooleanBuilder::new();
    rows.clone().for_each(|r| partial.append_value(r.request.is_partial()));
    columns.extend([
        text(|r| Some(r.metric.as_str())),
        Arc::new(value) as ArrayRef,
        text(|r| Some(r.metric.unit().as_str())),
        text(|r| r.currency.map(|c| c.as_str())),
        Arc::new(pulled.finish().with_timezone("UTC")) as ArrayRef,
        same(&lineage.run_id),
        text(|r| Some(r.request.period.grain.as_str())),
        date(|r| r.request.period.end()),
        date(|r| r.request.through),
        Arc::new(partial.finish()) as ArrayRef,
    ]);
    let batch = RecordBatch::try_new(period_schema(), columns).map_err(|e| fail(&e))?;
    let level = ZstdLevel::try_new(zstd_level).map_err(|e| fail(&e))?;
    let props = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        // Values a dictionary does not take are written PLAIN: the delta encoders that version
        // 2 would fall back to reserve 1 MiB each up front, two per text column, about 40 MB
        // for every period file written, which a file of a few thousand rows never needs.
        .set_encoding(Encoding::PLAIN)
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "kpipe.schema_version".to_owned(),
            SCHEMA_VERSION.to_owned(),
        )]))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, period_schema(), Some(props)).map_err(|e| fail(&e))?;
    writer.write(&batch).map_err(|e| fail(&e))?;
    writer.close().map_err(|e| fail(&e))?;
    Ok(Bytes::from(bytes))
}

/// A period row as stored, with its lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPeriodRow {
    /// The configured source that wrote it, the run, and the row (`date`: the period's first day).
    pub stored: StoredRow,
    /// The period and the last day its value covers.
    pub request: PeriodRequest,
}

/// Every period row of an output (local or in an object store) whose period is of `grain` and
/// starts in `starts` (both inclusive), for every source.
pub fn read_period_rows(
    storage: &Storage,
    format: crate::OutputFormat,
    grain: PeriodGrain,
    starts: (NaiveDate, NaiveDate),
) -> Result<Vec<StoredPeriodRow>, SinkError> {
    stream_period_rows(storage, format, grain, starts)?.collect()
}

/// The same rows as [`read_period_rows`], in the same order, read as they are taken: file by
/// file and batch by batch, so that only one batch of rows is held whatever their number. The
/// files are listed first (an error doing so is returned here); an error reading one ends the
/// stream after it is given.
pub fn stream_period_rows(
    storage: &Storage,
    format: crate::OutputFormat,
    grain: PeriodGrain,
    starts: (NaiveDate, NaiveDate),
) -> Result<PeriodRowStream<'_>, SinkError> {
    let listed = crate::table::table_files(storage, format, layout::METRICS_PERIOD)?;
    let keys: Vec<String> = listed
        .into_iter()
        .filter(|entry| {
            layout::parse_period_file(&entry.logical_key).is_some_and(|(_, file_grain, start)| {
                file_grain == grain && start >= starts.0 && start <= starts.1
            })
        })
        .map(|entry| entry.key)
        .collect();
    Ok(stream_period_files(storage, keys))
}

/// The rows of the period files `keys` (keys of the period tree, as [`crate::table::table_files`]
/// gives them), in that order, read as [`stream_period_rows`] reads them.
pub fn stream_period_files(storage: &Storage, keys: Vec<String>) -> PeriodRowStream<'_> {
    PeriodRowStream {
        storage,
        keys: keys.into_iter(),
        file: None,
        rows: Vec::new().into_iter(),
        ended: false,
    }
}

/// Period rows read as they are taken: see [`stream_period_rows`].
pub struct PeriodRowStream<'s> {
    storage: &'s Storage,
    /// The files not opened yet.
    keys: std::vec::IntoIter<String>,
    /// The file being read: its key, and its batches not read yet.
    file: Option<(String, ParquetRecordBatchReader)>,
    /// The rows of the batch being read, not taken yet.
    rows: std::vec::IntoIter<StoredPeriodRow>,
    /// After an error, nothing more is read.
    ended: bool,
}

impl std::fmt::Debug for PeriodRowStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodRowStream")
            .field("file", &self.file.as_ref().map(|(key, _)| key))
            .field("files_left", &self.keys.len())
            .field("rows_left_in_batch", &self.rows.len())
            .finish()
    }
}

impl PeriodRowStream<'_> {
    /// Reads the next batch into `rows`, opening the next file when one is done; `false` when
    /// every file has been read.
    fn read_batch(&mut self) -> Result<bool, SinkError> {
        loop {
            if let Some((key, batches)) = &mut self.file {
                let storage = self.storage;
                let fail = |e: &dyn std::fmt::Display| {
                    SinkError::new(format!("cannot read {}: {e}", storage.describe_key(key)))
                };
                match batches.next() {
                    Some(batch) => {
                        let batch = batch.map_err(|e| fail(&e))?;
                        self.rows = decode_batch(&batch).map_err(|e| fail(&e))?.into_iter();
                        return Ok(true);
                    }
                    None => self.file = None,
                }
            }
            let Some(key) = self.keys.next() else { return Ok(false) };
            let fail = |e: &dyn std::fmt::Display| {
                SinkError::new(format!("cannot read {}: {e}", self.storage.describe_key(&key)))
            };
            // A file replaced away since the listing is skipped, as a day file would be.
            let Some(object) = self.storage.get(&key).map_err(|e| fail(&e))? else { continue };
            let batches = ParquetRecordBatchReaderBuilder::try_new(object.bytes)
                .and_then(|builder| builder.build())
                .map_err(|e| fail(&e))?;
            self.file = Some((key, batches));
        }
    }
}

impl Iterator for PeriodRowStream<'_> {
    type Item = Result<StoredPeriodRow, SinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.rows.next() {
                return Some(Ok(row));
            }
            if self.ended {
                return None;
            }
            match self.read_batch() {
                Ok(true) => {}
                Ok(false) => {
                    self.ended = true;
                    return None;
                }
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn decode_batch(batch: &RecordBatch) -> Result<Vec<StoredPeriodRow>, String> {
    if batch.schema().fields() != period_schema().fields() {
        return Err("the file does not have the period schema".into());
    }
    let metric_columns: Vec<usize> = (0..metric_schema().fields().len()).collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    crate::read::decode(&batch.project(&metric_columns).map_err(|e| e.to_string())?, &mut rows)?;
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| format!("column `{name}` is missing"));
    let grain = column("grain")?.as_string::<i32>();
    let through = column("data_through")?.as_primitive::<Date32Type>();
    let mut out = Vec::with_capacity(rows.len());
    for (i, stored) in rows.into_iter().enumerate() {
        let grain = PeriodGrain::from_name(grain.value(i))
            .ok_or_else(|| format!("unknown grain `{}`", grain.value(i)))?;
        let through = date_from_epoch(through.value(i)).ok_or("`data_through` out of range")?;
        let period = Period::containing(grain, stored.row.date);
        if period.start != stored.row.date {
            return Err(format!("`date` {} is not the first day of a {grain}", stored.row.date));
        }
        out.push(StoredPeriodRow { stored, request: PeriodRequest { period, through } });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use kpipe_core::{DateWindow, Metric, MetricRow};

    use super::*;

    #[test]
    fn period_rows_are_written_and_read_back_with_their_period() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        let window = DateWindow::new(day(2), day(11)).unwrap_or_else(|e| panic!("{e}"));
        let requests = PeriodRequest::for_window(window);
        let row = |request: PeriodRequest, value: i64| {
            PeriodRow::new(
                request,
                MetricRow {
                    platform: "facebook".into(),
                    account_id: "act_1".into(),
                    level: "account".into(),
                    entity_id: "act_1".into(),
                    entity_name: None,
                    date: day(2),
                    dimensions: Dimensions::default(),
                    metric: Metric::Reach.into(),
                    value: kpipe_core::Decimal::from_i64(value),
                    currency: None,
                },
            )
        };
        let month = *requests.iter().find(|r| r.period.grain == PeriodGrain::Month).unwrap_or(&requests[0]);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let storage = Storage::local(dir.path());
        let lineage = Lineage::new("fb", "run-1", chrono::Utc::now());
        let bytes = encode([row(month, 4321)].iter().map(PeriodRowRef::from), &lineage, 1)
            .unwrap_or_else(|e| panic!("{e}"));
        storage.put(&layout::period_file("fb", month.period), bytes).unwrap_or_else(|e| panic!("{e}"));
        let read =
            read_period_rows(&storage, crate::OutputFormat::Parquet, PeriodGrain::Month, (day(1), day(1)))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].request, month);
        assert!(read[0].request.is_partial());
        assert_eq!(read[0].stored.row.value, kpipe_core::Decimal::from_i64(4321));
        assert_eq!((read[0].stored.source.as_str(), read[0].stored.row.date), ("fb", day(1)));
        assert!(
            read_period_rows(&storage, crate::OutputFormat::Parquet, PeriodGrain::Week, (day(1), day(31)))
                .unwrap_or_default()
                .is_empty()
        );
    }

    #[test]
    fn period_rows_stream_file_by_file_and_stop_at_an_unreadable_file() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        let window = DateWindow::new(day(2), day(11)).unwrap_or_else(|e| panic!("{e}"));
        let month = PeriodRequest::for_window(window)
            .into_iter()
            .find(|r| r.period.grain == PeriodGrain::Month)
            .unwrap_or_else(|| panic!("no month"));
        let rows: Vec<PeriodRow> = (0..2500)
            .map(|i| {
                PeriodRow::new(
                    month,
                    MetricRow {
                        platform: "facebook".into(),
                        account_id: "act_1".into(),
                        level: "campaign".into(),
                        entity_id: kpipe_core::Label::new(&format!("{i}")),
                        entity_name: None,
                        date: day(2),
                        dimensions: Dimensions::default(),
                        metric: Metric::Reach.into(),
                        value: kpipe_core::Decimal::from_i64(i),
                        currency: None,
                    },
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let storage = Storage::local(dir.path());
        for source in ["a", "c"] {
            let lineage = Lineage::new(source, "run-1", chrono::Utc::now());
            let bytes =
                encode(rows.iter().map(PeriodRowRef::from), &lineage, 1).unwrap_or_else(|e| panic!("{e}"));
            storage.put(&layout::period_file(source, month.period), bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        let starts = (day(1), day(1));
        let read = || {
            stream_period_rows(&storage, crate::OutputFormat::Parquet, PeriodGrain::Month, starts)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        // Several batches of each file, in file order.
        let streamed: Vec<StoredPeriodRow> =
            read().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(streamed.len(), 2 * rows.len());
        for (i, back) in streamed.iter().enumerate() {
            let source = if i < rows.len() { "a" } else { "c" };
            assert_eq!((back.stored.source.as_str(), &back.stored.row), (source, &rows[i % rows.len()].row));
        }
        assert_eq!(
            read_period_rows(&storage, crate::OutputFormat::Parquet, PeriodGrain::Month, starts)
                .unwrap_or_else(|e| panic!("{e}")),
            streamed
        );
        // A file that cannot be read between the two: the rows before it, its error, then no more.
        storage
            .put(&layout::period_file("b", month.period), Bytes::from_static(b"not parquet"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stream = read();
        assert_eq!(stream.by_ref().take(rows.len()).filter(Result::is_ok).count(), rows.len());
        let error = stream.next().and_then(Result::err).map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("cannot read") && error.contains("metrics_period/b."), "{error}");
        assert!(stream.next().is_none());
    }
}
