//! The streams and what each yields ([`kpipe_core::catalog`]), built from the tables the
//! normalizers use: the insights fields ([`COUNT_FIELDS`]), the default action mapping
//! ([`DEFAULT_ACTION_METRICS`]) and the Page metrics ([`PAGE_METRIC_TABLE`]).

use kpipe_core::{Additivity, CatalogMetric, Grains, Metric, MetricOrigin, StreamCatalog, StreamInfo, Unit};

use crate::listing::ADS_STREAM;
use crate::mapping::{
    DEFAULT_ACTION_METRICS, DEFAULT_PAGE_METRICS, DEFAULT_REVENUE_TYPES, PAGE_METRIC_TABLE,
};
use crate::normalize::{COUNT_FIELDS, Level, PLATFORM, SPEND_FIELD};
use crate::page_insights::PAGE_STREAM;

/// The streams, in pull order.
pub const STREAMS: [StreamInfo; 2] = [
    StreamInfo {
        name: ADS_STREAM,
        description: "Daily ads insights per campaign, ad set and ad: impressions, reach, clicks, spend, \
                      actions; the account's daily reach; reach per week and month",
    },
    StreamInfo {
        name: PAGE_STREAM,
        description: "Daily Page insights: media views, post engagements, new followers, followers; weekly \
                      Page reach when configured",
    },
];

/// Every insights level, as the `level` column writes it.
const LEVELS: [Level; 4] = [Level::Account, Level::Campaign, Level::AdSet, Level::Ad];

/// `actions[action_type = a | b]`.
fn action_field(array: &str, types: &[&str]) -> String {
    format!("{array}[action_type = {}]", types.join(" | "))
}

fn family(prefix: &str, placeholder: &str, unit: Unit) -> CatalogMetric {
    CatalogMetric::ExtraFamily {
        platform: Some(PLATFORM.to_owned()),
        prefix: prefix.to_owned(),
        placeholder: placeholder.to_owned(),
        unit: Some(unit),
        additivity: Some(Additivity::Sum),
    }
}

/// The catalog of [`crate::FacebookSource`].
pub fn catalog() -> Vec<StreamCatalog> {
    let [ads, page] = STREAMS;
    let levels = LEVELS.map(Level::label);
    let fields = COUNT_FIELDS.iter().map(|(field, metric)| {
        let origin = MetricOrigin::canonical(*metric, *field);
        if *metric == Metric::Reach {
            origin
                .grains(Grains::DaysAndPeriods)
                .note("every pulled level and the account; weeks and months asked for as whole ranges")
        } else {
            origin
        }
    });
    let actions = DEFAULT_ACTION_METRICS.iter().map(|(metric, types)| {
        MetricOrigin::canonical(*metric, action_field("actions", types))
            .note("the first listed type the row holds; `action_types` replaces the list")
    });
    let ads_metrics =
        fields.chain([MetricOrigin::canonical(Metric::Spend, SPEND_FIELD)]).chain(actions).chain([
            MetricOrigin::canonical(Metric::Revenue, action_field("action_values", &DEFAULT_REVENUE_TYPES))
                .note("the first listed type the row holds; `action_types.revenue` replaces the list"),
            MetricOrigin::of(family("action_", "action_type", Unit::Count), "actions[action_type]")
                .note("each action type no canonical metric took, dots written as `_`"),
            MetricOrigin::of(
                family("action_value_", "action_type", Unit::Currency),
                "action_values[action_type]",
            )
            .note("each action value no canonical metric took"),
        ]);
    let page_metrics = PAGE_METRIC_TABLE
        .iter()
        .map(|(name, metric)| {
            let mut origin = MetricOrigin::canonical(*metric, *name);
            if !DEFAULT_PAGE_METRICS.contains(name) {
                origin = origin.configured().note("with `page_metrics`");
            }
            match metric {
                Metric::Reach => origin
                    .grains(Grains::DaysAndPeriods)
                    .note("with `page_metrics`; whole ISO weeks from the `week` period, no months"),
                Metric::Followers => origin
                    .grains(Grains::DaysAndPeriods)
                    .note("a period row holds the value the period opens with"),
                _ => origin,
            }
        })
        .chain([MetricOrigin::of(family("", "page_metric", Unit::Count), "any other Page metric")
            .configured()
            .note("with `page_metrics`; a value that is an object of counts gives `facebook.<page_metric>_<key>`")]);
    vec![
        StreamCatalog::new(ads).levels(levels).metrics(ads_metrics),
        StreamCatalog::new(page).levels(["page"]).metrics(page_metrics),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_well_formed_and_follows_the_tables() {
        let catalog = catalog();
        for stream in &catalog {
            assert_eq!(stream.check(Some(PLATFORM)), Ok(()));
        }
        let leads = catalog[0].metrics.iter().find(|o| o.metric.canonical() == Some(Metric::Leads)).unwrap();
        assert!(
            leads.platform_field.starts_with("actions[action_type = lead | "),
            "{}",
            leads.platform_field
        );
        let default_page: Vec<_> = catalog[1].metrics.iter().filter(|o| !o.configured).collect();
        assert_eq!(default_page.len(), DEFAULT_PAGE_METRICS.len());
    }
}
