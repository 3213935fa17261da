//! An Azure Blob Storage-compatible server: Azurite's blob service.

use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use object_store::ObjectStore;
use object_store::azure::MicrosoftAzureBuilder;
use sha2::{Digest, Sha256};

use super::process::ServerProcess;
use super::{ServiceError, http, install, install_crypto_provider, unique_name};

const SERVER: &str = "Azurite blob service";
/// Azurite's well-known account and key.
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The API version of the container-creating request (any will do: `--skipApiVersionCheck`).
const API_VERSION: &str = "2021-08-06";

/// Azurite's blob service on 127.0.0.1 with a fresh container; stopped on drop.
#[derive(Debug)]
pub struct AzuriteServer {
    process: ServerProcess,
    container: String,
    store: Arc<dyn ObjectStore>,
}

/// Starts Azurite's blob service on a free port and creates a fresh container, installing
/// Azurite first if needed (see the [module docs](super)).
pub fn azurite() -> Result<AzuriteServer, ServiceError> {
    install_crypto_provider();
    let installed = install::ensure_installed()?;
    let process = ServerProcess::start(SERVER, &format!("/{ACCOUNT}?comp=list"), |port, dir| {
        let mut command = Command::new(&installed.azurite_blob);
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .arg("--location")
            .arg(dir)
            // object_store sends a newer x-ms-version than Azurite knows; loose mode ignores
            // headers it does not support; no telemetry leaves the machine.
            .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry"]);
        command
    })?;

    let container = unique_name("kpipe");
    create_container(process.port(), &container)?;

    let store = builder(process.port(), &container)
        .build()
        .map_err(|e| setup_error(format!("building the object_store client: {e}")))?;
    Ok(AzuriteServer { process, container, store: Arc::new(store) })
}

fn setup_error(reason: String) -> ServiceError {
    ServiceError::Setup { server: SERVER, reason }
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{ACCOUNT}")
}

/// An explicit endpoint rather than `with_use_emulator(true)`, which would read the port from
/// the process-wide `AZURITE_BLOB_STORAGE_URL` (see the module docs for what that changes).
fn builder(port: u16, container: &str) -> MicrosoftAzureBuilder {
    MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_access_key(ACCOUNT_KEY)
        .with_endpoint(endpoint(port))
        .with_container_name(container)
        .with_allow_http(true)
}

/// `PUT /{account}/{container}?restype=container`, signed with the account key (Shared Key).
fn create_container(port: u16, container: &str) -> Result<(), ServiceError> {
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    // https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key: the verb,
    // eleven empty standard headers (Content-Length is empty when 0), the x-ms- headers, the
    // canonicalized resource ("/" account, the URL's path, then the query parameters).
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n\
         /{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    );
    let key = BASE64.decode(ACCOUNT_KEY).map_err(|e| setup_error(format!("the account key: {e}")))?;
    let signature = BASE64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!("SharedKey {ACCOUNT}:{signature}");
    let response = http::request(
        port,
        "PUT",
        &format!("/{ACCOUNT}/{container}?restype=container"),
        &[("x-ms-date", &date), ("x-ms-version", API_VERSION), ("Authorization", &authorization)],
    )
    .map_err(|e| setup_error(format!("creating container {container}: {e}")))?;
    if response.status == 201 {
        Ok(())
    } else {
        Err(setup_error(format!(
            "creating container {container}: HTTP {}: {}",
            response.status, response.body
        )))
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

impl AzuriteServer {
    /// The blob service's account URL: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        endpoint(self.process.port())
    }

    /// `http://127.0.0.1:PORT`, what `AZURITE_BLOB_STORAGE_URL` holds.
    pub fn blob_service_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port())
    }

    /// The container created for this server.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The well-known account, `devstoreaccount1`.
    pub fn account(&self) -> &str {
        ACCOUNT
    }

    /// The well-known account key.
    pub fn account_key(&self) -> &str {
        ACCOUNT_KEY
    }

    /// `az://CONTAINER/PREFIX` (a leading `/` of `prefix` is dropped).
    pub fn url(&self, prefix: &str) -> String {
        format!("az://{}/{}", self.container, prefix.trim_start_matches('/'))
    }

    /// What a child process needs to reach the container: the variables `object_store`'s
    /// `MicrosoftAzureBuilder::from_env` reads (account, key, `AZURE_STORAGE_USE_EMULATOR=true`,
    /// and `AZURITE_BLOB_STORAGE_URL`, which its emulator mode reads for the address), plus
    /// `AZURE_STORAGE_CONNECTION_STRING` for the Azure SDKs and `adlfs`.
    pub fn env(&self) -> Vec<(String, String)> {
        let connection_string = format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            self.endpoint()
        );
        [
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.to_owned()),
            ("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY.to_owned()),
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_owned()),
            ("AZURITE_BLOB_STORAGE_URL", self.blob_service_url()),
            ("AZURE_ALLOW_HTTP", "true".to_owned()),
            ("AZURE_STORAGE_CONNECTION_STRING", connection_string),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// An `object_store` client for the container.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// A builder configured like [`Self::object_store`], to build a concrete `MicrosoftAzure`
    /// (for `MultipartStore`) or to change options.
    pub fn builder(&self) -> MicrosoftAzureBuilder {
        builder(self.process.port(), &self.container)
    }

    /// The server's last lines of output (its request log), for diagnosing a failed test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
