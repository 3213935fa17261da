//! Platform route modules: the extension point for each simulated API.
//!
//! One module per platform. Today each holds that platform's canned error envelopes (quota,
//! throttling, expired token) so tests can make the generic machinery answer like the real API;
//! the platform's endpoints are added to its module as the connectors are written, as a type
//! implementing [`Platform`] mounted with [`crate::SimConfig::with_platform`].
//!
//! A platform's routes pass through the same middleware as every other route, so latency,
//! quotas, faults and the bearer check apply to them without any code in the module.
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use kpipe_sim::{Platform, PlatformContext};
//!
//! #[derive(Debug)]
//! struct Hello;
//!
//! impl Platform for Hello {
//!     fn name(&self) -> &str {
//!         "hello"
//!     }
//!     fn router(&self, ctx: &PlatformContext) -> Router {
//!         let value = ctx.rng("hello", 0).next_u64() % 100;
//!         Router::new().route("/hello/v1/value", get(move || async move { Json(value) }))
//!     }
//! }
//! ```

use std::fmt;

use axum::Router;

use crate::rng::SimRng;

pub mod example;
pub mod facebook;
pub mod ga4;
pub mod hubspot;
pub mod linkedin;
pub mod test_routes;

/// A simulated API: a set of routes mounted on the server.
///
/// Use paths that cannot collide with other modules (the real API's path, e.g. `/rest/...`,
/// `/v23.0/...`, `/crm/v3/...`, `/v1beta/...`); overlapping routes make
/// [`crate::SimServer::start`] panic.
pub trait Platform: fmt::Debug + Send + Sync + 'static {
    /// A short name, e.g. `linkedin`.
    fn name(&self) -> &str;

    /// Builds the routes, once, when the server starts. Handlers that need shared state carry it
    /// themselves (`Router::with_state`); data should come from [`PlatformContext::rng`] so a
    /// seed gives the same responses.
    fn router(&self, ctx: &PlatformContext) -> Router;
}

/// What a platform module knows about the server it is mounted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformContext {
    seed: u64,
    base_url: String,
    token_url: String,
}

impl PlatformContext {
    /// A context (normally built by the server; public for unit tests of modules).
    #[must_use]
    pub fn new(seed: u64, base_url: String, token_url: String) -> Self {
        Self { seed, base_url, token_url }
    }

    /// The server seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `http://127.0.0.1:<port>`: for absolute URLs in responses (next-page links).
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint's URL.
    #[must_use]
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// A generator for one stream of data (`label`, `index`), derived from the seed.
    #[must_use]
    pub fn rng(&self, label: &str, index: u64) -> SimRng {
        SimRng::derive(self.seed, label, index)
    }
}
