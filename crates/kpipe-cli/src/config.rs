//! The configuration file: one TOML document, secrets from the environment, every mistake
//! reported with the file and the key path before anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kpipe_core::{BuildContext, ConfigError, DynSource, NaiveDate, is_identifier};
use kpipe_sink_parquet::{OutputFormat, Storage, StorageError};
use kpipe_storage::{OutputLocation, StorageOptions};
use serde::Deserialize;

use crate::registry;
use crate::token_health::RefreshTokenRecord;

/// Keys every `[sources.<name>]` table accepts besides the connector's own.
const COMMON_SOURCE_KEYS: [&str; 4] = ["type", "enabled", "start_date", "restatement_days"];

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineSection {
    /// Output directory, relative to the configuration file, or an object store URL.
    output: String,
    /// Object store options.
    #[serde(default)]
    storage: BTreeMap<String, StorageOptionValue>,
    /// How long an object store's run lock lasts without renewal.
    #[serde(default = "default_lock_lease_seconds")]
    lock_lease_seconds: u32,
    /// Days re-pulled by a run without `--from`: platforms revise recent days.
    #[serde(default = "default_lookback_days")]
    lookback_days: u32,
    /// No day before this one is ever pulled.
    start_date: Option<String>,
    /// `parquet` (a file per partition) or `delta` (Delta Lake tables under `delta/`).
    #[serde(default)]
    format: FormatName,
    /// The part of a per-application rate limit each shard of `--shard K/N` takes (default
    /// `1 / N`).
    shard_rate_share: Option<f64>,
}

/// `[pipeline] format`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FormatName {
    #[default]
    Parquet,
    Delta,
}

fn default_lookback_days() -> u32 {
    28
}

fn default_lock_lease_seconds() -> u32 {
    120
}

/// A `[pipeline.storage]` value: object stores take every option as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StorageOptionValue {
    Text(String),
    Flag(bool),
    Number(i64),
}

impl StorageOptionValue {
    fn into_text(self) -> String {
        match self {
            StorageOptionValue::Text(t) => t,
            StorageOptionValue::Flag(b) => b.to_string(),
            StorageOptionValue::Number(n) => n.to_string(),
        }
    }
}

/// The settings of a run.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Where everything goes: a directory or an object store prefix.
    pub output: OutputLocation,
    /// `[pipeline.storage]`: the object store's options.
    pub storage: StorageOptions,
    /// Days re-pulled by a run without `--from`.
    pub lookback_days: u32,
    /// No day before this one is ever pulled.
    pub start_date: Option<NaiveDate>,
    /// Seconds an object store's run lock lasts unless renewed (it is renewed while the run
    /// lives; a killed run's lock is taken over once this much time has passed).
    pub lock_lease_seconds: u32,
    /// How the metric and KPI tables are kept.
    pub format: OutputFormat,
    /// `shard_rate_share`: the part of a per-application rate limit each shard takes (`None`:
    /// `1 / N`).
    pub shard_rate_share: Option<f64>,
    /// The shard this process runs and what it holds (the whole configuration unless the
    /// configuration was loaded for `--shard K/N`).
    pub split: crate::shard::ShardSplit,
}

impl PipelineConfig {
    /// A local output directory, with every other setting at its default.
    pub fn local(output: impl Into<PathBuf>, lookback_days: u32) -> PipelineConfig {
        PipelineConfig {
            output: OutputLocation::Local(output.into()),
            storage: StorageOptions::default(),
            lookback_days,
            start_date: None,
            lock_lease_seconds: default_lock_lease_seconds(),
            format: OutputFormat::Parquet,
            shard_rate_share: None,
            split: crate::shard::ShardSplit { rate_share: 1.0, ..Default::default() },
        }
    }

    /// The output's storage.
    pub fn open_storage(&self) -> Result<Storage, StorageError> {
        Storage::open(&self.output, &self.storage)
    }
}

