//! KPI files: one per grain and period (`kpipe_sink_parquet::layout::period_partition`), staged
//! and published through the sink's table writer, like the metric files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{Datelike, NaiveDate};
use kpipe_core::Label;
use kpipe_core::decimal::{PRECISION, SCALE};
use kpipe_sink_parquet::OutputFormat;
use kpipe_sink_parquet::Storage;
use kpipe_sink_parquet::delta::CommitContext;
use kpipe_sink_parquet::encode::column::{Codec, DictColumn, Kind};
use kpipe_sink_parquet::layout;
use kpipe_sink_parquet::table::{StagedTable, TableFile, TableFormat};
use parquet::basic::{Type as PhysicalType, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;

use crate::compute::{ClosedPeriod, Computation, EndedPeriod};
use crate::encoding::{Encoder, Stopped};
use crate::error::KpiError;
use crate::period::{Grain, Touched};
use crate::row::{RowSink, RowView};

/// Version of the KPI column layout, written to each file's key-value metadata.
pub const KPI_SCHEMA_VERSION: &str = "1";

/// Rows per Parquet row group at most. The row group being built is the writer's memory, held
/// encoded and compressed: a few megabytes at this size, whatever the period's size.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows a source's part of a period file must reach to be written as a row group when the
/// source's rows end (see [`PeriodFile::end_part`]): below it, the rows wait in memory, encoded,
/// for the next source's.
pub(crate) const PART_ROWS: usize = 16 * 1024;

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

/// `<output>/kpis` of a local output.
pub fn kpis_dir(output: &Path) -> PathBuf {
    output.join(layout::KPIS)
}

/// The file of a period of a local output (`<output>/kpis/<grain>.<start>.parquet`).
pub fn period_file(output: &Path, grain: Grain, start: NaiveDate) -> PathBuf {
    layout::local_path(output, &layout::kpi_file(grain.as_str(), start))
}

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    d.num_days_from_ce() - 719_163
}

/// The format of every KPI file of run `run_id`.
pub(crate) fn file_format(run_id: &str) -> Result<TableFormat, KpiError> {
    let metadata = vec![
        KeyValue::new("kpipe.kpi_schema_version".to_owned(), KPI_SCHEMA_VERSION.to_owned()),
        KeyValue::new("kpipe.run_id".to_owned(), run_id.to_owned()),
    ];
    TableFormat::new(&kpi_schema(), &KpiColumns::physical_types(), metadata).map_err(KpiError::sink)
}

/// The columns of the row group being built, in [`kpi_schema`] order, encoded as rows arrive
/// (the metric sink's encoder: a value equal to the previous row's costs one comparison, and
/// rows come sorted by KPI, scope and entity, so most columns are long runs).
#[derive(Debug)]
struct KpiColumns {
    kpi: DictColumn,
    grain: DictColumn,
    period_start: DictColumn,
    period_end: DictColumn,
    scope: DictColumn,
    platform: DictColumn,
    source: DictColumn,
    account_id: DictColumn,
    level: DictColumn,
    entity_id: DictColumn,
    value: DictColumn,
    numerator: DictColumn,
    denominator: DictColumn,
    unit: DictColumn,
    currency: DictColumn,
    stage: DictColumn,
}

impl KpiColumns {
    fn new() -> KpiColumns {
        // Runs of a few distinct values are a few RLE bytes per page: compressing them gains
        // nothing. Entity ids and amounts are what the file's size is made of.
        let runs = |nullable| DictColumn::new(Kind::Text, nullable, false);
        let day = || DictColumn::new(Kind::Int32, false, false);
        let amount = || DictColumn::with_dictionary(Kind::Decimal16, true, true, false);
        KpiColumns {
            kpi: runs(false),
            grain: runs(false),
            period_start: day(),
            period_end: day(),
            scope: runs(false),
            platform: runs(true),
            source: runs(true),
            account_id: DictColumn::new(Kind::Text, true, true),
            level: runs(true),
            entity_id: DictColumn::new(Kind::Text, true, true),
            value: amount(),
            numerator: amount(),
            denominator: amount(),
            unit: runs(false),
            currency: runs(true),
            stage: runs(false),
        }
    }

