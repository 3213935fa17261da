//! Shards writing one Delta table. A shard's data files carry its name (`part-3of8-<uuid>...`),
//! so that the Parquet layout's key of a file names its writer (`metrics/<source>-3of8.<day>`)
//! and a shard's commit replaces its own files of a partition, never the other shards'. When the
//! number of shards changes, the commit that publishes a partition also takes the shard's
//! accounts out of the files an earlier sharding left in it: each such file is removed, and its
//! other accounts' rows are added back as a new file under the earlier writer's name, in the
//! same transaction (so a reader never sees an account twice or not at all).

use std::collections::{BTreeSet, HashMap};

use arrow_schema::Schema;
use deltalake_core::kernel::Action;
use kpipe_core::{Period, Shard, SinkError};
use kpipe_storage::Storage;

use super::{CommitContext, DeltaTableKind, pending, stats};
use crate::layout;

/// The shard a data file's name carries (`part-<K>of<N>-<uuid>.zstd.parquet`); the whole
/// configuration's for any other name.
pub(crate) fn shard_of_path(path: &str) -> Shard {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix("part-")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(tag, _)| Shard::from_tag(&format!("-{tag}")))
        .unwrap_or(Shard::ALL)
}

/// The name of a new data file of `shard`.
pub(crate) fn file_name(shard: Shard) -> String {
    let tag = shard.tag().map(|t| format!("{}-", t.trim_start_matches('-'))).unwrap_or_default();
    format!("part-{tag}{}.zstd.parquet", uuid::Uuid::now_v7())
}

impl DeltaTableKind {
    /// The Parquet layout's key of a data file: its partition's, with the writer its name
    /// carries.
    pub(crate) fn key_of_file(self, values: &HashMap<String, Option<String>>, path: &str) -> Option<String> {
        let key = self.logical_key(values)?;
        Some(self.with_writer(&key, shard_of_path(path)).unwrap_or(key))
    }

    /// `key` of the same partition written by `shard`; `None` for the KPI table (never
    /// sharded) or a key of another table.
    fn with_writer(self, key: &str, shard: Shard) -> Option<String> {
        match self {
            DeltaTableKind::Metrics => {
                let (source, day) = layout::parse_metric_file(key)?;
                Some(layout::metric_file(&layout::writer_name(source, shard), day))
            }
            DeltaTableKind::MetricsPeriod => {
                let (source, grain, start) = layout::parse_period_file(key)?;
                Some(layout::period_file(
                    &layout::writer_name(source, shard),
                    Period::containing(grain, start),
                ))
            }
            DeltaTableKind::Kpis => None,
        }
    }

    /// The shard a key's writer is.
    pub(crate) fn shard_of_key(self, key: &str) -> Shard {
        match self {
            DeltaTableKind::Metrics => layout::parse_sharded_metric_file(key).map(|(_, s, _)| s),
            DeltaTableKind::MetricsPeriod => layout::parse_sharded_period_file(key).map(|(_, s, _, _)| s),
            DeltaTableKind::Kpis => None,
        }
        .unwrap_or(Shard::ALL)
    }

    /// The source of a key.
    fn source_of_key(self, key: &str) -> Option<&str> {
        match self {
            DeltaTableKind::Metrics => layout::parse_metric_file(key).map(|(s, _)| s),
            DeltaTableKind::MetricsPeriod => layout::parse_period_file(key).map(|(s, _, _)| s),
            DeltaTableKind::Kpis => None,
        }
    }
}

/// Takes a commit's partitions over from earlier shardings: what it removes and adds, and the
/// files it uploaded for that (deleted again if the commit loses its race).
pub(crate) struct TakeOver<'a> {
    pub storage: &'a Storage,
    pub table: DeltaTableKind,
    pub schema: &'a Schema,
    pub context: &'a CommitContext,
    pub journal: &'a str,
    /// Keys below the output of everything this writer uploaded for its commit so far (the
    /// pending journal lists them).
    pub listed: Vec<String>,
    /// The uploads of the attempt in progress.
    pub uploaded: Vec<String>,
}

