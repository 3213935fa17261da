//! One run per output at a time: `kpipe run`, `kpipe backfill`, `kpipe kpis` and the scheduler
//! all take the output's lock (`.kpipe/lock`) before they touch it.
//!
//! - On a local directory the lock is an advisory file lock held by the open file, so the
//!   operating system releases it when the process ends, however it ends (a SIGKILL included):
//!   there is no stale lock to clean up.
//! - On an object store it is a lease object created with put-if-absent, holding its owner
//!   (host, pid, run) and an expiry. A thread renews it (a conditional replace on its ETag)
//!   every third of the lease while the run lives; a lease whose expiry has passed (its holder
//!   was killed) is taken over with a conditional replace too, so two processes can never both
//!   take it. Clocks of the machines sharing an output are assumed to agree within a few
//!   seconds of the lease's length.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use kpipe_sink_parquet::{Storage, StorageError, layout};
use kpipe_storage::Version;

/// The directory of kpipe's own files under an output directory.
pub const STATE_DIR: &str = layout::STATE_DIR;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another kpipe run is using {output} (lock {path}{holder}); runs of one output never overlap")]
    Busy {
        /// The output.
        output: String,
        /// The lock file or object.
        path: String,
        /// Who holds it, if known.
        holder: String,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lease object cannot be read or written.
    #[error("cannot take the lock of {output}: {source}")]
    Storage {
        /// The output.
        output: String,
        /// Why.
        source: StorageError,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    /// Released when dropped.
    _held: Held,
    path: String,
}

/// What keeps the lock: the open file (its flock), or the lease with its renewing thread.
#[derive(Debug)]
enum Held {
    File(#[allow(dead_code, reason = "held for its lock, released when closed")] File),
    Lease(#[allow(dead_code, reason = "held for its Drop, which releases the lease")] Lease),
}

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// A token unique to this holding.
    pub holder_id: String,
    /// When it was taken.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl LeaseRecord {
    fn describe(&self) -> String {
        format!(
            "held by pid {} on {} since {}, lease until {}",
            self.pid,
            self.host,
            self.acquired_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

#[derive(Debug)]
struct Lease {
    storage: Storage,
    key: String,
    holder_id: String,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

impl RunLock {
    /// Takes the lock of `storage`'s output, or says who holds it. `lease` is how long a lease
    /// object lasts unless renewed (object stores only).
    pub fn acquire(storage: &Storage, lease: Duration) -> Result<RunLock, LockError> {
        RunLock::acquire_shard(storage, lease, kpipe_core::Shard::ALL)
    }

    /// Takes the lock of `shard`'s runs of `storage`'s output: two processes of one shard
    /// never run at once, while the shards of a run do (each writes files and state objects
    /// of its own). The whole configuration's lock is [`RunLock::acquire`]'s.
    pub fn acquire_shard(
        storage: &Storage,
        lease: Duration,
        shard: kpipe_core::Shard,
    ) -> Result<RunLock, LockError> {
        let key = layout::shard_lock_object(shard);
        match storage.local_root() {
            Some(_) => RunLock::acquire_file(storage, &key),
            None => RunLock::acquire_lease(storage, lease, &key),
        }
    }

    fn acquire_file(storage: &Storage, key: &str) -> Result<RunLock, LockError> {
        let path = storage.local_path(key).unwrap_or_else(|| PathBuf::from(key));
        let io = |source| LockError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .map(|h| format!(", held by {h}"))
                    .unwrap_or_default();
                return Err(LockError::Busy {
                    output: storage.describe(),
                    path: path.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message another run prints; the lock itself is the flock.
        let _ = file.set_len(0);
        let _ = writeln!(
            file,
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        Ok(RunLock { _held: Held::File(file), path: path.display().to_string() })
    }

    fn acquire_lease(storage: &Storage, lease: Duration, key: &str) -> Result<RunLock, LockError> {
        let key = key.to_owned();
        let output = storage.describe();
        let fail = |source| LockError::Storage { output: output.clone(), source };
        let holder_id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let record = LeaseRecord {
            host: host_name(),
            pid: std::process::id(),
            holder_id: holder_id.clone(),
            acquired_at: now,
            expires_at: now + lease,
        };
        let body = lease_body(&record);
        let version = match storage.put_new(&key, body.clone()).map_err(fail)? {
            Ok(version) => version,
            Err(_) => {
                let Some(current) = storage.get(&key).map_err(fail)? else {
                    // Released between the two calls: try once more.
                    return match storage.put_new(&key, body).map_err(fail)? {
                        Ok(version) => Ok(RunLock::leased(storage, key, holder_id, version, lease)),
                        Err(_) => Err(LockError::Busy {
                            output: output.clone(),
                            path: storage.describe_key(&key),
                            holder: String::new(),
                        }),
                    };
                };
                let holder: Option<LeaseRecord> = serde_json::from_slice(&current.bytes).ok();
                let expired = holder.as_ref().is_none_or(|h| h.expires_at < Utc::now());
                if !expired {
                    return Err(LockError::Busy {
                        output: output.clone(),
                        path: storage.describe_key(&key),
                        holder: holder.map(|h| format!(", {}", h.describe())).unwrap_or_default(),
                    });
                }
                let was = holder.map(|h| h.describe()).unwrap_or_else(|| "an unreadable lease".into());
                match storage.replace(&key, body, &current.version).map_err(fail)? {
                    Ok(version) => {
                        tracing::warn!(lock = %storage.describe_key(&key), previous = %was, "took over an expired lock: its holder stopped without releasing it");
                        version
                    }
                    Err(_) => {
                        return Err(LockError::Busy {
                            output: output.clone(),
                            path: storage.describe_key(&key),
                            holder: ", taken over by another process just now".into(),
                        });
                    }
                }
            }
        };
        Ok(RunLock::leased(storage, key, holder_id, version, lease))
    }

    fn leased(
        storage: &Storage,
        key: String,
        holder_id: String,
        version: Version,
        lease: Duration,
    ) -> RunLock {
        let version = Arc::new(Mutex::new(version));
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (storage, key, holder_id, stop) =
                (storage.clone(), key.clone(), holder_id.clone(), stop.clone());
            std::thread::Builder::new()
                .name("kpipe-lease".into())
                .spawn(move || renew(&storage, &key, &holder_id, &version, &stop, lease))
                .ok()
        };
        let path = storage.describe_key(&key);
        RunLock {
            _held: Held::Lease(Lease { storage: storage.clone(), key, holder_id, stop, renewer }),
            path,
        }
    }

    /// The lock file or object.
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn lease_body(record: &LeaseRecord) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(record).unwrap_or_default())
}

/// Renews the lease every third of its length until `stop`; a renewal that finds the lease
/// changed by someone else stops (it was taken over: this run's lease had lapsed).
fn renew(
    storage: &Storage,
    key: &str,
    holder_id: &str,
    version: &Mutex<Version>,
    stop: &AtomicBool,
    lease: Duration,
) {
    let step = lease / 3;
    let tick = Duration::from_millis(100).min(step);
    let mut waited = Duration::ZERO;
    let acquired_at = Utc::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        waited += tick;
        if waited < step {
            continue;
        }
        waited = Duration::ZERO;
        let Ok(mut current) = version.lock() else { return };
        let now = Utc::now();
        let record = LeaseRecord {
            host: host_name(),
            pid: std::process::id(),
            holder_id: holder_id.to_owned(),
            acquired_at,
            expires_at: now + lease,
        };
        match storage.replace(key, lease_body(&record), &current) {
            Ok(Ok(v)) => *current = v,
            Ok(Err(_)) => {
                tracing::error!(lock = %storage.describe_key(key), "the run lock was taken over by another process: this run's lease had lapsed");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the run lock; trying again"),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        // Released only if still ours: a lease taken over after it lapsed is the new holder's.
        match self.storage.get(&self.key) {
            Ok(Some(current)) => {
                let ours = serde_json::from_slice::<LeaseRecord>(&current.bytes)
                    .is_ok_and(|r| r.holder_id == self.holder_id);
                if ours && let Err(e) = self.storage.delete(&self.key) {
                    tracing::warn!(error = %e, "cannot release the run lock; it lapses by itself");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot release the run lock; it lapses by itself"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let lease = Duration::from_secs(30);
        let first = RunLock::acquire(&storage, lease).unwrap();
        let err = RunLock::acquire(&storage, lease).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        RunLock::acquire(&storage, lease).unwrap();
    }

    #[test]
    fn one_process_per_shard_and_the_shards_of_a_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let lease = Duration::from_secs(30);
        let shard = |k| kpipe_core::Shard::new(k, 4).unwrap();
        let first = RunLock::acquire_shard(&storage, lease, shard(1)).unwrap();
        let err = RunLock::acquire_shard(&storage, lease, shard(1)).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        assert!(err.to_string().contains("lock-1of4"), "{err}");
        let others: Vec<RunLock> = [0, 2, 3]
            .into_iter()
            .map(|k| RunLock::acquire_shard(&storage, lease, shard(k)).unwrap())
            .collect();
        drop((first, others));
        RunLock::acquire_shard(&storage, lease, shard(1)).unwrap();
    }
}