/// One configured source.
pub struct SourceConfig {
    /// The name of its table, `[sources.<name>]`.
    pub name: String,
    /// Its connector `type`.
    pub kind: String,
    /// False to keep it configured but not run.
    pub enabled: bool,
    /// No day before this one is pulled for this source.
    pub start_date: Option<NaiveDate>,
    /// Overrides the connector's restatement horizon: days older than this when pulled are
    /// final and not pulled again.
    pub restatement_days: Option<u32>,
    /// The built connector.
    pub source: Box<dyn DynSource>,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("start_date", &self.start_date)
            .finish_non_exhaustive()
    }
}

/// A configuration file, read and checked.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[sources.*]`, in name order.
    pub sources: Vec<SourceConfig>,
    /// `[kpis.<name>]` and `[kpis_settings]`: the KPI catalog and how it is computed.
    pub kpis: KpiConfig,
}

/// The KPIs of a configuration: the built-in catalog with the user's `[kpis.<name>]` tables,
/// and `[kpis_settings]`.
#[derive(Debug, Clone)]
pub struct KpiConfig {
    /// The definitions.
    pub catalog: kpipe_kpi::Catalog,
    /// Grains, scopes, currency conversion.
    pub settings: kpipe_kpi::Settings,
}

impl Default for KpiConfig {
    fn default() -> KpiConfig {
        KpiConfig { catalog: kpipe_kpi::Catalog::builtin(), settings: kpipe_kpi::Settings::default() }
    }
}

/// Everything wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigFileError {
    /// The file.
    pub file: PathBuf,
    /// The problems, each with its key path.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.path.is_empty() {
                write!(f, "{}: {}", self.file.display(), e.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file.display(), e.path, e.message)?;
            }
        }
        Ok(())
    }
}

/// Reads and checks `path`, taking `${NAME}` values from `env`.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigFileError> {
    load_with_token_records(path, env).map(|(config, _)| config)
}

/// Reads and checks `path` like [`load`], keeping of each source only the units of work (ad
/// accounts, pages, properties; or the source as a whole) that `shard` owns: sources with none
/// are left out (listed in [`PipelineConfig::split`]).
pub fn load_shard(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    shard: kpipe_core::Shard,
) -> Result<Config, ConfigFileError> {
    read_file(path, env, shard).map(|(config, _)| config)
}

/// What the sources' secrets files record about their refresh tokens (issued, expires), by
/// source name. Kept beside the [`Config`]: connectors never see these keys.
pub type RefreshTokenRecords = BTreeMap<String, RefreshTokenRecord>;

/// Reads and checks `path` like [`load`], and also returns what the secrets files record about
/// the sources' refresh tokens, for `kpipe check`.
pub fn load_with_token_records(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, RefreshTokenRecords), ConfigFileError> {
    read_file(path, env, kpipe_core::Shard::ALL)
}

fn read_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    shard: kpipe_core::Shard,
) -> Result<(Config, RefreshTokenRecords), ConfigFileError> {
    let fail = |errors: Vec<ConfigError>| ConfigFileError { file: path.to_path_buf(), errors };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(vec![ConfigError::new("", format!("cannot read the configuration file: {e}"))]))?;
    let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let config_dir = if config_dir.as_os_str().is_empty() { PathBuf::from(".") } else { config_dir };
    let (mut config, records) = parse_document(&text, &config_dir, env, shard).map_err(fail)?;
    config.path = path.to_path_buf();
    Ok((config, records))
}

/// Reads and checks a configuration document; relative paths are resolved against
/// `config_dir`.
pub fn parse(
    text: &str,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    parse_with_token_records(text, config_dir, env).map(|(config, _)| config)
}

/// [`parse`], also returning the refresh-token records of the secrets files.
pub fn parse_with_token_records(
    text: &str,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, RefreshTokenRecords), Vec<ConfigError>> {
    parse_document(text, config_dir, env, kpipe_core::Shard::ALL)
}

