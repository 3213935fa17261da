//! Company page statistics to rows (`shared/apis/linkedin.md` §3.4, §3.5). Time-bound buckets
//! are one UTC day each: `timeRange` in epoch milliseconds, end exclusive. Follower buckets
//! hold net gains, not totals; the total comes from `networkSizes`, so a day's end-of-day
//! followers are today's total minus the gains of every later day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate};
use kpipe_core::{DateWindow, Decimal, Metric, MetricRow};
use serde_json::Value;

use super::{Entity, count, signed_whole};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day of a one-day `timeRange` bucket.
pub fn bucket_day(element: &Value) -> Result<NaiveDate, String> {
    let range = element.get("timeRange").ok_or("no `timeRange`")?;
    let millis = |name: &str| {
        range
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("`timeRange.{name}` is not epoch milliseconds"))
    };
    let (start, end) = (millis("start")?, millis("end")?);
    if end - start != DAY_MS {
        return Err(format!("`timeRange` spans {} ms, not one day", end - start));
    }
    DateTime::from_timestamp_millis(start)
        .map(|t| t.date_naive())
        .ok_or_else(|| format!("`timeRange.start` {start} is out of range"))
}

/// A follower bucket's day and net gain (organic + paid, either may be negative).
pub fn follower_gain(element: &Value) -> Result<(NaiveDate, i64), String> {
    let day = bucket_day(element)?;
    let gains = element.get("followerGains").filter(|g| g.is_object()).ok_or("no `followerGains` object")?;
    let part =
        |name: &str| gains.get(name).filter(|v| !v.is_null()).map(|v| signed_whole(v, name)).transpose();
    let organic = part("organicFollowerGain")?;
    let paid = part("paidFollowerGain")?;
    if organic.is_none() && paid.is_none() {
        return Err("`followerGains` has neither `organicFollowerGain` nor `paidFollowerGain`".into());
    }
    let net = organic.unwrap_or(0).checked_add(paid.unwrap_or(0)).ok_or("the gains overflow")?;
    Ok((day, net))
}

/// The `follower_gains` row of a day: LinkedIn's net gain as it reports it, negative on a day
/// that lost more followers than it gained.
pub fn follower_gain_row(entity: &Entity, day: NaiveDate, net: i64) -> MetricRow {
    entity.row(day, Metric::FollowerGains.into(), Decimal::from_i64(net), None)
}

/// End-of-day followers of the days of `window`, derived from `total` (followers now) and the
/// net gains by day: the last reported day ends with `total`, each earlier day with the next
/// day's followers minus that next day's gains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerSeries {
    /// Day and followers, oldest first.
    pub followers: Vec<(NaiveDate, i64)>,
    /// Set when the gains of this day were unreadable: no day before it can be derived.
    pub underivable_before: Option<NaiveDate>,
}

/// See [`FollowerSeries`]. Days without a bucket gained nothing; days in `unreadable` had a
/// bucket that could not be read.
pub fn followers_by_day(
    total: i64,
    gains: &BTreeMap<NaiveDate, i64>,
    unreadable: &BTreeSet<NaiveDate>,
    window: DateWindow,
) -> FollowerSeries {
    let mut series = FollowerSeries { followers: Vec::new(), underivable_before: None };
    let Some(last) = gains.keys().chain(unreadable.iter()).max().copied() else { return series };
    let mut followers = total;
    let mut day = last;
    loop {
        if window.contains(day) {
            series.followers.push((day, followers));
        }
        if day <= window.start() {
            break;
        }
        if unreadable.contains(&day) {
            series.underivable_before = Some(day);
            break;
        }
        followers -= gains.get(&day).copied().unwrap_or(0);
        match day.checked_sub_days(Days::new(1)) {
            Some(previous) => day = previous,
            None => break,
        }
    }
    series.followers.reverse();
    series
}

/// The `followers` row of a day.
pub fn followers_row(entity: &Entity, day: NaiveDate, followers: i64) -> MetricRow {
    entity.row(day, Metric::Followers.into(), Decimal::from_i64(followers), None)
}

/// Which share statistic becomes which metric (every key is optional, §3.5).
pub const SHARE_FIELDS: [(&str, Metric); 6] = [
    ("impressionCount", Metric::Impressions),
    ("clickCount", Metric::Clicks),
    ("likeCount", Metric::Likes),
    ("commentCount", Metric::Comments),
    ("shareCount", Metric::Shares),
    ("uniqueImpressionsCount", Metric::Reach),
];

/// The counts whose sum is `engagements` (LinkedIn's own `engagement` is a ratio: this sum over
/// impressions).
pub const ENGAGEMENT_FIELDS: [&str; 4] = ["clickCount", "likeCount", "commentCount", "shareCount"];

/// The counts whose sum is `mentions`.
pub const MENTION_FIELDS: [&str; 2] = ["shareMentionsCount", "commentMentionsCount"];

