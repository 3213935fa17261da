//! Which Meta field becomes which metric: action types to canonical metrics (configurable), and
//! Page insights metrics to canonical metrics. The README's tables list the same.

use std::collections::BTreeMap;

use kpipe_core::{ConfigError, Metric, MetricName, Unit};

use crate::normalize::PLATFORM;

/// Canonical count metrics taken from the `actions` array, with their default action types in
/// order of preference. Meta reports one event under several types (`lead` totals
/// `onsite_conversion.lead_grouped` and `offsite_conversion.fb_pixel_lead`), so a metric takes
/// the first type of its list that the row holds, never their sum.
pub const DEFAULT_ACTION_METRICS: [(Metric, &[&str]); 7] = [
    (Metric::Leads, &["lead", "onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead"]),
    (Metric::Conversions, &["offsite_conversion.fb_pixel_purchase", "purchase"]),
    (Metric::Likes, &["post_reaction"]),
    (Metric::Comments, &["comment"]),
    (Metric::Shares, &["post"]),
    (Metric::VideoViews, &["video_view"]),
    (Metric::Engagements, &["post_engagement"]),
];

/// The action types whose `action_values` entry is `revenue`, in order of preference.
pub const DEFAULT_REVENUE_TYPES: [&str; 2] = ["offsite_conversion.fb_pixel_purchase", "purchase"];

/// Action types to metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionMapping {
    counts: Vec<(Metric, Vec<String>)>,
    revenue: Vec<String>,
}

impl Default for ActionMapping {
    fn default() -> Self {
        let owned = |types: &[&str]| types.iter().map(|t| (*t).to_owned()).collect();
        Self {
            counts: DEFAULT_ACTION_METRICS.iter().map(|(m, types)| (*m, owned(types))).collect(),
            revenue: owned(&DEFAULT_REVENUE_TYPES),
        }
    }
}

/// The configuration keys of `action_types`: a count metric or `revenue`.
fn key_metric(key: &str) -> Option<Metric> {
    DEFAULT_ACTION_METRICS.iter().map(|(m, _)| *m).chain([Metric::Revenue]).find(|m| m.name() == key)
}

impl ActionMapping {
    /// The defaults with the lists of the metrics named in `overrides` replaced.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<ActionMapping, ConfigError> {
        let mut mapping = ActionMapping::default();
        for (key, types) in overrides {
            let metric = key_metric(key).ok_or_else(|| {
                let keys: Vec<&str> =
                    DEFAULT_ACTION_METRICS.iter().map(|(m, _)| m.name()).chain(["revenue"]).collect();
                ConfigError::new(key.clone(), format!("is not one of {}", keys.join(", ")))
            })?;
            for (i, t) in types.iter().enumerate() {
                if t.trim().is_empty() || t.trim() != t {
                    return Err(ConfigError::new(
                        format!("{key}[{i}]"),
                        format!("{t:?} is not an action type"),
                    ));
                }
            }
            if metric == Metric::Revenue {
                mapping.revenue = types.clone();
            } else if let Some((_, list)) = mapping.counts.iter_mut().find(|(m, _)| *m == metric) {
                *list = types.clone();
            }
        }
        // One action type feeding two count metrics would count the same event twice.
        let mut seen: BTreeMap<&str, Metric> = BTreeMap::new();
        for (metric, types) in &mapping.counts {
            for t in types {
                if let Some(other) = seen.insert(t, *metric).filter(|o| o != metric) {
                    return Err(ConfigError::new(
                        metric.name(),
                        format!(
                            "action type {t:?} is also mapped to `{other}`; an action can feed one \
                             metric only"
                        ),
                    ));
                }
            }
        }
        Ok(mapping)
    }

    /// The count metrics and their action types, in order of preference.
    pub fn counts(&self) -> &[(Metric, Vec<String>)] {
        &self.counts
    }

    /// The action types of `revenue`, in order of preference.
    pub fn revenue(&self) -> &[String] {
        &self.revenue
    }
}

/// The extra metric of an action type no canonical metric took: `facebook.action_<type>`, the
/// type's dots and other characters outside `[a-z0-9_]` written as `_` (metric names are
/// snake_case identifiers).
pub fn action_extra(action_type: &str, unit: Unit) -> Option<MetricName> {
    let prefix = if unit == Unit::Currency { "action_value_" } else { "action_" };
    MetricName::extra(PLATFORM, &format!("{prefix}{}", snake(action_type)), unit)
}

fn snake(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect()
}

