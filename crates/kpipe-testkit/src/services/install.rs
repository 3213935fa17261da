//! Runs `.ci/install-test-services` when what it installed is missing or stale.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use super::ServiceError;

/// The requirements the script installs into the virtualenv. Read at run time (as is the
/// script), so an edit takes effect without rebuilding.
const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python-requirements.txt");

/// `.ci/install-test-services` of the workspace this crate is in.
fn script() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).join(".ci").join("install-test-services")
}

/// How many of the script's last output lines an error quotes.
const TAIL_LINES: usize = 40;

/// Where the script installs: `$KPIPE_TEST_SERVICES_DIR`, or `$HOME/.cache/kpipe-test-services`.
pub fn services_dir() -> Result<PathBuf, ServiceError> {
    if let Some(dir) = std::env::var_os("KPIPE_TEST_SERVICES_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("kpipe-test-services")),
        None => Err(install_error("neither KPIPE_TEST_SERVICES_DIR nor HOME is set".to_owned())),
    }
}

/// The virtualenv's Python interpreter (with pyarrow, pandas, polars, duckdb and moto), after
/// running the install script if the virtualenv is missing or stale.
pub fn python() -> Result<PathBuf, ServiceError> {
    Ok(ensure_installed()?.python)
}

/// The installed tools.
#[derive(Debug, Clone)]
pub(super) struct Installed {
    pub(super) python: PathBuf,
    pub(super) moto_server: PathBuf,
    pub(super) azurite_blob: PathBuf,
    stamp: PathBuf,
}

impl Installed {
    fn new(dir: &Path) -> Self {
        Self {
            python: dir.join("venv/bin/python"),
            moto_server: dir.join("venv/bin/moto_server"),
            azurite_blob: dir.join("azurite/node_modules/.bin/azurite-blob"),
            stamp: dir.join(".installed"),
        }
    }

    /// Whether the script's stamp matches the script and the requirements as they are now, and
    /// every tool is in place.
    fn is_current(&self) -> Result<bool, ServiceError> {
        let mut expected = read(&script())?;
        expected.extend(read(Path::new(REQUIREMENTS))?);
        let stamp_matches = fs::read(&self.stamp).is_ok_and(|stamp| stamp == expected);
        Ok(stamp_matches && [&self.python, &self.moto_server, &self.azurite_blob].iter().all(|p| p.exists()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ServiceError> {
    fs::read(path).map_err(|e| install_error(format!("cannot read {}: {e}", path.display())))
}

fn install_command() -> String {
    let script = script();
    match std::env::var("KPIPE_TEST_SERVICES_DIR") {
        Ok(dir) if !dir.is_empty() => format!("KPIPE_TEST_SERVICES_DIR={dir} bash {}", script.display()),
        _ => format!("bash {}", script.display()),
    }
}

fn install_error(reason: String) -> ServiceError {
    ServiceError::Install { reason, command: install_command() }
}

/// Makes sure the tools are installed and current, running the install script if not. Threads
/// of this process wait on a mutex, other processes on a lock file in the services directory.
pub(super) fn ensure_installed() -> Result<Installed, ServiceError> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());

    let dir = services_dir()?;
    let installed = Installed::new(&dir);
    if installed.is_current()? {
        return Ok(installed);
    }

    let _guard = IN_PROCESS.lock().unwrap_or_else(PoisonError::into_inner);
    fs::create_dir_all(&dir).map_err(|e| install_error(format!("cannot create {}: {e}", dir.display())))?;
    let lock_path = dir.join(".testkit.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| install_error(format!("cannot open {}: {e}", lock_path.display())))?;
    // Released when `lock` is closed at the end of this function.
    lock.lock().map_err(|e| install_error(format!("cannot lock {}: {e}", lock_path.display())))?;

    // Another process may have installed while this one waited.
    if installed.is_current()? {
        return Ok(installed);
    }
    run_script(&dir)?;
    if installed.is_current()? {
        Ok(installed)
    } else {
        Err(install_error(format!(
            "{} finished, but its stamp {} does not match the script and {REQUIREMENTS}, or a tool \
             is missing (expected {}, {} and {})",
            install_command(),
            installed.stamp.display(),
            installed.python.display(),
            installed.moto_server.display(),
            installed.azurite_blob.display(),
        )))
    }
}

/// Runs the script, copying its output to this process's stderr as it comes (past the test
/// harness's capture: a cold install takes minutes) and quoting its tail if it fails.
fn run_script(dir: &Path) -> Result<(), ServiceError> {
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "kpipe-testkit: installing test services into {} ({})",
        dir.display(),
        install_command()
    );
    let mut child = Command::new("bash")
        // One pipe for both streams, in the order they were written.
        .args([OsStr::new("-c"), OsStr::new(r#"exec bash "$0" 2>&1"#), script().as_os_str()])
        .env("KPIPE_TEST_SERVICES_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| install_error(format!("cannot run bash: {e}")))?;

    let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(stderr, "  {line}");
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    let status = child.wait().map_err(|e| install_error(format!("waiting for the script: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        let tail: Vec<String> = tail.into();
        Err(install_error(format!(
            "{} failed ({status}); its last lines:\n{}",
            install_command(),
            tail.join("\n")
        )))
    }
}
