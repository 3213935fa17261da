//! Real object-store servers on 127.0.0.1 for integration tests, and a Python virtualenv with
//! Parquet readers.
//!
//! - [`s3_server`]: moto's stand-alone server (`moto_server`, from PyPI), a fresh bucket.
//! - [`azurite`]: Azurite's blob service (from npm), a fresh container in the well-known
//!   `devstoreaccount1` account.
//! - [`python`]: the virtualenv's interpreter, with pyarrow, pandas, polars and duckdb.
//!
//! Each server is its own process on a free port with its own temporary data directory, and is
//! stopped when its handle is dropped (also when the test process dies: the server is started
//! under a small shell watchdog that stops it when the test process's end of a pipe closes). The
//! functions are synchronous and can be called from a plain `#[test]` or inside a tokio runtime.
//!
//! Everything is installed by `.ci/install-test-services` into `$KPIPE_TEST_SERVICES_DIR`
//! (default `$HOME/.cache/kpipe-test-services`); these functions run the script themselves
//! (serialized across test processes by a file lock) when its stamp does not match the script
//! and `crates/kpipe-testkit/python-requirements.txt`. A tool that cannot be installed or started
//! is an error that says why and how to install it, never a skipped test.
//!
//! # What the servers support through `object_store` 0.14.2
//!
//! Checked by `crates/kpipe-testkit/tests/it` (`cargo test -p kpipe-testkit --test it`), with
//! the stores as [`S3Server::object_store`] and [`AzuriteServer::object_store`] build them:
//!
//! | operation                                         | moto 5.2.6 (S3)         | Azurite 3.35.0          |
//! |---------------------------------------------------|-------------------------|-------------------------|
//! | put, get, get_range, head, delete                 | yes                     | yes                     |
//! | list, list_with_delimiter, list_with_offset       | yes                     | yes                     |
//! | `PutMode::Create`: a second create fails          | yes (412 → `AlreadyExists`) | yes (409 → `AlreadyExists`) |
//! | `PutMode::Update`: current ETag ok, stale fails   | yes (412 → `Precondition`)  | yes (412 → `Precondition`)  |
//! | `PutMode::Update` of a missing key fails          | yes (`Precondition`)    | yes (`Precondition`)    |
//! | `put_multipart` 12 MiB, invisible until `finish`  | yes                     | yes (blocks + block list) |
//! | `WriteMultipart::abort` leaves no object          | yes                     | yes                     |
//! | `create_multipart` + `abort_multipart`            | yes: the upload is gone, `complete_multipart` then fails | no-ops in `object_store`: Azure has no upload id, staged blocks stay uncommitted until they expire |
//!
//! The S3 store needs no special configuration: `object_store`'s default
//! [`S3ConditionalPut::ETagMatch`](object_store::aws::S3ConditionalPut) sends `If-None-Match: *`
//! and `If-Match: <etag>` on `PutObject`, and moto honours both. Differences from the real
//! services worth knowing:
//!
//! - [`AzuriteServer::object_store`] reaches Azurite through an explicit endpoint
//!   (`http://127.0.0.1:PORT/devstoreaccount1`) rather than `with_use_emulator(true)`, whose
//!   address comes from the process-wide `AZURITE_BLOB_STORAGE_URL` variable, so two servers in
//!   one test process could not coexist. Child processes get the emulator variables instead
//!   ([`AzuriteServer::env`]). Either way `list_with_offset` is right: Azurite 3.35 honours
//!   `startFrom`, and the emulator mode filters on the client.
//! - Azurite answers a create of an existing blob with `409 Conflict` (real Azure: 412);
//!   `object_store` maps both to `AlreadyExists`. It needs `--skipApiVersionCheck`:
//!   `object_store` sends a newer `x-ms-version` than it knows.
//! - moto keeps objects in memory and accepts any credentials and signature; it does not check
//!   that requests are signed correctly.
//! - Azurite 3.36 and later require node 21/22; the machines have node 20, hence 3.35.0.

mod azurite;
mod http;
mod install;
mod process;
mod s3;

use std::fmt;

pub use azurite::{AzuriteServer, azurite};
pub use install::{python, services_dir};
pub use s3::{S3Server, s3_server};

/// Why a test service could not be installed, started or set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// The tools are missing and `.ci/install-test-services` could not install them.
    Install {
        /// What went wrong, with the script's last lines of output when it ran.
        reason: String,
        /// The command that installs them.
        command: String,
    },
    /// A server did not start, died, or did not answer within the wait.
    Start {
        /// Which server.
        server: &'static str,
        /// What went wrong.
        reason: String,
        /// The last lines the server wrote to stdout and stderr.
        log: String,
    },
    /// The server runs but preparing it for a test (bucket, container, client) failed.
    Setup {
        /// Which server.
        server: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Install { reason, command } => {
                write!(f, "test services are not installed: {reason}\ninstall them with: {command}")
            }
            Self::Start { server, reason, log } => {
                write!(f, "{server} did not start: {reason}")?;
                if log.trim().is_empty() {
                    write!(f, " (it wrote nothing)")
                } else {
                    write!(f, "\n--- last lines of its output ---\n{}", log.trim_end())
                }
            }
            Self::Setup { server, reason } => write!(f, "{server}: {reason}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Installs ring as rustls' process-wide crypto provider (the workspace builds rustls without a
/// default one), so `object_store`'s HTTP client can be built. Idempotent.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A name no other bucket or container of this process has, valid for both S3 and Azure
/// (lowercase letters, digits and dashes, 3 to 63 characters).
fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}
