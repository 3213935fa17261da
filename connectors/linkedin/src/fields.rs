//! Which ad analytics field becomes which metric: the mapping table of the README, and the
//! extra fields a configuration may add (`shared/apis/linkedin.md` §3.1, "Number formats").

use kpipe_core::{Metric, MetricName, Unit};

/// Fields per ad analytics request at most (LinkedIn refuses more than 20).
pub const MAX_FIELDS_PER_REQUEST: usize = 20;

/// The fields every request names besides the metrics, to key and date the elements. Whether
/// they count towards the 20 is unconfirmed, so they are counted.
pub const KEY_FIELDS: [&str; 2] = ["dateRange", "pivotValues"];

/// How a field's value reads and what its absence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A whole, non-negative number that adds up; absent means 0.
    Count,
    /// Money in the ad account's currency, a decimal string; absent means 0.
    LocalMoney,
    /// Money in US dollars, a decimal string; absent means 0.
    UsdMoney,
    /// Unique members: never summed, so an absent value is no row rather than 0.
    Unique,
    /// A number that does not add up (an average, a ratio); absent means no row.
    Measure,
}

/// One ad analytics field and its metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsField {
    /// The name in `fields=` and in the response.
    pub api: &'static str,
    /// The metric it is written as.
    pub metric: MetricName,
    /// How its value reads.
    pub kind: FieldKind,
}

/// The field `reach` is read from. LinkedIn deprecated `approximateUniqueImpressions` in January
/// 2024 for this one, which it serves only for requests of at most [`MAX_REACH_DAYS`] days.
pub const REACH_FIELD: &str = "approximateMemberReach";

/// The longest `dateRange`, in days, for which LinkedIn serves [`REACH_FIELD`].
pub const MAX_REACH_DAYS: u32 = 92;

/// The canonical mapping, in README order.
pub const CANONICAL: [(&str, Metric, FieldKind); 13] = [
    ("impressions", Metric::Impressions, FieldKind::Count),
    ("clicks", Metric::Clicks, FieldKind::Count),
    ("landingPageClicks", Metric::LinkClicks, FieldKind::Count),
    ("likes", Metric::Likes, FieldKind::Count),
    ("comments", Metric::Comments, FieldKind::Count),
    ("shares", Metric::Shares, FieldKind::Count),
    ("follows", Metric::FollowerGains, FieldKind::Count),
    ("totalEngagements", Metric::Engagements, FieldKind::Count),
    ("videoViews", Metric::VideoViews, FieldKind::Count),
    ("costInLocalCurrency", Metric::Spend, FieldKind::LocalMoney),
    ("externalWebsiteConversions", Metric::Conversions, FieldKind::Count),
    ("oneClickLeads", Metric::Leads, FieldKind::Count),
    (REACH_FIELD, Metric::Reach, FieldKind::Unique),
];

/// Fields a configuration may add with `extra_fields`, written as `linkedin.<snake_case>`.
pub const EXTRAS: [(&str, FieldKind, Unit); 44] = [
    ("actionClicks", FieldKind::Count, Unit::Count),
    ("adUnitClicks", FieldKind::Count, Unit::Count),
    ("averageDwellTime", FieldKind::Measure, Unit::Seconds),
    ("audiencePenetration", FieldKind::Measure, Unit::Ratio),
    ("commentLikes", FieldKind::Count, Unit::Count),
    ("companyPageClicks", FieldKind::Count, Unit::Count),
    ("conversionValueInLocalCurrency", FieldKind::LocalMoney, Unit::Currency),
    ("costInUsd", FieldKind::UsdMoney, Unit::Currency),
    ("documentCompletions", FieldKind::Count, Unit::Count),
    ("documentFirstQuartileCompletions", FieldKind::Count, Unit::Count),
    ("documentMidpointCompletions", FieldKind::Count, Unit::Count),
    ("documentThirdQuartileCompletions", FieldKind::Count, Unit::Count),
    ("downloadClicks", FieldKind::Count, Unit::Count),
    ("externalWebsitePostClickConversions", FieldKind::Count, Unit::Count),
    ("externalWebsitePostViewConversions", FieldKind::Count, Unit::Count),
    ("fullScreenPlays", FieldKind::Count, Unit::Count),
    ("jobApplications", FieldKind::Count, Unit::Count),
    ("jobApplyClicks", FieldKind::Count, Unit::Count),
    ("leadGenerationMailContactInfoShares", FieldKind::Count, Unit::Count),
    ("leadGenerationMailInterestedClicks", FieldKind::Count, Unit::Count),
    ("oneClickLeadFormOpens", FieldKind::Count, Unit::Count),
    ("opens", FieldKind::Count, Unit::Count),
    ("otherEngagements", FieldKind::Count, Unit::Count),
    ("postClickJobApplications", FieldKind::Count, Unit::Count),
    ("postClickJobApplyClicks", FieldKind::Count, Unit::Count),
    ("postClickRegistrations", FieldKind::Count, Unit::Count),
    ("postViewJobApplications", FieldKind::Count, Unit::Count),
    ("postViewJobApplyClicks", FieldKind::Count, Unit::Count),
    ("postViewRegistrations", FieldKind::Count, Unit::Count),
    ("reactions", FieldKind::Count, Unit::Count),
    ("registrations", FieldKind::Count, Unit::Count),
    ("sends", FieldKind::Count, Unit::Count),
    ("talentLeads", FieldKind::Count, Unit::Count),
    ("textUrlClicks", FieldKind::Count, Unit::Count),
    ("videoCompletions", FieldKind::Count, Unit::Count),
    ("videoFirstQuartileCompletions", FieldKind::Count, Unit::Count),
    ("videoMidpointCompletions", FieldKind::Count, Unit::Count),
    ("videoStarts", FieldKind::Count, Unit::Count),
    ("videoThirdQuartileCompletions", FieldKind::Count, Unit::Count),
    ("viralClicks", FieldKind::Count, Unit::Count),
    ("viralImpressions", FieldKind::Count, Unit::Count),
    ("viralLikes", FieldKind::Count, Unit::Count),
    ("viralShares", FieldKind::Count, Unit::Count),
    ("viralTotalEngagements", FieldKind::Count, Unit::Count),
];

