//! Ads insights requests and responses (`shared/apis/facebook.md` §2): the parameters of
//! `GET|POST /act_{id}/insights`, the rows rendered with the requested fields only (every number
//! a string, list metrics as `{action_type, value}` arrays, empty fields omitted), and the
//! `{"data": [...], "paging": {"cursors": {...}, "next": "<absolute URL>"}}` envelope whose
//! `next` carries the original parameters, `access_token` and `after`.
//!
//! Days or ranges, as Meta's Ad Account Insights reference has them: `time_increment=1` gives
//! a row per entity and day; `time_increment=all_days` (the default) one per entity over
//! `time_range`; `time_ranges=[{"since","until"},...]` one per entity and range ("Each time range
//! will have one result set"), `time_range` and `time_increment` then ignored. `date_start` and
//! `date_stop` are the row's first and last day. `monthly` and N-day increments are not served.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::data::{InsightsLevel, InsightsRow, ratio};
use crate::config::CannedResponse;
use crate::platform::test_routes::{decode_position, encode_position};

/// Fields the simulator can report.
pub const KNOWN_FIELDS: [&str; 23] = [
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "spend",
    "cpc",
    "cpm",
    "ctr",
    "actions",
    "action_values",
    "cost_per_action_type",
    "date_start",
    "date_stop",
];

/// The attribution windows the API accepts in `action_attribution_windows`.
pub const ATTRIBUTION_WINDOWS: [&str; 11] = [
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "1d_ev",
    "dda",
    "default",
    "skan_view",
    "skan_click",
];

/// What a report asks for: the grain, the fields, the days and the attribution windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportSpec {
    pub(crate) level: InsightsLevel,
    pub(crate) fields: Vec<String>,
    pub(crate) since: NaiveDate,
    pub(crate) until: NaiveDate,
    pub(crate) windows: Vec<String>,
    /// `None` for daily rows; else the ranges each entity has one row over, in order.
    pub(crate) ranges: Option<Vec<(NaiveDate, NaiveDate)>>,
}

/// One page of a listing: how many rows and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSpec {
    pub(crate) limit: u64,
    pub(crate) offset: u64,
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A `(#100)` invalid-parameter error, HTTP 400.
pub(crate) fn invalid(message: &str) -> CannedResponse {
    super::error(400, 100, None, &format!("(#100) {message}"))
}

/// Reads the report parameters; without `level`, rows are at the level of the object asked
/// (`account` for `act_<id>`).
pub(crate) fn report_spec(params: &[(String, String)]) -> Result<ReportSpec, CannedResponse> {
    let level = match param(params, "level") {
        None => InsightsLevel::Account,
        Some(l) => InsightsLevel::parse(l).ok_or_else(|| {
            invalid(&format!("param level must be one of {{ad, adset, campaign, account}}, got {l}"))
        })?,
    };
    let fields: Vec<String> = match param(params, "fields") {
        None => vec!["impressions".into(), "spend".into()],
        // A JSON body may give the list as an array (`["spend", "actions"]`).
        Some(list) if list.trim_start().starts_with('[') => serde_json::from_str(list)
            .map_err(|_| invalid("param fields must be a comma-separated list or an array of strings"))?,
        Some(list) => list.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect(),
    };
    if let Some(bad) = fields.iter().find(|f| !KNOWN_FIELDS.contains(&f.as_str())) {
        return Err(invalid(&format!(
            "{bad} is not valid for fields param. please check \
             https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values"
        )));
    }
    let (since, until, ranges) = match param(params, "time_ranges") {
        // `time_range` and `time_increment` are ignored then.
        Some(list) => {
            let list: Vec<Value> = serde_json::from_str(list).map_err(|_| {
                invalid("param time_ranges must be a JSON array of {\"since\", \"until\"} objects")
            })?;
            let ranges = list.iter().map(|r| range_of(r, "time_ranges[]")).collect::<Result<Vec<_>, _>>()?;
            let since = ranges.iter().map(|r| r.0).min();
            let until = ranges.iter().map(|r| r.1).max();
            let (Some(since), Some(until)) = (since, until) else {
                return Err(invalid("param time_ranges must hold at least one range"));
            };
            (since, until, Some(ranges))
        }
        None => {
            let range = param(params, "time_range").ok_or_else(|| invalid("param time_range is required"))?;
            let range: Value = serde_json::from_str(range).map_err(|_| {
                invalid("param time_range must be a JSON object {\"since\":..., \"until\":...}")
            })?;
            let (since, until) = range_of(&range, "time_range")?;
            let whole = match param(params, "time_increment") {
                Some("1") => false,
                None | Some("all_days") => true,
                Some(other) => {
                    return Err(invalid(&format!(
                        "the simulator serves time_increment 1 and all_days only, got {other}"
                    )));
                }
            };
            (since, until, whole.then(|| vec![(since, until)]))
        }
    };
    let windows: Vec<String> = match param(params, "action_attribution_windows") {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|_| invalid("param action_attribution_windows must be a JSON array of strings"))?,
    };
    if let Some(bad) = windows.iter().find(|w| !ATTRIBUTION_WINDOWS.contains(&w.as_str())) {
        return Err(invalid(&format!("{bad} is not a valid action attribution window")));
    }
    Ok(ReportSpec { level, fields, since, until, windows, ranges })
}

