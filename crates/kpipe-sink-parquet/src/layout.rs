//! Every name kpipe gives to what it writes below an output, in one place. Keys are relative
//! to the output (a directory or an object-store prefix), with `/` between folders.
//!
//! ```text
//! metrics/<writer>.<YYYY-MM-DD>.parquet        metric rows, one file per source (and shard) and day
//! metrics_period/<writer>.<grain>.<YYYY-MM-DD>.parquet
//!                                              unique metrics over a week or month (its first day)
//! kpis/<grain>.<YYYY-MM-DD>.parquet            KPI rows, one file per grain and period (its first day)
//! quarantine/source=<name>/<run_id>.jsonl      records that could not be used
//! .kpipe/state/<source>.json                   one source's ledger and cursors
//! .kpipe/state.json                            the state of earlier versions (read, then replaced)
//! .kpipe/lock                                  the run lock (a file lock, or a lease object)
//! .kpipe/staging/<table>/<run_id>/             files being written (local outputs)
//! .kpipe/uploads/<table>/<id>.json             multipart uploads in progress
//! ```
//!
//! `<writer>` is the source's name, or for shard K of N (`kpipe run --shard K/N`) the source's
//! name followed by `-KofN` (`li-3of8`): the shards of a source write files of their own, side by
//! side, each holding the rows of the accounts its shard owns ([`kpipe_core::Shard`]).
//!
//! Layout version 2 ([`LAYOUT_VERSION`]). The data files sit directly in `metrics/` and
//! `kpis/`, named by values that are also columns of every file, because every reader then
//! opens the folder with its defaults: a folder named `key=value` makes pyarrow, pandas,
//! Polars, DuckDB and Spark add a partition column of their own type beside the file's column
//! of the same name, which pandas and pyarrow refuse to merge (string vs dictionary, date32 vs
//! string), and Spark does not look into folders whose names are not `key=value`. Version 1
//! named them `metrics/source=<name>/date=<day>/part-00000.parquet` and
//! `kpis/grain=<g>/period=<day>/part-00000.parquet`; [`crate::migrate`] renames such files.
//!
//! Readers never see a partial file: staged files live under `.kpipe/` (or, for object
//! stores, on the machine's temporary disk) and do not end in `.parquet`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use kpipe_core::Shard;

/// The version of the layout, as CHANGELOG.md and docs/schema.md number it.
pub const LAYOUT_VERSION: u32 = 2;

/// The folder of kpipe's own objects.
pub const STATE_DIR: &str = ".kpipe";

/// The metric tree.
pub const METRICS: &str = "metrics";

/// The tree of unique metrics over whole weeks and months.
pub const METRICS_PERIOD: &str = "metrics_period";

/// The KPI tree.
pub const KPIS: &str = "kpis";

/// The quarantine tree.
pub const QUARANTINE: &str = "quarantine";

/// Staging folders of versions before `.kpipe/staging` (removed when found).
pub const LEGACY_STAGING: &str = ".staging";

/// What data file names end with.
const PARQUET: &str = ".parquet";

/// `<name>.<YYYY-MM-DD>.parquet`.
fn dated_file(name: &str, date: NaiveDate) -> String {
    format!("{name}.{}{PARQUET}", date.format("%Y-%m-%d"))
}

/// The name and day of a file named `<name>.<YYYY-MM-DD>.parquet`, `name` being a snake_case
/// identifier (so it holds no `.`).
fn parse_dated_file(file: &str) -> Option<(&str, NaiveDate)> {
    let (name, day) = file.strip_suffix(PARQUET)?.split_once('.')?;
    kpipe_core::is_identifier(name).then_some(())?;
    Some((name, parse_day(day)?))
}

/// `YYYY-MM-DD` exactly.
fn parse_day(text: &str) -> Option<NaiveDate> {
    (text.len() == 10).then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()).flatten()
}

/// The name a source's files carry when shard `shard` writes them: the source's name, with
/// `-KofN` after it unless the shard is the whole configuration.
pub fn writer_name(source: &str, shard: Shard) -> String {
    match shard.tag() {
        None => source.to_owned(),
        Some(tag) => format!("{source}{tag}"),
    }
}

