//! An S3-compatible server: moto's stand-alone server.

use std::process::Command;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use super::process::ServerProcess;
use super::{ServiceError, http, install, install_crypto_provider, unique_name};

const SERVER: &str = "moto S3 server";
/// moto accepts any credentials; these are what clients sign with.
const ACCESS_KEY_ID: &str = "kpipe-test-key";
const SECRET_ACCESS_KEY: &str = "kpipe-test-secret";
const REGION: &str = "us-east-1";

/// An S3-compatible server (moto) on 127.0.0.1 with a fresh bucket; stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    process: ServerProcess,
    bucket: String,
    store: Arc<dyn ObjectStore>,
}

/// Starts moto's S3 server on a free port and creates a fresh bucket, installing moto first if
/// needed (see the [module docs](super)).
pub fn s3_server() -> Result<S3Server, ServiceError> {
    install_crypto_provider();
    let installed = install::ensure_installed()?;
    let process = ServerProcess::start(SERVER, "/", |port, dir| {
        let mut command = Command::new(&installed.moto_server);
        command
            .args(["-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            // Spooled uploads and anything else moto writes go to the server's own directory.
            .env("TMPDIR", dir)
            .env("PYTHONUNBUFFERED", "1");
        command
    })?;

    let bucket = unique_name("kpipe");
    let created = http::request(process.port(), "PUT", &format!("/{bucket}"), &[])
        .map_err(|e| setup_error(format!("creating bucket {bucket}: {e}")))?;
    if created.status != 200 {
        return Err(setup_error(format!(
            "creating bucket {bucket}: HTTP {}: {}",
            created.status, created.body
        )));
    }

    let endpoint = endpoint(process.port());
    let store = builder(&endpoint, &bucket)
        .build()
        .map_err(|e| setup_error(format!("building the object_store client: {e}")))?;
    Ok(S3Server { process, bucket, store: Arc::new(store) })
}

fn setup_error(reason: String) -> ServiceError {
    ServiceError::Setup { server: SERVER, reason }
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn builder(endpoint: &str, bucket: &str) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_access_key_id(ACCESS_KEY_ID)
        .with_secret_access_key(SECRET_ACCESS_KEY)
        .with_region(REGION)
        .with_allow_http(true)
}

impl S3Server {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        endpoint(self.process.port())
    }

    /// The bucket created for this server.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id clients sign with (moto accepts any).
    pub fn access_key_id(&self) -> &str {
        ACCESS_KEY_ID
    }

    /// The secret access key clients sign with.
    pub fn secret_access_key(&self) -> &str {
        SECRET_ACCESS_KEY
    }

    /// The region (`us-east-1`).
    pub fn region(&self) -> &str {
        REGION
    }

    /// `s3://BUCKET/PREFIX` (a leading `/` of `prefix` is dropped).
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_start_matches('/'))
    }

    /// What a child process needs to reach the bucket with the standard AWS variables (read by
    /// `object_store`'s `AmazonS3Builder::from_env`, the AWS SDKs, pyarrow): credentials,
    /// region, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP=true`, and `AWS_EC2_METADATA_DISABLED=true`
    /// so that no SDK looks for instance metadata.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// An `object_store` client for the bucket.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// A builder configured like [`Self::object_store`], to build a concrete `AmazonS3` (for
    /// `MultipartStore`) or to change options.
    pub fn builder(&self) -> AmazonS3Builder {
        builder(&self.endpoint(), &self.bucket)
    }

    /// The server's last lines of output (its request log), for diagnosing a failed test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}
