//! The whole pipeline against real object stores started on 127.0.0.1: moto's S3 server and
//! Azurite's blob service (installed by `.ci/install-test-services`, started by
//! `kpipe_testkit::services`). The platform APIs are kpipe's simulator as `kpipe demo` serves it
//! (LinkedIn Marketing API, Graph API, HubSpot CRM, GA4 Data API wire shapes, see
//! `crates/kpipe-sim`), plus the demo's spreadsheets through the files connector.
//!
//! What must hold on every store: the same rows as a local run, KPIs included; a re-run replaces
//! its days; runs killed at any point then run again give exactly the uninterrupted dataset, with
//! no partial object visible and no multipart upload left open; one run at a time (a lease);
//! concurrent state writers detected; no credential in any output.

mod delta;
mod lease;
mod local_kill;
mod pipeline;
mod readers;
mod shards;
mod support;