    fn physical_types() -> Vec<PhysicalType> {
        use PhysicalType::{BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY, INT32};
        let mut types = vec![BYTE_ARRAY, BYTE_ARRAY, INT32, INT32];
        types.extend([BYTE_ARRAY; 6]);
        types.extend([FIXED_LEN_BYTE_ARRAY; 3]);
        types.extend([BYTE_ARRAY; 3]);
        types
    }

    fn in_order(&mut self) -> [&mut DictColumn; 16] {
        [
            &mut self.kpi,
            &mut self.grain,
            &mut self.period_start,
            &mut self.period_end,
            &mut self.scope,
            &mut self.platform,
            &mut self.source,
            &mut self.account_id,
            &mut self.level,
            &mut self.entity_id,
            &mut self.value,
            &mut self.numerator,
            &mut self.denominator,
            &mut self.unit,
            &mut self.currency,
            &mut self.stage,
        ]
    }

    fn rows(&self) -> usize {
        self.kpi.rows() as usize
    }

    /// Starts a row group's rows: the borrowed texts of the previous one may be gone.
    fn start_batch(&mut self) {
        for column in self.in_order() {
            column.start_batch();
        }
    }

    /// One row. Texts held by the computation (labels, names) stay where they are while a
    /// period is written, so they are pushed borrowed: a text at the previous row's address is
    /// the same text without comparing it; accounts and entities are pushed by their number.
    fn push(&mut self, r: &RowView<'_>, z: &mut Codec) -> Result<(), ParquetError> {
        fn text(l: Option<&Label>) -> Option<&[u8]> {
            l.map(|l| l.as_str().as_bytes())
        }
        fn keyed(
            column: &mut DictColumn,
            label: Option<&Label>,
            key: Option<u32>,
            z: &mut Codec,
        ) -> Result<(), ParquetError> {
            match (label, key) {
                (Some(l), Some(k)) => column.push_keyed(k, l.as_str().as_bytes(), z),
                (l, _) => column.push_opt(text(l), z),
            }
        }
        let amount = |d: Option<kpipe_core::Decimal>| d.map(|d| d.units().to_be_bytes());
        self.kpi.push_borrowed(r.kpi.as_str().as_bytes(), z)?;
        self.grain.push_borrowed(r.grain.as_str().as_bytes(), z)?;
        self.period_start.push(&days_since_epoch(r.period_start).to_le_bytes(), z)?;
        self.period_end.push(&days_since_epoch(r.period_end).to_le_bytes(), z)?;
        self.scope.push_borrowed(r.scope.as_str().as_bytes(), z)?;
        self.platform.push_opt_borrowed(text(r.platform), z)?;
        self.source.push_opt_borrowed(text(r.source), z)?;
        keyed(&mut self.account_id, r.account_id, r.account_key, z)?;
        self.level.push_opt_borrowed(text(r.level), z)?;
        keyed(&mut self.entity_id, r.entity_id, r.entity_key, z)?;
        self.value.push_opt(amount(r.value).as_ref().map(|b| &b[..]), z)?;
        self.numerator.push_opt(amount(r.numerator).as_ref().map(|b| &b[..]), z)?;
        self.denominator.push_opt(amount(r.denominator).as_ref().map(|b| &b[..]), z)?;
        self.unit.push_borrowed(r.unit.as_str().as_bytes(), z)?;
        self.currency.push_opt(r.currency.as_ref().map(|c| c.as_str().as_bytes()), z)?;
        self.stage.push_borrowed(r.stage.as_str().as_bytes(), z)
    }
}

