//! What the three file kinds share: finding the files, matching the header, and turning bad
//! lines into quarantined records.

use std::path::{Path, PathBuf};

use kpipe_core::{NaiveDate, Quarantined, SourceError};

/// The files a glob matches, sorted; an error if none does.
pub(crate) fn matching_files(pattern: &str, shown: &str) -> Result<Vec<PathBuf>, SourceError> {
    let paths = glob::glob(pattern).map_err(|e| SourceError::config(format!("`path` {shown}: {e}")))?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| SourceError::io(e.path().to_path_buf(), e.into()))?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SourceError::config(format!("`path` {shown} matches no file")));
    }
    files.sort();
    Ok(files)
}

/// Positions of the columns a file kind reads, from its header.
#[derive(Debug)]
pub(crate) struct Header {
    names: Vec<String>,
}

impl Header {
    /// Checks `record` (the first line) against the columns a kind requires and allows.
    pub fn read(
        file: &Path,
        record: &csv::StringRecord,
        required: &[&str],
        optional: &[&str],
    ) -> Result<Header, SourceError> {
        let names: Vec<String> = record.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        for (i, name) in names.iter().enumerate() {
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                return Err(SourceError::data(format!(
                    "{}: column {} is `{name}`, which is not a column of this kind; expected {}{}",
                    file.display(),
                    i + 1,
                    required.join(","),
                    if optional.is_empty() {
                        String::new()
                    } else {
                        format!(" and optionally {}", optional.join(","))
                    }
                )));
            }
            if names[..i].contains(name) {
                return Err(SourceError::data(format!("{}: column `{name}` appears twice", file.display())));
            }
        }
        let missing: Vec<&str> = required.iter().copied().filter(|r| !names.iter().any(|n| n == r)).collect();
        if !missing.is_empty() {
            return Err(SourceError::data(format!(
                "{}: the header lacks column(s) {}; expected {}",
                file.display(),
                missing.join(", "),
                required.join(",")
            )));
        }
        Ok(Header { names })
    }

    /// Position of a column, if the file has it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// A line that cannot be used, with why.
pub(crate) fn bad_line(
    stream: &str,
    file: &Path,
    line: u64,
    reason: impl Into<String>,
    raw: String,
) -> Quarantined {
    Quarantined {
        stream: stream.to_owned(),
        location: format!("{}:{line}", file.display()),
        reason: reason.into(),
        raw,
    }
}

/// A `YYYY-MM-DD` date.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    if t.len() != 10 {
        return Err(format!("date `{t}` is not YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| format!("date `{t}` is not a valid YYYY-MM-DD date"))
}

/// A non-negative whole number, or `None` for an empty cell (not recorded).
pub(crate) fn parse_count(column: &str, text: &str) -> Result<Option<u32>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<u32>()
        .map(Some)
        .map_err(|_| format!("`{column}` is `{t}`, expected a whole number of 0 or more"))
}

/// Reads a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|e| SourceError::io(path, e))
}
