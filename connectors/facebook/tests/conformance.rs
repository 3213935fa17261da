//! The conformance suite against the simulated Graph API (`kpipe_sim::platform::facebook`),
//! whose responses follow `shared/apis/facebook.md`: insights rows with numbers as strings and
//! an absolute `paging.next` (§2), Page insights with numeric values and `end_time`s (§4), the
//! `{"error": {...}}` envelope with code 190 for expired tokens and `#80000` with usage headers
//! for throttling (§5-6). The window is shorter than the report-run threshold: synchronous
//! reports.

mod common;

kpipe_testkit::conformance_suite!(common::FacebookHarness::new());
