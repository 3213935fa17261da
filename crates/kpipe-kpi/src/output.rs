//! KPI files: `<output>/kpis/grain=<g>/period=<YYYY-MM-DD>/part-00000.parquet`, one per grain
//! and period, staged under `<output>/.staging/kpis/<run_id>/` and renamed into place, like the
//! metric files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Decimal128Builder, StringBuilder};
use arrow_array::{ArrayRef, Date32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{Datelike, NaiveDate};
use kpipe_core::Label;
use kpipe_core::decimal::{PRECISION, SCALE};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use crate::compute::{Computation, EndedPeriod};
use crate::error::KpiError;
use crate::period::{Grain, Touched};
use crate::row::{RowSink, RowView};

/// Version of the KPI column layout, written to each file's key-value metadata.
pub const KPI_SCHEMA_VERSION: &str = "1";

/// The one data file of a period partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// Rows per Arrow batch handed to the Parquet writer. The batch being filled and the row group
/// being encoded are the writer's memory: a few megabytes each at this size.
const CHUNK_ROWS: usize = 32 * 1024;

/// Rows per Parquet row group: a whole number of batches.
const ROW_GROUP_ROWS: usize = 2 * CHUNK_ROWS;

static KPI_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let decimal = |name: &str| Field::new(name, DataType::Decimal128(PRECISION, SCALE as i8), true);
    Arc::new(Schema::new(vec![
        text("kpi", false),
        text("grain", false),
        Field::new("period_start", DataType::Date32, false),
        Field::new("period_end", DataType::Date32, false),
        text("scope", false),
        text("platform", true),
        text("source", true),
        text("account_id", true),
        text("level", true),
        text("entity_id", true),
        decimal("value"),
        decimal("numerator"),
        decimal("denominator"),
        text("unit", false),
        text("currency", true),
        text("stage", false),
    ]))
});

/// The schema of every KPI file.
pub fn kpi_schema() -> SchemaRef {
    KPI_SCHEMA.clone()
}

/// `<output>/kpis`.
pub fn kpis_dir(output: &Path) -> PathBuf {
    output.join("kpis")
}

/// `<output>/kpis/grain=<g>/period=<start>`.
pub fn period_dir(output: &Path, grain: Grain, start: NaiveDate) -> PathBuf {
    kpis_dir(output).join(format!("grain={grain}")).join(format!("period={}", start.format("%Y-%m-%d")))
}

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    d.num_days_from_ce() - 719_163
}

/// The columns of the rows of one Arrow batch, filled row by row.
struct Columns {
    kpi: StringBuilder,
    grain: StringBuilder,
    starts: Vec<i32>,
    ends: Vec<i32>,
    scope: StringBuilder,
    platform: StringBuilder,
    source: StringBuilder,
    account: StringBuilder,
    level: StringBuilder,
    entity: StringBuilder,
    value: Decimal128Builder,
    numerator: Decimal128Builder,
    denominator: Decimal128Builder,
    unit: StringBuilder,
    currency: StringBuilder,
    stage: StringBuilder,
}

impl Columns {
    fn new() -> Columns {
        let text = || StringBuilder::with_capacity(CHUNK_ROWS, CHUNK_ROWS * 8);
        let decimal = || Decimal128Builder::with_capacity(CHUNK_ROWS);
        Columns {
            kpi: text(),
            grain: text(),
            starts: Vec::with_capacity(CHUNK_ROWS),
            ends: Vec::with_capacity(CHUNK_ROWS),
            scope: text(),
            platform: text(),
            source: text(),
            account: text(),
            level: text(),
            entity: text(),
            value: decimal(),
            numerator: decimal(),
            denominator: decimal(),
            unit: text(),
            currency: text(),
            stage: text(),
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn push(&mut self, r: &RowView<'_>) {
        self.kpi.append_value(r.kpi.as_str());
        self.grain.append_value(r.grain.as_str());
        self.starts.push(days_since_epoch(r.period_start));
        self.ends.push(days_since_epoch(r.period_end));
        self.scope.append_value(r.scope.as_str());
        self.platform.append_option(r.platform.map(Label::as_str));
        self.source.append_option(r.source.map(Label::as_str));
        self.account.append_option(r.account_id.map(Label::as_str));
        self.level.append_option(r.level.map(Label::as_str));
        self.entity.append_option(r.entity_id.map(Label::as_str));
        self.value.append_option(r.value.map(|v| v.units()));
        self.numerator.append_option(r.numerator.map(|v| v.units()));
        self.denominator.append_option(r.denominator.map(|v| v.units()));
        self.unit.append_value(r.unit.as_str());
        self.currency.append_option(r.currency.as_ref().map(|c| c.as_str()));
        self.stage.append_value(r.stage.as_str());
    }

    /// The rows pushed since the last batch, as a batch; the columns start empty again.
    fn batch(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let dec = |b: &mut Decimal128Builder| -> Result<ArrayRef, arrow_schema::ArrowError> {
            Ok(Arc::new(b.finish().with_precision_and_scale(PRECISION, SCALE as i8)?))
        };
        let dates = |v: &mut Vec<i32>| Arc::new(Date32Array::from(std::mem::take(v)));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.kpi.finish()),
            Arc::new(self.grain.finish()),
            dates(&mut self.starts),
            dates(&mut self.ends),
            Arc::new(self.scope.finish()),
            Arc::new(self.platform.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.entity.finish()),
            dec(&mut self.value)?,
            dec(&mut self.numerator)?,
            dec(&mut self.denominator)?,
            Arc::new(self.unit.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.stage.finish()),
        ];
        RecordBatch::try_new(kpi_schema(), columns)
    }
}