fn parse_document(
    text: &str,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    shard: kpipe_core::Shard,
) -> Result<(Config, RefreshTokenRecords), Vec<ConfigError>> {
    let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        vec![ConfigError::new("", format!("not valid TOML: {}", crate::redact::toml_syntax_error(text, &e)))]
    })?;
    let mut secrets = Secrets::default();
    let mut errors = Vec::new();
    for (key, value) in doc.iter_mut() {
        interpolate(value, key, env, &mut secrets, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let records = merge_secrets_files(&mut doc, config_dir, &mut secrets, &mut errors);
    for (key, value) in doc.iter() {
        register_secret_values(key, value);
    }
    for key in doc.keys() {
        if !["pipeline", "sources", "kpis", "kpis_settings"].contains(&key.as_str()) {
            errors.push(ConfigError::new(
                key.clone(),
                "unknown key; expected `pipeline`, `sources`, `kpis` or `kpis_settings`",
            ));
        }
    }

    let pipeline = match doc.remove("pipeline") {
        None => {
            errors.push(ConfigError::new(
                "pipeline",
                "missing; expected a [pipeline] table with at least `output`",
            ));
            None
        }
        Some(value) => match serde_path_to_error::deserialize::<_, PipelineSection>(value) {
            Err(e) => {
                errors.push(
                    ConfigError::from_deserializer(e.path().to_string(), e.inner().to_string())
                        .within("pipeline"),
                );
                None
            }
            Ok(p) => pipeline_config(p, config_dir, &mut errors),
        },
    };

    let kpis = kpi_config(doc.remove("kpis"), doc.remove("kpis_settings"), &mut errors);

    let mut sources = Vec::new();
    let mut split = crate::shard::ShardSplit::default();
    match doc.remove("sources") {
        None => {
            errors.push(ConfigError::new("sources", "missing; expected at least one [sources.<name>] table"))
        }
        Some(toml::Value::Table(table)) => {
            if table.is_empty() {
                errors
                    .push(ConfigError::new("sources", "empty; expected at least one [sources.<name>] table"));
            }
            let share =
                pipeline.as_ref().and_then(|p| p.shard_rate_share).unwrap_or(1.0 / f64::from(shard.count()));
            split = crate::shard::ShardSplit { shard, rate_share: share, ..Default::default() };
            for (name, value) in table {
                match source_config(&name, value, config_dir, shard, share) {
                    Ok(Some((s, units))) => {
                        split.units.insert(name.clone(), units);
                        sources.push(s);
                    }
                    Ok(None) => split.elsewhere.push(name),
                    Err(e) => errors.push(e),
                }
            }
        }
        Some(_) => errors.push(ConfigError::new("sources", "expected a table of [sources.<name>] tables")),
    }

    match (pipeline, errors.is_empty()) {
        (Some(mut pipeline), true) => {
            pipeline.split = split;
            sources.sort_by(|a, b| a.name.cmp(&b.name));
            let mut kpis = kpis.unwrap_or_default();
            kpis.settings.output_format = pipeline.format;
            let config = Config { path: PathBuf::new(), pipeline, sources, kpis };
            Ok((config, records))
        }
        _ => Err(errors.into_iter().map(|e| secrets.redact(e)).collect()),
    }
}

fn pipeline_config(
    p: PipelineSection,
    config_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<PipelineConfig> {
    let start_date = match p.start_date.as_deref().map(parse_date) {
        Some(Err(message)) => {
            errors.push(ConfigError::new("pipeline.start_date", message));
            return None;
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let output = match OutputLocation::parse(&p.output, config_dir) {
        Ok(o) => o,
        Err(message) => {
            errors.push(ConfigError::new("pipeline.output", message));
            return None;
        }
    };
    if !p.storage.is_empty() && output.local_dir().is_some() {
        errors.push(ConfigError::new(
            "pipeline.storage",
            "applies to object stores; pipeline.output is a local directory",
        ));
        return None;
    }
    if !(5..=86_400).contains(&p.lock_lease_seconds) {
        errors.push(ConfigError::new(
            "pipeline.lock_lease_seconds",
            format!("is {}; expected 5 to 86400 seconds", p.lock_lease_seconds),
        ));
        return None;
    }
    if p.lookback_days == 0 || p.lookback_days > 3660 {
        errors.push(ConfigError::new(
            "pipeline.lookback_days",
            format!("is {}; expected 1 to 3660 days", p.lookback_days),
        ));
        return None;
    }
    if let Some(share) = p.shard_rate_share.filter(|s| !(s.is_finite() && *s > 0.0 && *s <= 1.0)) {
        errors.push(ConfigError::new(
            "pipeline.shard_rate_share",
            format!("is {share}; expected a part of the limit above 0 and at most 1, such as 0.125"),
        ));
        return None;
    }
    let storage = StorageOptions { values: p.storage.into_iter().map(|(k, v)| (k, v.into_text())).collect() };
    Some(PipelineConfig {
        output,
        storage,
        lookback_days: p.lookback_days,
        start_date,
        lock_lease_seconds: p.lock_lease_seconds,
        format: match p.format {
            FormatName::Parquet => OutputFormat::Parquet,
            FormatName::Delta => OutputFormat::Delta,
        },
        shard_rate_share: p.shard_rate_share,
        split: crate::shard::ShardSplit { rate_share: 1.0, ..Default::default() },
    })
}

fn source_config(
    name: &str,
    value: toml::Value,
    config_dir: &Path,
    shard: kpipe_core::Shard,
    share: f64,
) -> Result<Option<(SourceConfig, crate::shard::SourceUnits)>, ConfigError> {
    let at = format!("sources.{name}");
    if !is_identifier(name) {
        return Err(ConfigError::new(
            at,
            "source names are snake_case (lower-case letters, digits, `_`): they name output folders",
        ));
    }
    let toml::Value::Table(mut table) = value else {
        return Err(ConfigError::new(at, "expected a table"));
    };
    let kind = match table.remove("type") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => return Err(ConfigError::new(format!("{at}.type"), "expected a string")),
        None => {
            return Err(ConfigError::new(
                format!("{at}.type"),
                format!("missing; expected one of: {}", registry::known_kinds()),
            ));
        }
    };
    let factory = registry::find(&kind).ok_or_else(|| {
        ConfigError::new(
            format!("{at}.type"),
            format!("unknown connector type `{kind}`; known types: {}", registry::known_kinds()),
        )
    })?;
    let enabled = match table.remove("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => return Err(ConfigError::new(format!("{at}.enabled"), "expected true or false")),
    };
    let start_date = match table.remove("start_date") {
        None => None,
        Some(toml::Value::String(s)) => {
            Some(parse_date(&s).map_err(|m| ConfigError::new(format!("{at}.start_date"), m))?)
        }
        Some(_) => return Err(ConfigError::new(format!("{at}.start_date"), "expected a date YYYY-MM-DD")),
    };
    let restatement_days = match table.remove("restatement_days") {
        None => None,
        Some(toml::Value::Integer(n)) if (0..=3660).contains(&n) => u32::try_from(n).ok(),
        Some(_) => {
            return Err(ConfigError::new(
                format!("{at}.restatement_days"),
                "expected a number of days from 0 to 3660",
            ));
        }
    };
    debug_assert!(COMMON_SOURCE_KEYS.iter().all(|k| !table.contains_key(*k)));
    let Some(units) =
        crate::shard::select(name, &factory, &mut table, shard, share).map_err(|e| e.within(&at))?
    else {
        return Ok(None);
    };
    let cx = BuildContext { source_name: name.to_owned(), config_dir: config_dir.to_path_buf() };
    let source = factory.build(table, &cx).map_err(|e| e.within(&at))?;
    Ok(Some((
        SourceConfig { name: name.to_owned(), kind, enabled, start_date, restatement_days, source },
        units,
    )))
}

/// `[kpis.<name>]` and `[kpis_settings]`: read by kpipe-kpi's own types, errors under their keys.
fn kpi_config(
    definitions: Option<toml::Value>,
    settings: Option<toml::Value>,
    errors: &mut Vec<ConfigError>,
) -> Option<KpiConfig> {
    fn read<T: serde::de::DeserializeOwned + Default>(
        value: Option<toml::Value>,
        at: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        match value.map(serde_path_to_error::deserialize::<_, T>) {
            None => Some(T::default()),
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                errors.push(
                    ConfigError::from_deserializer(e.path().to_string(), e.inner().to_string()).within(at),
                );
                None
            }
        }
    }
    let definitions: Option<BTreeMap<String, kpipe_kpi::KpiDefinitionConfig>> =
        read(definitions, "kpis", errors);
    let settings: Option<kpipe_kpi::KpiSettingsConfig> = read(settings, "kpis_settings", errors);
    let catalog = definitions.and_then(|d| {
        kpipe_kpi::Catalog::new(&d).map_err(|e| errors.extend(e.into_iter().map(|e| e.within("kpis")))).ok()
    });
    let settings = settings.and_then(|s| {
        kpipe_kpi::Settings::from_config(&s)
            .map_err(|e| errors.extend(e.into_iter().map(|e| e.within("kpis_settings"))))
            .ok()
    });
    Some(KpiConfig { catalog: catalog?, settings: settings? })
}

/// A `YYYY-MM-DD` date, with a message saying what was expected.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        Ok(d) if t.len() == 10 => Ok(d),
        _ => Err(format!("`{t}` is not a date; expected YYYY-MM-DD, such as 2026-01-31")),
    }
}

