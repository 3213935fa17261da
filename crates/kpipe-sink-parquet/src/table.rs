//! Writing a partitioned Parquet table: files built row group by row group from encoded
//! columns ([`TableFile`]), staged on this machine, then published together through the
//! storage layer ([`StagedTable`]). The metric sink and the KPI stage both write through it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::Schema;
use kpipe_core::SinkError;
use kpipe_storage::Storage;
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::Type as PhysicalType;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr, WriterVersion};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::{SchemaDescPtr, SchemaDescriptor};

use crate::encode::column::{Codec, DictColumn};
use crate::layout;

/// The schema and writer properties of a table's files.
#[derive(Debug, Clone)]
pub struct TableFormat {
    schema: SchemaDescPtr,
    props: WriterPropertiesPtr,
}

impl TableFormat {
    /// Files of `arrow`'s schema, whose columns are written with the physical types `written`
    /// (checked against the schema Arrow's converter derives, so that the two never drift apart
    /// silently), carrying `metadata` and the encoded Arrow schema, so that Arrow readers get
    /// the exact types back (dates, `DECIMAL(38, 18)`, UTC timestamps).
    pub fn new(
        arrow: &Schema,
        written: &[PhysicalType],
        metadata: Vec<KeyValue>,
    ) -> Result<TableFormat, SinkError> {
        let schema = ArrowSchemaConverter::new()
            .convert(arrow)
            .map_err(|e| SinkError::new("cannot derive the Parquet schema").with_source(e))?;
        let types: Vec<_> = schema.columns().iter().map(|c| c.physical_type()).collect();
        if types != written {
            return Err(SinkError::new(format!(
                "the Parquet schema's physical types {types:?} are not the written ones {written:?}"
            )));
        }
        let mut props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(metadata))
            .build();
        add_encoded_arrow_schema_to_metadata(arrow, &mut props);
        Ok(TableFormat { schema: Arc::new(schema), props: Arc::new(props) })
    }

    /// The Parquet schema.
    pub fn schema(&self) -> &SchemaDescPtr {
        &self.schema
    }
}

fn write_error(path: &Path, what: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SinkError {
    SinkError::new(format!("cannot {what} {}", path.display())).with_source(e)
}

/// One Parquet file being written on this machine, a row group at a time. The file is created
/// with its first row group: a file that gets none is never created.
#[derive(Debug)]
pub struct TableFile {
    path: PathBuf,
    format: TableFormat,
    writer: Option<SerializedFileWriter<File>>,
    rows: u64,
}

impl TableFile {
    /// A file to be written at `path` (a staging path).
    pub fn new(path: PathBuf, format: &TableFormat) -> TableFile {
        TableFile { path, format: format.clone(), writer: None, rows: 0 }
    }

    /// Where it is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one row group of `rows` rows, whose column chunks `write` appends in schema
    /// order.
    pub fn append_row_group(
        &mut self,
        rows: u64,
        write: impl FnOnce(&mut SerializedRowGroupWriter<'_, File>, &SchemaDescriptor) -> Result<(), ParquetError>,
    ) -> Result<(), SinkError> {
        if rows == 0 {
            return Ok(());
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let file = File::create(&self.path).map_err(|e| write_error(&self.path, "create", e))?;
                let w = SerializedFileWriter::new(
                    file,
                    self.format.schema.root_schema_ptr(),
                    self.format.props.clone(),
                )
                .map_err(|e| write_error(&self.path, "start", e))?;
                self.writer.insert(w)
            }
        };
        let mut group = writer.next_row_group().map_err(|e| write_error(&self.path, "write", e))?;
        write(&mut group, &self.format.schema).map_err(|e| write_error(&self.path, "encode", e))?;
        group.close().map_err(|e| write_error(&self.path, "write", e))?;
        self.rows += rows;
        Ok(())
    }

    /// Appends the rows held by `columns` (in schema order, all with the same number of rows)
    /// as one row group; the columns are empty afterwards.
    pub fn append_columns<'c>(
        &mut self,
        columns: impl IntoIterator<Item = &'c mut DictColumn>,
        codec: &mut Codec,
    ) -> Result<(), SinkError> {
        let mut columns = columns.into_iter().peekable();
        let rows = columns.peek().map_or(0, |c| c.rows());
        self.append_row_group(rows, |group, schema| {
            for (i, column) in columns.enumerate() {
                let (bytes, close) = column.finish(schema.column(i), codec)?;
                group.append_column(&bytes, close)?;
            }
            Ok(())
        })
    }

    /// Closes the file; `None` when it got no row group (and so was never created).
    pub fn finish(mut self) -> Result<Option<(PathBuf, u64)>, SinkError> {
        let Some(mut writer) = self.writer.take() else { return Ok(None) };
        writer.finish().map_err(|e| write_error(&self.path, "finish", e))?;
        Ok(Some((std::mem::take(&mut self.path), self.rows)))
    }
}

