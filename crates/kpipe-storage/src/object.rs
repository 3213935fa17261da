//! An object store (S3, GCS, Azure) through `object_store`, with credentials from the cloud's
//! environment and chains and `[pipeline.storage]` options on top.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use url::Url;

use crate::location::{SECRET_ENV, is_secret_option};
use crate::s3_uploads::S3Uploads;
use crate::{Cloud, Conflict, Entry, ErrorKind, Object, StorageError, StorageOptions, Version};

/// Files larger than `multipart_threshold` (8 MiB unless set) are uploaded in parts of this size
/// (S3's minimum part, but for the last, is 5 MiB); smaller ones with one PUT. Two parts are in
/// memory at most, so an upload holds 16 MiB.
const PART_BYTES: usize = 8 << 20;

/// `[pipeline.storage]` options that are kpipe's own, not the store's.
pub(crate) const KPIPE_OPTIONS: &[&str] = &["multipart_threshold"];

/// The runtime the object store's futures run on, shut down without blocking when the last
/// handle goes (which may be inside async code).
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) struct ObjectBackend {
    cloud: Cloud,
    url: String,
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    prefix: ObjectPath,
    runtime: Runtime,
    /// Every credential value this backend was given, scrubbed from error text.
    secrets: Vec<String>,
    /// Files larger than this are uploaded in parts.
    multipart_threshold: u64,
    /// S3's listing of uploads in progress.
    s3_uploads: Option<Arc<S3Uploads>>,
}

impl std::fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBackend")
            .field("cloud", &self.cloud)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct UploadJournal {
    /// The object's full path in the store.
    path: String,
    /// The store's id of the multipart upload.
    upload_id: String,
}

fn config_error(url: &str, reason: String) -> StorageError {
    StorageError::new("use", url.to_owned(), reason, ErrorKind::Config)
}