/// The `since` and `until` days of a `{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}` object.
fn range_of(range: &Value, what: &str) -> Result<(NaiveDate, NaiveDate), CannedResponse> {
    let date = |key: &str| {
        range
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| invalid(&format!("{what}.{key} must be a date YYYY-MM-DD")))
    };
    let (since, until) = (date("since")?, date("until")?);
    if until < since {
        return Err(invalid(&format!("{what}.until must not be before {what}.since")));
    }
    Ok((since, until))
}

/// Reads `limit` and `after`.
pub(crate) fn page_spec(
    params: &[(String, String)],
    default_limit: u64,
    max_limit: u64,
) -> Result<PageSpec, CannedResponse> {
    let limit = match param(params, "limit") {
        None => default_limit,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if (1..=max_limit).contains(&n) => n,
            _ => return Err(invalid(&format!("param limit must be an integer within 1..={max_limit}"))),
        },
    };
    let offset = match param(params, "after") {
        None | Some("") => 0,
        Some(c) => decode_position(c).ok_or_else(|| invalid("param after is not a cursor this API gave"))?,
    };
    Ok(PageSpec { limit, offset })
}

fn with_windows(stats: Vec<(String, String)>, windows: &[String]) -> Value {
    Value::Array(
        stats
            .into_iter()
            .map(|(action_type, value)| {
                let mut object = Map::new();
                object.insert("action_type".into(), Value::String(action_type));
                // Click windows hold the conversions; view windows had none and are left out, as
                // the API leaves out windows without conversions.
                for window in windows.iter().filter(|w| w.ends_with("_click")) {
                    object.insert(window.clone(), Value::String(value.clone()));
                }
                object.insert("value".into(), Value::String(value));
                Value::Object(object)
            })
            .collect(),
    )
}

