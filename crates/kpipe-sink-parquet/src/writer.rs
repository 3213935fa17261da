//! One source's window being written: a Parquet file per day, staged and then published
//! through the storage layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use kpipe_core::{CommitStats, MetricBatch, MetricRow, Period, PeriodRow, SinkError, SinkTarget, SinkWriter};
use kpipe_storage::Storage;

use crate::ParquetSinkOptions;
use crate::columns::{Lineage, RowGroupBuilder};
use crate::encode::column::Codec;
use crate::layout;
use crate::period_buffer::PeriodBuffer;
use crate::table::{OutputFormat, StagedTable, TableFile, TableFormat};

struct Partition {
    row_group: RowGroupBuilder,
    file: TableFile,
}

impl Partition {
    /// Writes the row group in progress to the file.
    fn flush_row_group(&mut self, codec: &mut Codec) -> Result<(), SinkError> {
        let rows = self.row_group.rows();
        let row_group = &mut self.row_group;
        self.file.append_row_group(rows, |group, schema| row_group.finish(schema, group, codec))
    }
}

/// Which rows a writer's shard owns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ownership {
    /// The shard.
    pub shard: kpipe_core::Shard,
    /// The source is one unit as a whole: every row of it is the shard's.
    pub whole: bool,
}

pub(crate) struct PartitionedWriter {
    target: SinkTarget,
    /// Which rows it owns, and the name its files carry ([`layout::writer_name`]).
    ownership: Ownership,
    writer: String,
    lineage: Lineage,
    options: ParquetSinkOptions,
    output_format: OutputFormat,
    format: TableFormat,
    codec: Codec,
    table: Option<StagedTable>,
    /// One slot per day of the window, in date order.
    partitions: Vec<Option<Partition>>,
    /// Per day of the window, the rows of the batch being written (reused between batches).
    by_slot: Vec<Vec<usize>>,
    /// What every writer of the sink holds together (see [`BufferedBytes`]).
    shared: Arc<BufferedBytes>,
    /// This writer's part of it, as last reported.
    reported: usize,
    /// Period rows by period, written at commit (a value per entity, unique metric and
    /// period: a few for each entity, held compactly).
    periods: PeriodBuffer,
    storage: Storage,
    done: bool,
}

/// The bytes held by the row groups in progress of all writers of one sink: a run writes its
/// sources at the same time, and the memory bound is for all of them together, so that it
/// does not grow with the number of sources.
#[derive(Debug, Default)]
pub(crate) struct BufferedBytes(AtomicUsize);

impl BufferedBytes {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartitionedWriter {
    pub fn open(
        storage: &Storage,
        target: SinkTarget,
        options: ParquetSinkOptions,
        (output_format, ownership): (OutputFormat, Ownership),
        format: TableFormat,
        codec: Codec,
        shared: Arc<BufferedBytes>,
    ) -> Result<PartitionedWriter, SinkError> {
        let writer = layout::writer_name(&target.source, ownership.shard);
        let table = StagedTable::open(
            storage,
            &layout::metrics_table(&writer),
            &layout::metric_files_of(&writer),
            &target.run_id,
        )?;
        Ok(PartitionedWriter {
            ownership,
            writer,
            lineage: Lineage::new(&target.source, &target.run_id, target.pulled_at),
            partitions: std::iter::repeat_with(|| None).take(window_days(&target)).collect(),
            target,
            options,
            output_format,
            format,
            codec,
            table: Some(table),
            by_slot: Vec::new(),
            shared,
            reported: 0,
            periods: PeriodBuffer::default(),
            storage: storage.clone(),
            done: false,
        })
    }

    fn open_partition(&self, date: NaiveDate) -> Result<Partition, SinkError> {
        let staged = match &self.table {
            Some(table) => table.staging_path(&layout::metric_file(&self.writer, date)),
            None => return Err(SinkError::new("the writer is already committed")),
        };
        let row_group = RowGroupBuilder::new(date)
            .map_err(|e| SinkError::new(format!("cannot start the partition of {date}")).with_source(e))?;
        Ok(Partition { row_group, file: TableFile::new(staged, &self.format) })
    }

    /// The slot of `date` in [`Self::partitions`], or `None` outside the window.
    fn slot(&self, date: NaiveDate) -> Option<usize> {
        if !self.target.window.contains(date) {
            return None;
        }
        usize::try_from((date - self.target.window.start()).num_days()).ok()
    }

