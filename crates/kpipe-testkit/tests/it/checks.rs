//! Checks of one store, shared by the S3 and Azure tests.

use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{
    Error, ObjectStore, ObjectStoreExt, PutMode, PutPayload, PutResult, UpdateVersion, WriteMultipart,
};

const MIB: usize = 1024 * 1024;

async fn read(store: &dyn ObjectStore, path: &Path) -> Vec<u8> {
    store.get(path).await.unwrap().bytes().await.unwrap().to_vec()
}

async fn list(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let mut listed: Vec<String> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    listed
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// `n` bytes that differ from part to part (so a misordered upload shows).
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i / MIB) as u8).collect()
}

/// put, get, head, list (recursive and with a delimiter), delete.
pub async fn put_get_head_list_delete(store: &dyn ObjectStore) {
    let a = Path::from("basic/a.txt");
    let c = Path::from("basic/b/c.txt");
    let put = store.put(&a, PutPayload::from_static(b"hello")).await.unwrap();
    store.put(&c, PutPayload::from_static(b"world!")).await.unwrap();

    assert_eq!(read(store, &a).await, b"hello");
    let meta = store.head(&a).await.unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(meta.location, a);
    assert!(put.e_tag.is_some(), "put returns an ETag");
    assert_eq!(meta.e_tag, put.e_tag);
    assert_eq!(store.get_range(&c, 1..4).await.unwrap().as_ref(), b"orl");

    assert_eq!(list(store, "basic").await, ["basic/a.txt", "basic/b/c.txt"]);
    let shallow = store.list_with_delimiter(Some(&Path::from("basic"))).await.unwrap();
    let objects: Vec<String> = shallow.objects.iter().map(|o| o.location.to_string()).collect();
    assert_eq!(objects, ["basic/a.txt"]);
    assert_eq!(shallow.common_prefixes, [Path::from("basic/b")]);

    store.delete(&a).await.unwrap();
    assert_not_found(store.head(&a).await, "head after delete");
    assert_not_found(store.get(&a).await.map(|_| ()), "get after delete");
    assert_eq!(list(store, "basic").await, ["basic/b/c.txt"]);
}

/// `list_with_offset` returns the keys after the offset.
pub async fn list_with_offset(store: &dyn ObjectStore) {
    for key in ["offset/a", "offset/b", "offset/c", "other/d"] {
        store.put(&Path::from(key), PutPayload::from_static(b"x")).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_with_offset(Some(&Path::from("offset")), &Path::from("offset/a"))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, ["offset/b", "offset/c"]);
}

/// `PutMode::Create` writes once; a second create of the key fails and leaves the first object.
pub async fn create_is_exclusive(store: &dyn ObjectStore) {
    let path = Path::from("conditional/create.txt");
    let first = store.put_opts(&path, PutPayload::from_static(b"first"), PutMode::Create.into()).await;
    let first = first.unwrap();
    assert!(first.e_tag.is_some());

    let second = store.put_opts(&path, PutPayload::from_static(b"second"), PutMode::Create.into()).await;
    match second {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(read(store, &path).await, b"first");
}

fn update(result: &PutResult) -> PutMode {
    PutMode::Update(UpdateVersion { e_tag: result.e_tag.clone(), version: result.version.clone() })
}

/// `PutMode::Update` succeeds with the current ETag and fails with `Precondition` with a stale
/// one, or on a key that does not exist.
pub async fn update_needs_the_current_etag(store: &dyn ObjectStore) {
    let path = Path::from("conditional/update.txt");
    let v1 = store.put(&path, PutPayload::from_static(b"v1")).await.unwrap();
    let v2 = store.put_opts(&path, PutPayload::from_static(b"v2"), update(&v1).into()).await.unwrap();
    assert_ne!(v1.e_tag, v2.e_tag, "a new ETag for new content");
    assert_eq!(read(store, &path).await, b"v2");

    let stale = store.put_opts(&path, PutPayload::from_static(b"v3"), update(&v1).into()).await;
    match stale {
        Err(Error::Precondition { .. }) => {}
        other => panic!("update with a stale ETag: expected Precondition, got {other:?}"),
    }
    assert_eq!(read(store, &path).await, b"v2");

    let v3 = store.put_opts(&path, PutPayload::from_static(b"v3"), update(&v2).into()).await.unwrap();
    assert_eq!(store.head(&path).await.unwrap().e_tag, v3.e_tag);

    let missing = Path::from("conditional/missing.txt");
    let result = store.put_opts(&missing, PutPayload::from_static(b"x"), update(&v3).into()).await;
    match result {
        Err(Error::Precondition { .. }) => {}
        other => panic!("update of a missing key: expected Precondition, got {other:?}"),
    }
}

/// `put_multipart` of 12 MiB in 5 MiB parts: nothing is visible until `finish`, then all of it.
pub async fn multipart_upload_appears_on_finish(store: &dyn ObjectStore) {
    let path = Path::from("multipart/big.bin");
    let data = data(12 * MIB);
    let upload = store.put_multipart(&path).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * MIB);
    for piece in data.chunks(MIB) {
        writer.wait_for_capacity(2).await.unwrap();
        writer.write(piece);
    }
    // Two parts are uploaded, 2 MiB are buffered: still nothing to see.
    writer.wait_for_capacity(0).await.unwrap();
    assert_not_found(store.head(&path).await, "head before finish");
    assert_eq!(list(store, "multipart").await, Vec::<String>::new());

    let result = writer.finish().await.unwrap();
    let meta = store.head(&path).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.e_tag, result.e_tag);
    assert!(read(store, &path).await == data, "the object read back differs from what was written");
}

/// `WriteMultipart::abort` leaves no object.
pub async fn multipart_writer_abort_leaves_nothing(store: &dyn ObjectStore) {
    let path = Path::from("multipart/aborted-writer.bin");
    let upload = store.put_multipart(&path).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * MIB);
    writer.write(&data(6 * MIB));
    writer.wait_for_capacity(0).await.unwrap();
    writer.abort().await.unwrap();
    assert_not_found(store.head(&path).await, "head after the writer aborted");
}

/// `MultipartStore::create_multipart`, one part, `abort_multipart`: no object. Returns the id and
/// the part, for the store-specific checks of what abort did.
pub async fn create_then_abort_multipart(
    store: &dyn MultipartStore,
    objects: &dyn ObjectStore,
) -> (Path, String, object_store::multipart::PartId) {
    let path = Path::from("multipart/aborted.bin");
    let id = store.create_multipart(&path).await.unwrap();
    let part = store.put_part(&path, &id, 0, PutPayload::from(data(5 * MIB))).await.unwrap();
    assert_not_found(objects.head(&path).await, "head before abort");
    store.abort_multipart(&path, &id).await.unwrap();
    assert_not_found(objects.head(&path).await, "head after abort");
    (path, id, part)
}