/// The source and shard of a writer name (`li`, `li-3of8`).
pub fn parse_writer_name(name: &str) -> Option<(&str, Shard)> {
    let (source, shard) = match name.find('-') {
        None => (name, Shard::ALL),
        Some(at) => (&name[..at], Shard::from_tag(&name[at..])?),
    };
    kpipe_core::is_identifier(source).then_some((source, shard))
}

/// `metrics/<writer>.<YYYY-MM-DD>.parquet`: one source's (or one shard's of a source) rows of
/// one day; `writer` from [`writer_name`].
pub fn metric_file(writer: &str, date: NaiveDate) -> String {
    format!("{METRICS}/{}", dated_file_of(writer, date))
}

/// `<writer>.<YYYY-MM-DD>.parquet`.
fn dated_file_of(writer: &str, date: NaiveDate) -> String {
    format!("{writer}.{}{PARQUET}", date.format("%Y-%m-%d"))
}

/// The source and day of a key of the metric tree (`metrics/<writer>.<YYYY-MM-DD>.parquet`).
pub fn parse_metric_file(key: &str) -> Option<(&str, NaiveDate)> {
    parse_sharded_metric_file(key).map(|(source, _, day)| (source, day))
}

/// The source, shard and day of a key of the metric tree.
pub fn parse_sharded_metric_file(key: &str) -> Option<(&str, Shard, NaiveDate)> {
    let file = key.strip_prefix(METRICS)?.strip_prefix('/')?;
    let (writer, day) = file.strip_suffix(PARQUET)?.split_once('.')?;
    let (source, shard) = parse_writer_name(writer)?;
    Some((source, shard, parse_day(day)?))
}

/// The start of the keys of one writer's metric files, `metrics/<writer>.`.
pub fn metric_files_of(writer: &str) -> String {
    format!("{METRICS}/{writer}.")
}

/// `metrics_period/<writer>.<grain>.<YYYY-MM-DD>.parquet`: one source's (or shard's) unique
/// metrics over `period`, named by its first day.
pub fn period_file(writer: &str, period: kpipe_core::Period) -> String {
    format!("{METRICS_PERIOD}/{}", dated_file_of(&format!("{writer}.{}", period.grain), period.start))
}

/// The source, grain and first day of a key of the period tree.
pub fn parse_period_file(key: &str) -> Option<(&str, kpipe_core::PeriodGrain, NaiveDate)> {
    parse_sharded_period_file(key).map(|(source, _, grain, start)| (source, grain, start))
}

/// The source, shard, grain and first day of a key of the period tree.
pub fn parse_sharded_period_file(key: &str) -> Option<(&str, Shard, kpipe_core::PeriodGrain, NaiveDate)> {
    let file = key.strip_prefix(METRICS_PERIOD)?.strip_prefix('/')?;
    let (writer, rest) = file.split_once('.')?;
    let (source, shard) = parse_writer_name(writer)?;
    let (grain, start) = parse_dated_file(rest)?;
    let grain = kpipe_core::PeriodGrain::from_name(grain)?;
    (kpipe_core::Period::containing(grain, start).start == start).then_some((source, shard, grain, start))
}

/// The start of the keys of one writer's period files, `metrics_period/<writer>.`.
pub fn period_files_of(writer: &str) -> String {
    format!("{METRICS_PERIOD}/{writer}.")
}

/// `kpis/<grain>.<YYYY-MM-DD>.parquet`: one grain's KPI rows of the period starting `start`.
pub fn kpi_file(grain: &str, start: NaiveDate) -> String {
    format!("{KPIS}/{}", dated_file(grain, start))
}

/// The grain and period start of a key of the KPI tree (`kpis/<grain>.<YYYY-MM-DD>.parquet`).
pub fn parse_kpi_file(key: &str) -> Option<(&str, NaiveDate)> {
    parse_dated_file(key.strip_prefix(KPIS)?.strip_prefix('/')?)
}

/// The start of the keys of the KPI tree's files, `kpis/`.
pub fn kpi_files() -> String {
    format!("{KPIS}/")
}