    /// Keeps memory bounded whatever the number of rows and sources: when the row groups in
    /// progress of all the sink's writers hold too much, this writer writes out its largest
    /// early, down to half the bound if its own allow. After every write the total is within
    /// the bound: each writer was within it after its own last write, and this one can give up
    /// everything it holds.
    fn bound_memory(&mut self) -> Result<(), SinkError> {
        let mut sizes: Vec<(usize, usize)> = self
            .partitions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (p.row_group.memory_size(), i)))
            .collect();
        let mut mine: usize = sizes.iter().map(|(size, _)| size).sum();
        let total = self.report(mine);
        let max = self.options.max_buffered_bytes;
        if total <= max {
            return Ok(());
        }
        let mut excess = total - max / 2;
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        for (size, slot) in sizes {
            if excess == 0 {
                break;
            }
            if let Some(part) = self.partitions[slot].as_mut() {
                part.flush_row_group(&mut self.codec)?;
                mine -= size;
                excess = excess.saturating_sub(size);
            }
        }
        self.report(mine);
        Ok(())
    }

    /// Records that this writer now holds `mine` bytes; returns the sink's total.
    fn report(&mut self, mine: usize) -> usize {
        let total = if mine >= self.reported {
            self.shared.0.fetch_add(mine - self.reported, Ordering::Relaxed) + (mine - self.reported)
        } else {
            self.shared.0.fetch_sub(self.reported - mine, Ordering::Relaxed) - (self.reported - mine)
        };
        self.reported = mine;
        total
    }

    fn discard_staging(&mut self) -> std::io::Result<()> {
        self.done = true;
        self.partitions.clear();
        match self.table.take() {
            Some(mut table) => table.discard(),
            None => Ok(()),
        }
    }
}

impl SinkWriter for PartitionedWriter {
    fn write(&mut self, batch: &MetricBatch) -> Result<(), SinkError> {
        // Rows are grouped by day first, so that each day's columns are filled in one go.
        let mut by_slot = std::mem::take(&mut self.by_slot);
        by_slot.resize_with(self.partitions.len(), Vec::new);
        for (index, row) in batch.rows.iter().enumerate() {
            let Some(slot) = self.slot(row.date) else {
                return Err(SinkError::new(format!(
                    "row dated {} is outside the window {} of source `{}`",
                    row.date, self.target.window, self.target.source
                )));
            };
            by_slot[slot].push(index);
        }
        let max_rows = self.options.max_row_group_rows.max(1);
        for (slot, indices) in by_slot.iter_mut().enumerate() {
            let rows: Vec<&MetricRow> = indices.drain(..).map(|i| &batch.rows[i]).collect();
            let Some(first) = rows.first() else { continue };
            if self.partitions[slot].is_none() {
                self.partitions[slot] = Some(self.open_partition(first.date)?);
            }
            let Some(part) = self.partitions[slot].as_mut() else { continue };
            let mut rest = &rows[..];
            while !rest.is_empty() {
                let room = max_rows.saturating_sub(part.row_group.rows() as usize).max(1);
                let (now, later) = rest.split_at(room.min(rest.len()));
                part.row_group.push(now, &self.lineage, &mut self.codec).map_err(|e| {
                    SinkError::new(format!("cannot encode {}", part.file.path().display())).with_source(e)
                })?;
                if part.row_group.rows() as usize >= max_rows {
                    part.flush_row_group(&mut self.codec)?;
                }
                rest = later;
            }
        }
        self.by_slot = by_slot;
        self.bound_memory()
    }

    fn write_periods(&mut self, rows: &[PeriodRow]) -> Result<(), SinkError> {
        rows.iter().try_for_each(|row| self.periods.push(row))
    }

    fn commit(mut self: Box<Self>) -> Result<CommitStats, SinkError> {
        let periods = std::mem::take(&mut self.periods);
        let (storage, lineage, zstd_level, output_format) =
            (self.storage.clone(), self.lineage.clone(), self.options.zstd_level, self.output_format);
        let (ownership, writer) = (self.ownership, self.writer.clone());
        let all: std::collections::BTreeSet<NaiveDate> = self.target.window.days().collect();
        let mut stats = self.commit_days(&all)?;
        if !periods.is_empty() {
            stats.periods = periods.requests();
            let target = PeriodTarget { storage: &storage, lineage: &lineage, ownership, writer: &writer };
            let published = publish_periods(&target, zstd_level, output_format, &periods)?;
            stats.period_rows = published.rows;
            stats.files.extend(published.files);
        }
        Ok(stats)
    }

