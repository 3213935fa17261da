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

use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use http::{HeaderValue, StatusCode, header};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::data::{InsightsLevel, InsightsRow, Money, ratio};
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

/// How the rows of one report are written. serde_json is built without `preserve_order`, so
/// the API's objects (once `serde_json::Map`s) have always been written with sorted keys, each
/// once; rows are written straight to text in that same order.
#[derive(Debug)]
pub(crate) struct RowFormat<'s> {
    /// The requested fields with `date_start` and `date_stop`, sorted, each once.
    keys: Vec<&'s str>,
    /// The keys of an `actions` or `action_values` element, sorted: `action_type`, `value` and
    /// the click windows, which hold the conversions; view windows had none and are left out, as
    /// the API leaves out windows without conversions.
    stat_keys: Vec<&'s str>,
}

impl<'s> RowFormat<'s> {
    pub(crate) fn new(spec: &'s ReportSpec) -> Self {
        let sorted = |mut keys: Vec<&'s str>| {
            keys.sort_unstable();
            keys.dedup();
            keys
        };
        let fields = spec.fields.iter().map(String::as_str);
        let clicks = spec.windows.iter().map(String::as_str).filter(|w| w.ends_with("_click"));
        Self {
            keys: sorted(fields.chain(["date_start", "date_stop"]).collect()),
            stat_keys: sorted(clicks.chain(["action_type", "value"]).collect()),
        }
    }

    /// `row` with the requested fields, as the API writes it.
    pub(crate) fn row<'a>(&'a self, row: &'a InsightsRow) -> RenderedRow<'a> {
        RenderedRow { row, format: self }
    }
}

/// One row with the requested fields (every number a string, empty fields left out).
#[derive(Debug)]
pub(crate) struct RenderedRow<'a> {
    row: &'a InsightsRow,
    format: &'a RowFormat<'a>,
}

/// The value of one field of a row, written as a JSON string.
enum Field<'a> {
    Text(&'a str),
    Count(u64),
    /// Minor units of the account currency.
    Amount(u64),
    Date(NaiveDate),
    /// A derived ratio (`frequency`, `cpc`, ...).
    Ratio(String),
    /// `actions` (counts) or `action_values` (money): `{action_type, value}` elements, `value`
    /// repeated under each of the click windows.
    Stats {
        stats: &'a [(String, u64)],
        money: bool,
        keys: &'a [&'a str],
    },
    /// `cost_per_action_type`: `{action_type, value}` elements.
    Costs(Vec<(&'a str, String)>),
}

impl<'a> RenderedRow<'a> {
    fn field(&self, name: &str) -> Option<Field<'a>> {
        let row = self.row;
        let text = |s: &'a str| Some(Field::Text(s));
        let ratio_text = |numerator: u128, denominator: u128| ratio(numerator, denominator).map(Field::Ratio);
        let stats = |stats: &'a [(String, u64)], money: bool| {
            (!stats.is_empty()).then_some(Field::Stats { stats, money, keys: &self.format.stat_keys })
        };
        let spend_cents = u128::from(row.spend_cents);
        match name {
            "account_id" => text(&row.account_id),
            "account_name" => text(&row.account_name),
            "account_currency" => text(&row.account_currency),
            "campaign_id" => row.campaign.as_ref().map(|e| Field::Text(&e.id)),
            "campaign_name" => row.campaign.as_ref().map(|e| Field::Text(&e.name)),
            "adset_id" => row.adset.as_ref().map(|e| Field::Text(&e.id)),
            "adset_name" => row.adset.as_ref().map(|e| Field::Text(&e.name)),
            "ad_id" => row.ad.as_ref().map(|e| Field::Text(&e.id)),
            "ad_name" => row.ad.as_ref().map(|e| Field::Text(&e.name)),
            "impressions" => Some(Field::Count(row.impressions)),
            "reach" => Some(Field::Count(row.reach)),
            "clicks" => Some(Field::Count(row.clicks)),
            "inline_link_clicks" => Some(Field::Count(row.inline_link_clicks)),
            "spend" => Some(Field::Amount(row.spend_cents)),
            "frequency" => ratio_text(row.impressions.into(), row.reach.into()),
            "cpc" => ratio_text(spend_cents, u128::from(row.clicks) * 100),
            "cpm" => ratio_text(spend_cents * 10, row.impressions.into()),
            "ctr" => ratio_text(u128::from(row.clicks) * 100, row.impressions.into()),
            "actions" => stats(&row.actions, false),
            "action_values" => stats(&row.action_values_cents, true),
            "cost_per_action_type" if !row.actions.is_empty() => Some(Field::Costs(
                row.actions
                    .iter()
                    .filter_map(|(t, n)| Some((t.as_str(), ratio(spend_cents, u128::from(*n) * 100)?)))
                    .collect(),
            )),
            "date_start" => Some(Field::Date(row.date)),
            "date_stop" => Some(Field::Date(row.date_stop)),
            _ => None,
        }
    }
}

