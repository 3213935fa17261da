//! Column builders: rows are appended column by column and handed to Parquet as one
//! `RecordBatch` of thousands of rows.

use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Decimal128Builder, StringBuilder};
use arrow_array::{ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::ArrowError;
use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::decimal::{PRECISION, SCALE};
use kpipe_core::{Dimensions, MetricRow};

use crate::schema::metric_schema;

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

/// A nullable text column whose nulls are counted rather than appended one by one: most rows
/// leave most dimensions empty, and a column that stayed empty for a whole chunk becomes one
/// null array.
#[derive(Debug)]
struct SparseText {
    builder: StringBuilder,
    nulls_pending: usize,
}

impl SparseText {
    fn new(capacity: usize) -> SparseText {
        SparseText { builder: StringBuilder::with_capacity(capacity, 0), nulls_pending: 0 }
    }

    fn push(&mut self, value: Option<&str>) {
        match value {
            None => self.nulls_pending += 1,
            Some(v) => {
                if self.nulls_pending > 0 {
                    self.builder.append_nulls(std::mem::take(&mut self.nulls_pending));
                }
                self.builder.append_value(v);
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        let nulls = std::mem::take(&mut self.nulls_pending);
        if self.builder.is_empty() {
            return arrow_array::new_null_array(&arrow_schema::DataType::Utf8, nulls);
        }
        self.builder.append_nulls(nulls);
        Arc::new(self.builder.finish())
    }
}

/// Pending rows of one day partition. Every row has the same date, so the date column is
/// built at finish time.
#[derive(Debug)]
pub(crate) struct ColumnBuilders {
    date: NaiveDate,
    len: usize,
    platform: StringBuilder,
    account_id: StringBuilder,
    level: StringBuilder,
    entity_id: StringBuilder,
    entity_name: SparseText,
    dimensions: [SparseText; 8],
    metric: StringBuilder,
    value: Decimal128Builder,
    unit: StringBuilder,
    currency: SparseText,
}

impl ColumnBuilders {
    pub fn new(date: NaiveDate, capacity: usize) -> ColumnBuilders {
        let text = || StringBuilder::with_capacity(capacity, capacity * 8);
        ColumnBuilders {
            date,
            len: 0,
            platform: text(),
            account_id: text(),
            level: text(),
            entity_id: text(),
            entity_name: SparseText::new(capacity),
            dimensions: std::array::from_fn(|_| SparseText::new(capacity)),
            metric: text(),
            value: Decimal128Builder::with_capacity(capacity),
            unit: text(),
            currency: SparseText::new(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, row: &MetricRow) {
        debug_assert_eq!(row.date, self.date);
        self.platform.append_value(&row.platform);
        self.account_id.append_value(&row.account_id);
        self.level.append_value(&row.level);
        self.entity_id.append_value(&row.entity_id);
        self.entity_name.push(row.entity_name.as_deref());
        for (builder, value) in self.dimensions.iter_mut().zip(row.dimensions.values()) {
            builder.push(value.map(|v| v.as_str()));
        }
        self.metric.append_value(row.metric.as_str());
        self.value.append_value(row.value.units());
        self.unit.append_value(row.unit().as_str());
        self.currency.push(row.currency.as_ref().map(|c| c.as_str()));
        self.len += 1;
    }

    /// The pending rows as a batch; the builders are empty afterwards.
    pub fn finish(&mut self, lineage: &Lineage) -> Result<RecordBatch, ArrowError> {
        let n = std::mem::take(&mut self.len);
        let days = i32::try_from((self.date - EPOCH).num_days())
            .map_err(|_| ArrowError::InvalidArgumentError(format!("date {} is out of range", self.date)))?;
        let repeat =
            |s: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n))) };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.platform.finish()),
            repeat(&lineage.source),
            Arc::new(self.account_id.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.entity_id.finish()),
            self.entity_name.finish(),
            Arc::new(Date32Array::from_value(days, n)),
        ];
        columns.extend(self.dimensions.iter_mut().map(SparseText::finish));
        columns.extend([
            Arc::new(self.metric.finish()) as ArrayRef,
            Arc::new(self.value.finish().with_precision_and_scale(PRECISION, SCALE as i8)?),
            Arc::new(self.unit.finish()),
            self.currency.finish(),
            Arc::new(TimestampMicrosecondArray::from_value(lineage.pulled_at_micros, n).with_timezone("UTC")),
            repeat(&lineage.run_id),
        ]);
        debug_assert_eq!(columns.len(), 7 + Dimensions::NAMES.len() + 6);
        RecordBatch::try_new(metric_schema(), columns)
    }
}