/// One period's file, written as its rows come: every [`ROW_GROUP_ROWS`] rows are one row
/// group, so that a period's rows are never all in memory. The file is created with the first
/// row group: a period without rows has none.
pub(crate) struct PeriodFile {
    file: TableFile,
    columns: KpiColumns,
    codec: Codec,
}

impl PeriodFile {
    pub fn new(path: PathBuf, format: &TableFormat) -> Result<PeriodFile, KpiError> {
        let level = ZstdLevel::try_new(1)
            .map_err(|e| KpiError::Write { path: path.clone(), message: e.to_string() })?;
        Ok(PeriodFile {
            file: TableFile::new(path, format),
            columns: KpiColumns::new(),
            codec: Codec::zstd(level),
        })
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> KpiError {
        KpiError::Write { path: self.file.path().to_path_buf(), message: e.to_string() }
    }

    fn flush(&mut self) -> Result<(), KpiError> {
        self.file.append_columns(self.columns.in_order(), &mut self.codec).map_err(KpiError::sink)?;
        self.columns.start_batch();
        Ok(())
    }

    /// Rows pushed from here on may borrow texts that the rows pushed before did not keep
    /// alive: a text's address is no longer known to stand for the same bytes.
    pub fn start_chunk(&mut self) {
        self.columns.start_batch();
    }

    /// The rows pushed from here on are another source's: its accounts and entities are
    /// numbered anew.
    pub fn start_part(&mut self) {
        self.columns.start_batch();
        self.columns.account_id.forget_keys();
        self.columns.entity_id.forget_keys();
    }

    /// The end of a source's rows: they become a row group of their own when there are
    /// [`PART_ROWS`] rows or more not written yet; fewer wait for the next source's, so that a
    /// run of many small sources does not write a row group per source and period.
    pub fn end_part(&mut self) -> Result<(), KpiError> {
        if self.columns.rows() >= PART_ROWS { self.flush() } else { Ok(()) }
    }

    /// Writes the last rows and closes the file; `None` when the period had no rows.
    pub fn finish(mut self) -> Result<Option<(PathBuf, u64)>, KpiError> {
        self.flush()?;
        self.file.finish().map_err(KpiError::sink)
    }
}

impl RowSink for PeriodFile {
    type Error = KpiError;

    fn push(&mut self, row: &RowView<'_>) -> Result<(), KpiError> {
        self.columns.push(row, &mut self.codec).map_err(|e| self.fail(&e))?;
        if self.columns.rows() >= ROW_GROUP_ROWS { self.flush() } else { Ok(()) }
    }
}

fn stopped() -> KpiError {
    KpiError::Write { path: PathBuf::from(layout::KPIS), message: "the KPI file encoder stopped".into() }
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
    /// `None` once published.
    table: Option<StagedTable>,
    output_format: OutputFormat,
    run_id: String,
    /// Encodes the files beside the computation; `None` once it stopped.
    encoder: Option<Encoder>,
}

impl KpiWriter {
    pub fn open(storage: &Storage, run_id: &str, output_format: OutputFormat) -> Result<KpiWriter, KpiError> {
        // Only one KPI stage runs on an output at a time: anything staged is from a killed run.
        let table =
            StagedTable::open(storage, layout::KPIS, &layout::kpi_files(), run_id).map_err(KpiError::sink)?;
        let encoder = Some(Encoder::start(file_format(run_id)?)?);
        Ok(KpiWriter { table: Some(table), output_format, run_id: run_id.to_owned(), encoder })
    }

    /// Computes an ended period's rows and sends them to be written to its file in the staging
    /// folder as they come; the period's aggregates are freed once its rows are computed.
    pub fn stage(&mut self, computation: &mut Computation<'_>, period: EndedPeriod) -> Result<(), KpiError> {
        let period = computation.close(period);
        self.stage_closed(computation, period)
    }

