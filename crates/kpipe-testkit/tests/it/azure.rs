//! The Azure server (Azurite) through `object_store`'s `MicrosoftAzure`.

use kpipe_testkit::services::{AzuriteServer, azurite};
use object_store::path::Path;
use object_store::{Error, ObjectStoreExt};

use crate::checks;

fn server() -> AzuriteServer {
    azurite().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn put_get_head_list_delete() {
    let az = server();
    checks::put_get_head_list_delete(az.object_store().as_ref()).await;
}

#[tokio::test]
async fn create_is_exclusive() {
    let az = server();
    checks::create_is_exclusive(az.object_store().as_ref()).await;
}

#[tokio::test]
async fn update_needs_the_current_etag() {
    let az = server();
    checks::update_needs_the_current_etag(az.object_store().as_ref()).await;
}

#[tokio::test]
async fn multipart_upload_appears_on_finish() {
    let az = server();
    checks::multipart_upload_appears_on_finish(az.object_store().as_ref()).await;
    checks::multipart_writer_abort_leaves_nothing(az.object_store().as_ref()).await;
}

/// On Azure `create_multipart` and `abort_multipart` are no-ops in `object_store` (blocks are
/// staged by `put_part` and stay uncommitted until they expire): abort succeeds and no blob
/// appears, which is all there is to check.
#[tokio::test]
async fn abort_multipart_leaves_no_blob() {
    let az = server();
    let store = az.builder().build().unwrap();
    let (_path, id, _part) = checks::create_then_abort_multipart(&store, az.object_store().as_ref()).await;
    assert_eq!(id, "", "object_store's Azure multipart ids are empty");
}

/// Through the explicit endpoint `object_store` does not know the server is Azurite and sends
/// `startFrom` rather than filtering itself; Azurite 3.35 honours it.
#[tokio::test]
async fn list_with_offset() {
    let az = server();
    checks::list_with_offset(az.object_store().as_ref()).await;
}

#[tokio::test]
async fn accessors() {
    let az = server();
    assert!(az.endpoint().starts_with("http://127.0.0.1:"));
    assert!(az.endpoint().ends_with("/devstoreaccount1"));
    assert_eq!(az.account(), "devstoreaccount1");
    assert!(az.container().starts_with("kpipe-"));
    assert_eq!(az.url("runs/x"), format!("az://{}/runs/x", az.container()));
    let env = az.env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("AZURE_STORAGE_ACCOUNT_NAME"), az.account());
    assert_eq!(get("AZURE_STORAGE_ACCOUNT_KEY"), az.account_key());
    assert_eq!(get("AZURE_STORAGE_USE_EMULATOR"), "true");
    assert_eq!(get("AZURITE_BLOB_STORAGE_URL"), az.blob_service_url());
}

#[tokio::test]
async fn two_servers_are_independent_and_stop_on_drop() {
    let (one, two) = (server(), server());
    assert_ne!(one.endpoint(), two.endpoint());
    let path = Path::from("only-in-one");
    one.object_store().put(&path, "x".into()).await.unwrap();
    assert!(matches!(two.object_store().head(&path).await, Err(Error::NotFound { .. })));

    let address = one.blob_service_url().strip_prefix("http://").unwrap().to_owned();
    drop(one);
    assert!(std::net::TcpStream::connect(&address).is_err(), "{address} still answers after drop");
}
