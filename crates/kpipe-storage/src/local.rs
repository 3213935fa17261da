//! A local directory: files written under a temporary name in their folder, fsynced, renamed,
//! and the folder fsynced, so that a crash leaves the old file or the new one, never half.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{Conflict, Entry, ErrorKind, Object, StorageError, Version};

/// `[pipeline.storage]` options a local directory takes: none.
pub(crate) const OPTIONS: &[&str] = &[];

#[derive(Debug)]
pub(crate) struct LocalBackend {
    root: PathBuf,
}

fn fail<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |e| {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::Denied,
            _ => ErrorKind::Other,
        };
        StorageError::new(op, path.display().to_string(), e.to_string(), kind)
    }
}

fn version_of(bytes: &[u8]) -> Version {
    let digest = Sha256::digest(bytes);
    Version(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// A name in `path`'s folder that no reader takes for data: hidden (pyarrow, Spark and Polars
/// skip names starting with `.`) and not ending in `.parquet`.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), uuid::Uuid::now_v7().simple()))
}

/// Makes entries created or renamed in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, fsyncing the folder of each one created so that the
/// new entries survive a crash.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

impl LocalBackend {
    pub(crate) fn new(root: PathBuf) -> LocalBackend {
        LocalBackend { root }
    }

    pub(crate) fn object_store_at(
        &self,
        key: &str,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, url::Url), StorageError> {
        let dir = std::path::absolute(self.path(key)).map_err(|e| {
            StorageError::new("use", self.root.display().to_string(), e.to_string(), ErrorKind::Config)
        })?;
        std::fs::create_dir_all(&dir).map_err(|e| {
            StorageError::new("create", dir.display().to_string(), e.to_string(), ErrorKind::Other)
        })?;
        let url = url::Url::from_directory_path(&dir).map_err(|()| {
            StorageError::new("use", dir.display().to_string(), "not an absolute path", ErrorKind::Config)
        })?;
        Ok((Arc::new(object_store::local::LocalFileSystem::new()), url))
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, key: &str) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.split('/').filter(|p| !p.is_empty()));
        path
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Object>, StorageError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Object { version: version_of(&bytes), bytes: Bytes::from(bytes) })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail("read", &path)(e)),
        }
    }

    /// Writes `bytes` to a temporary file beside `path` and fsyncs it; returns its name.
    fn write_temporary(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, StorageError> {
        let dir = path.parent().unwrap_or(&self.root);
        create_dirs(dir).map_err(fail("create", dir))?;
        let tmp = temporary_name(path);
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(fail("write", path)(e));
        }
        Ok(tmp)
    }

    pub(crate) fn put(&self, key: &str, bytes: &[u8]) -> Result<Version, StorageError> {
        let path = self.path(key);
        let tmp = self.write_temporary(&path, bytes)?;
        self.rename_into_place(&tmp, &path)?;
        Ok(version_of(bytes))
    }

    pub(crate) fn put_new(&self, key: &str, bytes: &[u8]) -> Result<Result<Version, Conflict>, StorageError> {
        let path = self.path(key);
        let tmp = self.write_temporary(&path, bytes)?;
        // A hard link fails if the name exists, atomically: put-if-absent.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                let dir = path.parent().unwrap_or(&self.root);
                sync_dir(dir).map_err(fail("sync", dir))?;
                Ok(Ok(version_of(bytes)))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Err(Conflict)),
            Err(e) => Err(fail("create", &path)(e)),
        }
    }

    /// Replaces `key` if its content is still the one `expected` names. The check and the
    /// rename happen under an exclusive lock on a hidden file beside it (`.<name>.lock`, never
    /// listed), since the shards of a run are processes that may edit one file at once.
    pub(crate) fn replace(
        &self,
        key: &str,
        bytes: &[u8],
        expected: &Version,
    ) -> Result<Result<Version, Conflict>, StorageError> {
        let path = self.path(key);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{name}.lock"));
        if let Some(dir) = lock_path.parent() {
            fs::create_dir_all(dir).map_err(fail("create", dir))?;
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(fail("open", &lock_path))?;
        lock.lock().map_err(fail("lock", &lock_path))?;
        let replaced = match self.get(key)? {
            Some(current) if current.version == *expected => self.put(key, bytes).map(Ok),
            _ => Ok(Err(Conflict)),
        };
        // Closing the file releases the lock.
        drop(lock);
        replaced
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail("remove", &path)(e)),
        }
        let dir = path.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(fail("sync", dir))
    }

    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Entry>, StorageError> {
        let mut out = Vec::new();
        let start = self.path(prefix);
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(fail("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(fail("list", &dir))?;
                let path = entry.path();
                // An entry removed between the listing and its stat (another writer of the
                // output, such as a shard of the same run) is not listed.
                let kind = match entry.file_type() {
                    Ok(kind) => kind,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(fail("list", &path)(e)),
                };
                if kind.is_dir() {
                    pending.push(path);
                } else if !entry.file_name().to_string_lossy().starts_with('.') {
                    let meta = match entry.metadata() {
                        Ok(meta) => meta,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(fail("list", &path)(e)),
                    };
                    out.push(Entry {
                        key: self.key_of(&path),
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn key_of(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    pub(crate) fn list_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.path(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(fail("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(fail("list", &dir))?;
            if entry.file_type().map_err(fail("list", &dir))?.is_dir() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }

    pub(crate) fn delete_all(&self, prefix: &str) -> Result<(), StorageError> {
        let dir = self.path(prefix);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return self.delete(prefix),
            Err(e) => return Err(fail("remove", &dir)(e)),
        }
        match dir.parent() {
            Some(parent) => sync_dir(parent).or_else(ignore_missing).map_err(fail("sync", parent)),
            None => Ok(()),
        }
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (self.path(from), self.path(to));
        let dir = target.parent().unwrap_or(&self.root);
        create_dirs(dir).map_err(fail("create", dir))?;
        fs::rename(&source, &target).map_err(fail("move", &source))?;
        sync_dir(dir).map_err(fail("sync", dir))?;
        match source.parent() {
            Some(old) if old != dir => sync_dir(old).map_err(fail("sync", old)),
            _ => Ok(()),
        }
    }

    pub(crate) fn publish_file(&self, staged: &Path, key: &str) -> Result<(), StorageError> {
        File::open(staged).and_then(|f| f.sync_all()).map_err(fail("sync", staged))?;
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        create_dirs(dir).map_err(fail("create", dir))?;
        self.rename_into_place(staged, &path)
    }

    /// The one step readers observe: the old file is replaced by the complete new one.
    fn rename_into_place(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        if let Err(e) = fs::rename(from, to) {
            let _ = fs::remove_file(from);
            return Err(fail("publish", to)(e));
        }
        let dir = to.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(fail("sync", dir))
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

/// Runs `future` on I/O threads shared by every local output (created on first use): a local
/// output has no store client of its own to keep them in.
pub(crate) fn block_on<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, StorageError> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kpipe-storage-local")
            .enable_all()
            .build()
            .ok()
    });
    let Some(runtime) = runtime else {
        return Err(StorageError::new(
            "start",
            "the local I/O threads",
            "the runtime did not start",
            ErrorKind::Other,
        ));
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| StorageError::new("finish", "a local I/O call", "it was cancelled", ErrorKind::Other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_writes_detect_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBackend::new(dir.path().join("out"));
        let v1 = local.put_new("a/b.json", b"one").unwrap().unwrap();
        assert_eq!(local.put_new("a/b.json", b"two").unwrap(), Err(Conflict));
        let v2 = local.replace("a/b.json", b"two", &v1).unwrap().unwrap();
        assert_eq!(local.replace("a/b.json", b"three", &v1).unwrap(), Err(Conflict));
        assert_eq!(local.get("a/b.json").unwrap().unwrap().version, v2);
        assert_eq!(&local.get("a/b.json").unwrap().unwrap().bytes[..], b"two");
        // No temporary file is left behind; the hidden lock file of the replaces stays (another
        // process may wait on it) and is never listed.
        let mut names: Vec<_> =
            fs::read_dir(dir.path().join("out/a")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [".b.json.lock", "b.json"]);
        let listed: Vec<String> = local.list("a").unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(listed, ["a/b.json"]);
    }

    #[test]
    fn the_conditional_write_probe_passes_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::Storage::local(dir.path().join("out"));
        storage.probe_conditional_writes(".kpipe/probe-1").unwrap();
        assert!(storage.get(".kpipe/probe-1").unwrap().is_none());
    }

    #[test]
    fn listing_folders_publishing_and_removing() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBackend::new(dir.path().to_path_buf());
        local.put("m/s=a/d=1/part.parquet", b"x").unwrap();
        local.put("m/s=b/d=2/part.parquet", b"yy").unwrap();
        let staged = dir.path().join("staged");
        fs::write(&staged, b"zzz").unwrap();
        local.publish_file(&staged, "m/s=b/d=3/part.parquet").unwrap();
        assert!(!staged.exists());
        let mut keys = local.list("m").unwrap();
        keys.sort();
        assert!(keys.iter().all(|e| e.modified.is_some()));
        assert_eq!(
            keys.iter().map(|e| (e.key.as_str(), e.size)).collect::<Vec<_>>(),
            [("m/s=a/d=1/part.parquet", 1), ("m/s=b/d=2/part.parquet", 2), ("m/s=b/d=3/part.parquet", 3)]
        );
        local.rename("m/s=b/d=3/part.parquet", "m/b.3.parquet").unwrap();
        assert_eq!(&local.get("m/b.3.parquet").unwrap().unwrap().bytes[..], b"zzz");
        assert!(local.get("m/s=b/d=3/part.parquet").unwrap().is_none());
        let gone = local.rename("m/s=b/d=3/part.parquet", "m/b.3.parquet").unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
        local.delete("m/b.3.parquet").unwrap();
        let mut folders = local.list_folders("m").unwrap();
        folders.sort();
        assert_eq!(folders, ["s=a", "s=b"]);
        local.delete_all("m/s=b/d=2").unwrap();
        local.delete_all("m/none").unwrap();
        local.delete("m/s=a/d=1/part.parquet").unwrap();
        local.delete("m/s=a/d=1/part.parquet").unwrap();
        assert!(local.list("m").unwrap().is_empty());
        assert!(local.list("nothing/here").unwrap().is_empty());
        assert!(local.get("m/none").unwrap().is_none());
    }
}
