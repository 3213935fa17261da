//! The servers' `env()` is what a child process needs: this test binary runs itself as the
//! child, with only those variables, and reads an object through `object_store`'s `from_env`
//! builders.

use std::process::Command;

use kpipe_testkit::services::{azurite, s3_server};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

const KIND: &str = "KPIPE_IT_CHILD";
const URL: &str = "KPIPE_IT_CHILD_URL";
const KEY: &str = "KPIPE_IT_CHILD_KEY";
const EXPECT: &str = "KPIPE_IT_CHILD_EXPECT";

/// Runs [`child_reads_through_env`] in a child process with `env` and nothing else.
fn run_child(kind: &str, url: String, key: &str, expect: &str, env: Vec<(String, String)>) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child::child_reads_through_env", "--exact", "--ignored", "--nocapture"])
        .env_clear()
        .envs(env)
        .env(KIND, kind)
        .env(URL, url)
        .env(KEY, key)
        .env(EXPECT, expect)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn s3_env_reaches_the_bucket_from_a_child() {
    let s3 = s3_server().unwrap_or_else(|e| panic!("{e}"));
    s3.object_store().put(&Path::from("child/hello.txt"), "hello from the parent".into()).await.unwrap();
    run_child("s3", s3.url(""), "child/hello.txt", "hello from the parent", s3.env());
}

#[tokio::test]
async fn azurite_env_reaches_the_container_from_a_child() {
    let az = azurite().unwrap_or_else(|e| panic!("{e}"));
    az.object_store().put(&Path::from("child/hello.txt"), "hello from the parent".into()).await.unwrap();
    run_child("azure", az.url(""), "child/hello.txt", "hello from the parent", az.env());
}

/// The child's side; does nothing unless run by [`run_child`].
#[tokio::test]
#[ignore = "the child process of the *_from_a_child tests"]
async fn child_reads_through_env() {
    let Ok(kind) = std::env::var(KIND) else { return };
    let var = |name: &str| std::env::var(name).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store: Box<dyn ObjectStore> = match kind.as_str() {
        "s3" => Box::new(AmazonS3Builder::from_env().with_url(var(URL)).build().unwrap()),
        "azure" => Box::new(MicrosoftAzureBuilder::from_env().with_url(var(URL)).build().unwrap()),
        other => panic!("unknown {KIND}={other}"),
    };
    let bytes = store.get(&Path::from(var(KEY))).await.unwrap().bytes().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&bytes), var(EXPECT));
}
