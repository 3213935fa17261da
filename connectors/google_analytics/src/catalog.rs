//! The streams and what each yields ([`kpipe_core::catalog`]), read off the built-in reports
//! the pull sends ([`ReportSpec`]) and the GA4 vocabulary ([`CANONICAL_METRICS`],
//! [`DIMENSION_COLUMNS`]): a metric or dimension added to a report shows here by itself.

use kpipe_core::{CatalogMetric, Grains, MetricOrigin, StreamCatalog, StreamInfo};

use crate::reports::{CUSTOM_STREAM, ReportSpec};
use crate::vocabulary::{CANONICAL_METRICS, DIMENSION_COLUMNS, PLATFORM, canonical, dimension_column};

/// The built-in streams; the third, [`CUSTOM`], is there when custom reports are configured.
pub const STREAMS: [StreamInfo; 2] = [
    StreamInfo {
        name: "traffic",
        description: "Daily sessions, engaged sessions, engagement time, page views, key events, purchase \
                      revenue and new users by channel group and source / medium; users, new users and \
                      returning users of each channel group over whole weeks and months",
    },
    StreamInfo {
        name: "property",
        description: "Daily property totals, with users and returning users as GA4 counts them per day; and \
                      users, new users and returning users of whole weeks and months",
    },
];

/// The stream of the configured custom reports.
pub const CUSTOM: StreamInfo =
    StreamInfo { name: CUSTOM_STREAM, description: "The configured custom reports, by day" };

/// The reports pulled for every property, in pull order.
pub fn builtin_reports() -> Vec<ReportSpec> {
    vec![ReportSpec::traffic(), ReportSpec::property_totals(), ReportSpec::returning_users()]
}

/// The `sessionSource` and `sessionMedium` dimensions, written together as `source_medium`.
const SOURCE_MEDIUM_PARTS: [&str; 2] = ["sessionSource", "sessionMedium"];

/// Adds what `spec`'s rows hold to `stream`: day rows, or period rows when `period`.
fn add_report(mut stream: StreamCatalog, spec: &ReportSpec, period: bool) -> StreamCatalog {
    let grains = if period { Grains::Periods } else { Grains::Days };
    for dimension in &spec.dimensions {
        if let Some(column) = dimension_column(dimension) {
            stream = stream.dimensions(&[column]);
        }
    }
    if SOURCE_MEDIUM_PARTS.iter().all(|part| spec.dimensions.iter().any(|d| d == part)) {
        stream = stream.dimensions(&["source_medium"]);
    }
    stream = stream.levels([spec.level()]);
    for api in &spec.metrics {
        let (metric, field) = match spec.fixed_metric() {
            Some(fixed) => (fixed, format!("{api} where newVsReturning = returning")),
            None => match canonical(api) {
                Some(metric) => (metric, api.clone()),
                None => continue,
            },
        };
        let known = stream
            .metrics
            .iter_mut()
            .find(|o| o.metric == CatalogMetric::Canonical(metric) && o.platform_field == field);
        match known {
            Some(origin) if origin.grains != grains => origin.grains = Grains::DaysAndPeriods,
            Some(_) => {}
            None => stream.metrics.push(MetricOrigin::canonical(metric, field).grains(grains)),
        }
    }
    stream
}

/// The catalog of [`crate::GoogleAnalyticsSource`].
pub fn catalog() -> Vec<StreamCatalog> {
    let mut streams: Vec<StreamCatalog> = STREAMS.iter().cloned().map(StreamCatalog::new).collect();
    for spec in builtin_reports() {
        let periods = spec.period_reports();
        for (report, period) in std::iter::once((&spec, false)).chain(periods.iter().map(|p| (p, true))) {
            if let Some(slot) = streams.iter().position(|s| s.name() == report.stream()) {
                let stream = streams.remove(slot);
                streams.insert(slot, add_report(stream, report, period));
            }
        }
    }
    let columns: Vec<&'static str> = DIMENSION_COLUMNS.iter().map(|(_, column)| *column).collect();
    let canonical_metrics = CANONICAL_METRICS.iter().map(|(api, metric)| {
        let origin = MetricOrigin::canonical(*metric, *api).configured();
        if metric.additivity() == kpipe_core::Additivity::Unique {
            origin.grains(Grains::DaysAndPeriods).note("in a custom report that lists it")
        } else {
            origin.note("in a custom report that lists it")
        }
    });
    let custom = StreamCatalog::new(CUSTOM)
        .levels_from("the report's `name`")
        .dimensions(&columns)
        .metrics(canonical_metrics)
        .metrics([MetricOrigin::of(
            CatalogMetric::ExtraFamily {
                platform: Some(PLATFORM.to_owned()),
                prefix: String::new(),
                placeholder: "snake_case metric".to_owned(),
                unit: None,
                additivity: None,
            },
            "any other GA4 metric of a custom report",
        )
        .configured()
        .note("unit from its `metricHeaders[].type`: counts, ratios, seconds or currency")]);
    streams.push(custom);
    streams
}

#[cfg(test)]
mod tests {
    use kpipe_core::Metric;

    use super::*;

    #[test]
    fn the_catalog_follows_the_reports_the_pull_sends() {
        let catalog = catalog();
        let names: Vec<&str> = catalog.iter().map(StreamCatalog::name).collect();
        assert_eq!(names, ["traffic", "property", CUSTOM_STREAM]);
        for stream in &catalog {
            assert_eq!(stream.check(Some(PLATFORM)), Ok(()));
        }
        let traffic = &catalog[0];
        assert_eq!(traffic.dimensions, ["channel", "source_medium"]);
        let grains = |stream: &StreamCatalog, metric: Metric| {
            stream
                .metrics
                .iter()
                .filter(|o| o.metric.canonical() == Some(metric))
                .map(|o| o.grains)
                .collect::<Vec<_>>()
        };
        assert_eq!(grains(traffic, Metric::NewUsers), [Grains::DaysAndPeriods]);
        assert_eq!(grains(traffic, Metric::Users), [Grains::Periods]);
        assert_eq!(grains(traffic, Metric::ReturningUsers), [Grains::Periods]);
        assert_eq!(grains(&catalog[1], Metric::Users), [Grains::DaysAndPeriods]);
        assert_eq!(grains(&catalog[1], Metric::ReturningUsers), [Grains::DaysAndPeriods]);
        assert_eq!(grains(traffic, Metric::Sessions), [Grains::Days]);
    }
}