/// One period's file, written as its rows come: every [`CHUNK_ROWS`] rows go to the Parquet
/// writer as one batch, so that a period's rows are never all in memory. The file is created
/// with the first batch: a period without rows has none.
struct PeriodFile<'w> {
    path: PathBuf,
    props: &'w WriterProperties,
    writer: Option<ArrowWriter<File>>,
    columns: Columns,
    rows: u64,
}

impl PeriodFile<'_> {
    fn fail(&self, e: &dyn std::fmt::Display) -> KpiError {
        KpiError::Write { path: self.path.clone(), message: e.to_string() }
    }

    fn flush(&mut self) -> Result<(), KpiError> {
        if self.columns.len() == 0 {
            return Ok(());
        }
        let batch = self.columns.batch().map_err(|e| self.fail(&e))?;
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let file = File::create(&self.path).map_err(KpiError::io("create", &self.path))?;
                let w = ArrowWriter::try_new(file, kpi_schema(), Some(self.props.clone()))
                    .map_err(|e| self.fail(&e))?;
                self.writer.insert(w)
            }
        };
        writer.write(&batch).map_err(|e| KpiError::Write { path: self.path.clone(), message: e.to_string() })
    }

    /// Writes the last rows and closes the file; `None` when the period had no rows.
    fn finish(mut self) -> Result<Option<(PathBuf, u64)>, KpiError> {
        self.flush()?;
        let Some(writer) = self.writer.take() else { return Ok(None) };
        let file = writer.into_inner().map_err(|e| self.fail(&e))?;
        file.sync_all().map_err(KpiError::io("sync", &self.path))?;
        Ok(Some((self.path, self.rows)))
    }
}

impl RowSink for PeriodFile<'_> {
    type Error = KpiError;

    fn push(&mut self, row: &RowView<'_>) -> Result<(), KpiError> {
        self.columns.push(row);
        self.rows += 1;
        if self.columns.len() >= CHUNK_ROWS { self.flush() } else { Ok(()) }
    }
}

/// What a commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KpiCommit {
    /// KPI rows now visible for the touched periods.
    pub rows: u64,
    /// Period files written (new or replaced).
    pub periods_written: usize,
    /// Period files removed because the period has no KPI row any more.
    pub periods_removed: usize,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// The KPI files of one stage run, staged until [`KpiWriter::commit`].
#[derive(Debug)]
pub(crate) struct KpiWriter {
    output: PathBuf,
    staging: PathBuf,
    props: WriterProperties,
    staged: Vec<(Grain, NaiveDate, PathBuf, u64)>,
    done: bool,
}

