//! Page insights (`shared/apis/facebook.md` §4): the Page's own token from
//! `GET /{page_id}?fields=name,access_token` (a system-user token may not read Page insights
//! itself), then `GET /{page_id}/insights?metric=...&period=day&since=&until=` in ranges of at
//! most 90 days. Meta refuses a whole request for one retired or invalid metric with
//! `(#100) The value must be a valid insights metric`, without naming it: the metric is found by
//! splitting the request, dropped, and reported (a warning and a quarantined record), and every
//! other metric is still pulled.

use std::collections::{BTreeMap, BTreeSet};

use kpipe_core::{
    DateWindow, Emitter, Metric, MetricName, PeriodRequest, PeriodRow, Quarantined, Secret, SourceError,
};
use kpipe_http::ApiRequest;
use serde_json::Value;

use crate::client::{CallError, ErrorClass, GraphError, GraphObject, data_of, scrub};
use crate::listing::quarantine_or_fail;
use crate::normalize::{PageContext, page_rows, page_week_values};
use crate::periods::whole_weeks;
use crate::source::FacebookSource;

/// The stream of Page insights rows.
pub const PAGE_STREAM: &str = "page_insights";

/// The longest `since`..`until` span Page insights accept.
pub(crate) const MAX_DAYS_PER_REQUEST: u64 = 90;

/// What one pull learns about Pages: their names and tokens, and the metrics the API refused.
#[derive(Debug, Default)]
pub(crate) struct PageRun {
    pages: BTreeMap<String, (Option<String>, Secret)>,
    rejected: BTreeSet<String>,
}

/// The metrics of `group` whose name `message` shows as a whole word.
fn named_in<'a>(message: &str, group: &'a [String]) -> Vec<&'a String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    group
        .iter()
        .filter(|m| {
            message.match_indices(m.as_str()).any(|(at, _)| {
                let before = message[..at].chars().next_back();
                let after = message[at + m.len()..].chars().next();
                !before.is_some_and(word) && !after.is_some_and(word)
            })
        })
        .collect()
}

impl PageRun {
    /// Whether the API refused `metric` in this pull.
    pub(crate) fn is_rejected(&self, metric: &str) -> bool {
        self.rejected.contains(metric)
    }
}

