//! GA4's names in the metric schema: which metric becomes which canonical metric (the others
//! are kept as `google_analytics.<snake_case name>`), which dimension fills which dimension
//! column, and how each `metricHeaders[].type` is read into an exact value and a unit.

use kpipe_core::{Decimal, Metric, MetricName, Unit, is_identifier};

/// The `platform` column of every row.
pub const PLATFORM: &str = "google_analytics";

/// GA4 metrics and the canonical metric each becomes (the mapping table of the README).
pub const CANONICAL_METRICS: [(&str, Metric); 9] = [
    ("sessions", Metric::Sessions),
    ("engagedSessions", Metric::EngagedSessions),
    ("userEngagementDuration", Metric::SessionDurationSeconds),
    ("screenPageViews", Metric::PageViews),
    ("keyEvents", Metric::Conversions),
    // The name of key events before March 2024; properties' custom reports may still use it.
    ("conversions", Metric::Conversions),
    ("purchaseRevenue", Metric::Revenue),
    ("newUsers", Metric::NewUsers),
    ("totalUsers", Metric::Users),
];

/// GA4 dimensions and the dimension column each fills.
pub const DIMENSION_COLUMNS: [(&str, &str); 6] = [
    ("sessionDefaultChannelGroup", "channel"),
    ("sessionSourceMedium", "source_medium"),
    ("deviceCategory", "device"),
    ("countryId", "country"),
    ("country", "country"),
    ("region", "region"),
];

/// The canonical metric of GA4 metric `api_name`, if it has one.
pub fn canonical(api_name: &str) -> Option<Metric> {
    CANONICAL_METRICS.iter().find(|(n, _)| *n == api_name).map(|(_, m)| *m)
}

/// The dimension column GA4 dimension `api_name` fills, if any.
pub fn dimension_column(api_name: &str) -> Option<&'static str> {
    DIMENSION_COLUMNS.iter().find(|(n, _)| *n == api_name).map(|(_, c)| *c)
}

/// `engagementRate` → `engagement_rate`, `customEvent:plan_value` → `custom_event_plan_value`.
pub fn snake_case(api_name: &str) -> String {
    let mut out = String::with_capacity(api_name.len() + 4);
    for c in api_name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// A metric's value type, from `metricHeaders[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `TYPE_INTEGER`: a whole number.
    Integer,
    /// `TYPE_FLOAT` (rates are fractions 0 to 1).
    Float,
    /// `TYPE_STANDARD`: a custom metric of standard type.
    Standard,
    /// `TYPE_CURRENCY`: major units of the report's currency.
    Currency,
    /// A duration: `TYPE_SECONDS`, `TYPE_MILLISECONDS`, `TYPE_MINUTES`, `TYPE_HOURS`, held as the
    /// number of seconds in one unit's thousandths (`1000` for seconds, `1` for milliseconds).
    Duration {
        /// Thousandths of a second per unit of the value.
        millis_per_unit: u32,
    },
    /// `TYPE_FEET`, `TYPE_MILES`, `TYPE_METERS`, `TYPE_KILOMETERS`: lengths, which the metric
    /// schema has no unit for.
    Length,
    /// `METRIC_TYPE_UNSPECIFIED`.
    Unspecified,
}

impl MetricType {
    /// The type named `name` on the wire, if it is one.
    pub fn parse(name: &str) -> Option<MetricType> {
        Some(match name {
            "TYPE_INTEGER" => MetricType::Integer,
            "TYPE_FLOAT" => MetricType::Float,
            "TYPE_STANDARD" => MetricType::Standard,
            "TYPE_CURRENCY" => MetricType::Currency,
            "TYPE_SECONDS" => MetricType::Duration { millis_per_unit: 1_000 },
            "TYPE_MILLISECONDS" => MetricType::Duration { millis_per_unit: 1 },
            "TYPE_MINUTES" => MetricType::Duration { millis_per_unit: 60_000 },
            "TYPE_HOURS" => MetricType::Duration { millis_per_unit: 3_600_000 },
            "TYPE_FEET" | "TYPE_MILES" | "TYPE_METERS" | "TYPE_KILOMETERS" => MetricType::Length,
            "METRIC_TYPE_UNSPECIFIED" => MetricType::Unspecified,
            _ => return None,
        })
    }

    /// The unit a metric of this type is written with when it is not canonical: whole numbers
    /// and custom standard metrics are counts, other floats are ratios, durations seconds.
    pub fn unit(self) -> Option<Unit> {
        match self {
            MetricType::Integer | MetricType::Standard => Some(Unit::Count),
            MetricType::Float | MetricType::Unspecified => Some(Unit::Ratio),
            MetricType::Currency => Some(Unit::Currency),
            MetricType::Duration { .. } => Some(Unit::Seconds),
            MetricType::Length => None,
        }
    }

