//! The row group being built for one day partition: every column of the metric schema,
//! dictionary-encoded as rows arrive (see `encode::column` for why not Arrow builders).

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::{Dimensions, Label, MetricRow};
use parquet::basic::Type as PhysicalType;
use parquet::errors::ParquetError;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::SchemaDescriptor;

use crate::encode::column::{Codec, DictColumn, Kind};

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

/// Values that are the same for every row a writer writes.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub source: String,
    pub run_id: String,
    pub pulled_at_micros: i64,
}

impl Lineage {
    pub fn new(source: &str, run_id: &str, pulled_at: DateTime<Utc>) -> Lineage {
        Lineage {
            source: source.to_owned(),
            run_id: run_id.to_owned(),
            pulled_at_micros: pulled_at.timestamp_micros(),
        }
    }
}

/// The dimension fields in [`Dimensions::NAMES`] order.
const DIMENSIONS: [fn(&Dimensions) -> Option<&Label>; 8] = [
    |d| d.country.as_ref(),
    |d| d.region.as_ref(),
    |d| d.device.as_ref(),
    |d| d.channel.as_ref(),
    |d| d.source_medium.as_ref(),
    |d| d.publisher_platform.as_ref(),
    |d| d.age.as_ref(),
    |d| d.gender.as_ref(),
];

/// The columns of one row group, in schema order.
pub(crate) struct RowGroupBuilder {
    days_since_epoch: i32,
    platform: DictColumn,
    source: DictColumn,
    account_id: DictColumn,
    level: DictColumn,
    entity_id: DictColumn,
    entity_name: DictColumn,
    date: DictColumn,
    dimensions: [DictColumn; 8],
    metric: DictColumn,
    value: DictColumn,
    unit: DictColumn,
    currency: DictColumn,
    pulled_at: DictColumn,
    run_id: DictColumn,
}

impl RowGroupBuilder {
    pub fn new(date: NaiveDate) -> Result<RowGroupBuilder, ParquetError> {
        let days_since_epoch = i32::try_from((date - EPOCH).num_days())
            .map_err(|_| ParquetError::General(format!("date {date} is out of range")))?;
        // zstd where pages shrink; the near-constant columns are a few RLE bytes per page.
        let squeezed = || DictColumn::new(Kind::Text, false, true);
        let constant = || DictColumn::new(Kind::Text, false, false);
        Ok(RowGroupBuilder {
            days_since_epoch,
            platform: constant(),
            source: constant(),
            account_id: squeezed(),
            level: constant(),
            entity_id: squeezed(),
            entity_name: DictColumn::new(Kind::Text, true, true),
            date: DictColumn::new(Kind::Int32, false, false),
            dimensions: std::array::from_fn(|_| DictColumn::new(Kind::Text, true, false)),
            metric: squeezed(),
            value: DictColumn::with_dictionary(Kind::Decimal16, false, true, false),
            unit: constant(),
            currency: DictColumn::new(Kind::Text, true, false),
            pulled_at: DictColumn::new(Kind::Int64, false, false),
            run_id: constant(),
        })
    }

    pub fn rows(&self) -> u64 {
        self.metric.rows()
    }

