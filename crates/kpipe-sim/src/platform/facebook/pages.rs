//! Page insights (`shared/apis/facebook.md` §4): `GET /{page_id}/insights?metric=a,b&period=day
//! &since=&until=`. Values are JSON numbers (objects for breakdown metrics), one per day with
//! the `end_time` of that day's end in Pacific time; `since` is the first day included and
//! `until` the first day left out; at most 90 days per call; `paging.previous` and `next` shift
//! the range and are always present. A retired or unknown metric fails the whole request with
//! `(#100) The value must be a valid insights metric`, which does not name the metric.
//!
//! `period=week` is served for the unique metrics of [`PAGE_WEEK_METRICS`]: one value per day,
//! like the daily ones, each the people of the seven days ending on the day its `end_time`
//! closes (the rolling week the Page Insights reference shows, `"period": "week"` with a value
//! per day). Any other period, or `week` for another metric, is refused with `(#100)`.

use chrono::{DateTime, Days, NaiveDate};
use serde_json::{Value, json};

use super::data::{
    PAGE_METRICS, PAGE_WEEK_METRICS, PageValue, SimPage, pacific_dst_at_midnight, page_end_time, page_metric,
    page_week_metric,
};
use super::insights::invalid;
use crate::config::CannedResponse;

/// The longest `since`..`until` span the API accepts.
pub const MAX_PAGE_INSIGHTS_DAYS: u64 = 90;