    /// Whether values of this type can be written as `unit` (a canonical metric's unit).
    pub fn fits(self, unit: Unit) -> bool {
        match unit {
            Unit::Count => {
                matches!(self, MetricType::Integer | MetricType::Float | MetricType::Standard)
            }
            Unit::Currency => self == MetricType::Currency,
            Unit::Seconds => matches!(self, MetricType::Duration { .. }),
            Unit::Ratio | Unit::Score => {
                matches!(self, MetricType::Float | MetricType::Standard | MetricType::Unspecified)
            }
        }
    }

    /// The exact value of `text` in the schema's unit (durations in seconds), or why not.
    pub fn read(self, text: &str) -> Result<Decimal, String> {
        let value: Decimal = text.parse().map_err(|e| format!("{e}"))?;
        match self {
            MetricType::Integer if !value.is_integer() => {
                Err(format!("`{text}` is TYPE_INTEGER but not a whole number"))
            }
            MetricType::Duration { millis_per_unit } if millis_per_unit != 1_000 => {
                let thousandths = value
                    .units()
                    .checked_mul(i128::from(millis_per_unit))
                    .ok_or_else(|| format!("`{text}` is too large to convert to seconds"))?;
                if thousandths % 1_000 != 0 {
                    return Err(format!("`{text}` has more digits than seconds can hold exactly"));
                }
                Decimal::from_units(thousandths / 1_000)
                    .ok_or_else(|| format!("`{text}` is too large to convert to seconds"))
            }
            MetricType::Length => Err("lengths have no unit in the metric schema".to_owned()),
            _ => Ok(value),
        }
    }
}

/// The name GA4 metric `api_name` is written under, and its unit: the canonical one, or
/// `google_analytics.<snake_case>` with the unit of its type.
pub fn metric_name(api_name: &str, metric_type: MetricType) -> Result<MetricName, String> {
    if let Some(metric) = canonical(api_name) {
        if !metric_type.fits(metric.unit()) {
            return Err(format!(
                "`{api_name}` arrived as {metric_type:?}, which cannot be written as `{}` ({})",
                metric.name(),
                metric.unit()
            ));
        }
        return Ok(metric.into());
    }
    let unit = metric_type
        .unit()
        .ok_or_else(|| format!("`{api_name}` is a length, which the metric schema has no unit for"))?;
    let name = snake_case(api_name);
    if !is_identifier(&name) {
        return Err(format!("`{api_name}` gives no usable metric name"));
    }
    MetricName::extra(PLATFORM, &name, unit)
        .ok_or_else(|| format!("`{api_name}` gives no usable metric name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("engagementRate"), "engagement_rate");
        assert_eq!(snake_case("customEvent:plan_value"), "custom_event_plan_value");
        assert_eq!(snake_case("screenPageViewsPerSession"), "screen_page_views_per_session");
        assert_eq!(snake_case("itemsViewed"), "items_viewed");
    }

    #[test]
    fn metrics_map_onto_the_vocabulary_or_stay_namespaced() {
        let seconds = MetricType::Duration { millis_per_unit: 1_000 };
        assert_eq!(metric_name("totalUsers", MetricType::Integer), Ok(Metric::Users.into()));
        assert_eq!(metric_name("userEngagementDuration", seconds), Ok(Metric::SessionDurationSeconds.into()));
        assert_eq!(metric_name("keyEvents", MetricType::Float), Ok(Metric::Conversions.into()));
        let rate = metric_name("engagementRate", MetricType::Float).unwrap();
        assert_eq!((rate.as_str(), rate.unit()), ("google_analytics.engagement_rate", Unit::Ratio));
        let avg = metric_name("averageSessionDuration", seconds).unwrap();
        assert_eq!((avg.as_str(), avg.unit()), ("google_analytics.average_session_duration", Unit::Seconds));
        assert!(metric_name("purchaseRevenue", MetricType::Float).is_err());
        assert!(metric_name("customEvent:distance", MetricType::Length).is_err());
    }

    #[test]
    fn values_are_read_exactly_by_type() {
        let read = |t: &str, v: &str| MetricType::parse(t).unwrap().read(v).map(|d| d.to_string());
        assert_eq!(read("TYPE_INTEGER", "1532"), Ok("1532".into()));
        assert!(read("TYPE_INTEGER", "15.5").unwrap_err().contains("whole number"));
        assert_eq!(read("TYPE_FLOAT", "0.6481723237597912"), Ok("0.6481723237597912".into()));
        assert_eq!(read("TYPE_CURRENCY", "2450.5"), Ok("2450.5".into()));
        assert_eq!(read("TYPE_SECONDS", "187.23406720626632"), Ok("187.23406720626632".into()));
        assert_eq!(read("TYPE_MILLISECONDS", "1500"), Ok("1.5".into()));
        assert_eq!(read("TYPE_MINUTES", "2.5"), Ok("150".into()));
        assert_eq!(read("TYPE_HOURS", "1"), Ok("3600".into()));
        assert_eq!(read("TYPE_FLOAT", "1.5e-3"), Ok("0.0015".into()));
        assert!(read("TYPE_FLOAT", "n/a").is_err());
        assert!(read("TYPE_MILES", "3").is_err());
        assert_eq!(MetricType::parse("TYPE_PARSECS"), None);
    }
}