    /// Appends `rows` (all of this builder's day), one column at a time: each column's
    /// dictionary, previous value and page stay in cache while its values go in.
    pub fn push(
        &mut self,
        rows: &[&MetricRow],
        lineage: &Lineage,
        z: &mut Codec,
    ) -> Result<(), ParquetError> {
        fn each<'r>(
            column: &mut DictColumn,
            rows: &[&'r MetricRow],
            z: &mut Codec,
            value: impl Fn(&'r MetricRow) -> Option<&'r [u8]>,
        ) -> Result<(), ParquetError> {
            // `value` returns bytes borrowed from the rows, which stay borrowed and unchanged
            // while the column takes them: a repeated address is a repeated value.
            column.start_batch();
            if rows.iter().all(|row| value(row).is_none()) {
                return column.push_nulls(rows.len(), z);
            }
            rows.iter().try_for_each(|row| column.push_opt_borrowed(value(row), z))
        }
        fn same(column: &mut DictColumn, n: usize, value: &[u8], z: &mut Codec) -> Result<(), ParquetError> {
            column.push_repeated(value, n, z)
        }
        each(&mut self.platform, rows, z, |r| Some(r.platform.as_bytes()))?;
        same(&mut self.source, rows.len(), lineage.source.as_bytes(), z)?;
        each(&mut self.account_id, rows, z, |r| Some(r.account_id.as_bytes()))?;
        each(&mut self.level, rows, z, |r| Some(r.level.as_bytes()))?;
        each(&mut self.entity_id, rows, z, |r| Some(r.entity_id.as_bytes()))?;
        each(&mut self.entity_name, rows, z, |r| r.entity_name.as_deref().map(str::as_bytes))?;
        same(&mut self.date, rows.len(), &self.days_since_epoch.to_le_bytes(), z)?;
        for (column, dimension) in self.dimensions.iter_mut().zip(DIMENSIONS) {
            each(column, rows, z, |r| dimension(&r.dimensions).map(|v| v.as_bytes()))?;
        }
        each(&mut self.metric, rows, z, |r| Some(r.metric.as_str().as_bytes()))?;
        self.value.start_batch();
        for row in rows {
            self.value.push(&row.value.units().to_be_bytes(), z)?;
        }
        each(&mut self.unit, rows, z, |r| Some(r.unit().as_str().as_bytes()))?;
        each(&mut self.currency, rows, z, |r| r.currency.as_ref().map(|c| c.as_str().as_bytes()))?;
        same(&mut self.pulled_at, rows.len(), &lineage.pulled_at_micros.to_le_bytes(), z)?;
        same(&mut self.run_id, rows.len(), lineage.run_id.as_bytes(), z)
    }

    /// Bytes held by the row group in progress.
    pub fn memory_size(&self) -> usize {
        let text = [
            &self.platform,
            &self.source,
            &self.account_id,
            &self.level,
            &self.entity_id,
            &self.entity_name,
            &self.metric,
            &self.unit,
            &self.currency,
            &self.run_id,
        ];
        text.into_iter().chain(&self.dimensions).map(DictColumn::memory_size).sum::<usize>()
            + self.date.memory_size()
            + self.value.memory_size()
            + self.pulled_at.memory_size()
    }

    /// Encodes the row group's column chunks into `out`; the builder is empty afterwards.
    pub fn finish<W: std::io::Write + Send>(
        &mut self,
        schema: &SchemaDescriptor,
        out: &mut SerializedRowGroupWriter<'_, W>,
        z: &mut Codec,
    ) -> Result<(), ParquetError> {
        let mut index = 0;
        let mut next = || {
            let descr = schema.column(index);
            index += 1;
            descr
        };
        let mut append = |chunk: (bytes::Bytes, parquet::column::writer::ColumnCloseResult)| {
            out.append_column(&chunk.0, chunk.1)
        };
        append(self.platform.finish(next(), z)?)?;
        append(self.source.finish(next(), z)?)?;
        append(self.account_id.finish(next(), z)?)?;
        append(self.level.finish(next(), z)?)?;
        append(self.entity_id.finish(next(), z)?)?;
        append(self.entity_name.finish(next(), z)?)?;
        append(self.date.finish(next(), z)?)?;
        for column in &mut self.dimensions {
            append(column.finish(next(), z)?)?;
        }
        append(self.metric.finish(next(), z)?)?;
        append(self.value.finish(next(), z)?)?;
        append(self.unit.finish(next(), z)?)?;
        append(self.currency.finish(next(), z)?)?;
        append(self.pulled_at.finish(next(), z)?)?;
        append(self.run_id.finish(next(), z)?)
    }
}

/// The physical types [`RowGroupBuilder`] writes, in schema order: checked against the
/// schema Arrow's converter derives, so the two can never drift apart silently.
pub(crate) fn expected_physical_types() -> Vec<PhysicalType> {
    use PhysicalType::{BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY, INT32, INT64};
    let mut types = vec![BYTE_ARRAY; 6];
    types.push(INT32);
    types.extend([BYTE_ARRAY; 8]);
    types.extend([BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY, BYTE_ARRAY, BYTE_ARRAY, INT64, BYTE_ARRAY]);
    debug_assert_eq!(types.len(), 7 + Dimensions::NAMES.len() + 6);
    types
}