impl ObjectBackend {
    pub(crate) fn open(
        cloud: Cloud,
        url: &Url,
        options: &StorageOptions,
    ) -> Result<ObjectBackend, StorageError> {
        // object_store's HTTP client uses rustls without a built-in provider here: ring, as the
        // connectors' client does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shown = url.as_str().trim_end_matches('/').to_owned();
        let mut secrets: Vec<String> =
            SECRET_ENV.iter().filter_map(|name| std::env::var(name).ok()).collect();
        secrets.extend(options.values.iter().filter(|(k, _)| is_secret_option(k)).map(|(_, v)| v.clone()));
        secrets.retain(|s| s.len() >= 4);
        let scrub = |text: String| scrub(text, &secrets);
        let unknown = |key: &str| {
            config_error(
                &shown,
                format!("[pipeline.storage] has the option `{key}`, which {cloud} does not know"),
            )
        };
        let mut multipart_threshold = PART_BYTES as u64;
        let mut store_options = options.values.clone();
        if let Some(text) = store_options.remove("multipart_threshold") {
            multipart_threshold = text.trim().parse().map_err(|_| {
                config_error(
                    &shown,
                    format!("[pipeline.storage] multipart_threshold = `{text}` is not a number of bytes"),
                )
            })?;
        }
        store_options.retain(|k, _| !KPIPE_OPTIONS.contains(&k.as_str()));
        let options = StorageOptions { values: store_options };
        let mut s3_uploads = None;
        let built = match cloud {
            Cloud::S3 => {
                let b = configured(
                    AmazonS3Builder::from_env().with_url(url.as_str()),
                    &options,
                    &unknown,
                    |b, k, v| b.with_config(k, v),
                )?;
                b.clone().build().map(|s| {
                    s3_uploads = S3Uploads::new(&b, &s, url.host_str().unwrap_or_default()).map(Arc::new);
                    both(s)
                })
            }
            Cloud::Gcs => {
                let b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                configured(b, &options, &unknown, |b, k, v| b.with_config(k, v))?.build().map(both)
            }
            Cloud::Azure => {
                let b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                configured(b, &options, &unknown, |b, k, v| b.with_config(k, v))?.build().map(both)
            }
        };
        let (store, multipart) = built.map_err(|e| config_error(&shown, scrub(e.to_string())))?;
        let prefix = object_prefix(cloud, url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kpipe-storage")
            .enable_all()
            .build()
            .map_err(|e| config_error(&shown, format!("cannot start its I/O threads: {e}")))?;
        Ok(ObjectBackend {
            cloud,
            url: shown,
            store,
            multipart,
            prefix: ObjectPath::from(prefix.as_str()),
            runtime: Runtime(Some(runtime)),
            secrets,
            multipart_threshold,
            s3_uploads,
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.url.clone()
    }

    pub(crate) fn describe_key(&self, key: &str) -> String {
        format!("{}/{}", self.url, key.trim_start_matches('/'))
    }

    pub(crate) fn staging_dir(&self, area: &str) -> PathBuf {
        // One folder per output, so that two outputs' staging never mix.
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.url.as_bytes());
        let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let mut dir = std::env::temp_dir().join(format!("kpipe-staging-{tag}"));
        dir.extend(area.split('/').filter(|p| !p.is_empty()));
        dir
    }

    fn path(&self, key: &str) -> ObjectPath {
        let mut parts: Vec<&str> = self.prefix.as_ref().split('/').filter(|p| !p.is_empty()).collect();
        parts.extend(key.split('/').filter(|p| !p.is_empty()));
        ObjectPath::from_iter(parts)
    }

    fn key_of(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            return full.to_owned();
        }
        full.strip_prefix(prefix).map_or(full, |rest| rest.trim_start_matches('/')).to_owned()
    }

    pub(crate) fn object_store_at(&self, key: &str) -> Result<(Arc<dyn ObjectStore>, Url), StorageError> {
        let scheme = match self.cloud {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        };
        // Only the URL's path is used to find objects in `store` (rooted at the bucket); the
        // host names the bucket for messages.
        let bucket = Url::parse(&self.url).ok().and_then(|u| u.host_str().map(str::to_owned));
        let text =
            format!("{scheme}://{}/{}", bucket.as_deref().unwrap_or("output"), self.path(key).as_ref());
        let url = Url::parse(&text)
            .map_err(|e| config_error(&self.url, format!("`{key}` is not a URL path: {e}")))?;
        Ok((Arc::clone(&self.store), url))
    }

    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.block(future)
    }

