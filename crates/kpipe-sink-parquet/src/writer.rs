//! One source's window being written: a Parquet file per day, staged and then renamed into
//! place.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use kpipe_core::{CommitStats, MetricBatch, MetricRow, SinkError, SinkTarget, SinkWriter};
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescPtr;

use crate::ParquetSinkOptions;
use crate::columns::{Lineage, RowGroupBuilder};
use crate::encode::column::Codec;
use crate::layout::{self, PART_FILE};

struct Partition {
    row_group: RowGroupBuilder,
    writer: SerializedFileWriter<File>,
    staged: PathBuf,
    rows: u64,
}

impl Partition {
    /// Writes the row group in progress to the file.
    fn flush_row_group(&mut self, schema: &SchemaDescPtr, codec: &mut Codec) -> Result<(), SinkError> {
        let n = self.row_group.rows();
        if n == 0 {
            return Ok(());
        }
        let staged = &self.staged;
        let mut group = self.writer.next_row_group().map_err(|e| io_error("write", staged, e))?;
        self.row_group.finish(schema, &mut group, codec).map_err(|e| io_error("encode", staged, e))?;
        group.close().map_err(|e| io_error("write", staged, e))?;
        self.rows += n;
        Ok(())
    }
}

pub(crate) struct PartitionedWriter {
    target: SinkTarget,
    lineage: Lineage,
    options: ParquetSinkOptions,
    props: WriterPropertiesPtr,
    schema: SchemaDescPtr,
    codec: Codec,
    staging_dir: PathBuf,
    source_dir: PathBuf,
    /// One slot per day of the window, in date order.
    partitions: Vec<Option<Partition>>,
    /// Per day of the window, the rows of the batch being written (reused between batches).
    by_slot: Vec<Vec<usize>>,
    /// What every writer of the sink holds together (see [`BufferedBytes`]).
    shared: Arc<BufferedBytes>,
    /// This writer's part of it, as last reported.
    reported: usize,
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

fn io_error(what: &str, path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SinkError {
    SinkError::new(format!("cannot {what} {}", path.display())).with_source(e)
}

impl PartitionedWriter {
    pub fn open(
        output: &Path,
        target: SinkTarget,
        options: ParquetSinkOptions,
        props: WriterPropertiesPtr,
        schema: SchemaDescPtr,
        codec: Codec,
        shared: Arc<BufferedBytes>,
    ) -> Result<PartitionedWriter, SinkError> {
        let staging_dir = layout::staging_dir(output, &target.run_id, &target.source);
        layout::remove_stale_staging(output, &target.run_id, &target.source)
            .map_err(|e| io_error("clean up", &layout::staging_root(output), e))?;
        fs::create_dir_all(&staging_dir).map_err(|e| io_error("create", &staging_dir, e))?;
        Ok(PartitionedWriter {
            lineage: Lineage::new(&target.source, &target.run_id, target.pulled_at),
            source_dir: layout::source_dir(output, &target.source),
            partitions: std::iter::repeat_with(|| None).take(window_days(&target)).collect(),
            target,
            options,
            props,
            schema,
            codec,
            staging_dir,
            by_slot: Vec::new(),
            shared,
            reported: 0,
            done: false,
        })
    }

    fn open_partition(&self, date: NaiveDate) -> Result<Partition, SinkError> {
        let staged = self.staging_dir.join(layout::partition_name(date));
        let file = File::create(&staged).map_err(|e| io_error("create", &staged, e))?;
        let writer = SerializedFileWriter::new(file, self.schema.root_schema_ptr(), self.props.clone())
            .map_err(|e| io_error("start", &staged, e))?;
        let row_group = RowGroupBuilder::new(date).map_err(|e| io_error("start", &staged, e))?;
        Ok(Partition { row_group, writer, staged, rows: 0 })
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
                part.flush_row_group(&self.schema, &mut self.codec)?;
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
        match fs::remove_dir_all(&self.staging_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Some(run_dir) = self.staging_dir.parent() {
            // Only succeeds once every source of the run is done with it.
            let _ = fs::remove_dir(run_dir);
        }
        Ok(())
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
                part.row_group
                    .push(now, &self.lineage, &mut self.codec)
                    .map_err(|e| io_error("encode", &part.staged, e))?;
                if part.row_group.rows() as usize >= max_rows {
                    part.flush_row_group(&self.schema, &mut self.codec)?;
                }
                rest = later;
            }
        }
        self.by_slot = by_slot;
        self.bound_memory()
    }

    fn commit(self: Box<Self>) -> Result<CommitStats, SinkError> {
        let all: std::collections::BTreeSet<NaiveDate> = self.target.window.days().collect();
        self.commit_days(&all)
    }

    fn commit_days(
        mut self: Box<Self>,
        selected: &std::collections::BTreeSet<NaiveDate>,
    ) -> Result<CommitStats, SinkError> {
        let mut stats = CommitStats::default();
        let mut staged = Vec::with_capacity(self.partitions.len());
        let days: Vec<NaiveDate> = self.target.window.days().collect();
        for (date, part) in days.into_iter().zip(std::mem::take(&mut self.partitions)) {
            // Days not selected keep their published data; their staged file goes with the
            // staging directory.
            let Some(mut part) = part.filter(|_| selected.contains(&date)) else { continue };
            part.flush_row_group(&self.schema, &mut self.codec)?;
            part.writer.finish().map_err(|e| io_error("finish", &part.staged, e))?;
            part.writer.inner().sync_all().map_err(|e| io_error("sync", &part.staged, e))?;
            stats.rows += part.rows;
            staged.push((date, part.staged));
        }
        fs::create_dir_all(&self.source_dir).map_err(|e| io_error("create", &self.source_dir, e))?;
        for (date, file) in &staged {
            let dir = self.source_dir.join(layout::partition_dir_name(*date));
            let created = !dir.exists();
            fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
            let target = dir.join(PART_FILE);
            // The one step readers can observe: the old file is replaced by the complete new one.
            fs::rename(file, &target).map_err(|e| io_error("publish", &target, e))?;
            layout::sync_dir(&dir).map_err(|e| io_error("sync", &dir, e))?;
            if created {
                layout::sync_dir(&self.source_dir).map_err(|e| io_error("sync", &self.source_dir, e))?;
            }
            layout::remove_other_parts(&dir).map_err(|e| io_error("clean up", &dir, e))?;
            stats.files.push(target);
        }
        stats.partitions_written = staged.len();
        let written: std::collections::BTreeSet<NaiveDate> = staged.iter().map(|(d, _)| *d).collect();
        for (date, dir) in layout::existing_partitions(&self.source_dir)
            .map_err(|e| io_error("list", &self.source_dir, e))?
        {
            if self.target.window.contains(date) && selected.contains(&date) && !written.contains(&date) {
                // The pull found nothing for this day: the day's old rows are no longer true.
                fs::remove_dir_all(&dir).map_err(|e| io_error("remove", &dir, e))?;
                stats.partitions_removed += 1;
            }
        }
        layout::sync_dir(&self.source_dir).map_err(|e| io_error("sync", &self.source_dir, e))?;
        self.discard_staging().map_err(|e| io_error("clean up", &self.staging_dir, e))?;
        tracing::debug!(
            source = %self.target.source,
            rows = stats.rows,
            partitions_written = stats.partitions_written,
            partitions_removed = stats.partitions_removed,
            "committed"
        );
        Ok(stats)
    }

    fn abort(mut self: Box<Self>) -> Result<(), SinkError> {
        let dir = self.staging_dir.clone();
        self.discard_staging().map_err(|e| io_error("clean up", &dir, e))
    }
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
