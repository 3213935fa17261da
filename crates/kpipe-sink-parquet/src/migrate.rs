//! Moving an output written in layout version 1 (`metrics/source=<s>/date=<d>/part-00000.parquet`,
//! `kpis/grain=<g>/period=<d>/part-00000.parquet`) to version 2 (`metrics/<s>.<d>.parquet`,
//! `kpis/<g>.<d>.parquet`), through the storage layer, so that every reader sees one layout.
//!
//! Each file is one [`Storage::rename`]: a reader or a crash half-way finds every day under its
//! old name, its new name or (on an object store, between the copy and the delete) both with
//! the same bytes, never under neither; the next call moves the rest. Once moved, a call costs
//! one listing of each tree. Runs call it under the run lock, before anything reads or writes
//! the trees; parallel callers on one output are harmless (a file another one moved first is
//! skipped).

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::NaiveDate;
use kpipe_storage::{Entry, ErrorKind, Storage, StorageError};

use crate::layout;

/// What [`to_current_layout`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Files moved to their version 2 name.
    pub moved: usize,
    /// Version 1 files removed because the version 2 name already held a file for the same
    /// day written at the same time or later (or because their folder held a newer file).
    pub removed: usize,
}

impl Migrated {
    /// Whether anything was changed.
    pub fn is_empty(&self) -> bool {
        *self == Migrated::default()
    }
}

/// One tree's names in both layouts.
struct Tree {
    folder: &'static str,
    parse_v1: fn(&str) -> Option<(&str, NaiveDate)>,
    parse_v2: fn(&str) -> Option<(&str, NaiveDate)>,
    name_v2: fn(&str, NaiveDate) -> String,
}

const TREES: [Tree; 2] = [
    Tree {
        folder: layout::METRICS,
        parse_v1: layout::parse_v1_metric_file,
        parse_v2: layout::parse_metric_file,
        name_v2: layout::metric_file,
    },
    Tree {
        folder: layout::KPIS,
        parse_v1: layout::parse_v1_kpi_file,
        parse_v2: layout::parse_kpi_file,
        name_v2: layout::kpi_file,
    },
];

/// Moves every metric and KPI file of layout version 1 below `storage` to its version 2 name.
/// Where a day is under both names, the file written last is kept.
pub fn to_current_layout(storage: &Storage) -> Result<Migrated, StorageError> {
    let mut done = Migrated::default();
    for tree in &TREES {
        let entries = storage.list(tree.folder)?;
        let current: BTreeMap<&str, Option<SystemTime>> = entries
            .iter()
            .filter(|e| (tree.parse_v2)(&e.key).is_some())
            .map(|e| (e.key.as_str(), e.modified))
            .collect();
        // Version 1 files by their version 2 name; a day folder holds one file, but should it
        // hold more, the newest is the day's.
        let mut old: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
        let mut folders = std::collections::BTreeSet::new();
        for entry in &entries {
            if let Some((name, day)) = (tree.parse_v1)(&entry.key) {
                old.entry((tree.name_v2)(name, day)).or_default().push(entry);
                folders.insert(format!("{}/{}", tree.folder, top_folder(tree.folder, &entry.key)));
            }
        }
        for (target, mut files) in old {
            files.sort_by_key(|e| (e.modified, e.key.clone()));
            let Some(newest) = files.pop() else { continue };
            for stale in files {
                storage.delete(&stale.key)?;
                done.removed += 1;
            }
            match current.get(target.as_str()) {
                Some(&written) if written >= newest.modified => {
                    storage.delete(&newest.key)?;
                    done.removed += 1;
                }
                _ => match storage.rename(&newest.key, &target) {
                    Ok(()) => done.moved += 1,
                    // Moved by another process meanwhile.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
            }
        }
        for folder in folders {
            remove_if_empty(storage, &folder)?;
        }
    }
    if !done.is_empty() {
        tracing::info!(
            output = %storage.describe(),
            moved = done.moved,
            removed = done.removed,
            "moved metric and KPI files to layout version {}",
            layout::LAYOUT_VERSION
        );
    }
    Ok(done)
}

/// `source=<s>` of `metrics/source=<s>/date=<d>/part-00000.parquet`.
fn top_folder<'k>(tree: &str, key: &'k str) -> &'k str {
    let rest = key.strip_prefix(tree).map_or(key, |r| r.trim_start_matches('/'));
    rest.split('/').next().unwrap_or(rest)
}