/// How the output's tables are written: `[pipeline] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// A Parquet file per partition below `metrics/`, `metrics_period/` and `kpis/`, each
    /// replaced in one step.
    #[default]
    Parquet,
    /// Delta Lake tables below `delta/` (see [`crate::delta`]), one commit per writer and run.
    Delta,
}

impl OutputFormat {
    /// The configuration's name of the format.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Delta => "delta",
        }
    }
}

/// A file of one of the output's tables, as the readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// The Parquet layout's key of its partition (`metrics/<source>.<day>.parquet`), which
    /// [`crate::layout`]'s parsers read.
    pub logical_key: String,
    /// Where to read it below the output.
    pub key: String,
}

/// The files of the table of `folder` (`metrics`, `metrics_period`, `kpis`) as `format` keeps
/// them: the folder's listing, or the Delta table's newest version.
pub fn table_files(
    storage: &Storage,
    format: OutputFormat,
    folder: &str,
) -> Result<Vec<TableEntry>, SinkError> {
    match format {
        OutputFormat::Parquet => Ok(storage
            .list(folder)
            .map_err(|e| {
                SinkError::new(format!("cannot list {}", storage.describe_key(folder))).with_source(e)
            })?
            .into_iter()
            .map(|e| TableEntry { logical_key: e.key.clone(), key: e.key })
            .collect()),
        OutputFormat::Delta => {
            let Some(table) = crate::delta::DeltaTableKind::of_folder(folder) else {
                return Err(SinkError::new(format!("`{folder}` has no Delta table")));
            };
            Ok(crate::delta::active_files(storage, table)?
                .into_iter()
                .map(|f| TableEntry { logical_key: f.logical_key, key: f.key })
                .collect())
        }
    }
}

/// What a [`StagedTable::publish`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Rows of the published files.
    pub rows: u64,
    /// Files written (new or replaced).
    pub written: usize,
    /// Files removed because the run found nothing for their day or period.
    pub removed: usize,
    /// The files published, as paths or URLs.
    pub files: Vec<PathBuf>,
}

/// The files one run stages for one table (a source's metrics, or the KPIs), published
/// together. Runs that write the same table never overlap (the run lock), so anything another
/// run staged for it, or journaled as an upload in progress, was left by a killed process and
/// is cleaned up when the table is opened.
#[derive(Debug)]
pub struct StagedTable {
    storage: Storage,
    staging: PathBuf,
    journal: String,
    /// Key of a data file -> its staged file and rows.
    staged: BTreeMap<String, (PathBuf, u64)>,
    done: bool,
}

impl StagedTable {
    /// Starts staging `table` (a name from [`crate::layout`], such as `metrics/<source>` or
    /// `kpis`) for run `run_id`. `keys_from` is how the keys of the table's files start (such
    /// as `metrics/<source>.`): uploads in progress to such keys were left by a killed run.
    pub fn open(
        storage: &Storage,
        table: &str,
        keys_from: &str,
        run_id: &str,
    ) -> Result<StagedTable, SinkError> {
        let area = storage.staging_dir(&layout::staging_area(table));
        if let Ok(entries) = std::fs::read_dir(&area) {
            for entry in entries.flatten() {
                if entry.file_name() != run_id {
                    let path = entry.path();
                    tracing::info!(path = %path.display(), "removing files staged by an interrupted run");
                    std::fs::remove_dir_all(&path).map_err(|e| write_error(&path, "remove", e))?;
                }
            }
        }
        let journal = layout::upload_journal(table);
        storage
            .abort_orphaned_uploads(&journal, keys_from)
            .map_err(|e| SinkError::new("cannot clean up an interrupted upload").with_source(e))?;
        let staging = area.join(run_id);
        std::fs::create_dir_all(&staging).map_err(|e| write_error(&staging, "create", e))?;
        Ok(StagedTable { storage: storage.clone(), staging, journal, staged: BTreeMap::new(), done: false })
    }

