//! Every name kpipe gives to what it writes below an output, in one place. Keys are relative
//! to the output (a directory or an object-store prefix), with `/` between folders.
//!
//! ```text
//! metrics/source=<name>/date=<YYYY-MM-DD>/part-00000.parquet   metric rows, one file per source and day
//! kpis/grain=<g>/period=<YYYY-MM-DD>/part-00000.parquet         KPI rows, one file per grain and period
//! quarantine/source=<name>/<run_id>.jsonl                        records that could not be used
//! .kpipe/state/<source>.json                                     one source's ledger and cursors
//! .kpipe/state.json                                              the state of earlier versions (read, then replaced)
//! .kpipe/lock                                                    the run lock (a file lock, or a lease object)
//! .kpipe/staging/<table>/<run_id>/                               files being written (local outputs)
//! .kpipe/uploads/<table>/<id>.json                               multipart uploads in progress
//! ```
//!
//! Readers never see a partial file: staged files live under `.kpipe/` (or, for object
//! stores, on the machine's temporary disk) and do not end in `.parquet`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The one data file of a partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// The folder of kpipe's own objects.
pub const STATE_DIR: &str = ".kpipe";

/// The metric tree.
pub const METRICS: &str = "metrics";

/// The KPI tree.
pub const KPIS: &str = "kpis";

/// The quarantine tree.
pub const QUARANTINE: &str = "quarantine";

/// Staging folders of versions before `.kpipe/staging` (removed when found).
pub const LEGACY_STAGING: &str = ".staging";

/// `metrics/source=<name>`.
pub fn source_prefix(source: &str) -> String {
    format!("{METRICS}/source={source}")
}

/// The source a folder name directly below [`METRICS`] stands for.
pub fn source_of_folder(folder: &str) -> Option<&str> {
    folder.strip_prefix("source=")
}

/// `date=<YYYY-MM-DD>`.
pub fn partition_dir_name(date: NaiveDate) -> String {
    format!("date={}", date.format("%Y-%m-%d"))
}

/// The day a partition folder name stands for.
pub fn date_of_folder(folder: &str) -> Option<NaiveDate> {
    folder.strip_prefix("date=")?.parse().ok()
}

/// `metrics/source=<name>/date=<YYYY-MM-DD>`.
pub fn day_partition(source: &str, date: NaiveDate) -> String {
    format!("{}/{}", source_prefix(source), partition_dir_name(date))
}

/// `kpis/grain=<g>`.
pub fn grain_prefix(grain: &str) -> String {
    format!("{KPIS}/grain={grain}")
}

/// `kpis/grain=<g>/period=<start>`.
pub fn period_partition(grain: &str, start: NaiveDate) -> String {
    format!("{}/period={}", grain_prefix(grain), start.format("%Y-%m-%d"))
}

/// The period start a folder name below a grain stands for.
pub fn period_of_folder(folder: &str) -> Option<NaiveDate> {
    folder.strip_prefix("period=")?.parse().ok()
}

/// `<partition>/part-00000.parquet`.
pub fn part_file(partition: &str) -> String {
    format!("{partition}/{PART_FILE}")
}

/// `quarantine/source=<name>`.
pub fn quarantine_prefix(source: &str) -> String {
    format!("{QUARANTINE}/source={source}")
}

/// `quarantine/source=<name>/<run_id>.jsonl`.
pub fn quarantine_file(source: &str, run_id: &str) -> String {
    format!("{}/{run_id}.jsonl", quarantine_prefix(source))
}

/// `.kpipe/state`, the folder of the per-source state objects.
pub fn state_prefix() -> String {
    format!("{STATE_DIR}/state")
}

/// `.kpipe/state/<source>.json`.
pub fn state_object(source: &str) -> String {
    format!("{}/{source}.json", state_prefix())
}

/// `.kpipe/state.json`, written by earlier versions for all sources at once.
pub fn legacy_state_file() -> String {
    format!("{STATE_DIR}/state.json")
}

/// `.kpipe/lock`.
pub fn lock_object() -> String {
    format!("{STATE_DIR}/lock")
}

/// `.kpipe/staging/<table>`: what the runs writing `table` stage.
pub fn staging_area(table: &str) -> String {
    format!("{STATE_DIR}/staging/{table}")
}

/// `.kpipe/uploads/<table>`: the journal of `table`'s multipart uploads in progress.
pub fn upload_journal(table: &str) -> String {
    format!("{STATE_DIR}/uploads/{table}")
}

/// The staging and journal name of one source's metric partitions.
pub fn metrics_table(source: &str) -> String {
    format!("{METRICS}/{source}")
}

/// The path of `key` below a local output directory.
pub fn local_path(output: &Path, key: &str) -> PathBuf {
    let mut path = output.to_path_buf();
    path.extend(key.split('/').filter(|p| !p.is_empty()));
    path
}

/// `<output>/metrics` of a local output.
pub fn metrics_dir(output: &Path) -> PathBuf {
    output.join(METRICS)
}

/// `<output>/metrics/source=<name>` of a local output.
pub fn source_dir(output: &Path, source: &str) -> PathBuf {
    local_path(output, &source_prefix(source))
}

/// A probe object for `kpipe check`.
pub fn probe_object(id: &str) -> String {
    format!("{STATE_DIR}/check-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(day_partition("li", day), "metrics/source=li/date=2026-10-01");
        assert_eq!(source_of_folder("source=li"), Some("li"));
        assert_eq!(date_of_folder(&partition_dir_name(day)), Some(day));
        assert_eq!(period_partition("week", day), "kpis/grain=week/period=2026-10-01");
        assert_eq!(period_of_folder("period=2026-10-01"), Some(day));
        assert_eq!(part_file("x"), "x/part-00000.parquet");
        assert_eq!(state_object("li"), ".kpipe/state/li.json");
    }
}