/// Registers for [`kpipe_core::scrub`] the string values of keys whose names say they hold a
/// secret (`client_secret`, `[pipeline.storage]`'s `aws_secret_access_key`, ...), whether written
/// in the file or taken from the environment: connectors read most of them as
/// [`kpipe_core::Secret`]s, which register themselves, but not all (object store options are
/// plain text). Other values taken from the environment are not registered: account ids and
/// paths often come from there, and scrubbing them would rewrite state objects and summaries.
fn register_secret_values(key: &str, value: &toml::Value) {
    match value {
        toml::Value::String(s) if holds_secret(key) => kpipe_core::register_secret(s),
        toml::Value::Array(items) => items.iter().for_each(|item| register_secret_values(key, item)),
        toml::Value::Table(table) => table.iter().for_each(|(k, v)| register_secret_values(k, v)),
        _ => {}
    }
}

/// A key named like a secret that holds where one is (`token_url`, `key_file`) or which one
/// (`aws_access_key_id`) is not one.
pub(crate) fn holds_secret(key: &str) -> bool {
    kpipe_core::is_secret_key(key)
        && !["_url", "_uri", "_file", "_path", "_id", "_ids"].iter().any(|suffix| key.ends_with(suffix))
}

/// Values that came from the environment, so that no message ever shows one.
#[derive(Default)]
struct Secrets(BTreeMap<String, String>);

