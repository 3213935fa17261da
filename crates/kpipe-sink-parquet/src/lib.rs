//! Writes metric rows to Parquet that a warehouse reads directly.
//!
//! Layout: `<output>/metrics/<source>.<YYYY-MM-DD>.parquet`, one file per source and day, every
//! file with every column of [`metric_schema`] ([`layout`] says why the folder has no
//! sub-folders). Why days and one file: platforms restate recent days, so a run replaces whole
//! days; with one file per day that replacement is a single `rename` (or one upload), atomic for
//! readers, and re-running a window can never leave two copies of a row.
//!
//! Rows are dictionary-encoded column by column as they arrive and written in row groups of up
//! to a million rows; pages are zstd-compressed where that shrinks them, every column chunk
//! carries min/max statistics, and the file carries the Arrow schema so Arrow readers get the
//! exact types back. Memory is bounded by [`ParquetSinkOptions`], not by the number of rows.

mod columns;
pub mod delta;
pub mod encode;
pub mod handover;
pub mod layout;
pub mod migrate;
pub mod period;
mod period_buffer;
pub mod read;
pub mod read_days;
mod schema;
pub mod table;
mod writer;

use std::path::PathBuf;

use std::sync::Arc;

use kpipe_core::{Sink, SinkError, SinkTarget, SinkWriter};
pub use kpipe_storage::{Storage, StorageError};
use parquet::basic::ZstdLevel;
use parquet::file::metadata::KeyValue;

pub use schema::{SCHEMA_VERSION, metric_schema};
pub use table::OutputFormat;

/// Tuning of the Parquet files and of the memory the writer may hold.
#[derive(Debug, Clone)]
pub struct ParquetSinkOptions {
    /// zstd level (1-22). Level 1 by default: on metric files it is both faster and, measured,
    /// no larger than level 3 (`cargo xtask bench sink --zstd-level L`).
    pub zstd_level: i32,
    /// Rows per row group at most.
    pub max_row_group_rows: usize,
    /// Bytes held by the row groups in progress across all days and all the sources written
    /// at once (encoded pages, dictionaries, the pages being filled) before the largest are
    /// written out early. 16 MiB by default: the sink's memory then stays the same from a
    /// million rows up and whatever the number of sources (measured with `cargo xtask bench
    /// sink` and `cargo xtask bench`), at the price of row groups of a few hundred thousand
    /// rows when many days are written at once.
    pub max_buffered_bytes: usize,
}

impl Default for ParquetSinkOptions {
    fn default() -> ParquetSinkOptions {
        ParquetSinkOptions { zstd_level: 1, max_row_group_rows: 1 << 20, max_buffered_bytes: 16 << 20 }
    }
}

/// The Parquet sink. Clones share the memory bound of [`ParquetSinkOptions::max_buffered_bytes`].
#[derive(Debug, Clone)]
pub struct ParquetSink {
    storage: Storage,
    options: ParquetSinkOptions,
    format: OutputFormat,
    shard: kpipe_core::Shard,
    /// Sources that are one unit as a whole (their rows go with the source, not the account).
    whole_sources: Arc<std::collections::BTreeSet<String>>,
    buffered: Arc<writer::BufferedBytes>,
}

impl ParquetSink {
    /// A sink writing below the local directory `output`.
    pub fn new(output: impl Into<PathBuf>) -> ParquetSink {
        ParquetSink::on(Storage::local(output))
    }

    /// A sink writing to `storage`.
    pub fn on(storage: Storage) -> ParquetSink {
        ParquetSink {
            storage,
            options: ParquetSinkOptions::default(),
            format: OutputFormat::Parquet,
            shard: kpipe_core::Shard::ALL,
            whole_sources: Arc::default(),
            buffered: Arc::default(),
        }
    }

    /// The same sink with other tuning.
    pub fn with_options(mut self, options: ParquetSinkOptions) -> ParquetSink {
        self.options = options;
        self
    }

    /// The same sink writing `format` (the Parquet layout by default).
    pub fn with_format(mut self, format: OutputFormat) -> ParquetSink {
        self.format = format;
        self
    }

    /// The same sink writing for shard `shard` of a sharded run: its files carry the shard's
    /// name, and each commit takes the shard's accounts over from files that another number of
    /// shards wrote ([`handover`]). `whole_sources` are the sources that are one unit as a
    /// whole (they list no accounts): all their rows belong to the shard that runs them.
    pub fn with_shard(
        mut self,
        shard: kpipe_core::Shard,
        whole_sources: std::collections::BTreeSet<String>,
    ) -> ParquetSink {
        self.shard = shard;
        self.whole_sources = Arc::new(whole_sources);
        self
    }

    /// The shard it writes for.
    pub fn shard(&self) -> kpipe_core::Shard {
        self.shard
    }

    /// The format it writes.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Bytes held now by the row groups in progress of all writers this sink (and its clones)
    /// opened.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered.get()
    }

    /// Where it writes.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The format of metric files.
    fn table_format(&self) -> Result<table::TableFormat, SinkError> {
        let metadata = vec![KeyValue::new("kpipe.schema_version".to_owned(), SCHEMA_VERSION.to_owned())];
        table::TableFormat::new(&metric_schema(), &columns::expected_physical_types(), metadata)
    }
}

impl Sink for ParquetSink {
    fn open(&self, target: SinkTarget) -> Result<Box<dyn SinkWriter>, SinkError> {
        if !kpipe_core::is_identifier(&target.source) {
            return Err(SinkError::new(format!("source name `{}` is not a snake_case name", target.source)));
        }
        let level = ZstdLevel::try_new(self.options.zstd_level)
            .map_err(|e| SinkError::new("invalid zstd level").with_source(e))?;
        let codec = encode::column::Codec::zstd(level);
        let ownership =
            writer::Ownership { shard: self.shard, whole: self.whole_sources.contains(&target.source) };
        Ok(Box::new(writer::PartitionedWriter::open(
            &self.storage,
            target,
            self.options.clone(),
            (self.format, ownership),
            self.table_format()?,
            codec,
            Arc::clone(&self.buffered),
        )?))
    }
}
