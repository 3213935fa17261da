//! Form submissions (§6 of the wire notes) and marketing email statistics (§4) of one slice.
//!
//! Submissions are listed newest first with no date filter, so the pull goes through the slices
//! newest first and each form's listing continues where the previous slice stopped: every
//! submission is fetched once, whatever the number of slices.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::NaiveDate;
use kpipe_core::{DateWindow, Decimal, Emitter, SourceError};
use kpipe_http::{ApiRequest, HttpError};
use serde_json::Value;

use super::{Context, refuse, stop};
use crate::normalize::{self, FormInfo};
use crate::portal::iso;
use crate::tally::{Cell, Measure, Tally};

/// Stream names, as `streams` in the configuration and the quarantine name them.
pub const FORMS: &str = "forms";
/// See [`FORMS`].
pub const EMAILS: &str = "emails";

/// The largest page of the forms and emails listings.
const MAX_LISTING_LIMIT: u64 = 100;
/// The largest page of form submissions (a larger `limit` is answered 400).
const MAX_SUBMISSIONS_LIMIT: u64 = 50;

/// The `results` of a listing page and its `paging.next.after`.
fn listing_page(response: &kpipe_http::ApiResponse) -> Result<(Vec<Value>, Option<String>), HttpError> {
    let body: Value = response.json()?;
    let results =
        body.get("results").and_then(Value::as_array).cloned().ok_or_else(|| HttpError::Decode {
            url: response.url.clone(),
            reason: "the response has no `results` array".to_owned(),
        })?;
    let after = match body.pointer("/paging/next/after") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok((results, after))
}

/// Every page of a listing, `after` after `after`, requested for `stream`.
async fn listing(
    cx: &Context<'_>,
    path: &str,
    limit: u64,
    stream: &str,
) -> Result<Vec<(String, Vec<Value>)>, HttpError> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = ApiRequest::get(path).query("limit", limit.to_string()).stream(stream);
        if let Some(token) = &after {
            request = request.query("after", token.clone());
        }
        let response = cx.hub.send(&request).await?;
        let (results, next) = listing_page(&response)?;
        let empty = results.is_empty();
        pages.push((response.url, results));
        match next {
            // An empty page with a cursor would page forever.
            Some(token) if !empty && Some(&token) != after.as_ref() => after = Some(token),
            _ => return Ok(pages),
        }
    }
}

/// One form and where its submissions listing stands.
#[derive(Debug)]
struct FormCursor {
    info: FormInfo,
    after: Option<String>,
    exhausted: bool,
    /// Fetched submissions not yet counted: their portal days, newest first.
    pending: VecDeque<NaiveDate>,
    /// The oldest `submittedAt` fetched, to catch a listing that is not newest first.
    oldest: Option<i64>,
}

/// The forms of the portal and their listings' positions.
#[derive(Debug)]
pub struct FormStream {
    forms: Vec<FormCursor>,
}

impl FormStream {
    /// Lists the forms (`GET /marketing/v3/forms`).
    pub async fn list(
        cx: &Context<'_>,
        window: DateWindow,
        out: &mut Emitter,
    ) -> Result<FormStream, SourceError> {
        let pages = match listing(cx, "marketing/v3/forms", cx.limit(MAX_LISTING_LIMIT), FORMS).await {
            Ok(pages) => pages,
            Err(e) => return Err(stop(e, FORMS, window, out).await),
        };
        let mut forms = Vec::new();
        for (url, results) in pages {
            for form in results {
                match normalize::form(&form, cx.portal) {
                    Ok(info) => forms.push(FormCursor {
                        info,
                        after: None,
                        exhausted: false,
                        pending: VecDeque::new(),
                        oldest: None,
                    }),
                    Err(reason) => refuse(out, FORMS, url.clone(), reason, &form).await?,
                }
            }
        }
        Ok(FormStream { forms })
    }

    /// Counts each form's submissions on the slice's days. Slices must come newest first.
    pub async fn pull(
        &mut self,
        cx: &Context<'_>,
        slice: DateWindow,
        tally: &mut Tally,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        for form in &mut self.forms {
            // A form has no submissions from before it existed.
            if form.info.created > slice.end() {
                continue;
            }
            let mut counts: BTreeMap<NaiveDate, i64> = BTreeMap::new();
            loop {
                while let Some(day) = form.pending.front().copied() {
                    if day < slice.start() {
                        break;
                    }
                    form.pending.pop_front();
                    // Newer than the window: not asked for.
                    if day <= slice.end() {
                        *counts.entry(day).or_default() += 1;
                    }
                }
                if !form.pending.is_empty() || form.exhausted {
                    break;
                }
                if let Err(e) = fetch_submissions(cx, form, out).await {
                    return Err(match e {
                        Fetch::Http(e) => stop(e, FORMS, slice, out).await,
                        Fetch::Source(e) => e,
                    });
                }
            }
            let guid = form.info.guid.as_str();
            // Every day from the form's creation on, zeros included; and any day with
            // submissions, should HubSpot date one before the form.
            for day in slice.days().filter(|d| *d >= form.info.created || counts.contains_key(d)) {
                let n = counts.get(&day).copied().unwrap_or(0);
                tally
                    .add(Cell::new(Measure::FormSubmissions, guid, day), Decimal::from_i64(n))
                    .map_err(SourceError::data)?;
            }
            tally.name("form", guid, form.info.name.as_deref());
        }
        Ok(())
    }
}

enum Fetch {
    Http(HttpError),
    Source(SourceError),
}

