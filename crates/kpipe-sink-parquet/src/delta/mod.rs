//! Delta Lake tables (`[pipeline] format = "delta"`): the metric rows, the period rows and the
//! KPI rows as three tables under `<output>/delta/`, written with delta-rs.
//!
//! Invariants:
//! - Data files are the same Parquet files the Parquet layout publishes (every column, the
//!   partition columns included, so a file read alone is complete), uploaded under a new name
//!   inside the table; they become visible only through the commit that adds them.
//! - One commit per writer and table: a source's re-pulled days (or the KPI stage's periods)
//!   are replaced in one transaction that removes the partitions' earlier files and adds the
//!   new ones. A reader sees all of a run's data for that source or none of it.
//! - A commit that loses a race is retried against the newest version, its removals
//!   recomputed from it: never lost, never duplicated. Writers of different sources never
//!   conflict in their data.
//! - Files uploaded for a commit that never happened (a killed run) are listed in a pending
//!   journal under `.kpipe/delta/`; the next commit of the same writer, or `kpipe vacuum`,
//!   deletes those the table does not reference.
//! - Each commit's commitInfo carries the kpipe run id, the writer (source or `kpis`) and its
//!   window, and `userMetadata` says the same in words, so `DESCRIBE HISTORY` shows which run
//!   wrote what.

mod log;
mod pending;
mod shards;
pub(crate) mod stats;
mod vacuum;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use arrow_schema::Schema;
use deltalake_core::DeltaTable;
use deltalake_core::errors::DeltaTableError;
use deltalake_core::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake_core::kernel::{Action, Add};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use kpipe_core::SinkError;
use kpipe_storage::Storage;
use serde_json::Value;

pub use vacuum::{VacuumReport, vacuum};

use crate::layout;
use crate::table::Published;

/// The folder of the Delta tables below the output.
pub const DELTA: &str = "delta";

/// One of the Delta tables kpipe writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeltaTableKind {
    /// `delta/metrics`: metric rows, partitioned by `source` and `date`.
    Metrics,
    /// `delta/metrics_period`: period rows, partitioned by `source`, `grain` and `date` (the
    /// period's first day).
    MetricsPeriod,
    /// `delta/kpis`: KPI rows, partitioned by `grain` and `period_start`.
    Kpis,
}

impl DeltaTableKind {
    /// Every table.
    pub const ALL: [DeltaTableKind; 3] =
        [DeltaTableKind::Metrics, DeltaTableKind::MetricsPeriod, DeltaTableKind::Kpis];

    /// The table that holds the files of the Parquet layout's `folder` (`metrics`, ...).
    pub fn of_folder(folder: &str) -> Option<DeltaTableKind> {
        match folder {
            layout::METRICS => Some(DeltaTableKind::Metrics),
            layout::METRICS_PERIOD => Some(DeltaTableKind::MetricsPeriod),
            layout::KPIS => Some(DeltaTableKind::Kpis),
            _ => None,
        }
    }

