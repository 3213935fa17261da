//! The HubSpot source against the simulator, beyond the conformance suite: the search ceiling,
//! token lifetimes, throttling and daily limits, unreadable records, the configuration, and the
//! portal's days across daylight saving time.
//! Each module names the section of `shared/apis/hubspot.md` its shapes follow.
//!
//! One test binary (modules below) to keep link time down.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod efficiency;
mod records;
mod search_ceiling;
mod throttling;
mod time_zones;
mod tokens;

use std::sync::Arc;

use kpipe_core::{BuildContext, DateWindow, DynSource};
use kpipe_sim::platform::hubspot::{self, HubSpotApi};
use kpipe_sim::{AuthConfig, SimConfig, SimServer};
use kpipe_testkit::Pulled;

/// The seed of every test here.
pub const SEED: u64 = 7_071;

/// A simulator serving `api` with HubSpot's OAuth endpoint, the private-app token accepted too.
pub fn sim_config(api: &HubSpotApi, auth: AuthConfig) -> SimConfig {
    let auth = AuthConfig { static_tokens: vec![common::PRIVATE_APP_TOKEN.to_owned()], ..auth };
    SimConfig::new(SEED).with_auth(auth).with_platform(Arc::new(api.clone()))
}

/// Starts the simulator.
pub async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("the simulator starts")
}

/// The default simulator of `api` (OAuth tokens of 30 minutes).
pub async fn start_api(api: &HubSpotApi) -> SimServer {
    start(sim_config(api, hubspot::auth_config())).await
}

/// Adds `key = value` pairs written in TOML to `table`.
pub fn with(mut table: toml::Table, extra: &str) -> toml::Table {
    let extra: toml::Table = toml::from_str(extra).expect("TOML");
    table.extend(extra);
    table
}

/// Builds a source from `table` with short retry waits.
pub fn build(table: toml::Table) -> Result<Box<dyn DynSource>, kpipe_core::ConfigError> {
    let table = with(table, "retry = { max_attempts = 4, base_delay_ms = 5, max_delay_ms = 50 }");
    let cx = BuildContext { source_name: "hubspot_test".into(), config_dir: std::env::temp_dir() };
    kpipe_connector_hubspot::factory().build(table, &cx)
}

/// Builds a source from `table` and pulls `window`.
pub async fn pull(table: toml::Table, window: DateWindow) -> Pulled {
    let source = build(table).unwrap_or_else(|e| panic!("the source cannot be built: {e}"));
    kpipe_testkit::pull(source.as_ref(), window).await
}

/// `since..=until`.
pub fn window(since: &str, until: &str) -> DateWindow {
    DateWindow::new(common::day(since), common::day(until)).expect("a window")
}
