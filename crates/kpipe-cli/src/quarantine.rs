//! Records that could not be used, kept with the reason:
//! `<output>/quarantine/source=<name>/<run_id>.jsonl`, one JSON object per line.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use kpipe_core::Quarantined;

/// Appends quarantined records of one source and run; the file appears complete or not at all.
#[derive(Debug)]
pub struct QuarantineWriter {
    path: PathBuf,
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
    /// A writer for `source` in run `run_id`; nothing is created until a record comes.
    pub fn new(output: &Path, source: &str, run_id: &str) -> QuarantineWriter {
        let dir = output.join("quarantine").join(format!("source={source}"));
        QuarantineWriter {
            path: dir.join(format!("{run_id}.jsonl")),
            partial: dir.join(format!("{run_id}.jsonl.partial")),
            run_id: run_id.to_owned(),
            source: source.to_owned(),
            out: None,
            count: 0,
        }
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

    /// Closes the file and gives it its final name; `None` if nothing was quarantined.
    pub fn finish(mut self) -> std::io::Result<Option<PathBuf>> {
        let Some(out) = self.out.take() else { return Ok(None) };
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.partial, &self.path)?;
        Ok(Some(self.path.clone()))
    }
}
