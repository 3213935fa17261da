//! Ad analytics of one account by one pivot over some days (`shared/apis/linkedin.md` §3.1).
//!
//! The API does not paginate and silently cuts a response at about 15,000 elements. Requests
//! are therefore planned (by the caller) to stay well below that; if a response still reaches
//! the cap, its days are split in two and asked again, down to single days. More than 20
//! fields are asked in groups, each with `dateRange` and `pivotValues`, and the groups'
//! elements merged by entity and day.

use std::collections::HashMap;
use std::ops::Range;

use futures::StreamExt;
use kpipe_core::{DateWindow, Emitter, Quarantined, SourceError};
use kpipe_http::ApiRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::client::Api;
use crate::entities::AdAccount;
use crate::fields::{self, AnalyticsField};
use crate::json;
use crate::normalize::analytics::{AnalyticsContext, AnalyticsReader};
use crate::restli::{self, Pivot};

/// The quarantine stream of ad analytics.
pub const ANALYTICS_STREAM: &str = "ad_analytics";

/// What one request (all field groups) gave.
enum Fetched {
    /// The answers, one per field group, and where the first came from.
    Elements(Vec<Answer>, String),
    /// A response reached the element cap: it may be cut short.
    AtCap(usize),
    /// A response could not be read and was quarantined.
    Quarantined,
}

/// Pulls `account`'s analytics by `pivot` for `window` and emits its rows.
pub async fn pull(
    api: &Api,
    account: &AdAccount,
    pivot: Pivot,
    window: DateWindow,
    fields: &[AnalyticsField],
    element_cap: usize,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let groups = fields::request_groups(fields);
    let mut pending = vec![window];
    while let Some(part) = pending.pop() {
        match fetch(api, account.id, pivot, part, &groups, element_cap, out).await? {
            Fetched::Elements(answers, location) => {
                emit_elements(account, pivot, part, fields, &answers, &location, out).await?;
            }
            Fetched::AtCap(count) => match halves(part) {
                Some((first, second)) => {
                    tracing::info!(account = account.id, pivot = pivot.as_str(), days = %part, count,
                        "the response reached the element cap; asking for half the days");
                    pending.push(second);
                    pending.push(first);
                }
                None => return Err(at_cap(account, pivot, part, count)),
            },
            Fetched::Quarantined => {}
        }
    }
    Ok(())
}

/// Pulls every account's analytics by both pivots for `window`, with up to `in_flight`
/// requests at once; rows are emitted account by account and pivot by pivot, as [`pull`] one
/// after the other would.
pub async fn pull_accounts(
    api: &Api,
    accounts: &[AdAccount],
    window: DateWindow,
    fields: &[AnalyticsField],
    element_cap: usize,
    in_flight: usize,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let groups = fields::request_groups(fields);
    let groups = &groups;
    // Jobs by index: closures over borrowed items would not make a `Send` future here.
    let jobs = (0..accounts.len()).flat_map(|i| Pivot::ALL.into_iter().map(move |pivot| (i, pivot)));
    let mut answers = futures::stream::iter(jobs)
        .map(|(i, pivot)| async move {
            let id = accounts[i].id;
            let fetched = crate::concurrent::beside(|mut own| async move {
                fetch(api, id, pivot, window, groups, element_cap, &mut own).await
            })
            .await;
            (i, pivot, fetched)
        })
        .buffered(in_flight.max(1));
    while let Some((i, pivot, (fetched, quarantined))) = answers.next().await {
        let account = &accounts[i];
        for record in quarantined {
            out.quarantine(record).await?;
        }
        match fetched? {
            Fetched::Elements(answers, location) => {
                emit_elements(account, pivot, window, fields, &answers, &location, out).await?;
            }
            // Asked again by halves, on its own: rare, and the halves depend on each other's size.
            Fetched::AtCap(count) => match halves(window) {
                Some((first, second)) => {
                    tracing::info!(account = account.id, pivot = pivot.as_str(), days = %window, count,
                        "the response reached the element cap; asking for half the days");
                    pull(api, account, pivot, first, fields, element_cap, out).await?;
                    pull(api, account, pivot, second, fields, element_cap, out).await?;
                }
                None => return Err(at_cap(account, pivot, window, count)),
            },
            Fetched::Quarantined => {}
        }
    }
    Ok(())
}

