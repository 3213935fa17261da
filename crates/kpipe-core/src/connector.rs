//! How a connector is found by its `type` and built from its configuration table.

use std::fmt;
use std::path::PathBuf;

use crate::catalog::StreamCatalog;
use crate::error::ConfigError;
use crate::shard::{SharedRateLimit, UnitKey};
use crate::source::{DynSource, Source};

/// What a connector may know while it is being built.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The configured source name (`[sources.<name>]`).
    pub source_name: String,
    /// The directory of the configuration file; relative paths are resolved against it.
    pub config_dir: PathBuf,
}

type BuildFn = fn(toml::Table, &BuildContext) -> Result<Box<dyn DynSource>, ConfigError>;
type CatalogFn = fn() -> Vec<StreamCatalog>;
type SchemaFn = fn() -> schemars::Schema;

/// Registration entry of a connector: its `type` and how to build it.
#[derive(Clone, Copy)]
pub struct ConnectorFactory {
    /// The `type` value.
    pub kind: &'static str,
    /// What it pulls.
    pub description: &'static str,
    /// The keys listing its units of work ([`Source::UNIT_KEYS`]).
    pub unit_keys: &'static [UnitKey],
    /// Its per-application rate limit ([`Source::SHARED_RATE_LIMIT`]).
    pub shared_rate_limit: Option<SharedRateLimit>,
    build: BuildFn,
    catalog: CatalogFn,
    config_schema: SchemaFn,
}

impl ConnectorFactory {
    /// The factory of source `S`: the one line a connector crate exports. Its configuration
    /// derives [`schemars::JsonSchema`] (doc comments become descriptions, [`crate::Secret`]s are
    /// marked), which `kpipe catalog` prints.
    pub fn of<S: Source>() -> ConnectorFactory
    where
        S::Config: schemars::JsonSchema,
    {
        ConnectorFactory {
            kind: S::KIND,
            description: S::DESCRIPTION,
            unit_keys: S::UNIT_KEYS,
            shared_rate_limit: S::SHARED_RATE_LIMIT,
            build: build_erased::<S>,
            catalog: S::catalog,
            config_schema: config_schema::<S::Config>,
        }
    }

    /// What the connector can pull ([`Source::catalog`]).
    pub fn catalog(&self) -> Vec<StreamCatalog> {
        (self.catalog)()
    }

    /// The JSON Schema (draft 2020-12) of its `[sources.<name>]` table without `type`.
    pub fn config_schema(&self) -> schemars::Schema {
        (self.config_schema)()
    }

    /// Reads `table` (a `[sources.<name>]` table without `type`) into the connector's typed
    /// configuration and builds the source. Errors carry the key path inside `table`.
    pub fn build(&self, table: toml::Table, cx: &BuildContext) -> Result<Box<dyn DynSource>, ConfigError> {
        (self.build)(table, cx)
    }
}

impl fmt::Debug for ConnectorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorFactory").field("kind", &self.kind).finish_non_exhaustive()
    }
}

fn build_erased<S: Source>(table: toml::Table, cx: &BuildContext) -> Result<Box<dyn DynSource>, ConfigError> {
    let config: S::Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::from_deserializer(path, e.into_inner().to_string())
    })?;
    Ok(Box::new(S::build(config, cx)?))
}

fn config_schema<C: schemars::JsonSchema>() -> schemars::Schema {
    schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft2020_12())
        .into_root_schema_for::<C>()
}