/// One row with the requested fields, as the API writes it.
pub(crate) fn render(row: &InsightsRow, spec: &ReportSpec) -> Value {
    let mut out = Map::new();
    let text = |s: &str| Value::String(s.to_owned());
    let spend_cents = u128::from(row.spend_cents);
    for field in &spec.fields {
        let value = match field.as_str() {
            "account_id" => Some(text(&row.account_id)),
            "account_name" => Some(text(&row.account_name)),
            "account_currency" => Some(text(&row.account_currency)),
            "campaign_id" => row.campaign.as_ref().map(|e| text(&e.id)),
            "campaign_name" => row.campaign.as_ref().map(|e| text(&e.name)),
            "adset_id" => row.adset.as_ref().map(|e| text(&e.id)),
            "adset_name" => row.adset.as_ref().map(|e| text(&e.name)),
            "ad_id" => row.ad.as_ref().map(|e| text(&e.id)),
            "ad_name" => row.ad.as_ref().map(|e| text(&e.name)),
            "impressions" => Some(Value::String(row.impressions.to_string())),
            "reach" => Some(Value::String(row.reach.to_string())),
            "clicks" => Some(Value::String(row.clicks.to_string())),
            "inline_link_clicks" => Some(Value::String(row.inline_link_clicks.to_string())),
            "spend" => Some(Value::String(row.spend())),
            "frequency" => ratio(row.impressions.into(), row.reach.into()).map(Value::String),
            "cpc" => ratio(spend_cents, u128::from(row.clicks) * 100).map(Value::String),
            "cpm" => ratio(spend_cents * 10, row.impressions.into()).map(Value::String),
            "ctr" => ratio(u128::from(row.clicks) * 100, row.impressions.into()).map(Value::String),
            "actions" if !row.actions.is_empty() => Some(with_windows(
                row.action_stats().into_iter().map(|a| (a.action_type, a.value)).collect(),
                &spec.windows,
            )),
            "action_values" if !row.action_values_cents.is_empty() => Some(with_windows(
                row.action_value_stats().into_iter().map(|a| (a.action_type, a.value)).collect(),
                &spec.windows,
            )),
            "cost_per_action_type" if !row.actions.is_empty() => Some(Value::Array(
                row.actions
                    .iter()
                    .filter_map(|(t, n)| {
                        ratio(spend_cents, u128::from(*n) * 100)
                            .map(|v| json!({"action_type": t, "value": v}))
                    })
                    .collect(),
            )),
            _ => None,
        };
        if let Some(value) = value {
            out.insert(field.clone(), value);
        }
    }
    out.insert("date_start".into(), Value::String(row.date.to_string()));
    out.insert("date_stop".into(), Value::String(row.date_stop.to_string()));
    Value::Object(out)
}

