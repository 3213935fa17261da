//! A server process on a free 127.0.0.1 port, stopped when dropped or when this process dies.

use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ServiceError, http};

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports to try when another process takes the one just found.
const PORT_ATTEMPTS: usize = 3;
/// How many of the server's last output lines an error quotes.
const LOG_TAIL_LINES: usize = 40;

/// Runs the server (`"$@"`) in the background and stops it when this shell's stdin (a pipe from
/// the test process) closes: on drop, or when the test process dies without dropping (a panic
/// that aborts, a kill), so no server outlives its test. Exits with the server's status.
const WATCHDOG: &str = r#"
exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
{ read -r _ <&3; kill "$server" 2>/dev/null; sleep 5; kill -9 "$server" 2>/dev/null; } &
watchdog=$!
exec 3<&-
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A running server.
#[derive(Debug)]
pub(super) struct ServerProcess {
    name: &'static str,
    port: u16,
    child: Child,
    /// Closing it stops the server (see [`WATCHDOG`]).
    stdin: Option<ChildStdin>,
    /// The server's working and data directory, with its log; removed after the server stopped.
    dir: TempDir,
}

impl ServerProcess {
    /// Starts the server that `command(port, data_dir)` describes (program, arguments,
    /// environment) on a free port, and waits until `GET probe_path` gets any HTTP answer.
    pub(super) fn start(
        name: &'static str,
        probe_path: &str,
        command: impl Fn(u16, &Path) -> Command,
    ) -> Result<Self, ServiceError> {
        let mut attempt = 1;
        loop {
            match Self::start_once(name, probe_path, &command) {
                Err(ServiceError::Start { log, .. })
                    if attempt < PORT_ATTEMPTS
                        && (log.contains("Address already in use") || log.contains("EADDRINUSE")) =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(
        name: &'static str,
        probe_path: &str,
        command: &impl Fn(u16, &Path) -> Command,
    ) -> Result<Self, ServiceError> {
        let start_error = |reason: String| ServiceError::Start { server: name, reason, log: String::new() };
        let dir = tempfile::Builder::new()
            .prefix(&format!("kpipe-{}-", name.split_whitespace().next().unwrap_or("server").to_lowercase()))
            .tempdir()
            .map_err(|e| start_error(format!("cannot create a temporary directory: {e}")))?;
        let port = free_port().map_err(|e| start_error(format!("cannot find a free port: {e}")))?;

        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)
            .map_err(|e| start_error(format!("cannot create {}: {e}", log_path.display())))?;
        let log_too = log.try_clone().map_err(|e| start_error(format!("cannot share the log file: {e}")))?;

        let server = command(port, dir.path());
        let mut wrapped = Command::new("bash");
        wrapped
            .args([OsStr::new("-c"), OsStr::new(WATCHDOG), OsStr::new(name)])
            .arg(server.get_program())
            .args(server.get_args())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_too);
        for (key, value) in server.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        let mut child = wrapped
            .spawn()
            .map_err(|e| start_error(format!("cannot run {:?} under bash: {e}", server.get_program())))?;
        let stdin = child.stdin.take();
        let mut process = Self { name, port, child, stdin, dir };
        process.wait_until_ready(probe_path)?;
        Ok(process)
    }

    fn wait_until_ready(&mut self, probe_path: &str) -> Result<(), ServiceError> {
        let started = Instant::now();
        loop {
            if let Some(reason) = self.exited() {
                return Err(self.start_error(reason));
            }
            if http::request(self.port, "GET", probe_path, &[]).is_ok() {
                // Whoever answered, the server must still be running (it would have exited if
                // another process had taken its port).
                return match self.exited() {
                    Some(reason) => Err(self.start_error(reason)),
                    None => Ok(()),
                };
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(format!(
                    "no answer on 127.0.0.1:{} within {} s",
                    self.port,
                    START_TIMEOUT.as_secs()
                )));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// `Some(why)` when the server process has exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("it exited ({status})")),
            Err(e) => Some(format!("cannot check on it: {e}")),
        }
    }

    fn start_error(&self, reason: String) -> ServiceError {
        ServiceError::Start { server: self.name, reason, log: self.log_tail() }
    }

    /// The port the server listens on, on 127.0.0.1.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// The server's last lines of output.
    pub(super) fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.path().join("server.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // The watchdog sends SIGTERM (SIGKILL 5 s later) when its stdin closes.
        drop(self.stdin.take());
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if started.elapsed() < STOP_TIMEOUT => sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
