//! The one storage layer under everything kpipe writes: metric and KPI partitions, quarantine
//! files, state, the run lock. An output is a local directory or a prefix in S3, Google Cloud
//! Storage or Azure Blob Storage; callers name objects by keys relative to the output
//! (`metrics/...`, `.kpipe/state/...`), whose names are defined in `kpipe_sink_parquet::layout`.
//!
//! Invariants, for every backend:
//! - A published object is visible whole or not at all: a local file is written under a
//!   temporary name, fsynced and renamed (then its folder fsynced); an object is one PUT or a
//!   completed multipart upload of its final key. A killed process leaves nothing partial
//!   visible.
//! - Multipart uploads are journaled under `.kpipe/uploads/` before their first part, so an
//!   upload a killed process left behind is aborted by the next writer of the same source.
//! - Conditional writes ([`Storage::put_new`], [`Storage::replace`]) detect a concurrent writer
//!   instead of silently overwriting it (ETag match and put-if-absent on object stores).
//! - Errors name the operation and the object, and carry no credential: every secret the
//!   layer was given, by option or environment, is scrubbed from their text.
//!
//! The API is synchronous: writers run on blocking threads. Object-store calls run on a small
//! runtime of the layer's own, so a call from async code does not need a runtime context (it
//! blocks its thread for the call, as a file system call would).

mod local;
pub mod location;
mod object;
mod s3_uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

pub use location::{Cloud, OutputLocation, StorageOptions};

/// What went wrong, naming the operation and the object.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {target}: {reason}")]
pub struct StorageError {
    op: &'static str,
    target: String,
    reason: String,
    kind: ErrorKind,
}

/// The broad class of a [`StorageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// Credentials were refused or missing.
    Denied,
    /// The configuration (URL, options) is not usable.
    Config,
    /// Anything else: I/O, network, the service.
    Other,
}

impl StorageError {
    pub(crate) fn new(
        op: &'static str,
        target: impl Into<String>,
        reason: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        StorageError { op, target: target.into(), reason: reason.into(), kind }
    }

    /// The class of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A version of an object, for conditional replacement: its ETag on object stores, a hash of
/// its content on a local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub(crate) String);

impl Version {
    /// The version as text (an ETag or a content hash).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An object read back.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its content.
    pub bytes: Bytes,
    /// Its version, for [`Storage::replace`].
    pub version: Version,
}

/// A conditional write lost: another writer created or changed the object first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict;

/// One object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Its key, relative to the output.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, where the store says.
    pub modified: Option<std::time::SystemTime>,
}

/// The output's storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Arc<Backend>,
}

#[derive(Debug)]
enum Backend {
    Local(local::LocalBackend),
    Object(object::ObjectBackend),
}

impl Storage {
    /// A local directory (created on first write).
    pub fn local(root: impl Into<PathBuf>) -> Storage {
        Storage { backend: Arc::new(Backend::Local(local::LocalBackend::new(root.into()))) }
    }

    /// The storage of `location`: object stores take their credentials from the cloud's
    /// environment variables and chains, and `options` on top.
    pub fn open(location: &OutputLocation, options: &StorageOptions) -> Result<Storage, StorageError> {
        match location {
            OutputLocation::Local(dir) => {
                if let Some(name) = options.values.keys().find(|k| !local::OPTIONS.contains(&k.as_str())) {
                    return Err(StorageError::new(
                        "use",
                        location.to_string(),
                        format!(
                            "[pipeline.storage] option `{name}` applies to object stores, not to a local directory"
                        ),
                        ErrorKind::Config,
                    ));
                }
                Ok(Storage::local(dir.clone()))
            }
            OutputLocation::Object { cloud, url } => Ok(Storage {
                backend: Arc::new(Backend::Object(object::ObjectBackend::open(*cloud, url, options)?)),
            }),
        }
    }

