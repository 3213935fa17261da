//! The streams and what each yields ([`kpipe_core::catalog`]), built from the field tables the
//! pull itself uses: [`fields::CANONICAL`] and [`fields::EXTRAS`] for ad analytics,
//! [`SHARE_FIELDS`] for share statistics.

use kpipe_core::{Additivity, Grains, Metric, MetricOrigin, StreamCatalog, StreamInfo};

use crate::analytics::ANALYTICS_STREAM;
use crate::fields::{self, FieldKind};
use crate::normalize::organization::{ENGAGEMENT_FIELDS, MENTION_FIELDS, SHARE_FIELDS};
use crate::organization::{FOLLOWERS_STREAM, SHARES_STREAM};
use crate::restli::{PeriodPivot, Pivot};

/// The streams, in pull order.
pub const STREAMS: [StreamInfo; 3] = [
    StreamInfo {
        name: ANALYTICS_STREAM,
        description: "Daily ad analytics of each campaign and creative (level campaign, creative), and \
                      reach of each account, campaign group and campaign by week and month",
    },
    StreamInfo {
        name: FOLLOWERS_STREAM,
        description: "Daily follower gains and end-of-day followers of each company page",
    },
    StreamInfo { name: SHARES_STREAM, description: "Daily organic share statistics of each company page" },
];

/// How values of a field combine.
fn additivity(kind: FieldKind) -> Option<Additivity> {
    match kind {
        FieldKind::Count | FieldKind::LocalMoney | FieldKind::UsdMoney => Some(Additivity::Sum),
        FieldKind::Unique => Some(Additivity::Unique),
        FieldKind::Measure => None,
    }
}

/// The catalog of [`crate::LinkedInSource`].
pub fn catalog() -> Vec<StreamCatalog> {
    let [analytics, followers, shares] = STREAMS;
    let day_levels = Pivot::ALL.map(Pivot::level);
    let period_levels = PeriodPivot::ALL.map(PeriodPivot::level);
    let mut analytics_metrics: Vec<MetricOrigin> = fields::canonical()
        .into_iter()
        .map(|f| {
            let origin = MetricOrigin::named(&f.metric, additivity(f.kind), f.api);
            if f.api == fields::REACH_FIELD {
                origin.grains(Grains::DaysAndPeriods).note(format!(
                    "weeks and months by account, campaign group and campaign; LinkedIn serves it for \
                     ranges of up to {} days",
                    fields::MAX_REACH_DAYS
                ))
            } else {
                origin
            }
        })
        .collect();
    // Every extra field is declared through the function the configuration goes through, so the
    // names are the ones the rows get.
    analytics_metrics.extend(fields::EXTRAS.iter().filter_map(|(api, kind, _)| {
        let field = fields::extra(api).ok()?;
        Some(
            MetricOrigin::named(&field.metric, additivity(*kind), *api)
                .configured()
                .note("with `extra_fields`"),
        )
    }));
    let share_metrics = SHARE_FIELDS
        .iter()
        .map(|(field, metric)| MetricOrigin::canonical(*metric, format!("totalShareStatistics.{field}")))
        .chain([
            MetricOrigin::canonical(Metric::Engagements, ENGAGEMENT_FIELDS.join(" + "))
                .note("LinkedIn's `engagement` is this sum over impressions"),
            MetricOrigin::canonical(Metric::Mentions, MENTION_FIELDS.join(" + ")),
        ]);
    vec![
        StreamCatalog::new(analytics).levels(day_levels).levels(period_levels).metrics(analytics_metrics),
        StreamCatalog::new(followers).levels(["organization"]).metrics([
            MetricOrigin::canonical(
                Metric::FollowerGains,
                "followerGains.organicFollowerGain + followerGains.paidFollowerGain",
            )
            .note("net of unfollows: negative on days that lost followers"),
            MetricOrigin::canonical(Metric::Followers, "networkSizes.firstDegreeSize - later days' gains")
                .grains(Grains::DaysAndPeriods)
                .note("end of day; a period row holds the value the period opens with"),
        ]),
        StreamCatalog::new(shares).levels(["organization"]).metrics(share_metrics),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_declares_every_field_the_pull_can_ask_for() {
        let catalog = catalog();
        for stream in &catalog {
            assert_eq!(stream.check(Some("linkedin")), Ok(()));
        }
        let analytics = &catalog[0];
        assert_eq!(analytics.metrics.len(), fields::CANONICAL.len() + fields::EXTRAS.len());
        let reach = analytics.metrics.iter().find(|o| o.metric.canonical() == Some(Metric::Reach)).unwrap();
        assert_eq!(reach.platform_field, "approximateMemberReach");
        assert!(reach.grains.periods());
        let dwell = analytics.metrics.iter().find(|o| o.platform_field == "averageDwellTime").unwrap();
        assert_eq!((dwell.metric.name().as_str(), dwell.configured), ("linkedin.average_dwell_time", true));
    }
}
