//! kpipe connector for Facebook (Meta): daily ads insights of the configured ad accounts at the
//! campaign, ad set and ad levels, and daily Page insights, from the Graph / Marketing API.
//!
//! The modules: [`config`] is the `[sources.<name>]` table, [`catalog`] declares what each
//! stream yields, [`source`] runs a pull, [`listing`]
//! pages synchronous reports, [`reports`] drives asynchronous report runs for large windows,
//! [`page_insights`] reads Page metrics, `periods` asks for reach over whole weeks and months,
//! [`client`] and [`usage`] talk to the API (error codes,
//! usage headers, pauses), [`mapping`] and [`normalize`] turn Meta's fields into metric rows.
//! Endpoints, permissions, token types and the mapping tables are in this crate's README.

pub mod catalog;
pub mod client;
pub mod config;
mod estimate;
mod forked;
pub mod listing;
pub mod mapping;
pub mod normalize;
pub mod page_insights;
mod page_openings;
mod pause;
mod periods;
pub mod reports;
mod run_polls;
pub mod source;
pub mod usage;
pub mod versions;

pub use config::FacebookConfig;
pub use source::FacebookSource;

/// The registration line for the `kpipe` binary's registry.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<FacebookSource>()
}
