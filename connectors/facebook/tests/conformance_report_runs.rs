//! The conformance suite with every window pulled through asynchronous report runs
//! (`shared/apis/facebook.md` §3: `POST /act_{id}/insights` → `report_run_id`, polls of
//! `async_status` / `async_percent_completion`, then the paged results), against the simulated
//! Graph API.

mod common;

kpipe_testkit::conformance_suite!(common::FacebookHarness::with_report_runs());
