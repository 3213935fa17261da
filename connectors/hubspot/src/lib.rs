//! kpipe connector for HubSpot: the CRM funnel (contacts and leads by original source, deals
//! created and won with their revenue), form submissions, marketing email statistics and feedback
//! surveys (NPS, CSAT), per portal day.
//!
//! The modules: [`config`] is the `[sources.<name>]` table, [`source`] the pull over slices of
//! the window, [`hub`] and [`usage`] the client with HubSpot's limits, [`search`] CRM search
//! through its 10,000-result ceiling, [`streams`] what each stream requests, [`normalize`] API
//! records to facts, [`tally`] facts to metric rows, [`portal`] the portal's days. The
//! endpoints, scopes, limits and field mapping are in this crate's README.

pub mod config;
mod estimate;
pub mod hub;
pub mod normalize;
pub mod portal;
pub mod search;
pub mod source;
pub mod streams;
pub mod tally;
pub mod usage;

pub use config::HubSpotConfig;
pub use source::HubSpotSource;

/// The registration line for the `kpipe` binary's registry.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<HubSpotSource>()
}