    /// Runs `future` on the backend's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let handle = self.runtime.0.as_ref().map(|rt| rt.handle().clone());
        let Some(handle) = handle else {
            return Err(StorageError::new(
                "reach",
                self.url.clone(),
                "the storage runtime is shut down",
                ErrorKind::Other,
            ));
        };
        handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| {
            StorageError::new("reach", self.url.clone(), "the storage call was cancelled", ErrorKind::Other)
        })
    }

    fn fail(&self, op: &'static str, key: &str, e: object_store::Error) -> StorageError {
        let kind = match &e {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                ErrorKind::Denied
            }
            object_store::Error::UnknownConfigurationKey { .. } => ErrorKind::Config,
            _ => ErrorKind::Other,
        };
        StorageError::new(op, self.describe_key(key), scrub(error_chain(&e), &self.secrets), kind)
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Object>, StorageError> {
        let store = self.store.clone();
        let path = self.path(key);
        let got = self.block(async move {
            let result = store.get(&path).await?;
            let e_tag = result.meta.e_tag.clone();
            let version = result.meta.version.clone();
            let bytes = result.bytes().await?;
            Ok::<_, object_store::Error>((bytes, e_tag.or(version).unwrap_or_default()))
        })?;
        match got {
            Ok((bytes, tag)) => Ok(Some(Object { bytes, version: Version(tag) })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("read", key, e)),
        }
    }

    pub(crate) fn put(&self, key: &str, bytes: Bytes) -> Result<Version, StorageError> {
        self.put_mode(key, bytes, PutMode::Overwrite)?.map_err(|Conflict| {
            StorageError::new(
                "write",
                self.describe_key(key),
                "the store refused an unconditional write",
                ErrorKind::Other,
            )
        })
    }

    pub(crate) fn put_new(&self, key: &str, bytes: Bytes) -> Result<Result<Version, Conflict>, StorageError> {
        self.put_mode(key, bytes, PutMode::Create)
    }

    pub(crate) fn replace(
        &self,
        key: &str,
        bytes: Bytes,
        expected: &Version,
    ) -> Result<Result<Version, Conflict>, StorageError> {
        let version = UpdateVersion { e_tag: Some(expected.0.clone()), version: None };
        self.put_mode(key, bytes, PutMode::Update(version))
    }

    fn put_mode(
        &self,
        key: &str,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<Result<Version, Conflict>, StorageError> {
        let store = self.store.clone();
        let path = self.path(key);
        let options = PutOptions { mode, ..PutOptions::default() };
        let put = self.block(async move { store.put_opts(&path, PutPayload::from(bytes), options).await })?;
        match put {
            Ok(result) => Ok(Ok(Version(result.e_tag.or(result.version).unwrap_or_default()))),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(Err(Conflict))
            }
            Err(e) => Err(self.fail("write", key, e)),
        }
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), StorageError> {
        let store = self.store.clone();
        let path = self.path(key);
        match self.block(async move { store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("remove", key, e)),
        }
    }

    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Entry>, StorageError> {
        let store = self.store.clone();
        let path = self.path(prefix);
        let listed = self.block(async move { store.list(Some(&path)).try_collect::<Vec<_>>().await })?;
        let metas = listed.map_err(|e| self.fail("list", prefix, e))?;
        Ok(metas.into_iter().map(|m| self.entry(m)).collect())
    }

    /// A listed object as the layer names it.
    fn entry(&self, meta: object_store::ObjectMeta) -> Entry {
        Entry {
            key: self.key_of(&meta.location),
            size: meta.size,
            modified: Some(std::time::SystemTime::from(meta.last_modified)),
        }
    }

    /// The objects below `folder` whose keys start with `folder/<name_prefix>`: a listing that
    /// starts after that prefix (S3's `start-after`) and stops at the first key past it, so
    /// that its cost follows what it returns, not the folder's size.
    pub(crate) fn list_named(&self, folder: &str, name_prefix: &str) -> Result<Vec<Entry>, StorageError> {
        let store = self.store.clone();
        let path = self.path(folder);
        let wanted = format!("{}/{name_prefix}", path.as_ref());
        let offset = ObjectPath::from(wanted.as_str());
        let listed = self.block(async move {
            store
                .list_with_offset(Some(&path), &offset)
                .try_take_while(|m| std::future::ready(Ok(m.location.as_ref().starts_with(&wanted))))
                .try_collect::<Vec<_>>()
                .await
        })?;
        let metas = listed.map_err(|e| self.fail("list", folder, e))?;
        Ok(metas.into_iter().map(|m| self.entry(m)).collect())
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let store = self.store.clone();
        let (source, target) = (self.path(from), self.path(to));
        self.block(async move { store.rename(&source, &target).await })?
            .map_err(|e| self.fail("move", from, e))
    }

    pub(crate) fn list_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let store = self.store.clone();
        let path = self.path(prefix);
        let listed = self.block(async move { store.list_with_delimiter(Some(&path)).await })?;
        let result = listed.map_err(|e| self.fail("list", prefix, e))?;
        Ok(result.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect())
    }

    pub(crate) fn delete_all(&self, prefix: &str) -> Result<(), StorageError> {
        for entry in self.list(prefix)? {
            self.delete(&entry.key)?;
        }
        Ok(())
    }

    pub(crate) fn publish_file(&self, staged: &Path, key: &str, journal: &str) -> Result<(), StorageError> {
        let local = |e: std::io::Error| {
            StorageError::new("read", staged.display().to_string(), e.to_string(), ErrorKind::Other)
        };
        let mut file = std::fs::File::open(staged).map_err(local)?;
        let size = file.metadata().map_err(local)?.len();
        if size <= self.multipart_threshold {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).map_err(local)?;
            self.put(key, Bytes::from(bytes))?;
        } else {
            self.upload_in_parts(&mut file, key, journal)?;
        }
        drop(file);
        let _ = std::fs::remove_file(staged);
        Ok(())
    }

    /// A multipart upload, journaled first so that a killed process's upload can be aborted,
    /// and aborted here on any error: nothing is visible until it completes.
    fn upload_in_parts(
        &self,
        file: &mut std::fs::File,
        key: &str,
        journal: &str,
    ) -> Result<(), StorageError> {
        let path = self.path(key);
        let multipart = self.multipart.clone();
        let created = {
            let path = path.clone();
            self.block(async move { multipart.create_multipart(&path).await })?
        };
        let upload_id = created.map_err(|e| self.fail("start uploading", key, e))?;
        let journal_key = format!("{journal}/{}.json", uuid::Uuid::now_v7());
        let record = UploadJournal { path: path.to_string(), upload_id: upload_id.clone() };
        let record = serde_json::to_vec(&record).map_err(|e| {
            StorageError::new("journal", self.describe_key(&journal_key), e.to_string(), ErrorKind::Other)
        })?;
        let uploaded = self
            .put(&journal_key, Bytes::from(record))
            .and_then(|_| self.send_parts(file, &path, &upload_id, key));
        match uploaded {
            Ok(()) => {
                self.delete(&journal_key)?;
                Ok(())
            }
            Err(e) => {
                let multipart = self.multipart.clone();
                let aborted = self.block(async move { multipart.abort_multipart(&path, &upload_id).await });
                if matches!(aborted, Ok(Ok(()))) {
                    let _ = self.delete(&journal_key);
                }
                Err(e)
            }
        }
    }

    fn send_parts(
        &self,
        file: &mut std::fs::File,
        path: &ObjectPath,
        upload_id: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        let local =
            |e: std::io::Error| StorageError::new("read", key.to_owned(), e.to_string(), ErrorKind::Other);
        let mut parts: Vec<PartId> = Vec::new();
        let mut in_flight: Option<tokio::task::JoinHandle<object_store::Result<PartId>>> = None;
        let handle = self.runtime.0.as_ref().map(|rt| rt.handle().clone()).ok_or_else(|| {
            StorageError::new(
                "upload",
                self.describe_key(key),
                "the storage runtime is shut down",
                ErrorKind::Other,
            )
        })?;
        let mut index = 0usize;
        loop {
            let mut chunk = vec![0u8; PART_BYTES];
            let mut filled = 0;
            while filled < PART_BYTES {
                let n = file.read(&mut chunk[filled..]).map_err(local)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            chunk.truncate(filled);
            if chunk.is_empty() {
                break;
            }
            let multipart = self.multipart.clone();
            let (path, id) = (path.clone(), upload_id.to_owned());
            let next = handle.spawn(async move {
                multipart.put_part(&path, &id, index, PutPayload::from(Bytes::from(chunk))).await
            });
            index += 1;
            // One part sent while the next is read: two parts in memory at most.
            if let Some(previous) = in_flight.replace(next) {
                parts.push(self.join_part(previous, key)?);
            }
        }
        if let Some(last) = in_flight {
            parts.push(self.join_part(last, key)?);
        }
        let multipart = self.multipart.clone();
        let (path, id) = (path.clone(), upload_id.to_owned());
        let done = self.block(async move { multipart.complete_multipart(&path, &id, parts).await })?;
        done.map(|_| ()).map_err(|e| self.fail("complete the upload of", key, e))
    }

    fn join_part(
        &self,
        part: tokio::task::JoinHandle<object_store::Result<PartId>>,
        key: &str,
    ) -> Result<PartId, StorageError> {
        let joined = self.block(part)?;
        let sent = joined.map_err(|e| {
            StorageError::new(
                "upload",
                self.describe_key(key),
                format!("a part's task failed: {e}"),
                ErrorKind::Other,
            )
        })?;
        sent.map_err(|e| self.fail("upload", key, e))
    }

    pub(crate) fn abort_orphaned_uploads(&self, journal: &str, below: &str) -> Result<usize, StorageError> {
        let mut aborted = self.abort_journaled(journal)?;
        let Some(lister) = self.s3_uploads.clone() else { return Ok(aborted) };
        // `path` drops a trailing `/`; S3 matches the prefix as a string.
        let slash = if below.ends_with('/') { "/" } else { "" };
        let prefix = format!("{}{slash}", self.path(below));
        let listed = self.block(async move { lister.list(&prefix).await })?;
        let open = listed.map_err(|reason| {
            StorageError::new(
                "list the uploads in progress below",
                self.describe_key(below),
                scrub(reason, &self.secrets),
                ErrorKind::Other,
            )
        })?;
        for upload in open {
            let multipart = self.multipart.clone();
            let path = ObjectPath::from(upload.key.as_str());
            let id = upload.upload_id;
            match self.block(async move { multipart.abort_multipart(&path, &id).await })? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail("abort the upload of", &upload.key, e)),
            }
            tracing::info!(object = %upload.key, "aborted an upload a killed run left behind");
            aborted += 1;
        }
        Ok(aborted)
    }

    fn abort_journaled(&self, journal: &str) -> Result<usize, StorageError> {
        let mut aborted = 0;
        for entry in self.list(journal)? {
            let Some(object) = self.get(&entry.key)? else { continue };
            let Ok(record) = serde_json::from_slice::<UploadJournal>(&object.bytes) else {
                tracing::warn!(journal = %self.describe_key(&entry.key), "removing an unreadable upload journal");
                self.delete(&entry.key)?;
                continue;
            };
            let multipart = self.multipart.clone();
            let path = ObjectPath::from(record.path.as_str());
            let id = record.upload_id.clone();
            match self.block(async move { multipart.abort_multipart(&path, &id).await })? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail("abort the upload of", &record.path, e)),
            }
            tracing::info!(object = %record.path, "aborted an upload a killed run left behind");
            self.delete(&entry.key)?;
            aborted += 1;
        }
        Ok(aborted)
    }
}

