//! What a configuration file says about KPIs: `[kpis.<name>]` definitions and `[kpis_settings]`.
//! These types deserialize from the TOML tables as they are; [`crate::Catalog::new`] and
//! [`Settings::from_config`] check them and report each mistake with its key path.

use std::collections::BTreeMap;
use std::fmt;

use kpipe_core::{ConfigError, Currency, Decimal, Unit};

use crate::arith::ONE;
use crate::period::{Grain, Scope};

/// The buyer's-journey stage a KPI reports on (docs/kpis.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Being seen: impressions, reach, followers.
    Awareness,
    /// Being considered: clicks, engagement, site visits.
    Consideration,
    /// Deciding: leads, conversions, revenue.
    Decision,
    /// Staying: survey scores.
    Loyalty,
}

impl Stage {
    /// The name written to the `stage` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Awareness => "awareness",
            Stage::Consideration => "consideration",
            Stage::Decision => "decision",
            Stage::Loyalty => "loyalty",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value or a list of values (`level = "campaign"` or `level = ["campaign", "ad"]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Any of several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[kpis.<name>]`: a user definition, or an override of the built-in KPI of that name (keys
/// left out keep the built-in's).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiDefinitionConfig {
    /// Arithmetic over metric names, e.g. `(likes + comments + shares) / reach`.
    pub formula: Option<String>,
    /// `awareness`, `consideration`, `decision` or `loyalty`.
    pub stage: Option<Stage>,
    /// A factor applied to the value, e.g. 100 for a percentage.
    pub scale: Option<Decimal>,
    /// The unit of the value; by default derived from the formula.
    pub unit: Option<Unit>,
    /// What it measures, for people.
    pub description: Option<String>,
    /// Only rows matching every key: `platform`, `source`, `account_id`, `level`, `entity_id`
    /// or a dimension column, each a value or a list of values.
    #[serde(default)]
    pub filter: BTreeMap<String, OneOrMany>,
    /// `false` drops the KPI (a built-in one included) from the output.
    pub enabled: Option<bool>,
}

/// `[kpis_settings]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiSettingsConfig {
    /// `false`: `kpipe run` does not compute KPIs (`kpipe kpis` still does).
    pub enabled: Option<bool>,
    /// The grains written (default: all of `day`, `week`, `month`).
    pub grains: Option<Vec<Grain>>,
    /// The scopes written (default: all of `entity`, `account`, `platform`, `all`).
    pub scopes: Option<Vec<Scope>>,
    /// The currency money is converted to before it is summed; needs `currency_rates`.
    pub report_currency: Option<String>,
    /// Units of `report_currency` per unit of each other currency: `EUR = "1.08"`.
    #[serde(default)]
    pub currency_rates: BTreeMap<String, Decimal>,
}

/// Conversion of money into one reporting currency, with fixed rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyRates {
    /// The currency every converted amount is in.
    pub report: Currency,
    /// Units of `report` per unit of each currency.
    pub rates: BTreeMap<Currency, Decimal>,
}

/// The checked `[kpis_settings]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether `kpipe run` computes KPIs after the sources.
    pub enabled: bool,
    /// The grains written, finest first.
    pub grains: Vec<Grain>,
    /// The scopes written, narrowest first.
    pub scopes: Vec<Scope>,
    /// Conversion into a reporting currency, if configured; otherwise KPIs over several
    /// currencies are computed per currency.
    pub currency: Option<CurrencyRates>,
    /// How the output's tables are kept (`[pipeline] format`): where the metrics are read
    /// from and the KPIs written to.
    pub output_format: kpipe_sink_parquet::OutputFormat,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            grains: Grain::ALL.to_vec(),
            scopes: Scope::ALL.to_vec(),
            currency: None,
            output_format: kpipe_sink_parquet::OutputFormat::Parquet,
        }
    }
}