impl KpiWriter {
    pub fn open(output: &Path, run_id: &str) -> Result<KpiWriter, KpiError> {
        let root = output.join(".staging").join("kpis");
        // Only one KPI stage runs on an output at a time: anything staged is from a killed run.
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries.flatten() {
                if entry.file_name() != run_id {
                    let path = entry.path();
                    tracing::info!(path = %path.display(), "removing KPI files staged by an interrupted run");
                    fs::remove_dir_all(&path).map_err(KpiError::io("remove", &path))?;
                }
            }
        }
        let staging = root.join(run_id);
        fs::create_dir_all(&staging).map_err(KpiError::io("create", &staging))?;
        let props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            // A row group is held in memory until it is complete: bound it rather than let a
            // large period's whole file build up.
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("kpipe.kpi_schema_version".to_owned(), KPI_SCHEMA_VERSION.to_owned()),
                KeyValue::new("kpipe.run_id".to_owned(), run_id.to_owned()),
            ]))
            .build();
        Ok(KpiWriter { output: output.to_path_buf(), staging, props, staged: Vec::new(), done: false })
    }

    /// Computes an ended period's rows and writes them to a file in the staging folder as they
    /// come; a period without rows writes nothing (and its old file, if any, is removed at
    /// commit). The period's aggregates are freed once written.
    pub fn stage(&mut self, computation: &mut Computation<'_>, period: EndedPeriod) -> Result<(), KpiError> {
        let period = computation.close(period);
        let name =
            format!("grain={}.period={}.parquet.partial", period.grain, period.start.format("%Y-%m-%d"));
        let mut file = PeriodFile {
            path: self.staging.join(name),
            props: &self.props,
            writer: None,
            columns: Columns::new(),
            rows: 0,
        };
        computation.emit(&period, &mut file)?;
        let (grain, start) = (period.grain, period.start);
        drop(period);
        if let Some((path, rows)) = file.finish()? {
            self.staged.push((grain, start, path, rows));
        }
        Ok(())
    }

    /// Publishes the staged files and removes the files of touched periods that have no rows
    /// any more. Each period is replaced by one rename: readers see the old or the new period.
    pub fn commit(mut self, touched: &Touched) -> Result<KpiCommit, KpiError> {
        let mut report = KpiCommit::default();
        let mut grain_dirs = std::collections::BTreeSet::new();
        for (grain, start, staged, rows) in std::mem::take(&mut self.staged) {
            let dir = period_dir(&self.output, grain, start);
            let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            fs::create_dir_all(&dir).map_err(KpiError::io("create", &dir))?;
            let target = dir.join(PART_FILE);
            fs::rename(&staged, &target).map_err(KpiError::io("publish", &target))?;
            sync_dir(&dir)?;
            remove_other_parts(&dir)?;
            grain_dirs.insert(parent);
            report.rows += rows;
            report.periods_written += 1;
            report.files.push(target);
        }
        for &grain in touched.grains() {
            for (start, _) in touched.periods(grain) {
                let dir = period_dir(&self.output, grain, start);
                let target = dir.join(PART_FILE);
                if dir.exists() && !report.files.contains(&target) {
                    fs::remove_dir_all(&dir).map_err(KpiError::io("remove", &dir))?;
                    report.periods_removed += 1;
                    if let Some(parent) = dir.parent() {
                        grain_dirs.insert(parent.to_path_buf());
                    }
                }
            }
        }
        for dir in &grain_dirs {
            sync_dir(dir)?;
        }
        if !grain_dirs.is_empty() {
            sync_dir(&kpis_dir(&self.output))?;
        }
        self.discard()?;
        Ok(report)
    }

    fn discard(&mut self) -> Result<(), KpiError> {
        self.done = true;
        match fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(KpiError::io("remove", &self.staging)(e));
            }
            _ => {}
        }
        if let Some(root) = self.staging.parent() {
            let _ = fs::remove_dir(root);
            if let Some(staging) = root.parent() {
                let _ = fs::remove_dir(staging);
            }
        }
        Ok(())
    }
}

impl Drop for KpiWriter {
    fn drop(&mut self) {
        if !self.done {
            // Not committed (an error on the way): the published periods stay as they were.
            let _ = self.discard();
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), KpiError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(KpiError::io("sync", dir))
}

/// A period partition holds one file: others (another layout version) are removed.
fn remove_other_parts(dir: &Path) -> Result<(), KpiError> {
    for entry in fs::read_dir(dir).map_err(KpiError::io("list", dir))? {
        let entry = entry.map_err(KpiError::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != PART_FILE && name.ends_with(".parquet") {
            fs::remove_file(entry.path()).map_err(KpiError::io("remove", entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kpipe_core::{Decimal, Unit};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::config::Stage;
    use crate::period::Scope;
    use crate::read::read_kpi_dir;

    #[test]
    fn a_large_period_is_written_in_bounded_batches_and_row_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = KpiWriter::open(dir.path(), "t").expect("staging folder");
        let folder = dir.path().join("period");
        fs::create_dir(&folder).expect("period folder");
        let path = folder.join(PART_FILE);
        let mut file = PeriodFile {
            path: path.clone(),
            props: &writer.props,
            writer: None,
            columns: Columns::new(),
            rows: 0,
        };
        let start = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
        let kpi = Label::new("ctr");
        let platform = Label::new("linkedin");
        let rows = ROW_GROUP_ROWS + CHUNK_ROWS + 3;
        for i in 0..rows {
            let entity = Label::new(&format!("e{i:07}"));
            let row = RowView {
                kpi: &kpi,
                grain: Grain::Day,
                period_start: start,
                period_end: start,
                scope: Scope::Entity,
                platform: Some(&platform),
                source: None,
                account_id: None,
                level: None,
                entity_id: Some(&entity),
                value: Decimal::from_units(i as i128),
                numerator: None,
                denominator: None,
                unit: Unit::Ratio,
                currency: None,
                stage: Stage::Awareness,
            };
            file.push(&row).expect("write");
            assert!(file.columns.len() < CHUNK_ROWS, "a full batch goes to the writer at once");
        }
        assert_eq!(file.finish().expect("close"), Some((path.clone(), rows as u64)));

        let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("parquet");
        let groups: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![ROW_GROUP_ROWS as i64, (CHUNK_ROWS + 3) as i64]);
        let back = read_kpi_dir(&folder).expect("readable");
        assert_eq!(back.len(), rows);
        for (i, r) in back.iter().enumerate() {
            assert_eq!(r.entity_id.as_deref(), Some(format!("e{i:07}").as_str()), "row {i} in order");
            assert_eq!(r.value, Decimal::from_units(i as i128));
        }
    }

    #[test]
    fn a_period_without_rows_writes_no_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = KpiWriter::open(dir.path(), "t").expect("staging folder");
        let path = dir.path().join(PART_FILE);
        let file = PeriodFile {
            path: path.clone(),
            props: &writer.props,
            writer: None,
            columns: Columns::new(),
            rows: 0,
        };
        assert_eq!(file.finish().expect("close"), None);
        assert!(!path.exists());
    }
}
