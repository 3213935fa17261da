//! Column builders: rows are appended column by column and handed to Parquet as one
//! `RecordBatch` of thousands of rows.

use std::sync::Arc;

use arrow_array::builder::{Decimal128Builder, StringBuilder};
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
    entity_name: StringBuilder,
    dimensions: [StringBuilder; 8],
    metric: StringBuilder,
    value: Decimal128Builder,
    unit: StringBuilder,
    currency: StringBuilder,
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
            entity_name: text(),
            dimensions: std::array::from_fn(|_| StringBuilder::with_capacity(capacity, 0)),
            metric: text(),
            value: Decimal128Builder::with_capacity(capacity),
            unit: text(),
            currency: StringBuilder::with_capacity(capacity, capacity * 3),
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
        self.entity_name.append_option(row.entity_name.as_deref());
        for (builder, value) in self.dimensions.iter_mut().zip(row.dimensions.values()) {
            builder.append_option(value.map(|v| v.as_str()));
        }
        self.metric.append_value(row.metric.as_str());
        self.value.append_value(row.value.units());
        self.unit.append_value(row.unit().as_str());
        self.currency.append_option(row.currency.as_ref().map(|c| c.as_str()));
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
            Arc::new(self.entity_name.finish()),
            Arc::new(Date32Array::from_value(days, n)),
        ];
        columns.extend(self.dimensions.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend([
            Arc::new(self.metric.finish()) as ArrayRef,
            Arc::new(self.value.finish().with_precision_and_scale(PRECISION, SCALE as i8)?),
            Arc::new(self.unit.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(TimestampMicrosecondArray::from_value(lineage.pulled_at_micros, n).with_timezone("UTC")),
            repeat(&lineage.run_id),
        ]);
        debug_assert_eq!(columns.len(), 7 + Dimensions::NAMES.len() + 6);
        RecordBatch::try_new(metric_schema(), columns)
    }
}
