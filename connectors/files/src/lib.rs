#![doc = include_str!("../README.md")]

mod catalog;
mod config;
mod metrics;
mod reader;
mod records;
mod social_selling;
mod source;
mod survey;

pub use config::{FileKind, FilesConfig};
pub use source::FilesSource;

/// The registration entry of this connector.
pub fn factory() -> kpipe_core::ConnectorFactory {
    kpipe_core::ConnectorFactory::of::<FilesSource>()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod accounting_tests;