impl TakeOver<'_> {
    /// The partitions of `partitions` (this writer's keys) as every writer names them.
    pub(crate) fn partitions_of_any_writer(&self, partitions: &BTreeSet<String>) -> BTreeSet<String> {
        partitions.iter().filter_map(|k| self.table.with_writer(k, Shard::ALL)).collect()
    }

    /// What the commit does with a file of an earlier sharding (`key`, at `path` in the table)
    /// in one of its partitions (`ours`, as [`Self::partitions_of_any_writer`] names them):
    /// nothing when it is not one, or holds none of this shard's accounts.
    pub(crate) fn actions_for(
        &mut self,
        file_key: &str,
        path: &str,
        values: &HashMap<String, Option<String>>,
        remove: Action,
        ours: &BTreeSet<String>,
    ) -> Result<Vec<Action>, SinkError> {
        let shard = self.context.shard;
        let owner = self.table.shard_of_key(file_key);
        let same_partition = self.table.with_writer(file_key, Shard::ALL).is_some_and(|k| ours.contains(&k));
        if !same_partition || owner.count() == shard.count() {
            return Ok(Vec::new());
        }
        if shard.is_all() || self.context.whole {
            return Ok(vec![remove]);
        }
        let Some(source) = self.table.source_of_key(file_key) else { return Ok(Vec::new()) };
        let object = format!("{}/{path}", self.table.key());
        let fail = |e: &dyn std::fmt::Display| {
            SinkError::new(format!(
                "cannot hand {} over to shard {shard}: {e}",
                self.storage.describe_key(&object)
            ))
        };
        let Some(read) = self.storage.get(&object).map_err(|e| fail(&e))? else { return Ok(Vec::new()) };
        let Some(edit) = crate::handover::without_owned(&read.bytes, shard, source).map_err(|e| fail(&e))?
        else {
            return Ok(Vec::new());
        };
        let Some(kept) = edit.kept else { return Ok(vec![remove]) };
        // The other accounts' rows, as a new file of the earlier writer in the same partition.
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        let new_path = format!("{folder}/{}", file_name(owner));
        let key = format!("{}/{new_path}", self.table.key());
        let staged = std::env::temp_dir().join(format!("kpipe-{}.parquet.partial", uuid::Uuid::now_v7()));
        std::fs::write(&staged, &kept).map_err(|e| fail(&e))?;
        let added = (|| {
            let stats = stats::file_stats(&staged, self.schema, self.table.partition_columns())
                .map_err(|e| fail(&e))?;
            self.listed.push(key.clone());
            pending::record(
                self.storage,
                self.table,
                &self.context.writer,
                &self.context.run_id,
                &self.listed,
            )?;
            self.storage.publish_file(&staged, &key, self.journal).map_err(|e| fail(&e))?;
            self.uploaded.push(key.clone());
            Ok::<_, SinkError>(stats)
        })();
        let _ = std::fs::remove_file(&staged);
        let stats = added?;
        tracing::info!(file = %self.storage.describe_key(&object), rows = edit.removed, shard = %shard, "took rows over from another sharding");
        Ok(vec![
            remove,
            Action::Add(super::new_file(
                new_path,
                values.clone(),
                u64::try_from(kept.len()).unwrap_or(u64::MAX),
                stats,
            )),
        ])
    }

    /// Deletes what the attempt uploaded: its commit lost a race, and the next attempt reads
    /// the files again from the newer version.
    pub(crate) fn discard_attempt(&mut self) {
        for key in self.uploaded.drain(..) {
            if let Err(e) = self.storage.delete(&key) {
                tracing::warn!(file = %key, error = %e, "cannot delete a file of a commit that lost its race; the next vacuum does");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_shard() {
        let shard = Shard::new(3, 8).unwrap();
        let name = file_name(shard);
        assert!(name.starts_with("part-3of8-"), "{name}");
        assert_eq!(shard_of_path(&format!("source=li/date=2026-10-01/{name}")), shard);
        assert_eq!(
            shard_of_path(&format!("source=li/date=2026-10-01/{}", file_name(Shard::ALL))),
            Shard::ALL
        );
        assert_eq!(shard_of_path("source=li/date=2026-10-01/part-00000.parquet"), Shard::ALL);
    }
}