/// The rows of `answers` (about `days`, one per field group), emitted; an element that cannot
/// be read is quarantined with its JSON text.
async fn emit_elements(
    account: &AdAccount,
    pivot: Pivot,
    days: DateWindow,
    fields: &[AnalyticsField],
    answers: &[Answer],
    location: &str,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let mut reader = AnalyticsReader::new(AnalyticsContext {
        account: &account.label,
        currency: account.currency,
        pivot,
        names: account.names(pivot),
        window: days,
        fields,
    });
    match answers {
        [answer] => {
            for (index, element) in answer.elements().enumerate() {
                emit_element(&mut reader, &[element], (location, index), out).await?;
            }
        }
        _ => {
            let merged = merge(answers, location, out).await?;
            for (index, parts) in merged.elements.iter().enumerate() {
                emit_element(&mut reader, parts, (location, index), out).await?;
            }
        }
    }
    Ok(())
}

/// The rows of one element (its parts, one per field group), or its quarantine at element
/// `index` of the answer at `location`.
async fn emit_element(
    reader: &mut AnalyticsReader<'_>,
    parts: &[&str],
    (location, index): (&str, usize),
    out: &mut Emitter,
) -> Result<(), SourceError> {
    match reader.rows(parts) {
        Ok(rows) => out.emit_all(rows).await,
        Err(reason) => {
            quarantine(out, format!("{location} element {index}"), reason, element_text(parts)).await
        }
    }
}

/// The JSON text of an element for the quarantine: as received, or the field groups' parts
/// merged into one object.
fn element_text(parts: &[&str]) -> String {
    if let [part] = parts {
        return (*part).to_owned();
    }
    let mut merged = Map::new();
    for part in parts {
        if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(part) {
            merged.extend(fields);
        }
    }
    Value::Object(merged).to_string()
}

/// A single day's answer at the element cap: it may be cut short, and cannot be split.
fn at_cap(account: &AdAccount, pivot: Pivot, day: DateWindow, count: usize) -> SourceError {
    SourceError::data(format!(
        "ad analytics of account {} by {} on {}: the response holds {count} elements, \
         LinkedIn's cap, so it may be cut short and a single day cannot be split further",
        account.id,
        pivot.as_str(),
        day.start()
    ))
}

/// The first and second half of a window of two days or more.
fn halves(window: DateWindow) -> Option<(DateWindow, DateWindow)> {
    let days = window.num_days();
    if days < 2 {
        return None;
    }
    let first_end = window.start().checked_add_days(chrono::Days::new(days / 2 - 1))?;
    let second_start = first_end.checked_add_days(chrono::Days::new(1))?;
    Some((
        DateWindow::new(window.start(), first_end).ok()?,
        DateWindow::new(second_start, window.end()).ok()?,
    ))
}

pub(crate) async fn quarantine(
    out: &mut Emitter,
    location: String,
    reason: String,
    raw: String,
) -> Result<(), SourceError> {
    tracing::warn!(%location, %reason, "ad analytics element quarantined");
    out.quarantine(Quarantined { stream: ANALYTICS_STREAM.into(), location, reason, raw }).await
}

