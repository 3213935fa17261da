//! `kpipe-testkit`: the conformance suite every connector runs against its simulator.
//!
//! A connector's tests implement [`Harness`] (how to start the simulator for its platform, how
//! to configure the source against it, and what the simulator's own data says the rows must be)
//! and expand [`conformance_suite!`], which turns every case of [`suite`] into a test:
//!
//! ```ignore
//! struct Acme;
//! impl kpipe_testkit::Harness for Acme { /* ... */ }
//! kpipe_testkit::conformance_suite!(Acme);
//! ```
//!
//! The cases: exact totals for every metric, entity and day; pagination across many pages;
//! throttling (429 with `Retry-After`); a daily cap that stops the stream without burning
//! retries; a token that expires mid-run; 5xx retries; malformed and truncated pages (fetched
//! again, or quarantined and counted, never a panic); malformed elements; an empty window; no
//! request beyond the quota; no secret in any log line at trace level.

#![deny(missing_docs)]

mod harness;
mod logs;
mod pull;
pub mod services;
pub mod suite;
mod totals;

pub use harness::{Auth, Harness, Setup};
pub use logs::LogCapture;
pub use pull::{Pulled, build_source, pull};
pub use totals::{RowKey, Totals};

/// Expands to one `#[tokio::test]` per conformance case, each running [`suite`]'s function of
/// the same name with `$harness` (an expression of a type implementing [`Harness`]).
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@cases $harness;
            exact_totals, many_pages, throttled_requests_are_retried, daily_cap_stops_the_stream,
            token_expiring_mid_run, server_errors_are_retried, malformed_page_is_fetched_again,
            truncated_page_is_fetched_again, page_that_stays_malformed_is_quarantined,
            malformed_elements_are_quarantined, empty_window, no_request_beyond_the_quota,
            no_secret_in_logs);
    };
    (@cases $harness:expr; $($case:ident),+) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::suite::$case(&$harness).await;
                }
            )+
        }
    };
}
