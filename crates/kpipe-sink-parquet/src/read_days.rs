//! Reading the metric rows of a span of days one stored file at a time, so that a reader that
//! only aggregates them (the HTML report) holds one file's rows at most, whatever the output's
//! size.

use chrono::NaiveDate;
use kpipe_core::SinkError;

use crate::read::{StoredRow, read_object};
use crate::{OutputFormat, layout, table};

/// Calls `visit` with the rows of each metric file of the days `from..=to` (the files of the
/// newest Delta version, or those below `metrics/`), one file at a time, in key order. Returns
/// the number of files read.
pub fn for_each_metric_file(
    storage: &kpipe_storage::Storage,
    format: OutputFormat,
    from: NaiveDate,
    to: NaiveDate,
    mut visit: impl FnMut(Vec<StoredRow>),
) -> Result<usize, SinkError> {
    let mut files: Vec<table::TableEntry> = table::table_files(storage, format, layout::METRICS)?
        .into_iter()
        .filter(|f| {
            layout::parse_metric_file(&f.logical_key).is_some_and(|(_, day)| day >= from && day <= to)
        })
        .collect();
    files.sort_by(|a, b| a.logical_key.cmp(&b.logical_key).then_with(|| a.key.cmp(&b.key)));
    let mut read = 0;
    for file in &files {
        let mut rows = Vec::new();
        if read_object(storage, &file.key, &mut rows)? {
            read += 1;
            visit(rows);
        }
    }
    Ok(read)
}