async fn fetch(
    api: &Api,
    account: u64,
    pivot: Pivot,
    window: DateWindow,
    groups: &[Vec<&'static str>],
    element_cap: usize,
    out: &mut Emitter,
) -> Result<Fetched, SourceError> {
    let mut answers = Vec::with_capacity(groups.len());
    let mut first_url = None;
    for group in groups {
        let request = ApiRequest::get("rest/adAnalytics")
            .raw_query(restli::analytics_query(account, pivot, window, group))
            .stream(ANALYTICS_STREAM);
        let (body, url) = match api.get_text(&request).await {
            Ok(answer) => answer,
            Err(e) => {
                api.quarantine_or_fail(e, ANALYTICS_STREAM, out).await?;
                return Ok(Fetched::Quarantined);
            }
        };
        let answer = match Answer::read(body) {
            Ok(answer) => answer,
            Err(body) => {
                quarantine(out, url, "the response has no `elements` array".into(), body).await?;
                return Ok(Fetched::Quarantined);
            }
        };
        if answer.elements.len() >= element_cap {
            return Ok(Fetched::AtCap(answer.elements.len()));
        }
        first_url.get_or_insert(url);
        answers.push(answer);
    }
    Ok(Fetched::Elements(answers, first_url.unwrap_or_default()))
}

/// An ad analytics answer as received (`shared/apis/linkedin.md` §3.1): the body, and where
/// each element's JSON text is in it. The elements are read one at a time when their rows are
/// made, so that no parsed copy of the whole answer is ever held.
pub(crate) struct Answer {
    body: String,
    elements: Vec<Range<usize>>,
}

/// The members of an answer the connector reads; the others (`paging`) are skipped.
#[derive(Deserialize)]
struct AnswerBody<'a> {
    #[serde(borrow, default)]
    elements: Option<Vec<&'a RawValue>>,
}

impl Answer {
    /// The answer of `body`, or the body back when it has no `elements` array.
    pub(crate) fn read(body: String) -> Result<Answer, String> {
        match Answer::element_spans(&body) {
            Some(elements) => Ok(Answer { body, elements }),
            None => Err(body),
        }
    }

    fn element_spans(body: &str) -> Option<Vec<Range<usize>>> {
        // A struct also deserializes from an array: only an object is an answer.
        if !json::is_object(body) {
            return None;
        }
        let answer: AnswerBody<'_> = serde_json::from_str(body).ok()?;
        answer.elements?.into_iter().map(|element| json::span(body, element.get())).collect()
    }

    /// How many elements it holds.
    pub(crate) fn len(&self) -> usize {
        self.elements.len()
    }

    /// The JSON text of each element, in the order sent.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().map(|span| self.body.get(span.clone()).unwrap_or_default())
    }
}

/// Reads the ad analytics answer `body` as a pull does, without a client or an emitter: its
/// `elements` found in place, each made rows (or refused, as the pull quarantines it), and the
/// same elements merged as the answers of several field groups are. `None` when the body is no
/// answer; else the rows made and the elements refused. A hook for the parsers' fuzz targets.
#[doc(hidden)]
pub fn read_answer(body: String, cx: AnalyticsContext<'_>) -> Option<(usize, usize)> {
    let answer = Answer::read(body).ok()?;
    let mut reader = AnalyticsReader::new(cx);
    let (mut rows, mut refused) = (0, 0);
    let mut merged = Merged::default();
    for element in answer.elements() {
        match reader.rows(&[element]) {
            Ok(made) => rows += made.len(),
            Err(_) => refused += 1,
        }
        if merged.add(element).is_err() {
            refused += 1;
        }
    }
    for parts in &merged.elements {
        match reader.rows(parts) {
            Ok(made) => rows += made.len(),
            Err(_) => {
                // The text the pull quarantines.
                let _ = element_text(parts);
                refused += 1;
            }
        }
    }
    Some((rows, refused))
}

/// The elements of several field groups' answers merged by entity and day, in first-seen
/// order; each element is its parts, one per answer that has it. An element that cannot be
/// placed is quarantined.
async fn merge<'a>(
    answers: &'a [Answer],
    location: &str,
    out: &mut Emitter,
) -> Result<Merged<'a>, SourceError> {
    let mut merged = Merged::default();
    for answer in answers {
        for (index, element) in answer.elements().enumerate() {
            if let Err(reason) = merged.add(element) {
                quarantine(out, format!("{location} element {index}"), reason, element.to_owned()).await?;
            }
        }
    }
    Ok(merged)
}

/// See [`merge`].
#[derive(Default)]
struct Merged<'a> {
    elements: Vec<Vec<&'a str>>,
    index: HashMap<String, usize>,
}