/// Removes a version 1 folder that holds no file any more (a local output's empty folders, or
/// files whose names readers skip). One that still holds other files is left, and said.
fn remove_if_empty(storage: &Storage, folder: &str) -> Result<(), StorageError> {
    let left = storage.list(folder)?;
    if left.is_empty() {
        storage.delete_all(folder)
    } else {
        tracing::warn!(
            folder = %storage.describe_key(folder),
            files = left.len(),
            "a layout version 1 folder still holds files that are not metric or KPI files; left as it is"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::Bytes;

    fn keys(storage: &Storage) -> Vec<String> {
        storage.list("").unwrap().into_iter().map(|e| e.key).collect()
    }

    #[test]
    fn version_1_files_are_moved_once_and_their_folders_removed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        for key in [
            "metrics/source=li/date=2026-03-01/part-00000.parquet",
            "metrics/source=li/date=2026-03-02/part-00000.parquet",
            "metrics/source=fb/date=2026-03-01/part-00000.parquet",
            "kpis/grain=week/period=2026-02-23/part-00000.parquet",
            "metrics/fb.2026-03-02.parquet",
        ] {
            storage.put(key, Bytes::from(key.to_owned())).unwrap();
        }
        let done = to_current_layout(&storage).unwrap();
        assert_eq!(done, Migrated { moved: 4, removed: 0 });
        assert_eq!(
            keys(&storage),
            [
                "kpis/week.2026-02-23.parquet",
                "metrics/fb.2026-03-01.parquet",
                "metrics/fb.2026-03-02.parquet",
                "metrics/li.2026-03-01.parquet",
                "metrics/li.2026-03-02.parquet",
            ]
        );
        let moved = storage.get("metrics/li.2026-03-02.parquet").unwrap().unwrap();
        assert_eq!(&moved.bytes[..], b"metrics/source=li/date=2026-03-02/part-00000.parquet");
        assert!(storage.list_folders("metrics").unwrap().is_empty(), "no version 1 folder is left");
        assert!(storage.list_folders("kpis").unwrap().is_empty());
        assert!(to_current_layout(&storage).unwrap().is_empty());
    }

    #[test]
    fn a_day_under_both_names_keeps_the_file_written_last() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        storage.put("metrics/li.2026-03-01.parquet", Bytes::from("v2 older")).unwrap();
        storage.put("metrics/li.2026-03-02.parquet", Bytes::from("v2 newer")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        storage.put("metrics/source=li/date=2026-03-01/part-00000.parquet", Bytes::from("v1 newer")).unwrap();
        storage.put("metrics/source=li/date=2026-03-02/part-00000.parquet", Bytes::from("v1 older")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        storage.put("metrics/li.2026-03-02.parquet", Bytes::from("v2 newer")).unwrap();
        let done = to_current_layout(&storage).unwrap();
        assert_eq!(done, Migrated { moved: 1, removed: 1 });
        let read = |k: &str| storage.get(k).unwrap().unwrap().bytes;
        assert_eq!(&read("metrics/li.2026-03-01.parquet")[..], b"v1 newer");
        assert_eq!(&read("metrics/li.2026-03-02.parquet")[..], b"v2 newer");
        assert_eq!(keys(&storage).len(), 2);
    }

    #[test]
    fn other_files_in_a_version_1_folder_are_left() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        storage.put("metrics/source=li/date=2026-03-01/part-00000.parquet", Bytes::from("x")).unwrap();
        storage.put("metrics/source=li/notes.txt", Bytes::from("mine")).unwrap();
        assert_eq!(to_current_layout(&storage).unwrap(), Migrated { moved: 1, removed: 0 });
        assert_eq!(keys(&storage), ["metrics/li.2026-03-01.parquet", "metrics/source=li/notes.txt"]);
    }
}
