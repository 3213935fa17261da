//! Writes metric rows to Parquet that a warehouse reads directly.
//!
//! Layout: `<output>/metrics/source=<name>/date=<YYYY-MM-DD>/part-00000.parquet`, one file per
//! source and day, every file with every column of [`metric_schema`]. Why days and one file:
//! platforms restate recent days, so a run replaces whole days; with one file per day that
//! replacement is a single `rename`, atomic for readers, and re-running a window can never leave
//! two copies of a row.
//!
//! Rows are appended to Arrow column builders and written in batches of thousands; files are
//! zstd-compressed with statistics on. Memory is bounded by [`ParquetSinkOptions`], not by the
//! number of rows.

mod columns;
pub mod layout;
pub mod read;
mod schema;
mod writer;

use std::path::{Path, PathBuf};

use kpipe_core::{Sink, SinkError, SinkTarget, SinkWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

pub use schema::{SCHEMA_VERSION, metric_schema};

/// Columns whose pages are a single run of dictionary index 0 or near it (constant per file or
/// of a handful of values): zstd cannot shrink them, and each compressed column keeps a zstd
/// compression and decompression context alive per open day partition.
const UNCOMPRESSED_COLUMNS: [&str; 8] =
    ["source", "run_id", "date", "pulled_at", "platform", "level", "unit", "currency"];

/// Rows per data page at most. Dictionary indices wait as 64-bit integers until their page is
/// written, so smaller pages hold less memory per open column; 8192 rows still make pages large
/// enough for readers to skip efficiently.
const PAGE_ROWS: usize = 8192;

/// Tuning of the Parquet files and of the memory the writer may hold.
#[derive(Debug, Clone)]
pub struct ParquetSinkOptions {
    /// zstd level (1-22).
    pub zstd_level: i32,
    /// Rows per row group at most.
    pub max_row_group_rows: usize,
    /// Rows collected per day before they are encoded as one batch.
    pub chunk_rows: usize,
    /// Rows waiting in builders across all days before all of them are encoded.
    pub max_pending_rows: usize,
    /// Encoded bytes held in open row groups across all days before the largest are cut.
    pub max_buffered_bytes: usize,
}

impl Default for ParquetSinkOptions {
    fn default() -> ParquetSinkOptions {
        ParquetSinkOptions {
            zstd_level: 3,
            max_row_group_rows: 1 << 20,
            chunk_rows: 8192,
            max_pending_rows: 1 << 16,
            max_buffered_bytes: 64 << 20,
        }
    }
}

/// The Parquet sink.
#[derive(Debug, Clone)]
pub struct ParquetSink {
    output: PathBuf,
    options: ParquetSinkOptions,
}

impl ParquetSink {
    /// A sink writing below `output`.
    pub fn new(output: impl Into<PathBuf>) -> ParquetSink {
        ParquetSink { output: output.into(), options: ParquetSinkOptions::default() }
    }

    /// The same sink with other tuning.
    pub fn with_options(mut self, options: ParquetSinkOptions) -> ParquetSink {
        self.options = options;
        self
    }

    /// The output directory.
    pub fn output(&self) -> &Path {
        &self.output
    }

    fn writer_properties(&self) -> Result<WriterProperties, SinkError> {
        let level = ZstdLevel::try_new(self.options.zstd_level)
            .map_err(|e| SinkError::new("invalid zstd level").with_source(e))?;
        let mut builder = WriterProperties::builder();
        for column in UNCOMPRESSED_COLUMNS.iter().copied().chain(kpipe_core::Dimensions::NAMES) {
            builder = builder.set_column_compression(ColumnPath::from(column), Compression::UNCOMPRESSED);
        }
        Ok(builder
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_max_row_group_row_count(Some(self.options.max_row_group_rows.max(1)))
            .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "kpipe.schema_version".to_owned(),
                SCHEMA_VERSION.to_owned(),
            )]))
            .build())
    }
}

impl Sink for ParquetSink {
    fn open(&self, target: SinkTarget) -> Result<Box<dyn SinkWriter>, SinkError> {
        if !kpipe_core::is_identifier(&target.source) {
            return Err(SinkError::new(format!("source name `{}` is not a snake_case name", target.source)));
        }
        let props = self.writer_properties()?;
        Ok(Box::new(writer::PartitionedWriter::open(&self.output, target, self.options.clone(), props)?))
    }
}
