//! What a connector tells the suite about itself.

use kpipe_core::{ConnectorFactory, DateWindow};
use kpipe_sim::{AuthConfig, Fault, QuotaRule, SimConfig, SimServer};

use crate::totals::Totals;

/// How the source authenticates against the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A long-lived token; an expired one cannot be renewed, so the source must fail with an
    /// authentication error that does not show it.
    StaticToken,
    /// Tokens from the token endpoint (refresh token, client credentials, service account): an
    /// expired token is renewed and the pull goes on.
    Refreshable,
}

/// What a case asks of the source configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// Ask the API for pages this small where the connector lets the user choose a page size.
    pub page_size: Option<u32>,
}

/// A connector under test and its simulator. Every method is called once per case.
pub trait Harness: Send + Sync {
    /// The connector's registration.
    fn factory(&self) -> ConnectorFactory;

    /// The simulator for this platform: its routes mounted, its auth configured (tokens
    /// required), seeded with `seed`. The suite adds faults and quotas to it.
    fn sim_config(&self, seed: u64) -> SimConfig;

    /// The `[sources.<name>]` table (without `type`) pointing the source at `sim`: `base_url`,
    /// `token_url` and credentials the simulator accepts. The suite adds a `retry` table
    /// (`{ max_attempts, base_delay_ms, max_delay_ms }`) and sometimes a
    /// `rate_limit` table (`{ requests, per_seconds }`), which every HTTP connector accepts.
    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table;

    /// How the source authenticates.
    fn auth(&self) -> Auth;

    /// A window the simulator has data for; keep it small enough for a test (a few days).
    fn window(&self) -> DateWindow;

    /// A window the simulator has no data for.
    fn empty_window(&self) -> DateWindow;

    /// The rows the source must write for `window`, from the simulator's own data for `seed`.
    fn expected(&self, seed: u64, window: DateWindow) -> Totals;

    /// The path prefix of the endpoints that return data (faults are injected there).
    fn data_path(&self) -> &str;

    /// The platform's answer to a request over its short-term limit, retryable after
    /// `seconds`.
    fn throttled(&self, seconds: u64) -> Fault {
        Fault::too_many_requests(Some(seconds))
    }

    /// A daily cap of `limit` requests answered as the platform does, or `None` if the
    /// platform has no daily cap.
    fn daily_cap(&self, limit: u64) -> Option<QuotaRule>;

    /// A 200 response for the first data request whose body is well-formed JSON but holds at
    /// least one element the connector must quarantine (a count that is not a number, a
    /// missing date), or `None` if the platform's responses cannot hold such an element.
    fn malformed_elements(&self, sim: &SimServer) -> Option<Fault>;

    /// The credentials in [`Harness::source_config`], which must never be logged.
    fn secrets(&self, sim: &SimServer) -> Vec<String>;

    /// The simulator's auth settings with tokens that expire after `uses` requests.
    fn expiring_auth(&self, auth: AuthConfig, uses: u64) -> AuthConfig {
        AuthConfig { expire_after_uses: Some(uses), ..auth }
    }
}
