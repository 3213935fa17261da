//! Where the output lives: a local directory, or a URL of an object store, with the store's
//! options from `[pipeline.storage]` and the cloud's own environment variables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

/// The object stores kpipe writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Amazon S3 and S3-compatible stores (MinIO, R2, Ceph): `s3://bucket/prefix`.
    S3,
    /// Google Cloud Storage: `gs://bucket/prefix`.
    Gcs,
    /// Azure Blob Storage and ADLS Gen2: `az://container/prefix`, `abfss://container@account.dfs.core.windows.net/prefix`.
    Azure,
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cloud::S3 => "S3",
            Cloud::Gcs => "Google Cloud Storage",
            Cloud::Azure => "Azure Blob Storage",
        })
    }
}

/// `pipeline.output`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix in an object store.
    Object {
        /// Which store.
        cloud: Cloud,
        /// The URL as configured, without credentials (a URL carrying a password is refused).
        url: Url,
    },
}

impl OutputLocation {
    /// Reads `text`: `s3://`, `s3a://`, `gs://`, `az://`, `azure://`, `abfs://`, `abfss://` URLs
    /// name object stores, `file://` URLs and everything else are directories (relative ones
    /// taken from `base_dir`, the configuration file's folder).
    pub fn parse(text: &str, base_dir: &Path) -> Result<OutputLocation, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "is empty; expected a directory such as \"out\" or a URL such as \"s3://bucket/prefix\""
                    .into(),
            );
        }
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let cloud = match scheme.as_deref() {
            None => return Ok(OutputLocation::Local(local_path(text, base_dir))),
            Some("file") => {
                let url = Url::parse(text).map_err(|e| format!("is not a valid file URL: {e}"))?;
                let path =
                    url.to_file_path().map_err(|()| "is a file URL without an absolute path".to_owned())?;
                return Ok(OutputLocation::Local(path));
            }
            Some("s3" | "s3a") => Cloud::S3,
            Some("gs") => Cloud::Gcs,
            Some("az" | "azure" | "abfs" | "abfss" | "adl") => Cloud::Azure,
            Some(other) => {
                return Err(format!(
                    "has the scheme `{other}://`, which kpipe does not write to; expected a directory, \
                     s3://, gs://, az:// or abfss://"
                ));
            }
        };
        let url = Url::parse(text).map_err(|e| format!("is not a valid URL: {e}"))?;
        if url.password().is_some() || (!url.username().is_empty() && cloud != Cloud::Azure) {
            return Err(
                "carries credentials in the URL; give them in the environment instead (see docs/storage.md)"
                    .into(),
            );
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "names no bucket or container; expected {}://<bucket>/<prefix>",
                url.scheme()
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("has a query or fragment; store options go in [pipeline.storage]".into());
        }
        Ok(OutputLocation::Object { cloud, url })
    }

    /// The local directory, for local outputs.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            OutputLocation::Local(dir) => Some(dir),
            OutputLocation::Object { .. } => None,
        }
    }
}

impl fmt::Display for OutputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputLocation::Local(dir) => write!(f, "{}", dir.display()),
            OutputLocation::Object { url, .. } => f.write_str(url.as_str().trim_end_matches('/')),
        }
    }
}

fn local_path(text: &str, base_dir: &Path) -> PathBuf {
    if text == "." { base_dir.to_path_buf() } else { base_dir.join(text) }
}

/// `[pipeline.storage]`: options handed to the object store (`endpoint`, `region`,
/// `allow_http`, ...), under the names `object_store` documents for each cloud, plus kpipe's own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    /// Option name to value, `${NAME}` already substituted.
    pub values: BTreeMap<String, String>,
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be keys or tokens: only the names print.
        f.debug_struct("StorageOptions").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

/// Option names whose values are credentials: never printed, scrubbed from every error.
pub(crate) fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "token", "key", "password", "sas", "credential", "signature"].iter().any(|w| name.contains(w))
        && !name.ends_with("key_id")
        && !name.ends_with("_id")
}

/// Environment variables whose values are credentials of some cloud.
pub(crate) const SECRET_ENV: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        let base = Path::new("/cfg");
        assert_eq!(OutputLocation::parse("out", base).unwrap(), OutputLocation::Local("/cfg/out".into()));
        assert_eq!(OutputLocation::parse(".", base).unwrap(), OutputLocation::Local("/cfg".into()));
        assert_eq!(OutputLocation::parse("/abs", base).unwrap(), OutputLocation::Local("/abs".into()));
        assert_eq!(
            OutputLocation::parse("file:///data/out", base).unwrap(),
            OutputLocation::Local("/data/out".into())
        );
        let s3 = OutputLocation::parse("s3://bucket/a/b", base).unwrap();
        assert!(matches!(&s3, OutputLocation::Object { cloud: Cloud::S3, .. }));
        assert_eq!(s3.to_string(), "s3://bucket/a/b");
        assert!(matches!(
            OutputLocation::parse("gs://b", base).unwrap(),
            OutputLocation::Object { cloud: Cloud::Gcs, .. }
        ));
        assert!(matches!(
            OutputLocation::parse("abfss://c@acct.dfs.core.windows.net/p", base).unwrap(),
            OutputLocation::Object { cloud: Cloud::Azure, .. }
        ));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let base = Path::new("/cfg");
        assert!(OutputLocation::parse("ftp://x/y", base).unwrap_err().contains("ftp://"));
        assert!(OutputLocation::parse("s3://key:secret@bucket/p", base).unwrap_err().contains("credentials"));
        assert!(OutputLocation::parse("s3:///p", base).unwrap_err().contains("bucket"));
        assert!(OutputLocation::parse("s3://b/p?region=x", base).unwrap_err().contains("[pipeline.storage]"));
        assert!(OutputLocation::parse("  ", base).is_err());
    }

    #[test]
    fn secret_option_names() {
        for name in
            ["aws_secret_access_key", "secret_access_key", "token", "access_key", "sas_key", "account_key"]
        {
            assert!(is_secret_option(name), "{name}");
        }
        for name in ["endpoint", "region", "allow_http", "access_key_id", "client_id", "bucket"] {
            assert!(!is_secret_option(name), "{name}");
        }
    }
}
