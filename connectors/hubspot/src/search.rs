//! CRM search through the 10,000-result ceiling (§3 of the wire notes).
//!
//! One query pages through at most 10,000 results; asking for a page past them is answered
//! HTTP 400. So results are sorted by the last-modified property, ascending, and before the next
//! page would cross the ceiling the query starts again with `<modified> GTE <last seen>`. The
//! records of that last instant come back and are skipped by id. Should one instant hold more
//! than a whole query's worth of records (a bulk import), its records are paged by id
//! (`hs_object_id GT <last id>`) and the main query resumes after that instant (`GT`).

use std::collections::HashSet;

use kpipe_http::HttpError;
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::portal::parse_instant;

/// Results one query can page through.
pub const RESULT_CEILING: u64 = 10_000;

/// The largest search page.
pub const MAX_SEARCH_LIMIT: u64 = 200;

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// The object type (`contacts`, `deals`, `feedback_submissions`).
    pub object: &'static str,
    /// Its last-modified property, the sort and restart key.
    pub modified_property: &'static str,
    /// Filter groups (OR'ed), each a list of filters (AND'ed).
    pub groups: Vec<Vec<Value>>,
    /// Properties to return.
    pub properties: Vec<String>,
    /// The stream the search is for, as the run summary counts its requests.
    pub stream: &'static str,
}

impl SearchQuery {
    fn body(&self, extra: &[Value], sort: &str, limit: u64, after: Option<&str>) -> Value {
        let groups: Vec<Value> = if self.groups.is_empty() {
            if extra.is_empty() { Vec::new() } else { vec![json!({ "filters": extra })] }
        } else {
            self.groups
                .iter()
                .map(|group| {
                    let filters: Vec<&Value> = group.iter().chain(extra).collect();
                    json!({ "filters": filters })
                })
                .collect()
        };
        json!({
            "filterGroups": groups,
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": limit,
            "after": after.unwrap_or("0"),
        })
    }
}

/// `{"propertyName": .., "operator": .., "value": ..}`.
pub fn filter(property: &str, operator: &str, value: impl Into<String>) -> Value {
    json!({"propertyName": property, "operator": operator, "value": value.into()})
}

/// `{"propertyName": .., "operator": "IN", "values": [..]}`.
pub fn filter_in(property: &str, values: &[String]) -> Value {
    json!({"propertyName": property, "operator": "IN", "values": values})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Sorted by last-modified time, from `lower` on.
    Main,
    /// The records of one instant, by id.
    Ties { at: i64, after_id: Option<u64> },
}

/// One page of new records.
#[derive(Debug)]
pub struct SearchPage {
    /// The records not seen before, in API order.
    pub records: Vec<Value>,
    /// Where they came from, for quarantine locations.
    pub location: String,
}

/// Pages through every record a query matches, each once.
#[derive(Debug)]
pub struct SearchCursor<'a> {
    hub: &'a Hub,
    query: SearchQuery,
    limit: u64,
    ceiling: u64,
    /// The main query's lower bound: `GTE`/`GT` a last-modified instant.
    lower: Option<(&'static str, i64)>,
    after: Option<String>,
    fetched: u64,
    boundary: Option<i64>,
    at_boundary: HashSet<String>,
    /// The first last-modified instant the current query returned.
    query_first: Option<i64>,
    mode: Mode,
    done: bool,
    pages: usize,
}