    fn commit_days(
        mut self: Box<Self>,
        selected: &std::collections::BTreeSet<NaiveDate>,
    ) -> Result<CommitStats, SinkError> {
        let Some(mut table) = self.table.take() else {
            return Err(SinkError::new("the writer is already committed"));
        };
        let source = self.target.source.clone();
        let writer = self.writer.clone();
        let days: Vec<NaiveDate> = self.target.window.days().collect();
        let mut replaced = std::collections::BTreeSet::new();
        for (date, part) in days.into_iter().zip(std::mem::take(&mut self.partitions)) {
            if !selected.contains(&date) {
                // Not selected: the day keeps its published data; its staged file goes with
                // the staging folder.
                continue;
            }
            replaced.insert(layout::metric_file(&writer, date));
            let Some(mut part) = part else { continue };
            part.flush_row_group(&mut self.codec)?;
            if let Some((file, rows)) = part.file.finish()? {
                table.stage(layout::metric_file(&writer, date), file, rows);
            }
        }
        self.done = true;
        let context = crate::delta::CommitContext {
            run_id: self.target.run_id.clone(),
            writer: writer.clone(),
            window: self.target.window.to_string(),
            shard: self.ownership.shard,
            whole: self.ownership.whole,
        };
        let schema = crate::metric_schema();
        let published =
            table.publish_as(self.output_format, layout::METRICS, &replaced, &schema, &context)?;
        if self.output_format == OutputFormat::Parquet {
            let days = selected.iter().copied().filter(|d| self.target.window.contains(*d)).collect();
            crate::handover::metric_days(&self.storage, self.ownership, &source, &days)?;
        }
        let stats = CommitStats {
            rows: published.rows,
            partitions_written: published.written,
            partitions_removed: published.removed,
            files: published.files,
            period_rows: 0,
            periods: Vec::new(),
        };
        tracing::debug!(
            source = %source,
            rows = stats.rows,
            partitions_written = stats.partitions_written,
            partitions_removed = stats.partitions_removed,
            "committed"
        );
        Ok(stats)
    }

    fn abort(mut self: Box<Self>) -> Result<(), SinkError> {
        self.discard_staging().map_err(|e| SinkError::new("cannot remove the staged files").with_source(e))
    }
}

/// Where a writer's period files go.
struct PeriodTarget<'a> {
    storage: &'a Storage,
    lineage: &'a Lineage,
    ownership: Ownership,
    writer: &'a str,
}

/// Publishes each period's rows as one file, replacing that period's earlier file: after the
/// day files, so that a reader never finds a period value newer than the days it covers.
fn publish_periods(
    target: &PeriodTarget<'_>,
    zstd_level: i32,
    output_format: OutputFormat,
    periods: &PeriodBuffer,
) -> Result<crate::table::Published, SinkError> {
    let PeriodTarget { storage, lineage, ownership, writer } = *target;
    let replaced_periods: std::collections::BTreeSet<Period> = periods.periods().collect();
    let mut table = StagedTable::open(
        storage,
        &format!("{}/{writer}", layout::METRICS_PERIOD),
        &layout::period_files_of(writer),
        &lineage.run_id,
    )?;
    let mut replaced = std::collections::BTreeSet::new();
    let window = match (periods.periods().next(), periods.periods().next_back()) {
        (Some(first), Some(last)) => format!("{}..{}", first.start, last.end()),
        _ => String::new(),
    };
    for (period, rows) in periods.by_period() {
        let key = layout::period_file(writer, period);
        let bytes = crate::period::encode(rows.rows(), lineage, zstd_level)?;
        let staged = table.staging_path(&key);
        std::fs::write(&staged, &bytes)
            .map_err(|e| SinkError::new(format!("cannot write {}", staged.display())).with_source(e))?;
        table.stage(key.clone(), staged, rows.len() as u64);
        replaced.insert(key);
    }
    let context = crate::delta::CommitContext {
        run_id: lineage.run_id.clone(),
        writer: writer.to_owned(),
        window,
        shard: ownership.shard,
        whole: ownership.whole,
    };
    let published = table.publish_as(
        output_format,
        layout::METRICS_PERIOD,
        &replaced,
        &crate::period::period_schema(),
        &context,
    )?;
    if output_format == OutputFormat::Parquet {
        crate::handover::periods(storage, ownership, &lineage.source, &replaced_periods)?;
    }
    Ok(published)
}

