//! kpipe connector for the LinkedIn Marketing API (versioned `/rest` API): daily ad analytics
//! of sponsored ad accounts by campaign and by creative, and the follower and share statistics
//! of company pages.
//!
//! The modules: [`config`] is the `[sources.<name>]` table, [`source`] runs a pull, [`client`]
//! builds the HTTP client (version headers, token refresh, LinkedIn's daily caps),
//! [`catalog`] declares what each stream yields, [`concurrent`] keeps several accounts' requests in flight, [`entities`] reads ad accounts,
//! campaigns and creatives, [`analytics`] and [`organization`] fetch the statistics, [`restli`]
//! writes LinkedIn's Rest.li 2.0 query syntax, [`fields`] is the field-to-metric table,
//! [`json`] reads answers in place, [`normalize`] turns API elements into metric rows,
//! [`period`] asks for reach over whole weeks and months, and [`estimate`] counts what a pull
//! would send. Endpoints, scopes, version and the mapping are in
//! this crate's README.

pub mod analytics;
pub mod catalog;
pub mod client;
pub mod concurrent;
pub mod config;
pub mod entities;
pub mod estimate;
pub mod fields;
pub mod json;
pub mod normalize;
pub mod organization;
pub mod period;
pub mod restli;
pub mod source;

pub use config::LinkedInConfig;
pub use source::LinkedInSource;

/// The registration line for the `kpipe` binary's registry.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<LinkedInSource>()
}