impl<'a> SearchCursor<'a> {
    /// A cursor over `query`, `limit` results per page (at most 200).
    pub fn new(hub: &'a Hub, query: SearchQuery, limit: u64) -> SearchCursor<'a> {
        SearchCursor::with_ceiling(hub, query, limit, RESULT_CEILING)
    }

    /// The same with another result ceiling (tests).
    pub fn with_ceiling(hub: &'a Hub, query: SearchQuery, limit: u64, ceiling: u64) -> SearchCursor<'a> {
        let limit = limit.clamp(1, MAX_SEARCH_LIMIT.min(ceiling.max(1)));
        SearchCursor {
            hub,
            query,
            limit,
            ceiling,
            lower: None,
            after: None,
            fetched: 0,
            boundary: None,
            at_boundary: HashSet::new(),
            query_first: None,
            mode: Mode::Main,
            done: false,
            pages: 0,
        }
    }

    fn request_body(&self) -> Value {
        let modified = self.query.modified_property;
        match self.mode {
            Mode::Main => {
                let extra: Vec<Value> =
                    self.lower.iter().map(|(op, ms)| filter(modified, op, ms.to_string())).collect();
                self.query.body(&extra, modified, self.limit, self.after.as_deref())
            }
            Mode::Ties { at, after_id } => {
                let mut extra = vec![filter(modified, "EQ", at.to_string())];
                if let Some(id) = after_id {
                    extra.push(filter("hs_object_id", "GT", id.to_string()));
                }
                self.query.body(&extra, "hs_object_id", self.limit, self.after.as_deref())
            }
        }
    }

    /// The next page of records not seen before; `None` when every match has been read.
    pub async fn next_page(&mut self) -> Result<Option<SearchPage>, HttpError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let response =
                self.hub.search_for(self.query.stream, self.query.object, self.request_body()).await?;
            let location = format!("{} (search page {})", response.url, self.pages);
            self.pages += 1;
            let body: Value = response.json()?;
            let decode = |reason: String| HttpError::Decode { url: response.url.clone(), reason };
            let results = body
                .get("results")
                .and_then(Value::as_array)
                .ok_or_else(|| decode("the search response has no `results` array".to_owned()))?;
            let next_after = match body.pointer("/paging/next/after") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => return Err(decode(format!("`paging.next.after` {other} is not a token"))),
            };
            // An empty page ends the listing, whatever cursor comes with it.
            let next_after = next_after.filter(|_| !results.is_empty());
            self.fetched += results.len() as u64;
            let mut records = Vec::with_capacity(results.len());
            let mut max_id = None;
            for record in results {
                let id = record.get("id").and_then(Value::as_str).map(str::to_owned);
                let modified = record
                    .pointer(&format!("/properties/{}", self.query.modified_property))
                    .and_then(Value::as_str)
                    .and_then(parse_instant);
                if let Mode::Ties { .. } = self.mode {
                    let numeric = id.as_deref().and_then(|i| i.parse::<u64>().ok()).ok_or_else(|| {
                        decode(format!("record id {id:?} is not a number; records cannot be paged by id"))
                    })?;
                    max_id = max_id.max(Some(numeric));
                }
                if self.query_first.is_none() {
                    self.query_first = modified;
                }
                if let (Some(id), Some(ts)) = (id, modified) {
                    match self.boundary {
                        Some(b) if ts == b && self.at_boundary.contains(&id) => continue,
                        Some(b) if ts < b => {}
                        Some(b) if ts == b => {
                            self.at_boundary.insert(id);
                        }
                        _ => {
                            self.boundary = Some(ts);
                            self.at_boundary.clear();
                            self.at_boundary.insert(id);
                        }
                    }
                }
                records.push(record.clone());
            }
            self.advance(next_after, max_id, &response.url)?;
            if !records.is_empty() || self.done {
                return Ok(Some(SearchPage { records, location }));
            }
        }
    }

    /// Moves to the next page, or restarts the query below the ceiling.
    fn advance(
        &mut self,
        next_after: Option<String>,
        max_id: Option<u64>,
        url: &str,
    ) -> Result<(), HttpError> {
        let within_ceiling = self.fetched + self.limit <= self.ceiling;
        match (next_after, self.mode) {
            (Some(after), _) if within_ceiling => {
                self.after = Some(after);
                return Ok(());
            }
            (None, Mode::Main) => {
                self.done = true;
                return Ok(());
            }
            (None, Mode::Ties { at, .. }) => {
                // Every record of that instant is read; the main query goes on after it.
                self.mode = Mode::Main;
                self.lower = Some(("GT", at));
            }
            (Some(_), Mode::Main) => {
                match (self.boundary, self.query_first) {
                    (Some(b), Some(first)) if b > first => self.lower = Some(("GTE", b)),
                    // The whole query's worth of results shares one instant: starting again
                    // from it would return the same page.
                    (Some(b), Some(_)) => {
                        tracing::info!(
                            object = self.query.object,
                            at = b,
                            "a whole query's worth of records shares one last-modified instant; \
                             reading them by id"
                        );
                        self.mode = Mode::Ties { at: b, after_id: None };
                    }
                    _ => {
                        return Err(HttpError::Decode {
                            url: url.to_owned(),
                            reason: format!(
                                "{} results carry no readable `{}`: the search cannot go past {} results",
                                self.fetched, self.query.modified_property, self.ceiling
                            ),
                        });
                    }
                }
            }
            (Some(_), Mode::Ties { at, after_id }) => {
                let next =
                    max_id.filter(|m| after_id.is_none_or(|a| *m > a)).ok_or_else(|| HttpError::Decode {
                        url: url.to_owned(),
                        reason: "paging by id made no progress: the search returned no higher id".to_owned(),
                    })?;
                self.mode = Mode::Ties { at, after_id: Some(next) };
            }
        }
        tracing::debug!(
            object = self.query.object,
            fetched = self.fetched,
            "search restarted below the result ceiling"
        );
        self.after = None;
        self.fetched = 0;
        self.query_first = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_search_request_shape() {
        // §3: filterGroups of filters, one sort object, properties, limit, after as a string.
        let query = SearchQuery {
            object: "deals",
            modified_property: "hs_lastmodifieddate",
            groups: vec![vec![filter("createdate", "GTE", "1")], vec![filter("closedate", "GTE", "1")]],
            properties: vec!["amount".into()],
            stream: "deals",
        };
        let body = query.body(&[filter("hs_lastmodifieddate", "GTE", "5")], "hs_lastmodifieddate", 200, None);
        assert_eq!(body["filterGroups"].as_array().unwrap().len(), 2);
        assert_eq!(body["filterGroups"][1]["filters"][1]["operator"], "GTE");
        assert_eq!(
            body["sorts"][0],
            json!({"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"})
        );
        assert_eq!(body["after"], "0");
        assert_eq!(body["limit"], 200);
        let open = SearchQuery { groups: Vec::new(), ..query };
        assert_eq!(open.body(&[], "x", 1, Some("7"))["filterGroups"], json!([]));
        assert_eq!(open.body(&[], "x", 1, Some("7"))["after"], "7");
    }
}
