//! Taking units over from another sharding of the output. The shards of a run write files of
//! their own (`metrics/<source>-KofN.<day>.parquet`), each holding the rows of the accounts its
//! shard owns. When the number of shards changes (or a sharded output is run whole, or the other
//! way round), the files an earlier sharding wrote still hold rows of accounts that now belong
//! to this shard: once this shard has published a day, it removes those accounts' rows from the
//! earlier files of that day, so that every (source, account, day) is in exactly one file.
//!
//! Shards of the new sharding may edit one earlier file at the same time (each removing its
//! own accounts), so each edit is a conditional replace of the version read, tried again on a
//! conflict. A file left with no row is removed. The whole configuration owns every account,
//! and a source that is one unit as a whole has all its rows in its one shard, so those remove
//! such files without reading them.

use std::collections::BTreeSet;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use bytes::Bytes;
use kpipe_core::{Period, Shard, SinkError};
use kpipe_storage::Storage;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::layout;
use crate::writer::Ownership;

/// Conditional edits of one file tried before giving up (each lost race is another shard's
/// edit, and there are at most as many as shards).
const MAX_ATTEMPTS: usize = 64;

/// What a take-over changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TakenOver {
    /// Earlier files from which this shard's rows were removed (rewritten or deleted).
    pub files: usize,
    /// Rows removed from them.
    pub rows: u64,
}

/// Removes the rows of `shard`'s accounts from the metric files of `source` that other
/// shardings wrote for `days`.
pub(crate) fn metric_days(
    storage: &Storage,
    ownership: Ownership,
    source: &str,
    days: &BTreeSet<chrono::NaiveDate>,
) -> Result<TakenOver, SinkError> {
    let shard = ownership.shard;
    let keys = list(storage, layout::METRICS, source)?
        .into_iter()
        .filter(|key| {
            layout::parse_sharded_metric_file(key).is_some_and(|(s, owner, day)| {
                s == source && owner.count() != shard.count() && days.contains(&day)
            })
        })
        .collect::<Vec<_>>();
    take_over(storage, ownership, source, &keys)
}

/// The same for the period files of `periods`.
pub(crate) fn periods(
    storage: &Storage,
    ownership: Ownership,
    source: &str,
    periods: &BTreeSet<Period>,
) -> Result<TakenOver, SinkError> {
    let shard = ownership.shard;
    let keys = list(storage, layout::METRICS_PERIOD, source)?
        .into_iter()
        .filter(|key| {
            layout::parse_sharded_period_file(key).is_some_and(|(s, owner, grain, start)| {
                s == source
                    && owner.count() != shard.count()
                    && periods.contains(&Period::containing(grain, start))
            })
        })
        .collect::<Vec<_>>();
    take_over(storage, ownership, source, &keys)
}

/// The keys in `folder` of files named for `source` (its writers' and, when one source's name
/// starts with another's, that one's too: the callers parse each key).
fn list(storage: &Storage, folder: &str, source: &str) -> Result<Vec<String>, SinkError> {
    Ok(storage
        .list_named(folder, source)
        .map_err(|e| SinkError::new(format!("cannot list {}", storage.describe_key(folder))).with_source(e))?
        .into_iter()
        .map(|e| e.key)
        .collect())
}

fn take_over(
    storage: &Storage,
    ownership: Ownership,
    source: &str,
    keys: &[String],
) -> Result<TakenOver, SinkError> {
    let shard = ownership.shard;
    let mut taken = TakenOver::default();
    for key in keys {
        let fail = |e: &dyn std::fmt::Display| {
            SinkError::new(format!("cannot hand {} over to shard {shard}: {e}", storage.describe_key(key)))
        };
        if shard.is_all() || ownership.whole {
            storage.delete(key).map_err(|e| fail(&e))?;
            taken.files += 1;
            continue;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(object) = storage.get(key).map_err(|e| fail(&e))? else { break };
            let Some(edit) = without_owned(&object.bytes, shard, source).map_err(|e| fail(&e))? else {
                break;
            };
            let written = match &edit.kept {
                None => {
                    storage.delete(key).map_err(|e| fail(&e))?;
                    Ok(())
                }
                Some(bytes) => {
                    storage.replace(key, bytes.clone(), &object.version).map_err(|e| fail(&e))?.map(|_| ())
                }
            };
            if written.is_ok() {
                taken.files += 1;
                taken.rows += edit.removed;
                tracing::info!(file = %storage.describe_key(key), rows = edit.removed, shard = %shard, "took rows over from another sharding");
                break;
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(fail(&"other writers changed it each time it was read"));
            }
        }
    }
    Ok(taken)
}

/// A file with some rows removed: `kept` is the new file (`None`: no row is left).
pub(crate) struct Edit {
    pub kept: Option<Bytes>,
    pub removed: u64,
}

/// The file `bytes` without the rows of the accounts `shard` owns; `None` when it has none.
pub(crate) fn without_owned(bytes: &Bytes, shard: Shard, source: &str) -> Result<Option<Edit>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| e.to_string())?;
    let Some(column) = builder.schema().fields().iter().position(|f| f.name() == "account_id") else {
        return Err("the file has no account_id column".into());
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let mut keep = Vec::new();
    let mut removed = 0u64;
    for batch in builder.with_projection(mask).build().map_err(|e| e.to_string())? {
        let batch = batch.map_err(|e| e.to_string())?;
        let accounts = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("the account_id column is not text")?;
        let flags: Vec<bool> = (0..accounts.len())
            .map(|i| accounts.is_null(i) || !shard.owns(source, accounts.value(i)))
            .collect();
        removed += flags.iter().filter(|k| !**k).count() as u64;
        keep.push(BooleanArray::from(flags));
    }
    if removed == 0 {
        return Ok(None);
    }
    if keep.iter().all(|k| k.true_count() == 0) {
        return Ok(Some(Edit { kept: None, removed }));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| e.to_string())?;
    // The file's own metadata (schema version, writer) goes to the new file; the Arrow schema
    // is written again by the writer.
    let metadata: Vec<KeyValue> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().filter(|kv| kv.key != "ARROW:schema").cloned().collect())
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let refs: Vec<&BooleanArray> = keep.iter().collect();
    let selection = RowSelection::from_filters(&refs.iter().map(|k| (*k).clone()).collect::<Vec<_>>());
    let reader = builder.with_row_selection(selection).build().map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("kpipe version {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut out = Vec::with_capacity(bytes.len());
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| e.to_string())?;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
    }
    writer.close().map_err(|e| e.to_string())?;
    Ok(Some(Edit { kept: Some(Bytes::from(out)), removed }))
}