/// Where layout version 1 put a metric file (`metrics/source=<s>/date=<d>/<file>.parquet`):
/// its source and day.
pub fn parse_v1_metric_file(key: &str) -> Option<(&str, NaiveDate)> {
    let rest = key.strip_prefix(METRICS)?.strip_prefix("/source=")?;
    let (source, rest) = rest.split_once("/date=")?;
    let (day, file) = rest.split_once('/')?;
    (kpipe_core::is_identifier(source) && file.ends_with(PARQUET) && !file.contains('/')).then_some(())?;
    Some((source, parse_day(day)?))
}

/// Where layout version 1 put a KPI file (`kpis/grain=<g>/period=<d>/<file>.parquet`): its
/// grain and period start.
pub fn parse_v1_kpi_file(key: &str) -> Option<(&str, NaiveDate)> {
    let rest = key.strip_prefix(KPIS)?.strip_prefix("/grain=")?;
    let (grain, rest) = rest.split_once("/period=")?;
    let (day, file) = rest.split_once('/')?;
    (kpipe_core::is_identifier(grain) && file.ends_with(PARQUET) && !file.contains('/')).then_some(())?;
    Some((grain, parse_day(day)?))
}

/// A name for a staged file of a table's `key` (no folder, not ending in `.parquet`).
pub fn staged_name(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    format!("{name}.partial")
}

/// `quarantine/source=<name>`.
pub fn quarantine_prefix(source: &str) -> String {
    format!("{QUARANTINE}/source={source}")
}

/// `quarantine/source=<name>/<run_id>.jsonl`, or for shard K of N
/// `quarantine/source=<name>/<K>of<N>-<run_id>.jsonl`.
pub fn quarantine_file(source: &str, shard: Shard, run_id: &str) -> String {
    format!("{}{run_id}.jsonl", quarantine_uploads_of(source, shard))
}

/// How the keys of the quarantine files `shard` writes for `source` start: killed runs'
/// unfinished uploads below it are the shard's own to abort.
pub fn quarantine_uploads_of(source: &str, shard: Shard) -> String {
    match shard.tag() {
        None => format!("{}/", quarantine_prefix(source)),
        Some(tag) => format!("{}/{}-", quarantine_prefix(source), tag.trim_start_matches('-')),
    }
}

/// `.kpipe/state`, the folder of the per-source state objects.
pub fn state_prefix() -> String {
    format!("{STATE_DIR}/state")
}

/// `.kpipe/state/<writer>.json`: a source's state, or one shard's of it (`li-3of8.json`).
pub fn state_object(writer: &str) -> String {
    format!("{}/{writer}.json", state_prefix())
}

/// `.kpipe/state.json`, written by earlier versions for all sources at once.
pub fn legacy_state_file() -> String {
    format!("{STATE_DIR}/state.json")
}

/// `.kpipe/lock`.
pub fn lock_object() -> String {
    format!("{STATE_DIR}/lock")
}

/// `.kpipe/lock-KofN`: the lock of shard K of N's runs (`.kpipe/lock` for the whole
/// configuration).
pub fn shard_lock_object(shard: Shard) -> String {
    format!("{}{}", lock_object(), shard.tag().unwrap_or_default())
}

/// `.kpipe/staging/<table>`: what the runs writing `table` stage.
pub fn staging_area(table: &str) -> String {
    format!("{STATE_DIR}/staging/{table}")
}

/// `.kpipe/uploads/<table>`: the journal of `table`'s multipart uploads in progress.
pub fn upload_journal(table: &str) -> String {
    format!("{STATE_DIR}/uploads/{table}")
}

