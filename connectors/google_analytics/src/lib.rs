//! kpipe connector for Google Analytics 4, on the Analytics Data API v1beta: daily traffic by
//! channel and source / medium, daily property totals with the unique user counts, the unique
//! user counts of whole weeks and months (period rows), and custom reports of the configured
//! properties.
//!
//! The modules: [`config`] is the `[sources.<name>]` table, [`auth`] turns the credentials into
//! a token provider, [`catalog`] declares what each stream yields, [`reports`] builds the `runReport` requests, [`vocabulary`] maps GA4's
//! dimensions and metrics onto the metric schema, [`normalize`] turns report rows into metric
//! rows, [`pacing`] keeps the requests within the property quotas, and [`source`] runs the
//! pull. The endpoints, quotas and the mapping table are in this crate's README.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod normalize;
pub mod pacing;
pub mod reports;
pub mod source;
pub mod vocabulary;

pub use config::{CustomReportConfig, GoogleAnalyticsConfig};
pub use source::GoogleAnalyticsSource;

/// The registration line for the `kpipe` binary's registry.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<GoogleAnalyticsSource>()
}
