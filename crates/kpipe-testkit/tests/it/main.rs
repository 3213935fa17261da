//! Integration tests of `kpipe_testkit::services`: the real S3 (moto) and Azure (Azurite)
//! servers, checked through `object_store`, the variables they hand to child processes, and the
//! Python virtualenv. Every test starts its own server(s). A missing tool fails the test with the
//! command that installs it (`bash .ci/install-test-services`); nothing is skipped.

// Helpers outside `#[test]` functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod azure;
mod checks;
mod child;
mod python;
mod s3;
