//! The pending journal: before a writer uploads the data files of a commit it lists them in
//! `.kpipe/delta/<table>/<writer>.json`, and removes the list once the commit landed. A list
//! found by the writer's next commit (or by `kpipe vacuum`) is from a run killed between its
//! uploads and its commit: the files it names that the table does not reference are deleted.

use kpipe_core::SinkError;
use kpipe_storage::Storage;
use serde_json::Value;

use super::{ActiveFile, DeltaTableKind};
use crate::layout;

fn journal_key(table: DeltaTableKind, writer: &str) -> String {
    format!("{}/delta/{}/{writer}.json", layout::STATE_DIR, table.name())
}

/// The folder of `table`'s journals.
pub(crate) fn journals_of(table: DeltaTableKind) -> String {
    format!("{}/delta/{}", layout::STATE_DIR, table.name())
}

fn fail(what: &str) -> impl Fn(kpipe_storage::StorageError) -> SinkError + '_ {
    move |e| SinkError::new(format!("cannot {what} the Delta pending journal")).with_source(e)
}

/// Lists `uploads` (keys below the output) as run `run_id`'s pending files of `writer`.
pub(crate) fn record(
    storage: &Storage,
    table: DeltaTableKind,
    writer: &str,
    run_id: &str,
    uploads: &[String],
) -> Result<(), SinkError> {
    let body = serde_json::json!({ "run_id": run_id, "files": uploads });
    storage.put(&journal_key(table, writer), bytes::Bytes::from(body.to_string())).map_err(fail("write"))?;
    Ok(())
}

/// Removes `writer`'s journal after its commit landed.
pub(crate) fn clear(storage: &Storage, table: DeltaTableKind, writer: &str) -> Result<(), SinkError> {
    storage.delete(&journal_key(table, writer)).map_err(fail("remove"))
}

/// Deletes the files `writer`'s journal names that `active` (the table's newest version) does
/// not reference, then the journal. Returns how many files were deleted.
pub(crate) fn clean_up(
    storage: &Storage,
    table: DeltaTableKind,
    writer: &str,
    active: &[ActiveFile],
) -> Result<usize, SinkError> {
    clean_up_journal(storage, &journal_key(table, writer), active)
}

pub(crate) fn clean_up_journal(
    storage: &Storage,
    key: &str,
    active: &[ActiveFile],
) -> Result<usize, SinkError> {
    let Some(object) = storage.get(key).map_err(fail("read"))? else { return Ok(0) };
    let files: Vec<String> = match serde_json::from_slice::<Value>(&object.bytes) {
        Ok(value) => value
            .get("files")
            .and_then(Value::as_array)
            .map(|files| files.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        Err(e) => {
            return Err(SinkError::new(format!(
                "the Delta pending journal {} is not JSON ({e}); remove it once the files it lists are checked",
                storage.describe_key(key)
            )));
        }
    };
    let mut deleted = 0;
    for file in &files {
        if active.iter().any(|a| &a.key == file) || !file.starts_with("delta/") {
            continue;
        }
        tracing::info!(file = %storage.describe_key(file), "removing a Delta data file an interrupted run uploaded but never committed");
        storage.delete(file).map_err(fail("clean up the files of"))?;
        deleted += 1;
    }
    storage.delete(key).map_err(fail("remove"))?;
    Ok(deleted)
}
