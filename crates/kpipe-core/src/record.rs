//! One row of the metric schema, as connectors produce it.

use std::fmt;

use chrono::NaiveDate;

use crate::decimal::Decimal;
use crate::label::Label;
use crate::metric::{Metric, Unit};

/// An ISO 4217 currency code (three upper-case letters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code, checked to be three ASCII upper-case letters.
    pub fn parse(code: &str) -> Option<Currency> {
        match code.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Some(Currency([*a, *b, *c])),
            _ => None,
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metric a row measures: a canonical one or a platform-specific extra.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetricName {
    /// A name of the canonical vocabulary.
    Canonical(Metric),
    /// `<platform>.<name>`: something only one platform reports, kept rather than dropped.
    Extra {
        /// The full name, `<platform>.<name>`.
        name: Label,
        /// The unit of its values.
        unit: Unit,
    },
}

impl MetricName {
    /// An extra metric `<platform>.<name>`; `None` unless both parts are snake_case identifiers.
    pub fn extra(platform: &str, name: &str, unit: Unit) -> Option<MetricName> {
        if is_identifier(platform) && is_identifier(name) {
            Some(MetricName::Extra { name: Label::from(format!("{platform}.{name}")), unit })
        } else {
            None
        }
    }

    /// Reads a name as written in the `metric` column: a canonical name, or `<platform>.<name>`
    /// with `unit` for an extra.
    pub fn parse(text: &str, extra_unit: Unit) -> Option<MetricName> {
        if let Some(m) = Metric::from_name(text) {
            return Some(MetricName::Canonical(m));
        }
        let (platform, name) = text.split_once('.')?;
        MetricName::extra(platform, name, extra_unit)
    }

    /// The name written to the `metric` column.
    pub fn as_str(&self) -> &str {
        match self {
            MetricName::Canonical(m) => m.name(),
            MetricName::Extra { name, .. } => name.as_str(),
        }
    }

    /// The unit of the values.
    pub fn unit(&self) -> Unit {
        match self {
            MetricName::Canonical(m) => m.unit(),
            MetricName::Extra { unit, .. } => *unit,
        }
    }
}

impl From<Metric> for MetricName {
    fn from(m: Metric) -> MetricName {
        MetricName::Canonical(m)
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for a non-empty snake_case identifier (`linkedin`, `google_analytics`, `video_p25`).
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The fixed, documented set of dimension columns. A row leaves the ones it does not break down
/// by empty (null).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Dimensions {
    /// ISO 3166-1 alpha-2 country code, or the platform's country name where it gives no code.
    pub country: Option<Label>,
    /// Region or state within the country.
    pub region: Option<Label>,
    /// Device class: `desktop`, `mobile`, `tablet`, ...
    pub device: Option<Label>,
    /// Marketing channel group (GA4's default channel group, HubSpot's source).
    pub channel: Option<Label>,
    /// Traffic `source / medium` as the analytics tool reports it.
    pub source_medium: Option<Label>,
    /// Where an ad ran within a platform family (`facebook`, `instagram`, `audience_network`).
    pub publisher_platform: Option<Label>,
    /// Age bracket (`25-34`).
    pub age: Option<Label>,
    /// Gender as the platform reports it.
    pub gender: Option<Label>,
}

impl Dimensions {
    /// The dimension column names, in schema order.
    pub const NAMES: [&'static str; 8] =
        ["country", "region", "device", "channel", "source_medium", "publisher_platform", "age", "gender"];

    /// The values in [`Dimensions::NAMES`] order.
    pub fn values(&self) -> [Option<&Label>; 8] {
        [
            self.country.as_ref(),
            self.region.as_ref(),
            self.device.as_ref(),
            self.channel.as_ref(),
            self.source_medium.as_ref(),
            self.publisher_platform.as_ref(),
            self.age.as_ref(),
            self.gender.as_ref(),
        ]
    }

    /// The slot for the dimension called `name`, if it is one of [`Dimensions::NAMES`].
    pub fn slot_mut(&mut self, name: &str) -> Option<&mut Option<Label>> {
        Some(match name {
            "country" => &mut self.country,
            "region" => &mut self.region,
            "device" => &mut self.device,
            "channel" => &mut self.channel,
            "source_medium" => &mut self.source_medium,
            "publisher_platform" => &mut self.publisher_platform,
            "age" => &mut self.age,
            "gender" => &mut self.gender,
            _ => return None,
        })
    }
}

/// One observation: a metric's value for an entity on a day (DESIGN.md, "Metric schema").
///
/// The `source`, `pulled_at` and `run_id` columns are the same for every row of a pull and are
/// added by the pipeline; `unit` comes from the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// `linkedin`, `facebook`, `hubspot`, `google_analytics`, `files`, or a contributed one.
    pub platform: Label,
    /// The ad account, page, portal or property the row belongs to.
    pub account_id: Label,
    /// `account`, `campaign`, `ad`, `page`, `property`, ...
    pub level: Label,
    /// The entity at that level.
    pub entity_id: Label,
    /// Its name, where known.
    pub entity_name: Option<Label>,
    /// The day, in the account's reporting time zone.
    pub date: NaiveDate,
    /// Breakdown values; empty for rows without a breakdown.
    pub dimensions: Dimensions,
    /// What is measured.
    pub metric: MetricName,
    /// The value as the platform reported it.
    pub value: Decimal,
    /// ISO 4217 code for money, `None` otherwise.
    pub currency: Option<Currency>,
}

/// Why a row breaks the schema's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A money metric without a currency.
    #[error("metric `{0}` is money but the row has no currency")]
    MissingCurrency(String),
    /// A currency on a metric that is not money.
    #[error("metric `{metric}` is not money but the row has currency {currency}")]
    UnexpectedCurrency {
        /// The metric.
        metric: String,
        /// The currency given.
        currency: String,
    },
    /// A platform name that is not a snake_case identifier.
    #[error("platform `{0}` is not a snake_case name")]
    BadPlatform(String),
    /// A required text column is empty.
    #[error("`{0}` is empty")]
    Empty(&'static str),
    /// A count below zero.
    #[error("metric `{metric}` is a count but the value is negative ({value})")]
    NegativeCount {
        /// The metric.
        metric: String,
        /// The value.
        value: Decimal,
    },
    /// A count with a fraction.
    #[error("metric `{metric}` is a count but the value has a fraction ({value})")]
    FractionalCount {
        /// The metric.
        metric: String,
        /// The value.
        value: Decimal,
    },
}

impl MetricRow {
    /// The unit written to the `unit` column.
    pub fn unit(&self) -> Unit {
        self.metric.unit()
    }

    /// Checks the rules every row must keep before it may be written.
    pub fn validate(&self) -> Result<(), RowError> {
        if !is_identifier(&self.platform) {
            return Err(RowError::BadPlatform(self.platform.to_string()));
        }
        if self.account_id.is_empty() {
            return Err(RowError::Empty("account_id"));
        }
        if self.level.is_empty() {
            return Err(RowError::Empty("level"));
        }
        if self.entity_id.is_empty() {
            return Err(RowError::Empty("entity_id"));
        }
        match (self.unit(), self.currency) {
            (Unit::Currency, None) => return Err(RowError::MissingCurrency(self.metric.to_string())),
            (Unit::Currency, Some(_)) | (_, None) => {}
            (_, Some(c)) => {
                return Err(RowError::UnexpectedCurrency {
                    metric: self.metric.to_string(),
                    currency: c.to_string(),
                });
            }
        }
        // A net change in followers is negative on days with more unfollows than follows
        // (LinkedIn's organization statistics report it so); every other count is not.
        let net_change = self.metric == MetricName::Canonical(Metric::FollowerGains);
        if self.unit() == Unit::Count && self.value.is_negative() && !net_change {
            return Err(RowError::NegativeCount { metric: self.metric.to_string(), value: self.value });
        }
        // Counts are whole in every platform's reports; a fraction is a unit mistake (a rate
        // or an average in a count column), refused by every connector alike.
        if self.unit() == Unit::Count && !self.value.is_whole() {
            return Err(RowError::FractionalCount { metric: self.metric.to_string(), value: self.value });
        }
        Ok(())
    }
}

/// Rows travelling together from a source to the sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricBatch {
    /// The rows.
    pub rows: Vec<MetricRow>,
    /// The source's stream they were pulled for, when the source said
    /// (`Emitter::set_stream`); the sink does not need it, the run summary counts by it.
    pub stream: Option<std::sync::Arc<str>>,
}

impl MetricBatch {
    /// A batch of `rows`, of no particular stream.
    pub fn new(rows: Vec<MetricRow>) -> MetricBatch {
        MetricBatch { rows, stream: None }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: Metric, value: &str, currency: Option<&str>) -> MetricRow {
        MetricRow {
            platform: "linkedin".into(),
            account_id: "508000000".into(),
            level: "campaign".into(),
            entity_id: "1".into(),
            entity_name: None,
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            dimensions: Dimensions::default(),
            metric: metric.into(),
            value: value.parse().unwrap_or_default(),
            currency: currency.and_then(Currency::parse),
        }
    }

    #[test]
    fn money_needs_a_currency_and_counts_do_not_take_one() {
        assert!(row(Metric::Spend, "1.5", Some("EUR")).validate().is_ok());
        assert_eq!(
            row(Metric::Spend, "1.5", None).validate(),
            Err(RowError::MissingCurrency("spend".into()))
        );
        assert!(matches!(
            row(Metric::Clicks, "1", Some("EUR")).validate(),
            Err(RowError::UnexpectedCurrency { .. })
        ));
        assert!(matches!(row(Metric::Clicks, "-1", None).validate(), Err(RowError::NegativeCount { .. })));
        // Follower gains are a net change: more unfollows than follows on a day is data.
        assert!(row(Metric::FollowerGains, "-3", None).validate().is_ok());
        assert!(matches!(row(Metric::Clicks, "1.5", None).validate(), Err(RowError::FractionalCount { .. })));
        assert!(row(Metric::Clicks, "2.000", None).validate().is_ok());
        // A refund can make spend negative; that is data, not an error.
        assert!(row(Metric::Spend, "-2E-18", Some("USD")).validate().is_ok());
    }

    #[test]
    fn currency_codes_are_checked() {
        assert!(Currency::parse("USD").is_some());
        for bad in ["usd", "US", "USDT", "", "U$D"] {
            assert!(Currency::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn extra_metrics_are_namespaced() {
        let m = MetricName::parse("facebook.video_p25_watched", Unit::Count);
        assert_eq!(m.as_ref().map(MetricName::as_str), Some("facebook.video_p25_watched"));
        assert_eq!(MetricName::parse("clicks", Unit::Score), Some(MetricName::Canonical(Metric::Clicks)));
        assert_eq!(MetricName::parse("clickz", Unit::Count), None);
        assert_eq!(MetricName::parse("Facebook.x", Unit::Count), None);
        assert_eq!(MetricName::parse("facebook.", Unit::Count), None);
    }
}