    /// The table's name, the Parquet layout's folder of the same rows.
    pub fn name(self) -> &'static str {
        match self {
            DeltaTableKind::Metrics => layout::METRICS,
            DeltaTableKind::MetricsPeriod => layout::METRICS_PERIOD,
            DeltaTableKind::Kpis => layout::KPIS,
        }
    }

    /// The table's folder below the output, `delta/<name>`.
    pub fn key(self) -> String {
        format!("{DELTA}/{}", self.name())
    }

    /// The partition columns, in path order.
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            DeltaTableKind::Metrics => &["source", "date"],
            DeltaTableKind::MetricsPeriod => &["source", "grain", "date"],
            DeltaTableKind::Kpis => &["grain", "period_start"],
        }
    }

    /// The partition values of the Parquet layout's file `key`, in
    /// [`Self::partition_columns`] order.
    fn partition_values(self, key: &str) -> Option<Vec<String>> {
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        match self {
            DeltaTableKind::Metrics => {
                layout::parse_metric_file(key).map(|(s, d)| vec![s.to_owned(), day(d)])
            }
            DeltaTableKind::MetricsPeriod => {
                layout::parse_period_file(key).map(|(s, g, d)| vec![s.to_owned(), g.to_string(), day(d)])
            }
            DeltaTableKind::Kpis => layout::parse_kpi_file(key).map(|(g, d)| vec![g.to_owned(), day(d)]),
        }
    }

    /// The Parquet layout's key of a partition, from an add action's partition values.
    fn logical_key(self, values: &HashMap<String, Option<String>>) -> Option<String> {
        let value = |name: &str| values.get(name).cloned().flatten();
        let day =
            |name: &str| value(name).and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        match self {
            DeltaTableKind::Metrics => Some(layout::metric_file(&value("source")?, day("date")?)),
            DeltaTableKind::MetricsPeriod => {
                let grain = kpipe_core::PeriodGrain::from_name(&value("grain")?)?;
                let period = kpipe_core::Period::containing(grain, day("date")?);
                Some(layout::period_file(&value("source")?, period))
            }
            DeltaTableKind::Kpis => Some(layout::kpi_file(&value("grain")?, day("period_start")?)),
        }
    }
}

/// What one commit is, for its commitInfo.
#[derive(Debug, Clone)]
pub struct CommitContext {
    /// The kpipe run.
    pub run_id: String,
    /// The writer: a source's name, or `kpis`.
    pub writer: String,
    /// The window or periods the commit replaces, as text (`2026-01-01..2026-01-31`).
    pub window: String,
    /// The shard writing (the whole configuration but for `kpipe run --shard K/N`).
    pub shard: kpipe_core::Shard,
    /// The writer's source is one unit as a whole: all its rows are the shard's.
    pub whole: bool,
}

/// A file of the table's newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveFile {
    /// The Parquet layout's key of its partition (`metrics/<source>.<day>.parquet`).
    pub logical_key: String,
    /// Its key below the output (`delta/metrics/source=.../part-....parquet`), to read it.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The files of `table`'s newest version, by partition (several files may share one); none
/// when there is no table yet.
pub fn active_files(storage: &Storage, table: DeltaTableKind) -> Result<Vec<ActiveFile>, SinkError> {
    let (store, url) = log::locate(storage, &table.key())?;
    let loaded = storage
        .block_on(async move { log::load(store, url).await.map(|(t, exists)| exists.then_some(t)) })
        .map_err(|e| SinkError::new("cannot read the Delta table").with_source(e))??;
    let Some(loaded) = loaded else { return Ok(Vec::new()) };
    files_of(&loaded, table)
}

fn files_of(loaded: &DeltaTable, table: DeltaTableKind) -> Result<Vec<ActiveFile>, SinkError> {
    let snapshot = loaded.snapshot().map_err(|e| log::delta_error("cannot read the table's files", e))?;
    let mut out = Vec::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        let Some(logical_key) = table.key_of_file(&values, &file.path()) else {
            return Err(SinkError::new(format!(
                "the Delta table {} has a file {} whose partition values {values:?} kpipe did not write",
                table.key(),
                file.path()
            )));
        };
        out.push(ActiveFile {
            logical_key,
            key: format!("{}/{}", table.key(), file.path()),
            size: u64::try_from(file.size()).unwrap_or(0),
        });
    }
    out.sort_by(|a, b| (&a.logical_key, &a.key).cmp(&(&b.logical_key, &b.key)));
    Ok(out)
}

/// A staged data file to add.
pub(crate) struct NewFile {
    pub logical_key: String,
    pub staged: PathBuf,
    pub rows: u64,
}