/// `builder` with every option of `options`, each name parsed as the store's configuration key.
fn configured<B, K: std::str::FromStr>(
    mut builder: B,
    options: &StorageOptions,
    unknown: &dyn Fn(&str) -> StorageError,
    set: fn(B, K, &str) -> B,
) -> Result<B, StorageError> {
    for (key, value) in &options.values {
        builder = set(builder, key.parse().map_err(|_| unknown(key))?, value);
    }
    Ok(builder)
}

/// One store as both of the interfaces the backend uses.
fn both<S: ObjectStore + MultipartStore>(store: S) -> (Arc<dyn ObjectStore>, Arc<dyn MultipartStore>) {
    let store = Arc::new(store);
    (store.clone(), store)
}

/// The key prefix the URL names inside its bucket or container.
fn object_prefix(cloud: Cloud, url: &Url) -> String {
    let path = url.path().trim_matches('/');
    match (cloud, url.host_str()) {
        // https://<account>.blob.core.windows.net/<container>/<prefix>: the first segment is
        // the container.
        (Cloud::Azure, _) if url.scheme().eq_ignore_ascii_case("https") => {
            path.split_once('/').map_or("", |(_, rest)| rest).to_owned()
        }
        _ => path.to_owned(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// `text` with every secret replaced by `***`.
fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let secrets = vec!["s3cr3t-key".to_owned()];
        assert_eq!(
            scrub("denied for s3cr3t-key twice s3cr3t-key".into(), &secrets),
            "denied for *** twice ***"
        );
    }

    #[test]
    fn prefixes() {
        let url = Url::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(object_prefix(Cloud::S3, &url), "a/b");
        let url = Url::parse("abfss://c@acct.dfs.core.windows.net/p/q").unwrap();
        assert_eq!(object_prefix(Cloud::Azure, &url), "p/q");
    }
}