    /// The output as configured, for messages (no credentials).
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Local(l) => l.root().display().to_string(),
            Backend::Object(o) => o.describe(),
        }
    }

    /// Where `key` is, for messages: a path or a URL.
    pub fn describe_key(&self, key: &str) -> String {
        match &*self.backend {
            Backend::Local(l) => l.path(key).display().to_string(),
            Backend::Object(o) => o.describe_key(key),
        }
    }

    /// The file of `key` on this machine, for a local output (to be read in place).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        match &*self.backend {
            Backend::Local(l) => Some(l.path(key)),
            Backend::Object(_) => None,
        }
    }

    /// The directory, for a local output.
    pub fn local_root(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Local(l) => Some(l.root()),
            Backend::Object(_) => None,
        }
    }

    /// A folder on this machine where files are written before they are published under
    /// `area` (a key prefix such as `.kpipe/staging/<run>`): inside the output for a local
    /// directory, so that publishing is a rename; under the system's temporary directory
    /// (`TMPDIR`) for an object store, from where they are uploaded.
    pub fn staging_dir(&self, area: &str) -> PathBuf {
        match &*self.backend {
            Backend::Local(l) => l.path(area),
            Backend::Object(o) => o.staging_dir(area),
        }
    }

    /// Reads an object; `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Object>, StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.get(key),
            Backend::Object(o) => o.get(key),
        }
    }

    /// Writes an object whole, replacing any previous one: durable (fsynced) before it is
    /// visible.
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<Version, StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.put(key, &bytes),
            Backend::Object(o) => o.put(key, bytes),
        }
    }

    /// Writes an object only if there is none yet.
    pub fn put_new(&self, key: &str, bytes: Bytes) -> Result<Result<Version, Conflict>, StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.put_new(key, &bytes),
            Backend::Object(o) => o.put_new(key, bytes),
        }
    }

    /// Replaces an object only if it is still at `expected`.
    pub fn replace(
        &self,
        key: &str,
        bytes: Bytes,
        expected: &Version,
    ) -> Result<Result<Version, Conflict>, StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.replace(key, &bytes, expected),
            Backend::Object(o) => o.replace(key, bytes, expected),
        }
    }

    /// Removes an object; one already gone is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.delete(key),
            Backend::Object(o) => o.delete(key),
        }
    }

    /// Moves the object `from` to `to`, replacing what `to` held: one rename on a local output
    /// (its folders fsynced); a copy then a delete on an object store, so that a reader or a
    /// crash in between finds the object under both keys, never under neither. A missing
    /// `from` is [`ErrorKind::NotFound`].
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.rename(from, to),
            Backend::Object(o) => o.rename(from, to),
        }
    }

    /// Every object below `prefix` (a folder, without a trailing `/`), in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>, StorageError> {
        let mut found = match &*self.backend {
            Backend::Local(l) => l.list(prefix)?,
            Backend::Object(o) => o.list(prefix)?,
        };
        found.sort();
        Ok(found)
    }

    /// The objects below the folder `folder` whose keys start with `folder/<name_prefix>`
    /// (`metrics` and `li_ads`: `li_ads.*`, `li_ads-3of8.*`, and `li_ads_2.*`), with a listing
    /// whose cost follows what it returns rather than the folder's size on object stores.
    pub fn list_named(&self, folder: &str, name_prefix: &str) -> Result<Vec<Entry>, StorageError> {
        match &*self.backend {
            Backend::Local(l) => {
                let wanted = format!("{folder}/{name_prefix}");
                Ok(l.list(folder)?.into_iter().filter(|e| e.key.starts_with(&wanted)).collect())
            }
            Backend::Object(o) => o.list_named(folder, name_prefix),
        }
    }

    /// The names directly below `prefix` that hold objects (folders), in name order.
    pub fn list_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut found = match &*self.backend {
            Backend::Local(l) => l.list_folders(prefix)?,
            Backend::Object(o) => o.list_folders(prefix)?,
        };
        found.sort();
        Ok(found)
    }

    /// Removes every object below `prefix`.
    pub fn delete_all(&self, prefix: &str) -> Result<(), StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.delete_all(prefix),
            Backend::Object(o) => o.delete_all(prefix),
        }
    }

    /// Publishes the file `staged` (complete, on this machine) as `key`, replacing what was
    /// there: a rename on a local output (fsynced, as is the folder), an upload on an object
    /// store (one PUT, or a multipart upload journaled under `journal` so that a killed
    /// process's upload is aborted by [`Storage::abort_orphaned_uploads`]). The staged file is
    /// gone afterwards.
    pub fn publish_file(&self, staged: &Path, key: &str, journal: &str) -> Result<(), StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.publish_file(staged, key),
            Backend::Object(o) => o.publish_file(staged, key, journal),
        }
    }

    /// Aborts the multipart uploads that processes which did not finish them left: those
    /// journaled under `journal`, and on S3 (whose uploads can be listed) every upload in
    /// progress of a key starting with `below` (a folder ending in `/`, or the start of file
    /// names such as `metrics/li.`), which catches one started but killed before it was
    /// journaled. Only for keys no other process is writing (the caller holds the run lock).
    /// Returns how many.
    pub fn abort_orphaned_uploads(&self, journal: &str, below: &str) -> Result<usize, StorageError> {
        match &*self.backend {
            Backend::Local(_) => Ok(0),
            Backend::Object(o) => o.abort_orphaned_uploads(journal, below),
        }
    }

    /// The store under the output and the URL of `key` (a folder) in it, for a table format
    /// whose library does its own I/O through `object_store` (Delta Lake): the store is rooted
    /// where the URL's path starts, so that the library's paths and the layer's keys name the
    /// same objects. A local output is created if missing.
    pub fn object_store_at(
        &self,
        key: &str,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, url::Url), StorageError> {
        match &*self.backend {
            Backend::Local(l) => l.object_store_at(key),
            Backend::Object(o) => o.object_store_at(key),
        }
    }

    /// Runs `future` (I/O on [`Storage::object_store_at`]'s store) to completion on the
    /// layer's I/O threads and waits for it; callable from any thread that may block.
    pub fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StorageError> {
        match &*self.backend {
            Backend::Local(_) => local::block_on(future),
            Backend::Object(o) => o.block_on(future),
        }
    }

    /// Checks that the store refuses a second create-only write of one object (`key`, removed
    /// afterwards): what Delta Lake commits rely on (`If-None-Match: *` on S3). A store that
    /// accepts both writes would let two commits overwrite each other.
    pub fn probe_conditional_writes(&self, key: &str) -> Result<(), StorageError> {
        let payload = Bytes::from_static(b"kpipe check: create-only write probe, removed right after\n");
        let first = self.put_new(key, payload.clone());
        let second = first.as_ref().ok().map(|_| self.put_new(key, payload));
        let _ = self.delete(key);
        match (first?, second.transpose()?) {
            (Ok(_), Some(Err(Conflict))) => Ok(()),
            (Err(Conflict), _) => Err(StorageError::new(
                "write",
                self.describe_key(key),
                "a create-only write found the probe object already there",
                ErrorKind::Other,
            )),
            _ => Err(StorageError::new(
                "write",
                self.describe_key(key),
                "the store accepted a second create-only write of the same object: it ignores \
                 If-None-Match, and Delta Lake commits (`format = \"delta\"`) need it to keep \
                 concurrent writers apart",
                ErrorKind::Config,
            )),
        }
    }

    /// Checks that the output can be written: creates the directory, or lists, writes, reads
    /// and deletes a probe object under `key`.
    pub fn probe(&self, key: &str) -> Result<(), StorageError> {
        let payload = Bytes::from_static(b"kpipe check: this object is removed right after it is written\n");
        self.list(key.rsplit_once('/').map_or("", |(dir, _)| dir))?;
        self.put(key, payload.clone())?;
        let back = self.get(key)?;
        self.delete(key)?;
        match back {
            Some(o) if o.bytes == payload => Ok(()),
            _ => Err(StorageError::new(
                "read back",
                self.describe_key(key),
                "the probe object did not read back as written",
                ErrorKind::Other,
            )),
        }
    }
}