impl Serialize for RenderedRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for key in &self.format.keys {
            if let Some(value) = self.field(key) {
                map.serialize_entry(key, &value)?;
            }
        }
        map.end()
    }
}

impl Serialize for Field<'_> {
    // `collect_str` writes what the value displays as, escaped like a `&str`, without making a
    // `String` of it first.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(text) => serializer.serialize_str(text),
            Field::Count(n) => serializer.collect_str(n),
            Field::Amount(cents) => serializer.collect_str(&Money(*cents)),
            Field::Date(day) => serializer.collect_str(day),
            Field::Ratio(text) => serializer.serialize_str(text),
            Field::Stats { stats, money, keys } => serializer.collect_seq(stats.iter().map(|(kind, n)| {
                let value = if *money { Field::Amount(*n) } else { Field::Count(*n) };
                Stat { kind, value, keys }
            })),
            Field::Costs(costs) => serializer.collect_seq(costs.iter().map(|(kind, value)| Stat {
                kind,
                value: Field::Text(value),
                keys: &["action_type", "value"],
            })),
        }
    }
}

/// One `{action_type, value}` element, `value` under every other key of `keys`.
struct Stat<'a> {
    kind: &'a str,
    value: Field<'a>,
    keys: &'a [&'a str],
}

impl Serialize for Stat<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.keys.len()))?;
        for key in self.keys {
            if *key == "action_type" {
                map.serialize_entry(key, self.kind)?;
            } else {
                map.serialize_entry(key, &self.value)?;
            }
        }
        map.end()
    }
}

/// `{"data": [...], "paging": {...}}`, keys in the sorted order serde_json writes a `Map` in.
#[derive(Serialize)]
struct Listing<D> {
    data: D,
    paging: Paging,
}

#[derive(Serialize)]
struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursors: Option<Cursors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

#[derive(Serialize)]
struct Cursors {
    after: String,
    before: String,
}

/// The items of one page, rendered as they are written.
struct PageItems<'a, 'f, T, F> {
    items: &'a [T],
    render: &'f F,
}

impl<'a, T, R: Serialize, F: Fn(&'a T) -> R> Serialize for PageItems<'a, '_, T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(self.render))
    }
}

/// The text of `{"data": [...], "paging": {"cursors": {...}, "next": ...}}` for one page of
/// `items`. `link` is the request's URL without a query
/// (`http://127.0.0.1:PORT/v25.0/act_1/insights`), `params` its parameters; `next` repeats them
/// with `access_token` and the `after` cursor.
///
/// Only the page's items are rendered (by `render`), straight to text, so that paging through a
/// large report costs the rendering of each row once.
pub(crate) fn listing_of<'a, T, R: Serialize>(
    items: &'a [T],
    render: impl Fn(&'a T) -> R,
    page: PageSpec,
    link: &str,
    params: &[(String, String)],
    token: Option<&str>,
) -> Result<String, CannedResponse> {
    let total = items.len() as u64;
    let start = page.offset.min(total);
    let end = start.saturating_add(page.limit).min(total);
    let index = |at: u64| usize::try_from(at).unwrap_or(usize::MAX);
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
    let paging = Paging {
        cursors: (end > start)
            .then(|| Cursors { after: encode_position(end), before: encode_position(start) }),
        next: (end < total).then(|| url_at(end)),
        previous: (start > 0).then(|| url_at(start.saturating_sub(page.limit))),
    };
    let data = PageItems { items: items.get(index(start)..index(end)).unwrap_or_default(), render: &render };
    serde_json::to_string(&Listing { data, paging }).map_err(|e| {
        tracing::error!(error = %e, "kpipe-sim: an insights page could not be written");
        super::error(500, 1, None, "An unknown error occurred")
    })
}

/// A 200 answer with the JSON text `body` and the usage `headers`: the same status, headers and
/// bytes as a [`CannedResponse`] of the `Value` that `body` is the text of.
pub(crate) fn reply_with_text(body: String, headers: Vec<(String, String)>) -> Response {
    // The headers go through `CannedResponse`, which checks them; only the body is set here.
    let canned =
        headers.into_iter().fold(CannedResponse::json(200, Value::Null), |c, (k, v)| c.with_header(k, v));
    let (parts, _) = canned.to_response().into_parts();
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().extend(parts.headers);
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        let page: Value = serde_json::from_str(&page.unwrap()).unwrap();
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
        let last: Value = serde_json::from_str(&last.unwrap()).unwrap();
        assert_eq!(rendered.get(), 1);
        assert!(last["paging"].get("next").is_none());
        assert!(last["paging"]["previous"].as_str().is_some());
        assert_eq!(last["data"], json!([{"i": 4}]));
    }
}
