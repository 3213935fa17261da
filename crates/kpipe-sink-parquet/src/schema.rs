//! The Arrow schema of the metric files (docs/schema.md documents each column).

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use kpipe_core::Dimensions;
use kpipe_core::decimal::{PRECISION, SCALE};

/// Version of the column layout, written to each file's key-value metadata.
pub const SCHEMA_VERSION: &str = "2";

static METRIC_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let mut fields = vec![
        text("platform", false),
        text("source", false),
        text("account_id", false),
        text("level", false),
        text("entity_id", false),
        text("entity_name", true),
        Field::new("date", DataType::Date32, false),
    ];
    fields.extend(Dimensions::NAMES.iter().map(|d| text(d, true)));
    fields.extend([
        text("metric", false),
        Field::new("value", DataType::Decimal128(PRECISION, SCALE as i8), false),
        text("unit", false),
        text("currency", true),
        Field::new("pulled_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        text("run_id", false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The schema every metric file carries, whatever the source.
pub fn metric_schema() -> SchemaRef {
    METRIC_SCHEMA.clone()
}