    /// Computes a closed period's rows and sends them after the rows already sent for its
    /// period (by other sources). A period that never gets a row writes nothing (and its old
    /// file, if any, is removed at commit).
    pub fn stage_closed(
        &mut self,
        computation: &mut Computation<'_>,
        period: ClosedPeriod,
    ) -> Result<(), KpiError> {
        if period.is_empty() {
            return Ok(());
        }
        let key = layout::kpi_file(period.grain.as_str(), period.start);
        let path = self.table.as_ref().ok_or_else(stopped)?.staging_path(&key);
        let encoder = self.encoder.as_ref().ok_or_else(stopped)?;
        let sent = match encoder.open(key, path) {
            Ok(mut rows) => match computation.emit(&period, &mut rows) {
                Ok(()) => rows.close().is_ok(),
                Err(Stopped) => false,
            },
            Err(()) => false,
        };
        if sent { Ok(()) } else { Err(self.stop_error()) }
    }

    /// Why the encoder stopped taking rows.
    fn stop_error(&mut self) -> KpiError {
        match self.encoder.take().map(Encoder::finish) {
            Some(Err(e)) => e,
            Some(Ok(_)) | None => stopped(),
        }
    }

    /// Publishes the staged files and removes the files of touched periods that have no rows
    /// any more. Each period is replaced in one step: readers see the old or the new period.
    pub fn commit(mut self, touched: &Touched) -> Result<KpiCommit, KpiError> {
        let encoder = self.encoder.take().ok_or_else(stopped)?;
        let mut table = self.table.take().ok_or_else(stopped)?;
        for (key, path, rows) in encoder.finish()? {
            table.stage(key, path, rows);
        }
        let mut replaced = BTreeSet::new();
        let mut spans = Vec::new();
        for &grain in touched.grains() {
            let periods = touched.periods(grain);
            if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
                spans.push(format!("{} {}..{}", grain.as_str(), first.0, last.0));
            }
            for (start, _) in periods {
                replaced.insert(layout::kpi_file(grain.as_str(), start));
            }
        }
        let context = CommitContext {
            run_id: std::mem::take(&mut self.run_id),
            writer: "kpis".to_owned(),
            window: spans.join(", "),
            shard: kpipe_core::Shard::ALL,
            whole: false,
        };
        let published = table
            .publish_as(self.output_format, layout::KPIS, &replaced, &kpi_schema(), &context)
            .map_err(KpiError::sink)?;
        Ok(KpiCommit {
            rows: published.rows,
            periods_written: published.written,
            periods_removed: published.removed,
            files: published.files,
        })
    }
}

impl Drop for KpiWriter {
    fn drop(&mut self) {
        // Not committed: the encoder ends before the staging folder goes (with the table), so
        // that no file is written into it after.
        if let Some(encoder) = self.encoder.take() {
            let _ = encoder.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use kpipe_core::{Decimal, Unit};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::config::Stage;
    use crate::period::Scope;
    use crate::read::read_kpi_dir;

    fn view<'a>(kpi: &'a Label, platform: &'a Label, entity: &'a Label, i: usize) -> RowView<'a> {
        let start = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
        RowView {
            kpi,
            grain: Grain::Day,
            period_start: start,
            period_end: start,
            scope: Scope::Entity,
            platform: Some(platform),
            source: None,
            account_id: None,
            level: None,
            entity_id: Some(entity),
            account_key: None,
            entity_key: Some(i as u32),
            value: Decimal::from_units(i as i128),
            numerator: i.is_multiple_of(3).then(|| Decimal::from_units(-(i as i128))).flatten(),
            denominator: None,
            unit: Unit::Ratio,
            currency: None,
            stage: Stage::Awareness,
        }
    }