impl<'a> Merged<'a> {
    fn add(&mut self, element: &'a str) -> Result<(), String> {
        let (mut pivot, mut range) = (None, None);
        let read = json::members(element, |key, value| match key {
            "pivotValues" => pivot = Some(value),
            "dateRange" => range = Some(value),
            _ => {}
        });
        let (Ok(_), Some(pivot), Some(range)) = (read, pivot, range) else {
            return Err("no `pivotValues` or `dateRange` to merge the field groups by".into());
        };
        // Compared as parsed values: the answers of two requests need not space them alike.
        let key = format!("{}|{}", canonical(pivot), canonical(range));
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(parts) = self.elements.get_mut(i) {
                    parts.push(element);
                }
            }
            None => {
                self.index.insert(key, self.elements.len());
                self.elements.push(vec![element]);
            }
        }
        Ok(())
    }
}

/// The compact text of the JSON value `text`.
fn canonical(text: &str) -> String {
    serde_json::from_str::<Value>(text).map_or_else(|_| text.to_owned(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn windows_split_in_halves_down_to_a_day() {
        let w = DateWindow::new(day("2026-03-01"), day("2026-03-05")).unwrap();
        let (a, b) = halves(w).unwrap();
        assert_eq!(
            (a.start(), a.end(), b.start(), b.end()),
            (day("2026-03-01"), day("2026-03-02"), day("2026-03-03"), day("2026-03-05"))
        );
        assert!(halves(DateWindow::day(day("2026-03-01"))).is_none());
    }

    #[test]
    fn field_groups_merge_by_entity_and_day() {
        // §3.1: each field group's answer keys its elements by `pivotValues` and `dateRange`.
        let day = json!({"year": 2026, "month": 3, "day": 1});
        let range = json!({"start": day, "end": day});
        let texts = [
            json!({"pivotValues": ["urn:li:sponsoredCampaign:1"], "dateRange": range, "impressions": 5})
                .to_string(),
            json!({"pivotValues": ["urn:li:sponsoredCampaign:2"], "dateRange": range, "impressions": 7})
                .to_string(),
            // The same entity and day spaced and ordered otherwise, as another answer may send it.
            r#"{ "videoStarts": 2, "dateRange": {"end": {"day": 1, "month": 3, "year": 2026},
                 "start": {"year": 2026, "month": 3, "day": 1}},
                 "pivotValues": [ "urn:li:sponsoredCampaign:1" ] }"#
                .to_owned(),
        ];
        let mut merged = Merged::default();
        for text in &texts {
            merged.add(text).unwrap();
        }
        assert!(merged.add(r#"{"impressions": 1}"#).is_err());
        assert!(merged.add("[1]").is_err());
        assert_eq!(merged.elements.len(), 2);
        assert_eq!(merged.elements[0], [texts[0].as_str(), texts[2].as_str()]);
        let whole: Value = serde_json::from_str(&element_text(&merged.elements[0])).unwrap();
        assert_eq!((whole["impressions"].as_i64(), whole["videoStarts"].as_i64()), (Some(5), Some(2)));
    }

    #[test]
    fn answers_are_read_in_place() {
        // §3.1: `paging` beside `elements`, which are the rows' source.
        let body = r#"{"paging": {"start": 0, "count": 10, "links": []},
                       "elements": [{"impressions": 1}, {"impressions": "caf\u00e9"}, 3]}"#;
        let answer = Answer::read(body.to_owned()).unwrap();
        let elements: Vec<&str> = answer.elements().collect();
        assert_eq!(elements, [r#"{"impressions": 1}"#, r#"{"impressions": "caf\u00e9"}"#, "3"]);
        for unreadable in
            [r#"{"paging": {}}"#, r#"{"elements": {"a": 1}}"#, r#"[[{"a": 1}]]"#, r#"{"elements": null}"#]
        {
            assert_eq!(
                Answer::read(unreadable.to_owned()).err().as_deref(),
                Some(unreadable),
                "{unreadable}"
            );
        }
        assert_eq!(Answer::read(r#"{"elements": []}"#.to_owned()).unwrap().elements().count(), 0);
    }
}
