//! Where files go: `<output>/metrics/source=<name>/date=<YYYY-MM-DD>/part-00000.parquet`, staged
//! under `<output>/.staging/<run_id>/` on the same file system so that publishing is a rename.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The one data file of a day partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// `<output>/metrics`.
pub fn metrics_dir(output: &Path) -> PathBuf {
    output.join("metrics")
}

/// `<output>/metrics/source=<name>`.
pub fn source_dir(output: &Path, source: &str) -> PathBuf {
    metrics_dir(output).join(format!("source={source}"))
}

/// `date=<YYYY-MM-DD>`.
pub fn partition_dir_name(date: NaiveDate) -> String {
    format!("date={}", date.format("%Y-%m-%d"))
}

/// Staged files do not end in `.parquet`, so no `*.parquet` glob ever matches a partial file.
pub(crate) fn partition_name(date: NaiveDate) -> String {
    format!("date={}.parquet.partial", date.format("%Y-%m-%d"))
}

pub(crate) fn staging_root(output: &Path) -> PathBuf {
    output.join(".staging")
}

pub(crate) fn staging_dir(output: &Path, run_id: &str, source: &str) -> PathBuf {
    staging_root(output).join(run_id).join(format!("source={source}"))
}

/// Removes what killed runs left staged for `source`. Runs of one source never overlap, so
/// anything staged by another run is an orphan.
pub(crate) fn remove_stale_staging(output: &Path, run_id: &str, source: &str) -> io::Result<()> {
    let root = staging_root(output);
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name() == run_id {
            continue;
        }
        let stale = entry.path().join(format!("source={source}"));
        if stale.exists() {
            tracing::info!(path = %stale.display(), "removing files staged by an interrupted run");
            fs::remove_dir_all(&stale)?;
        }
        let _ = fs::remove_dir(entry.path());
    }
    Ok(())
}

/// The day partitions present under a source directory.
pub fn existing_partitions(source_dir: &Path) -> io::Result<Vec<(NaiveDate, PathBuf)>> {
    let entries = match fs::read_dir(source_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(date) = name.to_str().and_then(|n| n.strip_prefix("date=")) else { continue };
        if let Ok(date) = date.parse::<NaiveDate>() {
            found.push((date, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Removes data files other than [`PART_FILE`] (left by another layout version) so that a
/// partition holds one file.
pub(crate) fn remove_other_parts(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != PART_FILE && name.ends_with(".parquet") {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Makes a rename or a new entry in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
