//! kpipe connector for Template: daily campaign reports (impressions, clicks, spend) of the
//! configured ad accounts.
//!
//! The modules: [`config`] is the `[sources.<name>]` table, [`source`] talks to the API
//! through kpipe-http, [`normalize`] turns API rows into metric rows. The API's endpoints,
//! version and field mapping are in this crate's README.

pub mod config;
pub mod normalize;
pub mod source;

pub use config::TemplateConfig;
pub use source::TemplateSource;

/// The registration line for the `kpipe` binary's registry.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<TemplateSource>()
}