/// The canonical fields.
pub fn canonical() -> Vec<AnalyticsField> {
    CANONICAL
        .iter()
        .map(|(api, metric, kind)| AnalyticsField { api, metric: (*metric).into(), kind: *kind })
        .collect()
}

/// `videoCompletions` -> `video_completions`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The extra field called `name`, or why it cannot be pulled.
pub fn extra(name: &str) -> Result<AnalyticsField, String> {
    if name == "approximateUniqueImpressions" {
        return Err(format!(
            "`{name}` is deprecated by LinkedIn; `reach` is pulled from its replacement `{REACH_FIELD}`"
        ));
    }
    if let Some((api, metric, _)) = CANONICAL.iter().find(|(api, _, _)| *api == name) {
        return Err(format!("`{api}` is already pulled as `{}`", metric.name()));
    }
    let (api, kind, unit) = EXTRAS.iter().find(|(api, _, _)| *api == name).ok_or_else(|| {
        let known: Vec<&str> = EXTRAS.iter().map(|(api, _, _)| *api).collect();
        format!("`{name}` is not an ad analytics field this connector knows; known: {}", known.join(", "))
    })?;
    let metric = MetricName::extra("linkedin", &snake_case(api), *unit)
        .ok_or_else(|| format!("`{api}` does not make a metric name"))?;
    Ok(AnalyticsField { api, metric, kind: *kind })
}

/// The fields in groups that fit one request each, [`KEY_FIELDS`] included in every group.
pub fn request_groups(fields: &[AnalyticsField]) -> Vec<Vec<&'static str>> {
    let per_request = MAX_FIELDS_PER_REQUEST - KEY_FIELDS.len();
    fields
        .chunks(per_request)
        .map(|chunk| KEY_FIELDS.iter().copied().chain(chunk.iter().map(|f| f.api)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_snake_case_linkedin_metrics() {
        let f = extra("conversionValueInLocalCurrency").unwrap();
        assert_eq!(f.metric.as_str(), "linkedin.conversion_value_in_local_currency");
        assert_eq!(f.metric.unit(), Unit::Currency);
        assert_eq!(extra("averageDwellTime").unwrap().metric.unit(), Unit::Seconds);
        assert!(extra("clicks").unwrap_err().contains("already pulled as `clicks`"));
        assert!(extra("bogus").unwrap_err().contains("known: actionClicks"));
        for (api, _, _) in EXTRAS {
            assert!(extra(api).is_ok(), "{api}");
        }
    }

    #[test]
    fn reach_comes_from_the_member_reach_field_not_the_deprecated_one() {
        let reach: Vec<_> = canonical().into_iter().filter(|f| f.metric == Metric::Reach.into()).collect();
        assert_eq!(reach.len(), 1);
        assert_eq!((reach[0].api, reach[0].kind), ("approximateMemberReach", FieldKind::Unique));
        assert!(canonical().iter().all(|f| f.api != "approximateUniqueImpressions"));
        assert!(extra("approximateUniqueImpressions").unwrap_err().contains("deprecated"));
        assert!(extra("approximateMemberReach").unwrap_err().contains("already pulled as `reach`"));
    }

    #[test]
    fn more_than_twenty_fields_are_split_into_requests() {
        let mut fields = canonical();
        assert_eq!(request_groups(&fields), [[&KEY_FIELDS[..], &CANONICAL.map(|c| c.0)[..]].concat()]);
        for (api, _, _) in &EXTRAS[..10] {
            fields.push(extra(api).unwrap());
        }
        let groups = request_groups(&fields);
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.len() <= MAX_FIELDS_PER_REQUEST && g[..2] == KEY_FIELDS));
        assert_eq!(groups.iter().map(|g| g.len() - 2).sum::<usize>(), 23);
    }
}