/// The staging and journal name of one writer's metric files.
pub fn metrics_table(writer: &str) -> String {
    format!("{METRICS}/{writer}")
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

/// A probe object for `kpipe check`.
pub fn probe_object(id: &str) -> String {
    format!("{STATE_DIR}/check-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn names_round_trip() {
        let d = day("2026-10-01");
        assert_eq!(metric_file("li", d), "metrics/li.2026-10-01.parquet");
        assert_eq!(parse_metric_file(&metric_file("li_ads", d)), Some(("li_ads", d)));
        assert!(metric_file("li", d).starts_with(&metric_files_of("li")));
        assert_eq!(kpi_file("week", d), "kpis/week.2026-10-01.parquet");
        assert_eq!(parse_kpi_file("kpis/week.2026-10-01.parquet"), Some(("week", d)));
        assert!(kpi_file("week", d).starts_with(&kpi_files()));
        assert_eq!(state_object("li"), ".kpipe/state/li.json");
        assert!(!staged_name(&metric_file("li", d)).ends_with(".parquet"));
        assert!(!staged_name(&metric_file("li", d)).contains('/'));
    }

    #[test]
    fn shards_name_their_own_files() {
        let d = day("2026-10-01");
        let shard = Shard::new(3, 8).expect("a shard");
        let writer = writer_name("li_ads", shard);
        assert_eq!(writer, "li_ads-3of8");
        assert_eq!(writer_name("li_ads", Shard::ALL), "li_ads");
        assert_eq!(metric_file(&writer, d), "metrics/li_ads-3of8.2026-10-01.parquet");
        assert_eq!(parse_sharded_metric_file(&metric_file(&writer, d)), Some(("li_ads", shard, d)));
        assert_eq!(parse_metric_file(&metric_file(&writer, d)), Some(("li_ads", d)));
        assert_eq!(parse_sharded_metric_file(&metric_file("li_ads", d)), Some(("li_ads", Shard::ALL, d)));
        // One shard's prefix is nobody else's (uploads below it are aborted as its own).
        assert!(!metric_file("li_ads-3of80", d).starts_with(&metric_files_of(&writer)));
        assert!(!metric_file(&writer, d).starts_with(&metric_files_of("li_ads")));
        let month = kpipe_core::Period::containing(kpipe_core::PeriodGrain::Month, d);
        let key = period_file(&writer, month);
        assert_eq!(key, "metrics_period/li_ads-3of8.month.2026-10-01.parquet");
        assert_eq!(
            parse_sharded_period_file(&key),
            Some(("li_ads", shard, kpipe_core::PeriodGrain::Month, d))
        );
        assert_eq!(shard_lock_object(shard), ".kpipe/lock-3of8");
        assert_eq!(state_object(&writer), ".kpipe/state/li_ads-3of8.json");
        assert_eq!(quarantine_file("li_ads", shard, "r1"), "quarantine/source=li_ads/3of8-r1.jsonl");
        assert_eq!(quarantine_file("li_ads", Shard::ALL, "r1"), "quarantine/source=li_ads/r1.jsonl");
        assert!(
            !quarantine_file("li_ads", Shard::ALL, "r1").starts_with(&quarantine_uploads_of("li_ads", shard))
        );
        for bad in [
            "metrics/li_ads-3of3.2026-10-01.parquet",
            "metrics/li_ads-.2026-10-01.parquet",
            "metrics/li-ads-1of2-1of2.2026-10-01.parquet",
        ] {
            assert_eq!(parse_metric_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_is_not_a_data_file_is_not_parsed() {
        for key in [
            "metrics/li.2026-10-01.parquet.partial",
            "metrics/.li.2026-10-01.parquet.1.tmp",
            "metrics/Li.2026-10-01.parquet",
            "metrics/li.2026-1-01.parquet",
            "metrics/li.2026-02-30.parquet",
            "metrics/li/2026-10-01.parquet",
            "kpis/week.2026-10-01.parquet",
            "metrics/source=li/date=2026-10-01/part-00000.parquet",
        ] {
            assert_eq!(parse_metric_file(key), None, "{key}");
        }
    }

    #[test]
    fn version_1_names() {
        let d = day("2026-10-01");
        assert_eq!(
            parse_v1_metric_file("metrics/source=li/date=2026-10-01/part-00000.parquet"),
            Some(("li", d))
        );
        assert_eq!(
            parse_v1_kpi_file("kpis/grain=month/period=2026-10-01/part-00000.parquet"),
            Some(("month", d))
        );
        assert_eq!(parse_v1_metric_file("metrics/source=li/date=2026-10-01/_SUCCESS"), None);
        assert_eq!(parse_v1_metric_file("metrics/li.2026-10-01.parquet"), None);
        assert_eq!(parse_v1_kpi_file("kpis/grain=month/period=2026-10-01/a/b.parquet"), None);
    }
}