/// The next page of a form's submissions (`GET /form-integrations/v1/submissions/forms/{guid}`).
async fn fetch_submissions(cx: &Context<'_>, form: &mut FormCursor, out: &mut Emitter) -> Result<(), Fetch> {
    let path = format!("form-integrations/v1/submissions/forms/{}", form.info.guid);
    let mut request =
        ApiRequest::get(&path).query("limit", cx.limit(MAX_SUBMISSIONS_LIMIT).to_string()).stream(FORMS);
    if let Some(after) = &form.after {
        request = request.query("after", after.clone());
    }
    let response = cx.hub.send(&request).await.map_err(Fetch::Http)?;
    let (results, next) = listing_page(&response).map_err(Fetch::Http)?;
    for submission in &results {
        let refused = match normalize::submission_time(submission) {
            Ok(ms) if form.oldest.is_some_and(|oldest| ms > oldest) => {
                Some("listed after an older submission: the listing is not newest first".to_owned())
            }
            Ok(ms) => match cx.portal.day_of(ms) {
                Some(day) => {
                    form.oldest = Some(ms);
                    form.pending.push_back(day);
                    None
                }
                None => Some(format!("`submittedAt` {ms} is out of range")),
            },
            Err(reason) => Some(reason),
        };
        if let Some(reason) = refused {
            refuse(out, FORMS, response.url.clone(), reason, submission).await.map_err(Fetch::Source)?;
        }
    }
    match next {
        Some(after) if !results.is_empty() && form.after.as_ref() != Some(&after) => form.after = Some(after),
        _ => form.exhausted = true,
    }
    Ok(())
}

/// Marketing email names, read once per pull when an email has statistics.
#[derive(Debug, Default)]
pub struct EmailStream {
    names: Option<HashMap<String, String>>,
}

fn email_ids(body: &Value) -> Option<Vec<String>> {
    body.get("emails")?
        .as_array()?
        .iter()
        .map(|id| match id {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .collect()
}

impl EmailStream {
    /// Each email's daily statistics on the slice's days.
    pub async fn pull(
        &mut self,
        cx: &Context<'_>,
        slice: DateWindow,
        tally: &mut Tally,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        match self.pull_slice(cx, slice, tally, out).await {
            Ok(()) => Ok(()),
            Err(Fetch::Http(e)) => Err(stop(e, EMAILS, slice, out).await),
            Err(Fetch::Source(e)) => Err(e),
        }
    }

    async fn pull_slice(
        &mut self,
        cx: &Context<'_>,
        slice: DateWindow,
        tally: &mut Tally,
        out: &mut Emitter,
    ) -> Result<(), Fetch> {
        let (start, end) = cx.portal.window_ms(slice);
        let (start, end) = (iso(start), iso(end));
        let request = ApiRequest::get("marketing/v3/emails/statistics/list")
            .query("startTimestamp", start.clone())
            .query("endTimestamp", end.clone())
            .stream(EMAILS);
        let response = cx.hub.send(&request).await.map_err(Fetch::Http)?;
        let body: Value = response.json().map_err(Fetch::Http)?;
        let ids = email_ids(&body).ok_or_else(|| {
            Fetch::Http(HttpError::Decode {
                url: response.url.clone(),
                reason: "`emails` is not a list of ids".into(),
            })
        })?;
        if ids.is_empty() {
            return Ok(());
        }
        if self.names.is_none() {
            self.names = Some(self.read_names(cx).await.map_err(Fetch::Http)?);
        }
        for id in ids {
            let request = ApiRequest::get("marketing/v3/emails/statistics/histogram")
                .query("interval", "DAY")
                .query("startTimestamp", start.clone())
                .query("endTimestamp", end.clone())
                .query("emailIds", id.clone())
                .stream(EMAILS);
            let response = cx.hub.send(&request).await.map_err(Fetch::Http)?;
            let (intervals, _) = listing_page(&response).map_err(Fetch::Http)?;
            for interval in &intervals {
                let counted = normalize::email_interval(interval, cx.portal).and_then(|facts| {
                    if !slice.contains(facts.day) {
                        return Err(format!(
                            "an interval of {}, outside the days asked for ({slice})",
                            facts.day
                        ));
                    }
                    for (measure, value) in facts.values {
                        tally.add(Cell::new(measure, &id, facts.day), value)?;
                    }
                    Ok(())
                });
                if let Err(reason) = counted {
                    let location = format!("{} email {id}", response.url);
                    refuse(out, EMAILS, location, reason, interval).await.map_err(Fetch::Source)?;
                }
            }
            let name = self.names.as_ref().and_then(|n| n.get(&id)).map(String::as_str);
            tally.name("email", &id, name);
        }
        Ok(())
    }

    /// Email names from `GET /marketing/v3/emails`; an email without a readable id or name is
    /// just left unnamed.
    async fn read_names(&self, cx: &Context<'_>) -> Result<HashMap<String, String>, HttpError> {
        let mut names = HashMap::new();
        for (_, results) in listing(cx, "marketing/v3/emails", cx.limit(MAX_LISTING_LIMIT), EMAILS).await? {
            for email in results {
                let id = match email.get("id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => continue,
                };
                if let Some(name) = email.get("name").and_then(Value::as_str) {
                    names.insert(id, name.to_owned());
                }
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statistics_lists_name_emails_by_number_or_string() {
        // §4: `emails` holds int64 ids.
        assert_eq!(
            email_ids(&json!({"emails": [187000000000_u64, "42"]})),
            Some(vec!["187000000000".into(), "42".into()])
        );
        assert_eq!(email_ids(&json!({"emails": []})), Some(vec![]));
        assert_eq!(email_ids(&json!({"emails": [null]})), None);
        assert_eq!(email_ids(&json!({})), None);
    }
}