    /// Where to write the staged file of the data file `key` (a name that does not end in
    /// `.parquet`, in the staging folder).
    pub fn staging_path(&self, key: &str) -> PathBuf {
        self.staging.join(layout::staged_name(key))
    }

    /// Records a finished staged file as the new content of the data file `key`.
    pub fn stage(&mut self, key: String, file: PathBuf, rows: u64) {
        self.staged.insert(key, (file, rows));
    }

    /// Keys staged so far.
    pub fn staged(&self) -> impl Iterator<Item = &str> {
        self.staged.keys().map(String::as_str)
    }

    /// Publishes the staged files, each replacing the file of its key, and removes the files
    /// of `replaced` that got no staged file (the run found nothing for their day or period).
    /// `folder` is the table's folder (every key is directly below it). Each file changes in
    /// one step: readers see the old or the new one.
    pub fn publish(mut self, folder: &str, replaced: &BTreeSet<String>) -> Result<Published, SinkError> {
        let storage = self.storage.clone();
        let fail = |e: kpipe_storage::StorageError| SinkError::new("cannot publish").with_source(e);
        let mut report = Published::default();
        let staged = std::mem::take(&mut self.staged);
        for (key, (file, rows)) in &staged {
            storage.publish_file(file, key, &self.journal).map_err(fail)?;
            report.rows += rows;
            report.written += 1;
            report.files.push(PathBuf::from(storage.describe_key(key)));
        }
        let gone: Vec<&str> = replaced
            .iter()
            .filter(|k| !staged.contains_key(*k))
            .filter_map(|k| k.strip_prefix(folder).and_then(|k| k.strip_prefix('/')))
            .collect();
        if let Some(first) = gone.first() {
            // Listed from their longest common start (a writer's name), not the whole folder:
            // a folder of thousands of sources' days would be read at every commit.
            let common = gone.iter().fold(*first, |common, name| {
                let mut same = common.bytes().zip(name.bytes()).take_while(|(a, b)| a == b).count();
                while !common.is_char_boundary(same) {
                    same -= 1;
                }
                &common[..same]
            });
            for entry in storage.list_named(folder, common).map_err(fail)? {
                if replaced.contains(&entry.key) && !staged.contains_key(&entry.key) {
                    storage.delete(&entry.key).map_err(fail)?;
                    report.removed += 1;
                }
            }
        }
        self.discard().map_err(|e| write_error(&self.staging, "clean up", e))?;
        Ok(report)
    }

    /// Publishes as [`StagedTable::publish`] does in the Parquet layout, or, for
    /// [`OutputFormat::Delta`], as one commit to the Delta table of `folder` (files of the
    /// Arrow `schema`) that replaces the partitions of the staged files and of `replaced`.
    pub fn publish_as(
        mut self,
        format: OutputFormat,
        folder: &str,
        replaced: &BTreeSet<String>,
        schema: &Schema,
        context: &crate::delta::CommitContext,
    ) -> Result<Published, SinkError> {
        if format == OutputFormat::Parquet {
            return self.publish(folder, replaced);
        }
        let Some(table) = crate::delta::DeltaTableKind::of_folder(folder) else {
            return Err(SinkError::new(format!("`{folder}` has no Delta table")));
        };
        let files = std::mem::take(&mut self.staged)
            .into_iter()
            .map(|(logical_key, (staged, rows))| crate::delta::NewFile { logical_key, staged, rows })
            .collect();
        let published =
            crate::delta::publish(&self.storage, table, schema, files, replaced, context, &self.journal);
        self.discard().map_err(|e| write_error(&self.staging, "clean up", e))?;
        published
    }

    /// Throws the staged files away; what was published stays as it was.
    pub fn discard(&mut self) -> std::io::Result<()> {
        self.done = true;
        self.staged.clear();
        match std::fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // The table's own folder goes too once empty; the folders above it stay: the shards of
        // a run stage side by side, and removing a shared parent would race with another
        // writer creating its folder in it.
        if let Some(table) = self.staging.parent() {
            let _ = std::fs::remove_dir(table);
        }
        Ok(())
    }
}

impl Drop for StagedTable {
    fn drop(&mut self) {
        if !self.done {
            // Neither published nor discarded (an error on the way): the published data stays.
            let _ = self.discard();
        }
    }
}
