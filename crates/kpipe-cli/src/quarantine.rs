//! Records that could not be used, kept with the reason: one JSON object per line in
//! `quarantine/source=<name>/<run_id>.jsonl` (`kpipe_sink_parquet::layout`), written to a
//! staging file on this machine and published whole through the storage layer.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use kpipe_core::{Quarantined, Shard};
use kpipe_sink_parquet::{Storage, layout};

/// Appends quarantined records of one source and run; the file appears complete or not at all.
#[derive(Debug)]
pub struct QuarantineWriter {
    storage: Storage,
    key: String,
    journal: String,
    partial: PathBuf,
    run_id: String,
    source: String,
    out: Option<BufWriter<File>>,
    count: u64,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    run_id: &'a str,
    source: &'a str,
    #[serde(flatten)]
    record: &'a Quarantined,
}

impl QuarantineWriter {
    /// A writer for `source` in run `run_id` of `shard`; nothing is created until a record
    /// comes.
    pub fn new(storage: &Storage, source: &str, shard: Shard, run_id: &str) -> QuarantineWriter {
        let table = format!("{}/{}", layout::QUARANTINE, layout::writer_name(source, shard));
        let staging = storage.staging_dir(&layout::staging_area(&table));
        QuarantineWriter {
            storage: storage.clone(),
            key: layout::quarantine_file(source, shard, run_id),
            journal: layout::upload_journal(&table),
            partial: staging.join(format!("{run_id}.jsonl.partial")),
            run_id: run_id.to_owned(),
            source: source.to_owned(),
            out: None,
            count: 0,
        }
    }

    /// Aborts the uploads of `source`'s quarantine files that killed runs of `shard` left
    /// unfinished (the other shards' are theirs: they may be writing them now).
    pub fn clean_up_interrupted(
        storage: &Storage,
        source: &str,
        shard: Shard,
    ) -> Result<usize, kpipe_sink_parquet::StorageError> {
        let table = format!("{}/{}", layout::QUARANTINE, layout::writer_name(source, shard));
        storage.abort_orphaned_uploads(
            &layout::upload_journal(&table),
            &layout::quarantine_uploads_of(source, shard),
        )
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Quarantined) -> std::io::Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.partial.parent() {
                fs::create_dir_all(dir)?;
            }
            self.out = Some(BufWriter::new(File::create(&self.partial)?));
        }
        if let Some(out) = self.out.as_mut() {
            let record = &*crate::redact::quarantined(record);
            serde_json::to_writer(&mut *out, &Line { run_id: &self.run_id, source: &self.source, record })?;
            out.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }

    /// Records written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Closes the file and publishes it; `None` if nothing was quarantined.
    pub fn finish(mut self) -> std::io::Result<Option<PathBuf>> {
        let Some(out) = self.out.take() else { return Ok(None) };
        out.into_inner().map_err(|e| e.into_error())?;
        self.storage.publish_file(&self.partial, &self.key, &self.journal).map_err(std::io::Error::other)?;
        if let Some(dir) = self.partial.parent() {
            let _ = fs::remove_dir(dir);
        }
        Ok(Some(PathBuf::from(self.storage.describe_key(&self.key))))
    }
}

impl Drop for QuarantineWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Not finished (the run stopped on the way): nothing is published.
            let _ = fs::remove_file(&self.partial);
        }
    }
}