/// The error of a request naming a metric that is retired or unknown.
#[must_use]
pub fn invalid_metric() -> CannedResponse {
    invalid("The value must be a valid insights metric")
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A `since`/`until` value: `YYYY-MM-DD` or unix seconds (read as the Pacific day starting
/// at or just before that instant).
fn day_of(text: &str) -> Option<NaiveDate> {
    if let Ok(seconds) = text.parse::<i64>() {
        // Pacific midnight is 07:00 or 08:00 UTC: seven hours back lands on that day either way.
        return DateTime::from_timestamp(seconds - 7 * 3600, 0).map(|t| t.date_naive());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Midnight Pacific starting `day`, as unix seconds.
fn unix_of(day: NaiveDate) -> i64 {
    let hour = if pacific_dst_at_midnight(day) { 7 } else { 8 };
    day.and_hms_opt(hour, 0, 0).map_or(0, |t| t.and_utc().timestamp())
}

/// The answer to a Page insights request, or the API's error. `retired` metrics are refused.
pub(crate) fn page_insights(
    seed: u64,
    page: &SimPage,
    params: &[(String, String)],
    retired: &[String],
    link: &str,
    token: Option<&str>,
) -> Result<Value, CannedResponse> {
    let metrics: Vec<&str> = param(params, "metric")
        .map(|m| m.split(',').map(str::trim).filter(|m| !m.is_empty()).collect())
        .unwrap_or_default();
    if metrics.is_empty() {
        return Err(super::error(
            400,
            3001,
            Some(1_504_028),
            "No metric was specified to be fetched. Please specify one or more metrics to be fetched and \
             try again.",
        ));
    }
    let mut defs = Vec::with_capacity(metrics.len());
    for name in &metrics {
        match PAGE_METRICS.iter().find(|d| d.name == *name) {
            Some(def) if !retired.iter().any(|r| r == name) => defs.push(def),
            _ => return Err(invalid_metric()),
        }
    }
    let period = match param(params, "period") {
        Some("day") => "day",
        Some("week") if defs.iter().all(|d| PAGE_WEEK_METRICS.contains(&d.name)) => "week",
        other => {
            return Err(invalid(&format!(
                "the simulator serves period=day, and period=week for {}, only; got {}",
                PAGE_WEEK_METRICS.join(", "),
                other.unwrap_or("none")
            )));
        }
    };
    let (Some(since), Some(until)) =
        (param(params, "since").and_then(day_of), param(params, "until").and_then(day_of))
    else {
        return Err(invalid("the simulator needs since and until (YYYY-MM-DD or unix seconds)"));
    };
    if until <= since {
        return Err(invalid("until must be after since"));
    }
    let span = (until - since).num_days().unsigned_abs();
    if span > MAX_PAGE_INSIGHTS_DAYS {
        return Err(invalid("There cannot be more than 90 days (7776000 s) between since and until"));
    }
    let mut data = Vec::with_capacity(defs.len());
    for def in defs {
        let mut values = Vec::new();
        let mut day = since;
        while day < until {
            let value = match period {
                "week" => page_week_metric(seed, &page.id, def.name, day).map(PageValue::Count),
                _ => page_metric(seed, &page.id, def.name, day),
            };
            if let Some(value) = value {
                let value = match value {
                    PageValue::Count(n) => json!(n),
                    PageValue::Breakdown(parts) => {
                        Value::Object(parts.into_iter().map(|(k, n)| (k, json!(n))).collect())
                    }
                };
                values.push(json!({"value": value, "end_time": page_end_time(day)}));
            }
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => break,
            }
        }
        let (title, description) = match period {
            "week" => {
                (def.title.replacen("Daily", "Weekly", 1), def.description.replacen("Daily", "Weekly", 1))
            }
            _ => (def.title.to_owned(), def.description.to_owned()),
        };
        data.push(json!({
            "name": def.name,
            "period": period,
            "values": values,
            "title": title,
            "description": description,
            "id": format!("{}/insights/{}/{period}", page.id, def.name),
        }));
    }
    let shifted = |from: Option<NaiveDate>, to: Option<NaiveDate>| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(t) = token {
            pairs.push(("access_token", t.to_owned()));
        }
        pairs.push(("metric", metrics.join(",")));
        pairs.push(("period", period.to_owned()));
        pairs.push(("since", from.map_or(0, unix_of).to_string()));
        pairs.push(("until", to.map_or(0, unix_of).to_string()));
        format!("{link}?{}", crate::encode_query(pairs.iter().map(|(k, v)| (*k, v.as_str()))))
    };
    let days = Days::new(span);
    let previous = shifted(since.checked_sub_days(days), Some(since));
    let next = shifted(Some(until), until.checked_add_days(days));
    Ok(json!({"data": data, "paging": {"previous": previous, "next": next}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_day_is_read_from_dates_and_unix_seconds() {
        let d = NaiveDate::from_ymd_opt(2024, 6, 24).unwrap();
        assert_eq!(day_of("2024-06-24"), Some(d));
        // 1719212400 is 2024-06-24T07:00:00Z, midnight in Los Angeles (the captured response).
        assert_eq!(day_of("1719212400"), Some(d));
        assert_eq!(unix_of(d), 1_719_212_400);
        assert_eq!(day_of("yesterday"), None);
    }

    /// shared/apis/facebook.md §4 and the Page insights reference ("the since date data will be
    /// included in the first value returned").
    #[test]
    fn values_cover_since_up_to_until_and_retired_metrics_fail_the_request() {
        let page = SimPage::new("200000000000001", "Acme");
        let ask = params(&[
            ("metric", "page_media_view,page_follows,page_actions_post_reactions_total"),
            ("period", "day"),
            ("since", "2026-03-07"),
            ("until", "2026-03-10"),
        ]);
        let body =
            page_insights(1, &page, &ask, &[], "http://h/v25.0/200000000000001/insights", Some("T")).unwrap();
        let views = &body["data"][0];
        assert_eq!(views["name"], "page_media_view");
        assert_eq!(views["values"].as_array().unwrap().len(), 3);
        assert_eq!(views["values"][0]["end_time"], "2026-03-08T08:00:00+0000");
        assert_eq!(views["values"][2]["end_time"], "2026-03-10T07:00:00+0000");
        assert!(views["values"][0]["value"].is_u64());
        assert!(body["data"][2]["values"][0]["value"].is_object());
        assert!(body["paging"]["next"].as_str().unwrap().contains("access_token=T"));
        let retired = ["page_follows".to_owned()];
        let refused = page_insights(1, &page, &ask, &retired, "http://h", None).unwrap_err();
        assert_eq!(refused.body["error"]["code"], 100);
        assert_eq!(refused.body["error"]["message"], "(#100) The value must be a valid insights metric");
        let long = params(&[
            ("metric", "page_follows"),
            ("period", "day"),
            ("since", "2026-01-01"),
            ("until", "2026-06-01"),
        ]);
        assert!(page_insights(1, &page, &long, &[], "http://h", None).is_err());
    }

    /// The Page insights reference: a `week` value per day, each the seven days ending then.
    #[test]
    fn weekly_unique_values_are_served_for_each_day() {
        let page = SimPage::new("200000000000001", "Acme");
        let ask = |metric: &str| {
            params(&[
                ("metric", metric),
                ("period", "week"),
                ("since", "2026-03-08"),
                ("until", "2026-03-16"),
            ])
        };
        let body =
            page_insights(1, &page, &ask("page_total_media_view_unique"), &[], "http://h", None).unwrap();
        let element = &body["data"][0];
        assert_eq!(
            (element["period"].as_str(), element["title"].as_str()),
            (Some("week"), Some("Weekly Unique Media Viewers"))
        );
        let values = element["values"].as_array().unwrap();
        assert_eq!(values.len(), 8);
        let sunday = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        assert_eq!(values[7]["end_time"], page_end_time(sunday));
        assert_eq!(
            values[7]["value"],
            page_week_metric(1, &page.id, "page_total_media_view_unique", sunday).unwrap()
        );
        assert!(page_insights(1, &page, &ask("page_media_view"), &[], "http://h", None).is_err());
    }
}
