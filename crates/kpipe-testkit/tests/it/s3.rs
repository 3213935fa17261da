//! The S3 server (moto) through `object_store`'s `AmazonS3` with its default configuration
//! (`S3ConditionalPut::ETagMatch`).

use kpipe_testkit::services::{S3Server, s3_server};
use object_store::multipart::MultipartStore;
use object_store::{Error, ObjectStoreExt};

use crate::checks;

fn server() -> S3Server {
    s3_server().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn put_get_head_list_delete() {
    let s3 = server();
    checks::put_get_head_list_delete(s3.object_store().as_ref()).await;
}

#[tokio::test]
async fn list_with_offset() {
    let s3 = server();
    checks::list_with_offset(s3.object_store().as_ref()).await;
}

#[tokio::test]
async fn create_is_exclusive() {
    let s3 = server();
    checks::create_is_exclusive(s3.object_store().as_ref()).await;
}

#[tokio::test]
async fn update_needs_the_current_etag() {
    let s3 = server();
    checks::update_needs_the_current_etag(s3.object_store().as_ref()).await;
}

#[tokio::test]
async fn multipart_upload_appears_on_finish() {
    let s3 = server();
    checks::multipart_upload_appears_on_finish(s3.object_store().as_ref()).await;
    checks::multipart_writer_abort_leaves_nothing(s3.object_store().as_ref()).await;
}

#[tokio::test]
async fn abort_multipart_discards_the_upload() {
    let s3 = server();
    let store = s3.builder().build().unwrap();
    let (path, id, part) = checks::create_then_abort_multipart(&store, s3.object_store().as_ref()).await;
    // The upload is gone: it can no longer be completed.
    let completed = store.complete_multipart(&path, &id, vec![part]).await;
    assert!(completed.is_err(), "complete after abort succeeded: {completed:?}");
    assert!(matches!(store.head(&path).await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn accessors() {
    let s3 = server();
    let port = s3.endpoint().strip_prefix("http://127.0.0.1:").unwrap().parse::<u16>().unwrap();
    assert!(port > 0);
    assert!(s3.bucket().starts_with("kpipe-"));
    assert_eq!(s3.url("/runs/x"), format!("s3://{}/runs/x", s3.bucket()));
    assert_eq!(s3.region(), "us-east-1");
    let env = s3.env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("AWS_ENDPOINT_URL"), s3.endpoint());
    assert_eq!(get("AWS_ACCESS_KEY_ID"), s3.access_key_id());
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), s3.secret_access_key());
    assert_eq!(get("AWS_REGION"), s3.region());
    assert_eq!(get("AWS_ALLOW_HTTP"), "true");
}

#[tokio::test]
async fn two_servers_are_independent_and_stop_on_drop() {
    let (one, two) = (server(), server());
    assert_ne!(one.endpoint(), two.endpoint());
    let path = object_store::path::Path::from("only-in-one");
    one.object_store().put(&path, "x".into()).await.unwrap();
    assert!(matches!(two.object_store().head(&path).await, Err(Error::NotFound { .. })));

    let endpoint = one.endpoint();
    let address = endpoint.strip_prefix("http://").unwrap().to_owned();
    drop(one);
    assert!(std::net::TcpStream::connect(&address).is_err(), "{endpoint} still answers after drop");
}