/// The rows of one share statistics bucket: the counts present, `engagements` as clicks +
/// likes + comments + shares (LinkedIn's `engagement` is that sum over impressions, a ratio
/// the KPI stage derives), `mentions` as share and comment mentions.
pub fn share_rows(element: &Value, entity: &Entity, window: DateWindow) -> Result<Vec<MetricRow>, String> {
    let day = bucket_day(element)?;
    if !window.contains(day) {
        return Err(format!("dated {day}, outside the requested {window}"));
    }
    let stats = element
        .get("totalShareStatistics")
        .filter(|s| s.is_object())
        .ok_or("no `totalShareStatistics` object")?;
    let field = |name: &str| stats.get(name).filter(|v| !v.is_null()).map(|v| count(v, name)).transpose();
    let mut rows = Vec::new();
    let mut values = BTreeMap::new();
    for (name, metric) in SHARE_FIELDS {
        if let Some(value) = field(name)? {
            values.insert(name, value);
            rows.push(entity.row(day, metric.into(), value, None));
        }
    }
    let sum =
        |names: &[&str]| names.iter().try_fold(Decimal::ZERO, |acc, n| acc.checked_add(*values.get(n)?));
    if let Some(engagements) = sum(&ENGAGEMENT_FIELDS) {
        rows.push(entity.row(day, Metric::Engagements.into(), engagements, None));
    }
    let [share_mentions, comment_mentions] = MENTION_FIELDS;
    let (shares, comments) = (field(share_mentions)?, field(comment_mentions)?);
    if shares.is_some() || comments.is_some() {
        let mentions = shares
            .unwrap_or(Decimal::ZERO)
            .checked_add(comments.unwrap_or(Decimal::ZERO))
            .ok_or("mentions overflow")?;
        rows.push(entity.row(day, Metric::Mentions.into(), mentions, None));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpipe_core::Label;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ms(s: &str) -> i64 {
        day(s).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
    }

    fn entity() -> Entity {
        Entity {
            account_id: Label::from("2414183"),
            level: Label::from("organization"),
            entity_id: Label::from("2414183"),
            entity_name: Some(Label::from("Acme")),
        }
    }

    #[test]
    fn follower_buckets_are_net_gains_of_one_day() {
        // The time-bound shape of §3.4.
        let element = json!({"timeRange": {"start": 1_711_929_600_000_i64, "end": 1_712_016_000_000_i64},
                             "followerGains": {"organicFollowerGain": 3, "paidFollowerGain": 0},
                             "organizationalEntity": "urn:li:organization:2414183"});
        assert_eq!(follower_gain(&element).unwrap(), (day("2024-04-01"), 3));
        let loss = json!({"timeRange": {"start": ms("2024-04-02"), "end": ms("2024-04-03")},
                          "followerGains": {"organicFollowerGain": -5, "paidFollowerGain": 1}});
        assert_eq!(follower_gain(&loss).unwrap(), (day("2024-04-02"), -4));
        let row = follower_gain_row(&entity(), day("2024-04-02"), -4);
        assert_eq!((row.value, &row.metric), (Decimal::from_i64(-4), &Metric::FollowerGains.into()));
        assert_eq!(row.validate(), Ok(()));
        let week =
            json!({"timeRange": {"start": ms("2024-04-01"), "end": ms("2024-04-08")}, "followerGains": {}});
        assert!(follower_gain(&week).unwrap_err().contains("not one day"));
        let empty =
            json!({"timeRange": {"start": ms("2024-04-01"), "end": ms("2024-04-02")}, "followerGains": {}});
        assert!(follower_gain(&empty).is_err());
    }

    #[test]
    fn followers_are_derived_back_from_the_total() {
        let gains: BTreeMap<_, _> =
            [(day("2026-03-01"), 5), (day("2026-03-02"), -2), (day("2026-03-04"), 10)].into_iter().collect();
        let window = DateWindow::new(day("2026-03-01"), day("2026-03-03")).unwrap();
        let series = followers_by_day(1_000, &gains, &BTreeSet::new(), window);
        // 03-04 ends with 1000, 03-03 with 990 (03-04 gained 10), 03-02 too (03-03 gained
        // nothing), 03-01 with 992 (03-02 lost 2).
        assert_eq!(
            series.followers,
            [(day("2026-03-01"), 992), (day("2026-03-02"), 990), (day("2026-03-03"), 990)]
        );
        assert_eq!(series.underivable_before, None);
        let unreadable: BTreeSet<_> = [day("2026-03-03")].into_iter().collect();
        let series = followers_by_day(1_000, &gains, &unreadable, window);
        assert_eq!(series.followers, [(day("2026-03-03"), 990)]);
        assert_eq!(series.underivable_before, Some(day("2026-03-03")));
        assert!(followers_by_day(1, &BTreeMap::new(), &BTreeSet::new(), window).followers.is_empty());
    }

    #[test]
    fn share_buckets_become_counts_engagements_and_mentions() {
        // The totalShareStatistics keys of §3.5; uniqueImpressionsCount absent as in time-bound
        // buckets.
        let element = json!({"totalShareStatistics": {"impressionCount": 1000, "clickCount": 20,
                                 "likeCount": 7, "commentCount": 2, "shareCount": 1, "engagement": 0.03,
                                 "shareMentionsCount": 1},
                             "organizationalEntity": "urn:li:organization:2414183",
                             "timeRange": {"start": ms("2026-03-01"), "end": ms("2026-03-02")}});
        let window = DateWindow::new(day("2026-03-01"), day("2026-03-01")).unwrap();
        let rows = share_rows(&element, &entity(), window).unwrap();
        let value = |m: Metric| rows.iter().find(|r| r.metric == m.into()).map(|r| r.value.to_string());
        assert_eq!(value(Metric::Impressions).as_deref(), Some("1000"));
        assert_eq!(value(Metric::Engagements).as_deref(), Some("30"));
        assert_eq!(value(Metric::Mentions).as_deref(), Some("1"));
        assert_eq!(value(Metric::Reach), None);
        assert_eq!(rows.len(), 7);
        let mut bad = element.clone();
        bad["totalShareStatistics"]["likeCount"] = json!("many");
        assert!(share_rows(&bad, &entity(), window).unwrap_err().starts_with("`likeCount`"));
    }
}
