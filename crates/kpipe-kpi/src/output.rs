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
use kpipe_core::decimal::{PRECISION, SCALE};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use crate::compute::PeriodRows;
use crate::error::KpiError;
use crate::period::{Grain, Touched};
use crate::row::KpiRow;

/// Version of the KPI column layout, written to each file's key-value metadata.
pub const KPI_SCHEMA_VERSION: &str = "1";

/// The one data file of a period partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// Rows per Arrow batch handed to the Parquet writer.
const CHUNK_ROWS: usize = 64 * 1024;

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

/// The rows as Arrow batches of at most [`CHUNK_ROWS`] rows.
pub(crate) fn batches(rows: &[KpiRow]) -> Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    let mut out = Vec::new();
    for chunk in rows.chunks(CHUNK_ROWS) {
        let n = chunk.len();
        let text = || StringBuilder::with_capacity(n, n * 8);
        let (mut kpi, mut grain, mut scope, mut platform, mut source) =
            (text(), text(), text(), text(), text());
        let (mut account, mut level, mut entity, mut unit, mut currency, mut stage) =
            (text(), text(), text(), text(), text(), text());
        let decimal = || Decimal128Builder::with_capacity(n);
        let (mut value, mut numerator, mut denominator) = (decimal(), decimal(), decimal());
        let mut starts = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        for r in chunk {
            kpi.append_value(&r.kpi);
            grain.append_value(r.grain.as_str());
            starts.push(days_since_epoch(r.period_start));
            ends.push(days_since_epoch(r.period_end));
            scope.append_value(r.scope.as_str());
            platform.append_option(r.platform.as_deref());
            source.append_option(r.source.as_deref());
            account.append_option(r.account_id.as_deref());
            level.append_option(r.level.as_deref());
            entity.append_option(r.entity_id.as_deref());
            value.append_option(r.value.map(|v| v.units()));
            numerator.append_option(r.numerator.map(|v| v.units()));
            denominator.append_option(r.denominator.map(|v| v.units()));
            unit.append_value(r.unit.as_str());
            currency.append_option(r.currency.as_ref().map(|c| c.as_str()));
            stage.append_value(r.stage.as_str());
        }
        let dec = |mut b: Decimal128Builder| -> Result<ArrayRef, arrow_schema::ArrowError> {
            Ok(Arc::new(b.finish().with_precision_and_scale(PRECISION, SCALE as i8)?))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(kpi.finish()),
            Arc::new(grain.finish()),
            Arc::new(Date32Array::from(starts)),
            Arc::new(Date32Array::from(ends)),
            Arc::new(scope.finish()),
            Arc::new(platform.finish()),
            Arc::new(source.finish()),
            Arc::new(account.finish()),
            Arc::new(level.finish()),
            Arc::new(entity.finish()),
            dec(value)?,
            dec(numerator)?,
            dec(denominator)?,
            Arc::new(unit.finish()),
            Arc::new(currency.finish()),
            Arc::new(stage.finish()),
        ];
        out.push(RecordBatch::try_new(kpi_schema(), columns)?);
    }
    Ok(out)
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
            .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("kpipe.kpi_schema_version".to_owned(), KPI_SCHEMA_VERSION.to_owned()),
                KeyValue::new("kpipe.run_id".to_owned(), run_id.to_owned()),
            ]))
            .build();
        Ok(KpiWriter { output: output.to_path_buf(), staging, props, staged: Vec::new(), done: false })
    }

    /// Writes one period's file to the staging folder; a period without rows writes nothing (and
    /// its old file, if any, is removed at commit).
    pub fn stage(&mut self, period: &PeriodRows) -> Result<(), KpiError> {
        if period.rows.is_empty() {
            return Ok(());
        }
        let name =
            format!("grain={}.period={}.parquet.partial", period.grain, period.start.format("%Y-%m-%d"));
        let path = self.staging.join(name);
        let fail = |e: &dyn std::fmt::Display| KpiError::Write { path: path.clone(), message: e.to_string() };
        let file = File::create(&path).map_err(KpiError::io("create", &path))?;
        let mut writer =
            ArrowWriter::try_new(file, kpi_schema(), Some(self.props.clone())).map_err(|e| fail(&e))?;
        for batch in batches(&period.rows).map_err(|e| fail(&e))? {
            writer.write(&batch).map_err(|e| fail(&e))?;
        }
        let file = writer.into_inner().map_err(|e| fail(&e))?;
        file.sync_all().map_err(KpiError::io("sync", &path))?;
        self.staged.push((period.grain, period.start, path, period.rows.len() as u64));
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
