//! One run per output directory at a time: `kpipe run`, `kpipe backfill` and the scheduler all
//! take `<output>/.kpipe/lock` before they touch the output. The lock is an advisory file lock
//! held by the open file, so the operating system releases it when the process ends, however it
//! ends (a SIGKILL included): there is no stale lock to clean up.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory of kpipe's own files under an output directory.
pub const STATE_DIR: &str = ".kpipe";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another kpipe run is using {output} (lock {path}{holder}); runs of one output never overlap")]
    Busy {
        /// The output directory.
        output: PathBuf,
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into the lock file, if readable.
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
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `output`, or says who holds it.
    pub fn acquire(output: &Path) -> Result<RunLock, LockError> {
        let dir = output.join(STATE_DIR);
        let path = dir.join("lock");
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
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
                return Err(LockError::Busy { output: output.to_path_buf(), path, holder });
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
        Ok(RunLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