impl FacebookSource {
    /// The Page's name and the token to read its insights with.
    pub(crate) async fn page_identity(
        &self,
        page: &GraphObject,
        run: &mut PageRun,
    ) -> Result<(Option<String>, Secret), SourceError> {
        if let Some(known) = run.pages.get(&page.id) {
            return Ok(known.clone());
        }
        let request = ApiRequest::get(&format!("{}/{}", self.settings.api_version, page.id))
            .query("fields", "name,access_token")
            .stream(PAGE_STREAM);
        let response = page.call(&self.book, self.max_wait, request, &self.token).await?;
        let body: Value = response.json().map_err(|e| SourceError::data(scrub(&e.to_string())))?;
        let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
        let token = match body.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(t) => Secret::new(t),
            None => {
                // The configured token is already a Page token (or Meta gave none): use it.
                tracing::debug!(page = %page.id, "no Page token in the answer; using the configured token");
                self.token.clone()
            }
        };
        run.pages.insert(page.id.clone(), (name.clone(), token.clone()));
        Ok((name, token))
    }

    /// Every configured metric of `page` for `slice`. `Ok(false)` when a response could not be
    /// read and was quarantined.
    pub(crate) async fn page_insights(
        &self,
        page: &GraphObject,
        slice: DateWindow,
        run: &mut PageRun,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let (name, token) = self.page_identity(page, run).await?;
        let mut whole = true;
        for range in slice.slices(MAX_DAYS_PER_REQUEST) {
            let metrics: Vec<String> = self
                .settings
                .page_metrics
                .names()
                .filter(|m| !run.rejected.contains(*m))
                .map(str::to_owned)
                .collect();
            if metrics.is_empty() {
                return Err(self.every_metric_refused(page));
            }
            let cx = PageContext {
                page_id: &page.id,
                page_name: name.as_deref(),
                window: range,
                metrics: &self.settings.page_metrics,
            };
            let mut groups = vec![metrics];
            while let Some(group) = groups.pop() {
                match self.page_request(page, range, &group, "day", &token).await {
                    Ok((location, body)) => whole &= emit_page(&body, &location, &cx, out).await?,
                    Err(e) if e.class() == Some(ErrorClass::InvalidParameter) => {
                        let graph = e.graph.clone();
                        let named = graph.as_ref().map(|g| named_in(&g.message, &group)).unwrap_or_default();
                        if group.len() == 1 || named.len() == 1 {
                            let metric = if group.len() == 1 { group[0].clone() } else { named[0].clone() };
                            self.reject_metric(page, &metric, graph.as_ref(), run, out).await?;
                            let rest: Vec<String> = group.into_iter().filter(|m| *m != metric).collect();
                            if !rest.is_empty() {
                                groups.push(rest);
                            }
                        } else {
                            // Meta does not say which metric it refuses: ask for each half.
                            let mut first = group;
                            let second = first.split_off(first.len() / 2);
                            groups.push(second);
                            groups.push(first);
                        }
                    }
                    Err(e) => {
                        quarantine_or_fail(e, PAGE_STREAM, out).await?;
                        whole = false;
                    }
                }
            }
            if self.settings.page_metrics.names().all(|m| run.rejected.contains(m)) {
                return Err(self.every_metric_refused(page));
            }
        }
        Ok(whole)
    }

    /// The error of a Page whose every configured metric the API refused: then the request
    /// itself is wrong, or the configuration lists only retired metrics.
    fn every_metric_refused(&self, page: &GraphObject) -> SourceError {
        let all: Vec<&str> = self.settings.page_metrics.names().collect();
        SourceError::config(format!(
            "page {}: the API refuses every configured Page metric ({}); fix `page_metrics`",
            page.id,
            all.join(", ")
        ))
    }

    /// The configured Page metric that is Page reach (`page_total_media_view_unique`, or the
    /// retired `page_impressions_unique`), unless the API refused it in this pull.
    pub(crate) fn page_reach_metric(&self, run: Option<&PageRun>) -> Option<String> {
        let reach = MetricName::from(Metric::Reach);
        let metrics = &self.settings.page_metrics;
        metrics
            .names()
            .find(|m| metrics.metric(m) == Some(&reach) && !run.is_some_and(|r| r.rejected.contains(*m)))
            .map(str::to_owned)
    }

    /// The Page's reach over each ISO week of `window` that has ended, as period rows, when a
    /// Page reach metric is configured. Meta's `period=week` value is a rolling week: the one
    /// whose `end_time` closes a Sunday covers Monday to Sunday (Pacific days, as the Page's day
    /// rows), so one request per 90 days from the first such Sunday to the last gives every
    /// whole week; a week still running has no such value and calendar months none at all
    /// (`days_28` is a rolling 28 days). `Ok(false)` when a response was quarantined.
    pub(crate) async fn page_week_reach(
        &self,
        page: &GraphObject,
        window: DateWindow,
        run: &mut PageRun,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let weeks = whole_weeks(window);
        let (Some(first), Some(last)) = (weeks.first(), weeks.last()) else { return Ok(true) };
        let Some(metric) = self.page_reach_metric(Some(run)) else { return Ok(true) };
        let Ok(sundays) = DateWindow::new(first.through, last.through) else { return Ok(true) };
        let (name, token) = self.page_identity(page, run).await?;
        let mut whole = true;
        for range in sundays.slices(MAX_DAYS_PER_REQUEST) {
            let metrics = [metric.clone()];
            match self.page_request(page, range, &metrics, "week", &token).await {
                Ok((location, body)) => {
                    let cx = PageContext {
                        page_id: &page.id,
                        page_name: name.as_deref(),
                        window: range,
                        metrics: &self.settings.page_metrics,
                    };
                    whole &= emit_page_weeks(&body, &location, &cx, &weeks, out).await?;
                }
                Err(e) if e.class() == Some(ErrorClass::InvalidParameter) => {
                    let said = e.graph.as_ref().map_or_else(|| "(#100)".to_owned(), GraphError::summary);
                    tracing::warn!(page = %page.id, metric, error = %said,
                        "the API refuses the weekly value of this Page metric; no weekly Page reach is written");
                    out.quarantine(Quarantined {
                        stream: PAGE_STREAM.into(),
                        location: format!("page {} metric {metric} period week", page.id),
                        reason: format!(
                            "the API refuses `{metric}` with period=week {said}: the Page's weekly reach was \
                             not written; its daily values were pulled"
                        ),
                        raw: scrub(&serde_json::json!({"metric": metric, "period": "week"}).to_string()),
                    })
                    .await?;
                    return Ok(false);
                }
                Err(e) => {
                    quarantine_or_fail(e, PAGE_STREAM, out).await?;
                    whole = false;
                }
            }
        }
        Ok(whole)
    }

    /// One Page insights request over `period` values; the redacted URL and the body.
    pub(crate) async fn page_request(
        &self,
        page: &GraphObject,
        range: DateWindow,
        metrics: &[String],
        period: &str,
        token: &Secret,
    ) -> Result<(String, Value), CallError> {
        // `until` is the first day left out: the API's first value is the `since` day's.
        let until = range.end().succ_opt().unwrap_or(range.end());
        let request = ApiRequest::get(&format!("{}/{}/insights", self.settings.api_version, page.id))
            .query("metric", metrics.join(","))
            .query("period", period)
            .query("since", range.start().to_string())
            .query("until", until.to_string())
            .stream(PAGE_STREAM);
        let response = page.call(&self.book, self.max_wait, request, token).await?;
        let body = response.json().map_err(|error| CallError { error, graph: None })?;
        Ok((response.url, body))
    }

    /// Drops `metric` for the rest of the pull and reports it once.
    async fn reject_metric(
        &self,
        page: &GraphObject,
        metric: &str,
        error: Option<&GraphError>,
        run: &mut PageRun,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        if !run.rejected.insert(metric.to_owned()) {
            return Ok(());
        }
        let said = error.map_or_else(|| "(#100)".to_owned(), GraphError::summary);
        tracing::warn!(page = %page.id, metric, error = %said,
            "the API refuses this Page metric (retired or invalid); it is dropped, the others are pulled");
        out.quarantine(Quarantined {
            stream: PAGE_STREAM.into(),
            location: format!("page {} metric {metric}", page.id),
            reason: format!(
                "the API refuses metric `{metric}` {said}: it was dropped from the requests of this run \
                 and the \
                 other metrics were pulled; remove or replace it in `page_metrics`"
            ),
            raw: scrub(
                &serde_json::json!({"metric": metric, "error": error.map(|e| serde_json::json!({
                    "message": e.message, "code": e.code, "error_subcode": e.error_subcode,
                }))})
                .to_string(),
            ),
        })
        .await
    }
}