fn window_days(target: &SinkTarget) -> usize {
    usize::try_from(target.window.num_days()).unwrap_or(usize::MAX)
}

impl Drop for PartitionedWriter {
    fn drop(&mut self) {
        self.report(0);
        if !self.done {
            // Neither committed nor aborted (a panic upstream): leave the published data alone.
            let _ = self.discard_staging();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate};
    use kpipe_core::{
        Currency, DateWindow, Decimal, Dimensions, Label, Metric, MetricName, PeriodGrain, PeriodRequest,
        Sink, Unit,
    };

    use super::*;

    fn period_row(i: u64, requests: &[PeriodRequest]) -> PeriodRow {
        let request = requests[(i as usize * 7) % requests.len()];
        let through = if i.is_multiple_of(5) { request.period.start } else { request.through };
        let metric: MetricName = match i % 3 {
            0 => Metric::Reach.into(),
            1 => Metric::Spend.into(),
            _ => MetricName::extra("facebook", "unique_clicks", Unit::Count).unwrap_or(Metric::Reach.into()),
        };
        let dimensions = match i % 7 {
            0 => Dimensions {
                country: Some("DE".into()),
                device: Some(Label::new("mobile")),
                ..Default::default()
            },
            1 => Dimensions { age: Some("25-34".into()), ..Default::default() },
            _ => Dimensions::default(),
        };
        PeriodRow::new(
            PeriodRequest { through, ..request },
            MetricRow {
                platform: if i.is_multiple_of(11) { "linkedin".into() } else { "facebook".into() },
                account_id: Label::new(&format!("act_{}", i % 3)),
                level: if i.is_multiple_of(2) { "campaign".into() } else { "ad".into() },
                entity_id: Label::new(&format!("{}", i / 3)),
                entity_name: (!i.is_multiple_of(4)).then(|| Label::new(&format!("Name {}", i / 6))),
                date: NaiveDate::MIN,
                dimensions,
                metric,
                value: Decimal::from_i64(i as i64 * 37 - 500),
                currency: (i % 3 == 1)
                    .then(|| Currency::parse(if i.is_multiple_of(2) { "EUR" } else { "USD" }))
                    .flatten(),
            },
        )
    }

    #[test]
    fn period_rows_are_published_by_period_in_the_order_written() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap_or_else(|e| panic!("{e}"));
        let window = DateWindow::new(day("2026-02-20"), day("2026-03-11")).unwrap_or_else(|e| panic!("{e}"));
        let requests = PeriodRequest::for_window(window);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink = crate::ParquetSink::new(dir.path());
        let target = SinkTarget {
            source: "fb".into(),
            window,
            run_id: "run-1".into(),
            pulled_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap_or_default(),
        };
        let mut writer = sink.open(target).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<PeriodRow> = (0..6000).map(|i| period_row(i, &requests)).collect();
        for chunk in rows.chunks(1000) {
            writer.write_periods(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        let stats = writer.commit().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.period_rows, rows.len() as u64);
        let mut first: Vec<PeriodRequest> = Vec::new();
        for row in &rows {
            if !first.iter().any(|r| r.period == row.request.period) {
                first.push(row.request);
            }
        }
        first.sort_by_key(|r| r.period);
        assert_eq!(stats.periods, first, "each period's request is its first row's");
        let storage = Storage::local(dir.path());
        for grain in [PeriodGrain::Week, PeriodGrain::Month] {
            let read = crate::period::read_period_rows(
                &storage,
                OutputFormat::Parquet,
                grain,
                (day("2026-01-01"), day("2026-12-31")),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut expected: Vec<&PeriodRow> =
                rows.iter().filter(|r| r.request.period.grain == grain).collect();
            expected.sort_by_key(|r| r.request.period);
            assert_eq!(read.len(), expected.len());
            for (back, row) in read.iter().zip(expected) {
                assert_eq!((&back.stored.row, back.request), (&row.row, row.request));
                assert_eq!((back.stored.source.as_str(), back.stored.run_id.as_str()), ("fb", "run-1"));
            }
        }
    }
}