/// Publishes `files` into `table` in one commit that also removes every earlier file of their
/// partitions and of the `replaced` partitions (by the Parquet layout's keys).
pub(crate) fn publish(
    storage: &Storage,
    table: DeltaTableKind,
    schema: &Schema,
    files: Vec<NewFile>,
    replaced: &BTreeSet<String>,
    context: &CommitContext,
    journal: &str,
) -> Result<Published, SinkError> {
    let (store, url) = log::locate(storage, &table.key())?;
    let name = table.name().to_owned();
    let arrow = schema.clone();
    let open = storage
        .block_on(
            async move { log::open_or_create(store, url, &name, &arrow, table.partition_columns()).await },
        )
        .map_err(|e| SinkError::new("cannot open the Delta table").with_source(e))??;
    pending::clean_up(storage, table, &context.writer, &files_of(&open, table)?)?;

    // Upload first, then commit: the uploads are listed before they start, so that a killed
    // run's files are found and removed.
    let mut adds = Vec::with_capacity(files.len());
    let mut uploads = Vec::with_capacity(files.len());
    for file in &files {
        let Some(values) = table.partition_values(&file.logical_key) else {
            return Err(SinkError::new(format!(
                "`{}` is not a file of the {} table",
                file.logical_key,
                table.name()
            )));
        };
        let folder: Vec<String> =
            table.partition_columns().iter().zip(&values).map(|(c, v)| format!("{c}={v}")).collect();
        let path =
            format!("{}/{}", folder.join("/"), shards::file_name(table.shard_of_key(&file.logical_key)));
        uploads.push(format!("{}/{path}", table.key()));
        let size = std::fs::metadata(&file.staged)
            .map_err(|e| SinkError::new(format!("cannot read {}", file.staged.display())).with_source(e))?
            .len();
        let stats = stats::file_stats(&file.staged, schema, table.partition_columns()).map_err(|e| {
            SinkError::new(format!("cannot read the statistics of {}: {e}", file.staged.display()))
        })?;
        let partition_values =
            table.partition_columns().iter().zip(values).map(|(c, v)| ((*c).to_owned(), Some(v))).collect();
        adds.push(new_file(path, partition_values, size, stats));
    }
    pending::record(storage, table, &context.writer, &context.run_id, &uploads)?;
    let fail =
        |e: kpipe_storage::StorageError| SinkError::new("cannot upload a Delta data file").with_source(e);
    for (file, key) in files.iter().zip(&uploads) {
        storage.publish_file(&file.staged, key, journal).map_err(fail)?;
    }

    let mut partitions: BTreeSet<String> = replaced.clone();
    partitions.extend(files.iter().map(|f| f.logical_key.clone()));
    let take_over = shards::TakeOver {
        storage,
        table,
        schema,
        context,
        journal,
        listed: uploads.clone(),
        uploaded: Vec::new(),
    };
    let committed = commit(take_over, open, adds, &partitions)?;
    pending::clear(storage, table, &context.writer)?;

    let with_files: BTreeSet<&str> = files.iter().map(|f| f.logical_key.as_str()).collect();
    Ok(Published {
        rows: files.iter().map(|f| f.rows).sum(),
        written: files.len(),
        removed: committed.removed_partitions.iter().filter(|k| !with_files.contains(k.as_str())).count(),
        files: uploads.iter().map(|k| PathBuf::from(storage.describe_key(k))).collect(),
    })
}

