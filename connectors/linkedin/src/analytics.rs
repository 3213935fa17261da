//! Ad analytics of one account by one pivot over some days (`shared/apis/linkedin.md` §3.1).
//!
//! The API does not paginate and silently cuts a response at about 15,000 elements. Requests
//! are therefore planned (by the caller) to stay well below that; if a response still reaches
//! the cap, its days are split in two and asked again, down to single days. More than 20
//! fields are asked in groups, each with `dateRange` and `pivotValues`, and the groups'
//! elements merged by entity and day.

use std::collections::HashMap;

use futures::StreamExt;
use kpipe_core::{DateWindow, Emitter, Quarantined, SourceError};
use kpipe_http::ApiRequest;
use serde_json::{Map, Value};

use crate::client::Api;
use crate::entities::AdAccount;
use crate::fields::{self, AnalyticsField};
use crate::normalize::analytics::{AnalyticsContext, analytics_rows};
use crate::restli::{self, Pivot};

/// The quarantine stream of ad analytics.
pub const ANALYTICS_STREAM: &str = "ad_analytics";

/// What one request (all field groups) gave.
enum Fetched {
    /// The merged elements, and where they came from.
    Elements(Vec<Value>, String),
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
            Fetched::Elements(elements, location) => {
                emit_elements(account, pivot, part, fields, &elements, &location, out).await?;
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
            Fetched::Elements(elements, location) => {
                emit_elements(account, pivot, window, fields, &elements, &location, out).await?;
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

/// The rows of `elements` (an answer about `days`), emitted; an element that cannot be read is
/// quarantined.
async fn emit_elements(
    account: &AdAccount,
    pivot: Pivot,
    days: DateWindow,
    fields: &[AnalyticsField],
    elements: &[Value],
    location: &str,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let cx = AnalyticsContext {
        account: &account.label,
        currency: account.currency,
        pivot,
        names: account.names(pivot),
        window: days,
        fields,
    };
    for (index, element) in elements.iter().enumerate() {
        match analytics_rows(element, &cx) {
            Ok(rows) => out.emit_all(rows).await?,
            Err(reason) => {
                quarantine(out, format!("{location} element {index}"), reason, element.to_string()).await?
            }
        }
    }
    Ok(())
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

async fn quarantine(
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
    let mut merged = Merged::default();
    let mut first_url = None;
    for group in groups {
        let request = ApiRequest::get("rest/adAnalytics")
            .raw_query(restli::analytics_query(account, pivot, window, group))
            .stream(ANALYTICS_STREAM);
        let (mut body, url) = match api.get_json(&request).await {
            Ok(answer) => answer,
            Err(e) => {
                api.quarantine_or_fail(e, ANALYTICS_STREAM, out).await?;
                return Ok(Fetched::Quarantined);
            }
        };
        let elements = match body.get_mut("elements").map(Value::take) {
            Some(Value::Array(elements)) => elements,
            taken => {
                // Put back what was taken, so the quarantine keeps the body as received.
                if let (Some(value), Some(object)) = (taken, body.as_object_mut()) {
                    object.insert("elements".into(), value);
                }
                quarantine(out, url, "the response has no `elements` array".into(), body.to_string()).await?;
                return Ok(Fetched::Quarantined);
            }
        };
        if elements.len() >= element_cap {
            return Ok(Fetched::AtCap(elements.len()));
        }
        let location = first_url.get_or_insert(url).clone();
        if groups.len() == 1 {
            return Ok(Fetched::Elements(elements, location));
        }
        for (index, element) in elements.iter().enumerate() {
            if let Err(reason) = merged.add(element) {
                quarantine(out, format!("{location} element {index}"), reason, element.to_string()).await?;
            }
        }
    }
    Ok(Fetched::Elements(merged.elements, first_url.unwrap_or_default()))
}

/// Elements of several field groups merged by entity and day, in first-seen order.
#[derive(Default)]
struct Merged {
    elements: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Merged {
    fn add(&mut self, element: &Value) -> Result<(), String> {
        let (Some(pivot), Some(range)) = (element.get("pivotValues"), element.get("dateRange")) else {
            return Err("no `pivotValues` or `dateRange` to merge the field groups by".into());
        };
        let Value::Object(fields) = element else { return Err("the element is not an object".into()) };
        let key = format!("{pivot}|{range}");
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(Value::Object(existing)) = self.elements.get_mut(i) {
                    existing.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            None => {
                self.index.insert(key, self.elements.len());
                self.elements.push(Value::Object(Map::clone(fields)));
            }
        }
        Ok(())
    }
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
        let day = json!({"year": 2026, "month": 3, "day": 1});
        let range = json!({"start": day, "end": day});
        let mut merged = Merged::default();
        merged
            .add(
                &json!({"pivotValues": ["urn:li:sponsoredCampaign:1"], "dateRange": range, "impressions": 5}),
            )
            .unwrap();
        merged
            .add(
                &json!({"pivotValues": ["urn:li:sponsoredCampaign:2"], "dateRange": range, "impressions": 7}),
            )
            .unwrap();
        merged
            .add(
                &json!({"pivotValues": ["urn:li:sponsoredCampaign:1"], "dateRange": range, "videoStarts": 2}),
            )
            .unwrap();
        assert!(merged.add(&json!({"impressions": 1})).is_err());
        assert_eq!(merged.elements.len(), 2);
        assert_eq!(merged.elements[0]["impressions"], 5);
        assert_eq!(merged.elements[0]["videoStarts"], 2);
    }
}
