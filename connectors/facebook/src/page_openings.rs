//! A Page's followers at the start of each week and month a pull touches: the `page_follows`
//! snapshot of the day before the period, written as the period's opening value (a period row
//! of `followers`, docs/schema.md). Follower growth over a period divides by it; a window that
//! starts with the period (or inside it) has not pulled that day.

use std::collections::BTreeMap;

use kpipe_core::{DateWindow, Emitter, Metric, MetricName, MetricRow, PeriodRequest, PeriodRow, SourceError};

use crate::client::GraphObject;
use crate::listing::quarantine_or_fail;
use crate::normalize::{PageContext, page_rows};
use crate::page_insights::{MAX_DAYS_PER_REQUEST, PAGE_STREAM, PageRun, page_data, quarantine_element};
use crate::source::FacebookSource;

/// The days before the window whose snapshot opens a period the window touches, as one range:
/// from the day before the earliest period to the day before the window.
pub(crate) fn opening_days(window: DateWindow) -> Option<DateWindow> {
    let first = PeriodRequest::for_window(window).iter().map(|r| r.period.start).min()?;
    DateWindow::new(first.pred_opt()?, window.start().pred_opt()?).ok()
}

impl FacebookSource {
    /// The configured Page metric that is the follower count (`page_follows`), unless the API
    /// refused it in this pull.
    pub(crate) fn page_followers_metric(&self, run: Option<&PageRun>) -> Option<String> {
        let followers = MetricName::from(Metric::Followers);
        let metrics = &self.settings.page_metrics;
        metrics
            .names()
            .find(|m| metrics.metric(m) == Some(&followers) && !run.is_some_and(|r| r.is_rejected(m)))
            .map(str::to_owned)
    }

    /// Writes the Page's followers on the day before each period `window` touches that starts
    /// before the window, as that period's opening value: one request per 90 days of such days.
    /// `Ok(false)` when a response was quarantined.
    pub(crate) async fn page_follower_openings(
        &self,
        page: &GraphObject,
        window: DateWindow,
        run: &mut PageRun,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let (Some(metric), Some(days)) = (self.page_followers_metric(Some(run)), opening_days(window)) else {
            return Ok(true);
        };
        let (name, token) = self.page_identity(page, run).await?;
        let mut snapshots: BTreeMap<kpipe_core::NaiveDate, MetricRow> = BTreeMap::new();
        let mut whole = true;
        for range in days.slices(MAX_DAYS_PER_REQUEST) {
            let metrics = [metric.clone()];
            let (location, body) = match self.page_request(page, range, &metrics, "day", &token).await {
                Ok(answer) => answer,
                Err(e) => {
                    quarantine_or_fail(e, PAGE_STREAM, out).await?;
                    whole = false;
                    continue;
                }
            };
            let cx = PageContext {
                page_id: &page.id,
                page_name: name.as_deref(),
                window: range,
                metrics: &self.settings.page_metrics,
            };
            let Some(elements) = page_data(&body, &location, out).await? else {
                whole = false;
                continue;
            };
            for (index, element) in elements.iter().enumerate() {
                match page_rows(element, &cx) {
                    Ok(rows) => snapshots.extend(rows.into_iter().map(|r| (r.date, r))),
                    Err(reason) => {
                        quarantine_element(&location, index, reason, element, out).await?;
                        whole = false;
                    }
                }
            }
        }
        for request in PeriodRequest::for_window(window) {
            let Some(day_before) = request.period.start.pred_opt() else { continue };
            if let Some(row) = snapshots.get(&day_before) {
                out.emit_period(PeriodRow::new(request, row.clone())).await?;
            }
        }
        Ok(whole)
    }
}