/// The canonical metric of a Page insights metric the connector knows.
pub const PAGE_METRIC_TABLE: [(&str, Metric); 9] = [
    ("page_media_view", Metric::Impressions),
    ("page_impressions", Metric::Impressions),
    ("page_total_media_view_unique", Metric::Reach),
    ("page_impressions_unique", Metric::Reach),
    ("page_post_engagements", Metric::Engagements),
    ("page_daily_follows_unique", Metric::FollowerGains),
    ("page_daily_follows", Metric::FollowerGains),
    ("page_follows", Metric::Followers),
    ("page_views_total", Metric::PageViews),
];

/// The Page metrics pulled by default: Meta's current names (`page_media_view` replaced
/// `page_impressions`, retired on 2025-11-15).
pub const DEFAULT_PAGE_METRICS: [&str; 4] =
    ["page_media_view", "page_post_engagements", "page_daily_follows_unique", "page_follows"];

/// The Page metrics to request and what each becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMetrics {
    metrics: Vec<(String, MetricName)>,
}

impl Default for PageMetrics {
    fn default() -> Self {
        let names: Vec<String> = DEFAULT_PAGE_METRICS.iter().map(|m| (*m).to_owned()).collect();
        // The defaults are valid names mapped to distinct metrics.
        PageMetrics::new(&names).unwrap_or(PageMetrics { metrics: Vec::new() })
    }
}

impl PageMetrics {
    /// `names` checked: known ones map to their canonical metric (each at most once), others
    /// become `facebook.<name>` counts.
    pub fn new(names: &[String]) -> Result<PageMetrics, ConfigError> {
        if names.is_empty() {
            return Err(ConfigError::new("", "give at least one metric, or no `page_ids`"));
        }
        let mut metrics: Vec<(String, MetricName)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let known = PAGE_METRIC_TABLE.iter().find(|(n, _)| n == name).map(|(_, m)| MetricName::from(*m));
            let metric = match known {
                Some(m) => m,
                None => MetricName::extra(PLATFORM, name, Unit::Count).ok_or_else(|| {
                    ConfigError::new(format!("[{i}]"), format!("{name:?} is not a snake_case metric name"))
                })?,
            };
            if let Some((other, _)) = metrics.iter().find(|(n, m)| n == name || *m == metric) {
                return Err(ConfigError::new(
                    format!("[{i}]"),
                    format!("{name:?} would write `{metric}` like {other:?}; keep one of them"),
                ));
            }
            metrics.push((name.clone(), metric));
        }
        Ok(PageMetrics { metrics })
    }

    /// The API names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(|(n, _)| n.as_str())
    }

    /// What API metric `name` becomes; `None` for a metric that was not asked for.
    pub fn metric(&self, name: &str) -> Option<&MetricName> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_a_metrics_list_and_refuse_double_counting() {
        let mut o = BTreeMap::new();
        o.insert("conversions".to_owned(), vec!["offsite_conversion.custom.1".to_owned()]);
        o.insert("revenue".to_owned(), vec![]);
        let m = ActionMapping::with_overrides(&o).unwrap();
        let conversions = m.counts().iter().find(|(k, _)| *k == Metric::Conversions).unwrap();
        assert_eq!(conversions.1, ["offsite_conversion.custom.1"]);
        assert!(m.revenue().is_empty());
        o.insert("leads".to_owned(), vec!["offsite_conversion.custom.1".to_owned()]);
        let e = ActionMapping::with_overrides(&o).unwrap_err();
        assert!(e.message.contains("also mapped"), "{e}");
        let mut bad = BTreeMap::new();
        bad.insert("clicks".to_owned(), vec!["link_click".to_owned()]);
        assert_eq!(ActionMapping::with_overrides(&bad).unwrap_err().path, "clicks");
    }

    #[test]
    fn unmapped_action_types_become_snake_case_extras() {
        let name = action_extra("offsite_conversion.custom.271828", Unit::Count).unwrap();
        assert_eq!(name.as_str(), "facebook.action_offsite_conversion_custom_271828");
        let value = action_extra("omni_purchase", Unit::Currency).unwrap();
        assert_eq!((value.as_str(), value.unit()), ("facebook.action_value_omni_purchase", Unit::Currency));
        assert_eq!(MetricName::parse(name.as_str(), Unit::Count), Some(name));
    }

    #[test]
    fn page_metrics_map_once_each() {
        let p = PageMetrics::default();
        assert_eq!(p.metric("page_media_view"), Some(&MetricName::from(Metric::Impressions)));
        assert_eq!(p.metric("page_follows"), Some(&MetricName::from(Metric::Followers)));
        let custom = PageMetrics::new(&["page_actions_post_reactions_total".to_owned()]).unwrap();
        assert_eq!(
            custom.metric("page_actions_post_reactions_total").unwrap().as_str(),
            "facebook.page_actions_post_reactions_total"
        );
        let both = ["page_impressions".to_owned(), "page_media_view".to_owned()];
        assert_eq!(PageMetrics::new(&both).unwrap_err().path, "[1]");
    }
}