/// The add action of a new data file of `size` bytes.
fn new_file(
    path: String,
    partition_values: HashMap<String, Option<String>>,
    size: u64,
    stats: String,
) -> Add {
    Add {
        path,
        partition_values,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(stats),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

struct Committed {
    /// Partitions (by the Parquet layout's keys) that had files before the commit.
    removed_partitions: BTreeSet<String>,
}

/// How often a commit is retried after losing a race, and how long it waits at most between
/// tries: eight writers committing at once settle within a few tries each.
const COMMIT_ATTEMPTS: u32 = 30;
const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn commit(
    mut take_over: shards::TakeOver<'_>,
    mut loaded: DeltaTable,
    adds: Vec<Add>,
    partitions: &BTreeSet<String>,
) -> Result<Committed, SinkError> {
    let (storage, table, context) = (take_over.storage, take_over.table, take_over.context);
    let ours = take_over.partitions_of_any_writer(partitions);
    let mut app_metadata: HashMap<String, Value> = HashMap::new();
    app_metadata.insert("kpipe.run_id".into(), Value::from(context.run_id.clone()));
    app_metadata.insert("kpipe.writer".into(), Value::from(context.writer.clone()));
    app_metadata.insert("kpipe.window".into(), Value::from(context.window.clone()));
    app_metadata.insert("kpipe.version".into(), Value::from(env!("CARGO_PKG_VERSION")));
    app_metadata.insert(
        "userMetadata".into(),
        Value::from(format!("kpipe run {} wrote {} for {}", context.run_id, context.writer, context.window)),
    );
    let predicate = format!("kpipe partitions of {} in {}", context.writer, context.window);
    for attempt in 1..=COMMIT_ATTEMPTS {
        let mut actions: Vec<Action> = adds.iter().cloned().map(Action::Add).collect();
        let mut removed_partitions = BTreeSet::new();
        let snapshot = loaded.snapshot().map_err(|e| log::delta_error("cannot read the table's files", e))?;
        for file in snapshot.log_data().iter() {
            let values = file.partition_values_map();
            let path = file.path().to_string();
            let Some(key) = table.key_of_file(&values, &path) else { continue };
            let remove = Action::Remove(file.remove_action(true));
            if partitions.contains(&key) {
                actions.push(remove);
                removed_partitions.insert(key);
            } else {
                actions.extend(take_over.actions_for(&key, &path, &values, remove, &ours)?);
            }
        }
        if actions.is_empty() {
            return Ok(Committed { removed_partitions });
        }
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(table.partition_columns().iter().map(|c| (*c).to_owned()).collect()),
            predicate: Some(predicate.clone()),
        };
        // Delta's own readVersion: the version the removals were computed from. A commit that
        // landed later than the next version lost a race and was checked against the winners.
        let mut metadata = app_metadata.clone();
        metadata.insert("readVersion".into(), Value::from(snapshot.version()));
        let builder = CommitBuilder::default().with_actions(actions).with_app_metadata(metadata);
        let log_store = loaded.log_store();
        let snapshot = snapshot.clone();
        let result = storage
            .block_on(async move {
                builder.build(Some(&snapshot), log_store, operation).await.map(|c| c.version())
            })
            .map_err(|e| SinkError::new("cannot commit to the Delta table").with_source(e))?;
        match result {
            Ok(version) => {
                tracing::debug!(table = table.name(), writer = %context.writer, version, "committed");
                return Ok(Committed { removed_partitions });
            }
            Err(e) if lost_race(&e) && attempt < COMMIT_ATTEMPTS => {
                tracing::debug!(table = table.name(), writer = %context.writer, attempt, error = %e, "commit lost a race; retrying");
                take_over.discard_attempt();
                let wait = backoff(attempt);
                std::thread::sleep(wait);
                let (store, url) = log::locate(storage, &table.key())?;
                loaded = storage
                    .block_on(async move { log::load(store, url).await })
                    .map_err(|e| SinkError::new("cannot read the Delta table").with_source(e))??
                    .0;
            }
            Err(e) => {
                return Err(log::delta_error(
                    &format!("cannot commit {}'s files to the Delta table {}", context.writer, table.key()),
                    e,
                ));
            }
        }
    }
    Err(SinkError::new(format!(
        "cannot commit {}'s files to the Delta table {}: lost the race {COMMIT_ATTEMPTS} times",
        context.writer,
        table.key()
    )))
}

fn lost_race(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::VersionAlreadyExists(_)
                | TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
        ),
        _ => false,
    }
}

/// Exponential with full jitter, capped: writers that collided do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(25u64.saturating_mul(1 << attempt.min(10))).min(MAX_BACKOFF);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let jitter = uuid::Uuid::now_v7().as_u128() as u64 % nanos.max(1);
    Duration::from_nanos(jitter)
}