/// `{"data": [...], "paging": {...}}` for one page of `items`. `link` is the request's URL
/// without a query (`http://127.0.0.1:PORT/v25.0/act_1/insights`), `params` its parameters;
/// `next` repeats them with `access_token` and the `after` cursor.
///
/// Only the page's items are rendered (by `render`), so that paging through a large report
/// costs the rendering of each row once.
pub(crate) fn listing_of<T>(
    items: &[T],
    render: impl Fn(&T) -> Value,
    page: PageSpec,
    link: &str,
    params: &[(String, String)],
    token: Option<&str>,
) -> Value {
    let total = items.len() as u64;
    let start = page.offset.min(total);
    let end = start.saturating_add(page.limit).min(total);
    let data: Vec<Value> = items
        .iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(end - start).unwrap_or(usize::MAX))
        .map(render)
        .collect();
    let mut paging = Map::new();
    if end > start {
        paging.insert(
            "cursors".into(),
            json!({"before": encode_position(start), "after": encode_position(end)}),
        );
    }
    let url_at = |offset: u64| {
        let kept = params
            .iter()
            .filter(|(k, _)| k != "after" && k != "access_token" && k != "before")
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let cursor = encode_position(offset);
        let auth = token.map(|t| ("access_token", t));
        let query = crate::encode_query(kept.chain(auth).chain([("after", cursor.as_str())]));
        format!("{link}?{query}")
    };
    if start > 0 {
        paging.insert("previous".into(), Value::String(url_at(start.saturating_sub(page.limit))));
    }
    if end < total {
        paging.insert("next".into(), Value::String(url_at(end)));
    }
    json!({"data": data, "paging": paging})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// shared/apis/facebook.md §2: the parameters table.
    #[test]
    fn parameters_are_checked_like_the_api() {
        let ok = pairs(&[
            ("level", "adset"),
            ("fields", "adset_id,spend,actions"),
            ("time_increment", "1"),
            ("time_range", r#"{"since":"2026-03-07","until":"2026-03-09"}"#),
            ("action_attribution_windows", r#"["7d_click","1d_view"]"#),
        ]);
        let spec = report_spec(&ok).unwrap();
        assert_eq!(spec.level, InsightsLevel::Adset);
        assert_eq!(spec.windows, ["7d_click", "1d_view"]);
        let mut listed = ok.clone();
        listed.push(("fields".into(), r#"["spend","actions"]"#.into()));
        assert_eq!(report_spec(&listed).unwrap().fields, ["spend", "actions"]);
        let mut bad = ok.clone();
        bad.push(("fields".into(), "spend,likes".into()));
        assert_eq!(report_spec(&bad).unwrap_err().body["error"]["code"], 100);
        let mut whole = ok.clone();
        whole.push(("time_increment".into(), "all_days".into()));
        let spec = report_spec(&whole).unwrap();
        assert_eq!(spec.ranges, Some(vec![(spec.since, spec.until)]));
        let mut monthly = ok.clone();
        monthly.push(("time_increment".into(), "monthly".into()));
        assert!(report_spec(&monthly).is_err());
        // `time_ranges` wins over `time_range` and `time_increment` (the Ad Account Insights
        // reference).
        let mut ranges = ok;
        ranges.push((
            "time_ranges".into(),
            r#"[{"since":"2026-03-02","until":"2026-03-08"},{"since":"2026-03-01","until":"2026-03-09"}]"#
                .into(),
        ));
        let spec = report_spec(&ranges).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            spec.ranges,
            Some(vec![(d("2026-03-02"), d("2026-03-08")), (d("2026-03-01"), d("2026-03-09"))])
        );
        assert_eq!((spec.since, spec.until), (d("2026-03-01"), d("2026-03-09")));
        let mut empty = ranges.clone();
        empty.push(("time_ranges".into(), "[]".into()));
        assert!(report_spec(&empty).is_err());
        let mut inverted = ranges;
        inverted.push(("time_ranges".into(), r#"[{"since":"2026-03-09","until":"2026-03-01"}]"#.into()));
        assert!(report_spec(&inverted).is_err());
        assert_eq!(page_spec(&pairs(&[("limit", "0")]), 25, 500).unwrap_err().status, 400);
        assert_eq!(page_spec(&[], 25, 500).unwrap(), PageSpec { limit: 25, offset: 0 });
    }

    /// shared/apis/facebook.md §2, "Paging": `next` is the request with `access_token` and `after`.
    #[test]
    fn next_repeats_the_request_with_the_token_and_a_cursor() {
        let items: Vec<Value> = (0..5).map(|i| json!({"i": i})).collect();
        let params = pairs(&[("level", "ad"), ("limit", "2")]);
        let page = listing_of(
            &items,
            Value::clone,
            PageSpec { limit: 2, offset: 0 },
            "http://h/v25.0/act_1/insights",
            &params,
            Some("T"),
        );
        let next = page["paging"]["next"].as_str().unwrap();
        assert!(
            next.starts_with("http://h/v25.0/act_1/insights?level=ad&limit=2&access_token=T&after="),
            "{next}"
        );
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        // Only the page's items are rendered.
        let rendered = std::cell::Cell::new(0);
        let render = |v: &Value| {
            rendered.set(rendered.get() + 1);
            v.clone()
        };
        let last = listing_of(&items, render, PageSpec { limit: 2, offset: 4 }, "http://h/x", &params, None);
        assert_eq!(rendered.get(), 1);
        assert!(last["paging"].get("next").is_none());
        assert!(last["paging"]["previous"].as_str().is_some());
        assert_eq!(last["data"], json!([{"i": 4}]));
    }
}