impl Settings {
    /// Checks `[kpis_settings]`; error paths are relative to that table.
    pub fn from_config(c: &KpiSettingsConfig) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut settings = Settings { enabled: c.enabled.unwrap_or(true), ..Settings::default() };
        if let Some(grains) = &c.grains {
            if grains.is_empty() {
                errors.push(ConfigError::new(
                    "grains",
                    "is empty; expected some of \"day\", \"week\", \"month\"",
                ));
            }
            settings.grains = grains.clone();
            settings.grains.sort();
            settings.grains.dedup();
        }
        if let Some(scopes) = &c.scopes {
            if scopes.is_empty() {
                errors.push(ConfigError::new(
                    "scopes",
                    "is empty; expected some of \"entity\", \"account\", \"platform\", \"all\"",
                ));
            }
            settings.scopes = scopes.clone();
            settings.scopes.sort();
            settings.scopes.dedup();
        }
        let currency = |path: String, code: &str, errors: &mut Vec<ConfigError>| {
            let parsed = Currency::parse(code);
            if parsed.is_none() {
                errors.push(ConfigError::new(
                    path,
                    format!("`{code}` is not an ISO 4217 code such as \"EUR\""),
                ));
            }
            parsed
        };
        match (&c.report_currency, c.currency_rates.is_empty()) {
            (None, true) => {}
            (None, false) => errors.push(ConfigError::new(
                "report_currency",
                "missing; `currency_rates` convert into a `report_currency`, e.g. report_currency = \"USD\"",
            )),
            (Some(code), _) => {
                let report = currency("report_currency".into(), code, &mut errors);
                let mut rates = BTreeMap::new();
                for (code, rate) in &c.currency_rates {
                    let path = format!("currency_rates.{code}");
                    let Some(from) = currency(path.clone(), code, &mut errors) else { continue };
                    if rate.units() <= 0 {
                        errors.push(ConfigError::new(path, format!("is {rate}; expected a rate above 0")));
                    } else if Some(from) == report && rate.units() != ONE {
                        errors.push(ConfigError::new(path, "the report currency's own rate can only be 1"));
                    } else {
                        rates.insert(from, *rate);
                    }
                }
                if let Some(report) = report {
                    rates.insert(report, Decimal::from_i64(1));
                    settings.currency = Some(CurrencyRates { report, rates });
                }
            }
        }
        if errors.is_empty() { Ok(settings) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<Settings, Vec<String>> {
        let c: KpiSettingsConfig = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        Settings::from_config(&c).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_and_choices() {
        assert_eq!(settings("").unwrap(), Settings::default());
        let s = settings("grains = [\"month\", \"day\"]\nscopes = [\"all\"]\nenabled = false").unwrap();
        assert_eq!(s.grains, [Grain::Day, Grain::Month]);
        assert_eq!(s.scopes, [Scope::All]);
        assert!(!s.enabled);
    }

    #[test]
    fn rates_convert_into_the_report_currency() {
        let s = settings("report_currency = \"USD\"\n[currency_rates]\nEUR = \"1.08\"\nGBP = 1.27").unwrap();
        let c = s.currency.unwrap();
        assert_eq!(c.report.as_str(), "USD");
        assert_eq!(c.rates.len(), 3);
        assert_eq!(c.rates[&Currency::parse("EUR").unwrap()].to_string(), "1.08");
        assert_eq!(
            settings("[currency_rates]\nEUR = \"1.08\"").unwrap_err(),
            [
                "report_currency: missing; `currency_rates` convert into a `report_currency`, e.g. report_currency = \"USD\""
            ]
        );
        assert_eq!(
            settings("report_currency = \"usd\"\n[currency_rates]\nEUR = \"-1\"").unwrap_err(),
            [
                "report_currency: `usd` is not an ISO 4217 code such as \"EUR\"",
                "currency_rates.EUR: is -1; expected a rate above 0"
            ]
        );
        assert!(settings("grains = []").is_err());
    }
}