    #[test]
    fn a_large_period_is_written_in_bounded_row_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer =
            KpiWriter::open(&Storage::local(dir.path()), "t", OutputFormat::Parquet).expect("staging folder");
        let path = dir.path().join("period.parquet");
        let mut file =
            PeriodFile::new(path.clone(), &file_format(&writer.run_id).expect("format")).expect("file");
        let (kpi, platform) = (Label::new("ctr"), Label::new("linkedin"));
        let rows = ROW_GROUP_ROWS + 3;
        for i in 0..rows {
            let entity = Label::new(&format!("e{i:07}"));
            file.push(&view(&kpi, &platform, &entity, i)).expect("write");
            assert!(file.columns.rows() < ROW_GROUP_ROWS, "a full row group goes to the file at once");
        }
        assert_eq!(file.finish().expect("close"), Some((path.clone(), rows as u64)));

        let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("parquet");
        let groups: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![ROW_GROUP_ROWS as i64, 3]);
        let back = read_kpi_dir(dir.path()).expect("readable");
        assert_eq!(back.len(), rows);
        for (i, r) in back.iter().enumerate() {
            assert_eq!(r.entity_id.as_deref(), Some(format!("e{i:07}").as_str()), "row {i} in order");
            assert_eq!(r.value, Decimal::from_units(i as i128));
            assert_eq!(r.numerator, i.is_multiple_of(3).then(|| Decimal::from_units(-(i as i128))).flatten());
            assert_eq!((r.source.as_ref(), r.denominator), (None, None));
        }
    }

    #[test]
    fn a_file_carries_the_arrow_schema_statistics_and_metadata() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = KpiWriter::open(&Storage::local(dir.path()), "run-7", OutputFormat::Parquet)
            .expect("staging folder");
        let path = dir.path().join("period.parquet");
        let mut file =
            PeriodFile::new(path.clone(), &file_format(&writer.run_id).expect("format")).expect("file");
        let (kpi, platform) = (Label::new("cpc"), Label::new("facebook"));
        for i in [5usize, 900, 12] {
            let entity = Label::new(&format!("ad-{i}"));
            file.push(&view(&kpi, &platform, &entity, i)).expect("write");
        }
        file.finish().expect("close");

        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).expect("open"),
        )
        .expect("parquet");
        assert_eq!(builder.schema().fields(), kpi_schema().fields(), "Arrow readers get the exact types");
        let metadata = builder.metadata().file_metadata();
        let kv: Vec<(&str, Option<&str>)> = metadata
            .key_value_metadata()
            .expect("key-value metadata")
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_deref()))
            .collect();
        assert!(kv.contains(&("kpipe.kpi_schema_version", Some(KPI_SCHEMA_VERSION))));
        assert!(kv.contains(&("kpipe.run_id", Some("run-7"))));
        let group = builder.metadata().row_group(0);
        let units = |b: &[u8]| i128::from_be_bytes(b.try_into().expect("16 bytes"));
        match group.column(10).statistics().expect("value statistics") {
            parquet::file::statistics::Statistics::FixedLenByteArray(s) => {
                let (min, max) = (s.min_opt().expect("min"), s.max_opt().expect("max"));
                assert_eq!((units(min.data()), units(max.data())), (5, 900));
            }
            other => panic!("value statistics of the wrong type: {other:?}"),
        }
        let numerator = group.column(11).statistics().expect("numerator statistics");
        assert_eq!(numerator.null_count_opt(), Some(1), "row 5 alone has no numerator");
        let entity = group.column(9).statistics().expect("entity statistics");
        assert_eq!(entity.min_bytes_opt(), Some(&b"ad-12"[..]));
        assert_eq!(entity.max_bytes_opt(), Some(&b"ad-900"[..]));
    }

    #[test]
    fn a_period_without_rows_writes_no_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer =
            KpiWriter::open(&Storage::local(dir.path()), "t", OutputFormat::Parquet).expect("staging folder");
        let path = dir.path().join("period.parquet");
        let file =
            PeriodFile::new(path.clone(), &file_format(&writer.run_id).expect("format")).expect("file");
        assert_eq!(file.finish().expect("close"), None);
        assert!(!path.exists());
    }
}