impl Secrets {
    fn redact(&self, mut e: ConfigError) -> ConfigError {
        for (value, name) in &self.0 {
            if !value.is_empty() {
                e.message = e.message.replace(value.as_str(), &format!("${{{name}}}"));
            }
        }
        e
    }
}

/// Replaces `${NAME}` in every string with the environment's value (`$${` stands for a literal
/// `${`), and turns TOML dates into `YYYY-MM-DD` strings so that every date is read one way.
fn interpolate(
    value: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        toml::Value::String(s) if s.contains('$') => match substitute(s, env, secrets) {
            Ok(v) => *s = v,
            Err(message) => errors.push(ConfigError::new(path, message)),
        },
        toml::Value::Datetime(dt) => match (dt.date, dt.time) {
            (Some(d), None) => {
                *value = toml::Value::String(format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
            }
            _ => errors.push(ConfigError::new(path, format!("`{dt}` is not a date; expected YYYY-MM-DD"))),
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, secrets, errors);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate(item, &format!("{path}.{key}"), env, secrets, errors);
            }
        }
        _ => {}
    }
}

fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let name = &inner[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{name}}}` is not an environment variable name"));
            }
            match env(name) {
                Some(v) if !v.is_empty() => {
                    secrets.0.insert(v.clone(), name.to_owned());
                    out.push_str(&v);
                }
                Some(_) => {
                    return Err(format!("environment variable {name} is empty (referenced as ${{{name}}})"));
                }
                None => {
                    return Err(format!(
                        "environment variable {name} is not set (referenced as ${{{name}}})"
                    ));
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The key of a `[sources.<name>]` table that names a TOML file of secrets, such as the one
/// `kpipe auth` writes: its keys (`refresh_token`, ...) are added to the table as if written
/// there. The path is relative to the configuration file.
pub const SECRETS_FILE_KEY: &str = "secrets_file";

/// Replaces `${NAME}` in `text` with the environment's value, as the configuration file does
/// (`$${` stands for a literal `${`). The error names the variable, never a value.
pub fn substitute_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    substitute(text, env, &mut Secrets::default())
}

/// Adds the keys of each source's `secrets_file` to its table, and remembers their values so
/// that no message shows one. What a file records about its refresh token (`kpipe auth`'s
/// issue and expiry dates) is taken out and returned instead: it is not the connector's.
fn merge_secrets_files(
    doc: &mut toml::Table,
    config_dir: &Path,
    secrets: &mut Secrets,
    errors: &mut Vec<ConfigError>,
) -> RefreshTokenRecords {
    let mut records = RefreshTokenRecords::new();
    let Some(toml::Value::Table(sources)) = doc.get_mut("sources") else { return records };
    for (name, source) in sources.iter_mut() {
        let toml::Value::Table(table) = source else { continue };
        let at = format!("sources.{name}.{SECRETS_FILE_KEY}");
        let path = match table.remove(SECRETS_FILE_KEY) {
            None => continue,
            Some(toml::Value::String(p)) if !p.trim().is_empty() => config_dir.join(p.trim()),
            Some(_) => {
                errors.push(ConfigError::new(at, "expected the path of a TOML file of secrets"));
                continue;
            }
        };
        let shown = path.display();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::new(at, format!("cannot read {shown}: {e}")));
                continue;
            }
        };
        warn_if_readable_by_others(&path);
        let mut file = match text.parse::<toml::Table>() {
            Ok(file) => file,
            Err(e) => {
                let why = crate::redact::toml_syntax_error_in_secrets_file(&text, &e);
                errors.push(ConfigError::new(at, format!("{shown} is not valid TOML: {why}")));
                continue;
            }
        };
        match RefreshTokenRecord::take_from(&mut file) {
            Ok(Some(record)) => {
                records.insert(name.clone(), record);
            }
            Ok(None) => {}
            Err(message) => errors.push(ConfigError::new(at.clone(), format!("{shown}: {message}"))),
        }
        for (key, value) in file {
            match value {
                toml::Value::String(v) if table.contains_key(&key) => {
                    secrets.0.insert(v, key.clone());
                    errors.push(ConfigError::new(
                        format!("sources.{name}.{key}"),
                        format!("is set both here and in {shown}; keep one"),
                    ));
                }
                toml::Value::String(v) => {
                    if !v.is_empty() {
                        // A secrets file holds secrets: whatever its keys are called, their
                        // values are kept out of every output.
                        kpipe_core::register_secret(&v);
                        secrets.0.insert(v.clone(), key.clone());
                    }
                    table.insert(key, toml::Value::String(v));
                }
                _ => errors.push(ConfigError::new(at.clone(), format!("{shown}: `{key}` is not a string"))),
            }
        }
    }
    records
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "the secrets file can be read by other users: `chmod 600` it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("/cfg"), &env) {
            Ok(_) => vec![],
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    const OK: &str = "[pipeline]\noutput = \"out\"\n[sources.sheet]\ntype = \"files\"\nkind = \"metrics\"\npath = \"m.csv\"\n";

    #[test]
    fn a_good_file_loads() {
        let c = parse(OK, Path::new("/cfg"), &env).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.pipeline.output, OutputLocation::Local(PathBuf::from("/cfg/out")));
        assert_eq!(c.pipeline.lookback_days, 28);
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.sources[0].kind, "files");
    }

    #[test]
    fn a_file_that_is_not_toml_is_reported_by_line_without_the_secret_on_it() {
        let errs = errors(&format!("{OK}client_secret = \"literal-secret-0c2e\naccount_ids = []\n"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("not valid TOML") && errs[0].contains("line 7"), "{errs:?}");
        assert!(!errs[0].contains("literal-secret-0c2e"), "{errs:?}");
    }

    #[test]
    fn substitution() {
        let mut s = Secrets::default();
        assert_eq!(substitute("Bearer ${TOKEN}", &env, &mut s).as_deref(), Ok("Bearer s3cr3t-value"));
        assert_eq!(substitute("$${TOKEN} costs $5", &env, &mut s).as_deref(), Ok("${TOKEN} costs $5"));
        assert_eq!(
            substitute("${MISSING}", &env, &mut s),
            Err("environment variable MISSING is not set (referenced as ${MISSING})".into())
        );
        assert!(substitute("${EMPTY}", &env, &mut s).is_err());
        assert!(substitute("${TOKEN", &env, &mut s).is_err());
        assert!(substitute("${A-B}", &env, &mut s).is_err());
    }

    #[test]
    fn every_mistake_is_reported_with_its_key() {
        let text = "[pipeline]\noutput = \"out\"\nlookback_dayz = 3\n[sources.a]\ntype = \"nope\"\n[sources.B]\ntype = \"files\"\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("pipeline.lookback_dayz: unknown field `lookback_dayz`"), "{errs:?}");
        // Sources are read in name order; `B` sorts before `a`.
        assert!(errs[1].starts_with("sources.B: source names are snake_case"), "{errs:?}");
        // Other connectors may follow `files` in the list.
        let unknown = "sources.a.type: unknown connector type `nope`; known types: files";
        assert!(errs[2].starts_with(unknown), "{errs:?}");
    }

    #[test]
    fn secrets_never_show_in_messages() {
        // A secret put where a number belongs: the message names the variable, not the value.
        let text =
            format!("{OK}\n[sources.x]\ntype = \"files\"\nkind = \"metrics\"\npath = [\"${{TOKEN}}\"]\n");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("sources.x.path: "), "{errs:?}");
        assert!(!errs[0].contains("s3cr3t"), "{errs:?}");
    }

    #[test]
    fn dates_native_or_quoted() {
        let ok = "[pipeline]\noutput = \"o\"\nstart_date = 2025-01-31\n[sources.s]\ntype = \"files\"\nkind = \"metrics\"\npath = \"x\"\nstart_date = \"2025-02-01\"\n";
        let c = parse(ok, Path::new("."), &env).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.pipeline.start_date.map(|d| d.to_string()).as_deref(), Some("2025-01-31"));
        assert_eq!(c.sources[0].start_date.map(|d| d.to_string()).as_deref(), Some("2025-02-01"));
        let errs = errors(&ok.replace("\"2025-02-01\"", "\"2025-02-30\""));
        assert_eq!(
            errs,
            ["sources.s.start_date: `2025-02-30` is not a date; expected YYYY-MM-DD, such as 2026-01-31"]
        );
    }
}

#[cfg(test)]
mod secrets_file_tests {
    use super::*;

    const CONFIG: &str = "[pipeline]\noutput = \"out\"\n\
                          [sources.sheet]\ntype = \"files\"\nkind = \"metrics\"\n\
                          secrets_file = \"secrets/sheet.toml\"\n";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_with(config: &str, secrets: &str) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("secrets")).expect("mkdir");
        std::fs::write(dir.path().join("secrets/sheet.toml"), secrets).expect("write");
        parse(config, dir.path(), &no_env).map_err(|errs| errs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn keys_of_the_secrets_file_join_the_source_table() {
        // `path` stands in for a connector key: the files connector takes it like any other.
        let config = parse_with(CONFIG, "# written by kpipe auth\npath = \"m.csv\"\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.sources[0].name, "sheet");
    }

    #[test]
    fn a_key_set_twice_is_an_error_that_shows_no_value() {
        let errs = parse_with(&format!("{CONFIG}path = \"m.csv\"\n"), "path = \"hunter2-secret\"\n")
            .expect_err("set twice");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("sources.sheet.path: is set both here and in "), "{errs:?}");
        assert!(!errs.concat().contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn an_unreadable_or_invalid_file_is_reported_without_its_content() {
        let errs = parse_with(CONFIG, "path = \"hunter2-secret\nbroken").expect_err("invalid");
        assert!(errs[0].starts_with("sources.sheet.secrets_file: "), "{errs:?}");
        assert!(errs[0].contains("is not valid TOML"), "{errs:?}");
        assert!(!errs.concat().contains("hunter2"), "{errs:?}");

        let errs = parse(&CONFIG.replace("sheet.toml", "missing.toml"), Path::new("/nonexistent"), &no_env)
            .map(|_| ())
            .expect_err("missing");
        assert!(errs[0].to_string().contains("cannot read /nonexistent/secrets/missing.toml"), "{errs:?}");
    }

    #[test]
    fn the_refresh_token_record_is_kept_apart_from_the_connector_table() {
        // The files connector refuses unknown keys: the record's keys must not reach it.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("secrets")).expect("mkdir");
        std::fs::write(
            dir.path().join("secrets/sheet.toml"),
            "path = \"m.csv\"\nrefresh_token_issued_at = 2026-01-01T10:00:00Z\n\
             refresh_token_expires_at = 2027-01-01T10:00:00Z\n\
             refresh_token_expiry_basis = \"announced by the token endpoint\"\n",
        )
        .expect("write");
        let (config, records) =
            parse_with_token_records(CONFIG, dir.path(), &no_env).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.sources[0].name, "sheet");
        let record = &records["sheet"];
        assert_eq!(record.expires_at.map(|t| t.to_rfc3339()).as_deref(), Some("2027-01-01T10:00:00+00:00"));
        assert_eq!(record.basis.as_deref(), Some("announced by the token endpoint"));

        std::fs::write(
            dir.path().join("secrets/sheet.toml"),
            "path = \"m.csv\"\nrefresh_token_expires_at = \"next year\"\n",
        )
        .expect("write");
        let errs = parse(CONFIG, dir.path(), &no_env).map(|_| ()).expect_err("not a date");
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(errs[0].starts_with("sources.sheet.secrets_file: "), "{errs:?}");
        assert!(errs[0].contains("`refresh_token_expires_at` is not a date-time"), "{errs:?}");
    }

    #[test]
    fn substitute_env_reads_variables_like_the_file() {
        let env = |n: &str| (n == "ID").then(|| "abc".to_owned());
        assert_eq!(substitute_env("id-${ID}", &env).as_deref(), Ok("id-abc"));
        assert!(substitute_env("${NOPE}", &env).unwrap_err().contains("NOPE is not set"));
    }
}