/// The `data` elements of a Page insights response, or `None` after quarantining a response
/// without them.
pub(crate) async fn page_data<'a>(
    body: &'a Value,
    location: &str,
    out: &mut Emitter,
) -> Result<Option<&'a Vec<Value>>, SourceError> {
    let data = data_of(body);
    if data.is_none() {
        out.quarantine(Quarantined {
            stream: PAGE_STREAM.into(),
            location: location.to_owned(),
            reason: "the response has no `data` array".into(),
            raw: scrub(&body.to_string()),
        })
        .await?;
    }
    Ok(data)
}

/// Quarantines element `index` of the response read from `location`, with why.
pub(crate) async fn quarantine_element(
    location: &str,
    index: usize,
    reason: String,
    element: &Value,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    out.quarantine(Quarantined {
        stream: PAGE_STREAM.into(),
        location: format!("{location} element {index}"),
        reason,
        raw: scrub(&element.to_string()),
    })
    .await
}

/// Emits the rows of one Page insights response; `Ok(false)` when it had no `data`.
async fn emit_page(
    body: &Value,
    location: &str,
    cx: &PageContext<'_>,
    out: &mut Emitter,
) -> Result<bool, SourceError> {
    let Some(data) = page_data(body, location, out).await? else { return Ok(false) };
    for (index, element) in data.iter().enumerate() {
        match page_rows(element, cx) {
            Ok(rows) => out.emit_all(rows).await?,
            Err(reason) => quarantine_element(location, index, reason, element, out).await?,
        }
    }
    Ok(true)
}

/// Emits the weekly values of a `period=week` response that close the last day of one of
/// `weeks` as that week's period rows; `Ok(false)` when the response had no `data`.
async fn emit_page_weeks(
    body: &Value,
    location: &str,
    cx: &PageContext<'_>,
    weeks: &[PeriodRequest],
    out: &mut Emitter,
) -> Result<bool, SourceError> {
    let Some(data) = page_data(body, location, out).await? else { return Ok(false) };
    for (index, element) in data.iter().enumerate() {
        match page_week_values(element, cx) {
            Ok(values) => {
                for (closing, row) in values {
                    // Only the value closing a week's Sunday covers that week.
                    if let Some(week) = weeks.iter().find(|w| w.through == closing) {
                        out.emit_period(PeriodRow::new(*week, row)).await?;
                    }
                }
            }
            Err(reason) => quarantine_element(location, index, reason, element, out).await?,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_named_only_as_a_whole_word() {
        let group = vec!["page_follows".to_owned(), "page_follows_city".to_owned()];
        assert_eq!(named_in("(#100) Invalid metric: page_follows_city", &group), [&group[1]]);
        assert_eq!(named_in("(#100) page_follows is retired", &group), [&group[0]]);
        assert!(named_in("(#100) The value must be a valid insights metric", &group).is_empty());
    }
}
