//! The pull: every report of every property for every span of days, as a queue of requests of
//! which `concurrency` are in flight at once (each property's gate allows fewer). The first page
//! of a property's reports for a span comes from one `batchRunReports`; its `rowCount`s say how
//! many more pages there are, which are then fetched with `runReport` at their offsets. Rows are
//! written as pages arrive; a span of days is declared complete once every page of it, for every
//! property and report, has been written without loss.
//!
//! After the days come the periods: the weeks and months the window touches
//! ([`PeriodRequest::for_window`]), four to a report (GA4's most `dateRanges`, each named after
//! its period), each period report of each group of four in its own `RunReportRequest`, five of
//! those to a `batchRunReports`. Period rows are held until the end and sent for the periods
//! every report of which was read whole: a period's values are published as one file replacing
//! the previous one, which a period missing an entity's value would make lose that value.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::DateTime;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kpipe_core::{DateWindow, Emitter, Period, PeriodRequest, PeriodRow, Quarantined, SourceError};
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use super::{FetchError, GoogleAnalyticsSource, MAX_BATCH};
use crate::normalize::{RowContext, normalize_period_row, normalize_row, read_page, read_period_page};
use crate::reports::MAX_DATE_RANGES;

/// One period report over one group of periods: indexes into the pull's groups and the source's
/// period reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PeriodItem {
    group: usize,
    spec: usize,
}

/// One request of the pull.
#[derive(Debug, Clone)]
enum Job {
    /// The first page of up to five reports of a property, in one `batchRunReports`.
    First { slice: usize, property: usize, specs: Vec<usize> },
    /// A later page of one report.
    Page { slice: usize, property: usize, spec: usize, offset: u64 },
    /// The first page of up to five period reports of a property, in one `batchRunReports`.
    PeriodFirst { property: usize, items: Vec<PeriodItem> },
    /// A later page of one period report.
    PeriodPage { property: usize, item: PeriodItem, offset: u64 },
}

impl Job {
    /// The span of days of a day report's request; none for a period report's.
    fn slice(&self) -> Option<usize> {
        match self {
            Job::First { slice, .. } | Job::Page { slice, .. } => Some(*slice),
            Job::PeriodFirst { .. } | Job::PeriodPage { .. } => None,
        }
    }
}

/// The periods a pull asks for, four to a group (one report's `dateRanges`).
fn period_groups(window: DateWindow) -> Vec<Vec<PeriodRequest>> {
    PeriodRequest::for_window(window).chunks(MAX_DATE_RANGES).map(<[PeriodRequest]>::to_vec).collect()
}

/// The period reports of a pull, in the order they are batched: each group's reports together.
fn period_items(groups: usize, specs: usize) -> Vec<PeriodItem> {
    (0..groups).flat_map(|group| (0..specs).map(move |spec| PeriodItem { group, spec })).collect()
}

/// The `batchRunReports` of period reports one property takes for `window`.
pub(super) fn period_batches(window: DateWindow, specs: usize) -> usize {
    period_items(period_groups(window).len(), specs).len().div_ceil(MAX_BATCH)
}

/// How a group of periods is shown in logs and quarantine locations.
fn describe(group: &[PeriodRequest]) -> String {
    let shown: Vec<String> = group
        .iter()
        .map(|p| {
            if p.is_partial() { format!("{} through {}", p.period, p.through) } else { p.period.to_string() }
        })
        .collect();
    shown.join(", ")
}

/// A finished request.
struct Done {
    job: Job,
    location: String,
    result: Result<Value, FetchError>,
}

/// A report read over several pages: its size, and the rows already written (a report that
/// changes while it is paged shifts rows across page boundaries), by a 128-bit hash of their
/// dimension values so that a report of millions of rows stays small in memory.
struct Paging {
    row_count: u64,
    pages_left: usize,
    seen: HashSet<(u64, u64)>,
}

fn row_hash(dimensions: &Value) -> (u64, u64) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let text = dimensions.to_string();
    let mut a = DefaultHasher::new();
    text.hash(&mut a);
    let mut b = DefaultHasher::new();
    (0x9e37_79b9_u32, &text).hash(&mut b);
    (a.finish(), b.finish())
}

/// The bookkeeping of one pull.
struct PullState {
    slices: Vec<DateWindow>,
    /// Requests of each span not handled yet.
    outstanding: Vec<usize>,
    /// Spans that lost a page: never declared complete.
    lossy: Vec<bool>,
    paging: HashMap<(usize, usize, usize), Paging>,
    periods: PeriodState,
}

/// The bookkeeping of the period reports.
#[derive(Default)]
struct PeriodState {
    /// Rows read, with the period report each came from, sent at the end.
    rows: Vec<(usize, PeriodRow)>,
    /// Periods a report of which was not read whole: none of their rows is sent.
    lost: BTreeSet<Period>,
    /// Period reports read over several pages, by property.
    paging: HashMap<(usize, PeriodItem), Paging>,
}

impl PullState {
    fn lose(&mut self, slice: usize) {
        if let Some(l) = self.lossy.get_mut(slice) {
            *l = true;
        }
    }
}

impl PeriodState {
    fn lose(&mut self, group: &[PeriodRequest]) {
        self.lost.extend(group.iter().map(|p| p.period));
    }
}

pub(super) async fn run(
    source: &GoogleAnalyticsSource,
    window: DateWindow,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let started = source.now();
    let deadline = started.checked_add_signed(source.deadline).unwrap_or(DateTime::<chrono::Utc>::MAX_UTC);
    let spans = window.slices(u64::from(source.days_per_request));
    let spec_chunks: Vec<Vec<usize>> =
        (0..source.specs.len()).collect::<Vec<_>>().chunks(MAX_BATCH).map(<[usize]>::to_vec).collect();
    let mut queue: VecDeque<Job> = VecDeque::new();
    for slice in 0..spans.len() {
        for property in 0..source.properties.len() {
            for specs in &spec_chunks {
                queue.push_back(Job::First { slice, property, specs: specs.clone() });
            }
        }
    }
    let groups = period_groups(window);
    let items = period_items(groups.len(), source.period_specs.len());
    for property in 0..source.properties.len() {
        for chunk in items.chunks(MAX_BATCH) {
            queue.push_back(Job::PeriodFirst { property, items: chunk.to_vec() });
        }
    }
    let per_slice = source.properties.len() * spec_chunks.len();
    let mut state = PullState {
        outstanding: vec![per_slice; spans.len()],
        lossy: vec![false; spans.len()],
        slices: spans,
        paging: HashMap::new(),
        periods: PeriodState::default(),
    };
    tracing::debug!(
        requests = queue.len(),
        spans = state.slices.len(),
        periods = groups.iter().map(Vec::len).sum::<usize>(),
        "pull planned"
    );
    let stopping = AtomicBool::new(false);
    let mut running = FuturesUnordered::new();
    let mut stopped: Option<SourceError> = None;
    loop {
        while stopped.is_none() && running.len() < source.concurrency {
            let Some(job) = queue.pop_front() else { break };
            // A period report's request names its own days; the pull's window stands in.
            let days = job.slice().map_or(window, |slice| state.slices[slice]);
            running.push(request(source, days, &groups, job, deadline, &stopping));
        }
        let Some(done) = running.next().await else { break };
        let handled = match done.job.slice() {
            Some(slice) => handle(source, &mut state, slice, done, out).await,
            None => handle_periods(source, &mut state.periods, &groups, done, out).await,
        };
        match handled {
            Ok(follow_ups) => {
                for job in follow_ups.into_iter().rev() {
                    queue.push_front(job);
                }
            }
            Err((error, quota)) => {
                if !quota {
                    return Err(error);
                }
                // A quota stops new requests; those in flight finish, so that their rows and
                // the spans they complete are kept, and those still waiting are not sent.
                stopping.store(true, Ordering::Release);
                stopped.get_or_insert(error);
            }
        }
    }
    if let Some(error) = stopped {
        return Err(error);
    }
    send_periods(source, state.periods, out).await
}

/// Sends the rows of the periods every report of which was read whole.
async fn send_periods(
    source: &GoogleAnalyticsSource,
    periods: PeriodState,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    for period in &periods.lost {
        tracing::warn!(
            %period,
            "a report of this period could not be read whole: its values are not published this time and \
             the previous ones stay"
        );
    }
    for (spec, row) in periods.rows {
        if !periods.lost.contains(&row.request.period) {
            out.set_stream(source.period_specs[spec].stream());
            out.emit_period(row).await?;
        }
    }
    Ok(())
}

/// Sends one job's request: a day report's over `window`, a period report's over its group of
/// `groups`.
async fn request(
    source: &GoogleAnalyticsSource,
    window: DateWindow,
    groups: &[Vec<PeriodRequest>],
    job: Job,
    deadline: DateTime<chrono::Utc>,
    stopping: &AtomicBool,
) -> Done {
    let limit = u64::from(source.page_size);
    let currency = source.currency.map(|c| c.as_str().to_owned());
    let group = |item: &PeriodItem| groups.get(item.group).map(Vec::as_slice).unwrap_or_default();
    let (property, path, body) = match &job {
        Job::First { property, specs, .. } => {
            let requests: Vec<Value> =
                specs.iter().map(|s| source.specs[*s].body(window, 0, limit, currency.as_deref())).collect();
            let property = &source.properties[*property];
            (
                property,
                format!("v1beta/properties/{}:batchRunReports", property.id),
                json!({"requests": requests}),
            )
        }
        Job::Page { property, spec, offset, .. } => {
            let property = &source.properties[*property];
            let body = source.specs[*spec].body(window, *offset, limit, currency.as_deref());
            (property, format!("v1beta/properties/{}:runReport", property.id), body)
        }
        Job::PeriodFirst { property, items } => {
            let requests: Vec<Value> = items
                .iter()
                .map(|i| source.period_specs[i.spec].period_body(group(i), 0, limit, currency.as_deref()))
                .collect();
            let property = &source.properties[*property];
            (
                property,
                format!("v1beta/properties/{}:batchRunReports", property.id),
                json!({"requests": requests}),
            )
        }
        Job::PeriodPage { property, item, offset } => {
            let property = &source.properties[*property];
            let body =
                source.period_specs[item.spec].period_body(group(item), *offset, limit, currency.as_deref());
            (property, format!("v1beta/properties/{}:runReport", property.id), body)
        }
    };
    let (what, streams): (String, Vec<&str>) = match &job {
        Job::First { specs, .. } => {
            (format!(" {window}"), specs.iter().map(|s| source.specs[*s].stream()).collect())
        }
        Job::Page { spec, offset, .. } => {
            let spec = &source.specs[*spec];
            (format!(" {window} report `{}` offset {offset}", spec.name), vec![spec.stream()])
        }
        Job::PeriodFirst { items, .. } => {
            let mut shown: Vec<usize> = items.iter().map(|i| i.group).collect();
            shown.dedup();
            let shown: Vec<String> = shown
                .iter()
                .map(|g| describe(groups.get(*g).map(Vec::as_slice).unwrap_or_default()))
                .collect();
            (
                format!(" periods {}", shown.join("; ")),
                items.iter().map(|i| source.period_specs[i.spec].stream()).collect(),
            )
        }
        Job::PeriodPage { item, offset, .. } => {
            let spec = &source.period_specs[item.spec];
            (
                format!(" periods {} report `{}` offset {offset}", describe(group(item)), spec.name),
                vec![spec.stream()],
            )
        }
    };
    // Reports only read: sending one twice is harmless, so it may be retried like a GET.
    let mut api_request = ApiRequest::post_json(&path, body).idempotent(true);
    // A batch of reports of several streams serves them all, and is counted for none.
    if let Some((first, rest)) = streams.split_first()
        && rest.iter().all(|s| s == first)
    {
        api_request = api_request.stream(first);
    }
    let location = format!("{path}{what}");
    let result = source.fetch(property, &api_request, deadline, stopping).await;
    Done { job, location, result }
}

/// Writes what one request brought; returns the requests it calls for, or the error that stops
/// the pull (and whether it is a quota's).
async fn handle(
    source: &GoogleAnalyticsSource,
    state: &mut PullState,
    slice: usize,
    done: Done,
    out: &mut Emitter,
) -> Result<Vec<Job>, (SourceError, bool)> {
    // Quarantined records name the source's stream; their location names the report.
    let stream = |spec: usize| source.specs[spec].stream().to_owned();
    let mut follow_ups = Vec::new();
    match done.result {
        Err(error) => {
            let first_spec = match &done.job {
                Job::First { specs, .. } => specs.first().copied().unwrap_or(0),
                Job::Page { spec, .. } => *spec,
                Job::PeriodFirst { .. } | Job::PeriodPage { .. } => 0,
            };
            let quarantined = match &error {
                FetchError::Http(e) => e.to_quarantined(&stream(first_spec)),
                FetchError::Quota { .. } | FetchError::Stopped => None,
            };
            let Some(record) = quarantined else {
                let quota = error.is_quota();
                return Err((error.into_source_error(), quota));
            };
            tracing::warn!(
                location = %record.location, reason = %record.reason,
                "unreadable answer quarantined"
            );
            out.quarantine(record).await.map_err(|e| (e, false))?;
            state.lose(slice);
            if let Job::Page { property, spec, .. } = done.job {
                page_done(state, (slice, property, spec));
            }
        }
        Ok(body) => match done.job {
            Job::First { property, specs, .. } => {
                let reports =
                    body.get("reports").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                if reports.len() != specs.len() {
                    let record = Quarantined {
                        stream: stream(specs.first().copied().unwrap_or(0)),
                        location: done.location.clone(),
                        reason: format!(
                            "batchRunReports answered {} reports for {} requests",
                            reports.len(),
                            specs.len()
                        ),
                        raw: body.to_string(),
                    };
                    out.quarantine(record).await.map_err(|e| (e, false))?;
                    state.lose(slice);
                } else {
                    for (spec, report) in specs.iter().zip(reports) {
                        let location = format!("{} report `{}`", done.location, source.specs[*spec].name);
                        let page = Page { slice, property, spec: *spec, offset: 0, location: &location };
                        follow_ups.extend(
                            write_page(source, state, page, report, out).await.map_err(|e| (e, false))?,
                        );
                    }
                }
            }
            Job::Page { property, spec, offset, .. } => {
                let page = Page { slice, property, spec, offset, location: &done.location };
                follow_ups.extend(write_page(source, state, page, &body, out).await.map_err(|e| (e, false))?);
                page_done(state, (slice, property, spec));
            }
            Job::PeriodFirst { .. } | Job::PeriodPage { .. } => {}
        },
    }
    let outstanding = &mut state.outstanding[slice];
    *outstanding = outstanding.saturating_sub(1) + follow_ups.len();
    if *outstanding == 0 && !state.lossy[slice] {
        out.complete(state.slices[slice]).await.map_err(|e| (e, false))?;
        tracing::debug!(days = %state.slices[slice], "days complete");
    }
    Ok(follow_ups)
}

fn page_done(state: &mut PullState, key: (usize, usize, usize)) {
    pages_done(&mut state.paging, key);
}

/// For a report's first page (`offset` 0), the offsets of its other pages, recorded under `key`
/// to be counted down; and whether this page shows that the report changed while it was paged
/// (another row count than its first page's, or not the rows a page at this offset must hold).
fn plan_pages<K: std::hash::Hash + Eq + Copy>(
    paging: &mut HashMap<K, Paging>,
    key: K,
    offset: u64,
    row_count: u64,
    rows: usize,
    limit: u64,
) -> (Vec<u64>, bool) {
    let mut offsets = Vec::new();
    if offset == 0 {
        let mut next = limit;
        while next < row_count {
            offsets.push(next);
            next += limit;
        }
        if !offsets.is_empty() {
            paging.insert(key, Paging { row_count, pages_left: offsets.len(), seen: HashSet::new() });
        }
    }
    let expected = row_count.saturating_sub(offset).min(limit);
    let changed = match paging.get(&key) {
        Some(p) => p.row_count != row_count || rows as u64 != expected,
        None => rows as u64 != expected,
    };
    (offsets, changed)
}

fn pages_done<K: std::hash::Hash + Eq>(paging: &mut HashMap<K, Paging>, key: K) {
    if let Some(p) = paging.get_mut(&key) {
        p.pages_left = p.pages_left.saturating_sub(1);
        if p.pages_left == 0 {
            paging.remove(&key);
        }
    }
}

/// Keeps what one period request brought; returns the requests it calls for, or the error that
/// stops the pull (and whether it is a quota's). A period report that cannot be read whole loses
/// its periods (none of their rows is sent).
async fn handle_periods(
    source: &GoogleAnalyticsSource,
    state: &mut PeriodState,
    groups: &[Vec<PeriodRequest>],
    done: Done,
    out: &mut Emitter,
) -> Result<Vec<Job>, (SourceError, bool)> {
    let group = |item: &PeriodItem| groups.get(item.group).map(Vec::as_slice).unwrap_or_default();
    let stream = |item: &PeriodItem| source.period_specs[item.spec].stream().to_owned();
    let items: Vec<PeriodItem> = match &done.job {
        Job::PeriodFirst { items, .. } => items.clone(),
        Job::PeriodPage { item, .. } => vec![*item],
        Job::First { .. } | Job::Page { .. } => Vec::new(),
    };
    let Some(first) = items.first() else { return Ok(Vec::new()) };
    let mut follow_ups = Vec::new();
    match done.result {
        Err(error) => {
            let quarantined = match &error {
                FetchError::Http(e) => e.to_quarantined(&stream(first)),
                FetchError::Quota { .. } | FetchError::Stopped => None,
            };
            let Some(record) = quarantined else {
                let quota = error.is_quota();
                return Err((error.into_source_error(), quota));
            };
            tracing::warn!(
                location = %record.location, reason = %record.reason,
                "unreadable answer quarantined"
            );
            out.quarantine(record).await.map_err(|e| (e, false))?;
            for item in &items {
                state.lose(group(item));
            }
            if let Job::PeriodPage { property, item, .. } = done.job {
                pages_done(&mut state.paging, (property, item));
            }
        }
        Ok(body) => match done.job {
            Job::PeriodFirst { property, items } => {
                let reports =
                    body.get("reports").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                if reports.len() != items.len() {
                    let record = Quarantined {
                        stream: stream(first),
                        location: done.location.clone(),
                        reason: format!(
                            "batchRunReports answered {} reports for {} requests",
                            reports.len(),
                            items.len()
                        ),
                        raw: body.to_string(),
                    };
                    out.quarantine(record).await.map_err(|e| (e, false))?;
                    for item in &items {
                        state.lose(group(item));
                    }
                } else {
                    for (item, report) in items.iter().zip(reports) {
                        let location =
                            format!("{} report `{}`", done.location, source.period_specs[item.spec].name);
                        let at = PeriodPage { property, item: *item, offset: 0, location: &location };
                        let more = write_period_page(source, state, group(item), at, report, out)
                            .await
                            .map_err(|e| (e, false))?;
                        follow_ups.extend(more);
                    }
                }
            }
            Job::PeriodPage { property, item, offset } => {
                let at = PeriodPage { property, item, offset, location: &done.location };
                let more = write_period_page(source, state, group(&item), at, &body, out)
                    .await
                    .map_err(|e| (e, false))?;
                follow_ups.extend(more);
                pages_done(&mut state.paging, (property, item));
            }
            Job::First { .. } | Job::Page { .. } => {}
        },
    }
    Ok(follow_ups)
}

/// Where a period report's page belongs.
struct PeriodPage<'a> {
    property: usize,
    item: PeriodItem,
    offset: u64,
    location: &'a str,
}

/// Reads one period report page's rows into the state (or quarantines what cannot be read);
/// for a first page, returns the requests of the report's other pages.
async fn write_period_page(
    source: &GoogleAnalyticsSource,
    state: &mut PeriodState,
    periods: &[PeriodRequest],
    at: PeriodPage<'_>,
    report: &Value,
    out: &mut Emitter,
) -> Result<Vec<Job>, SourceError> {
    let spec = &source.period_specs[at.item.spec];
    let property = &source.properties[at.property].id;
    let page = match read_period_page(report, spec, periods, source.currency) {
        Ok(page) => page,
        Err(reason) => {
            tracing::warn!(location = at.location, %reason, "unreadable report page quarantined");
            out.quarantine(Quarantined {
                stream: spec.stream().to_owned(),
                location: at.location.to_owned(),
                reason,
                raw: report.to_string(),
            })
            .await?;
            state.lose(periods);
            return Ok(Vec::new());
        }
    };
    for caveat in &page.caveats {
        tracing::warn!(property = %property, report = %spec.name, periods = %describe(periods), "{caveat}");
    }
    let limit = u64::from(source.page_size);
    let key = (at.property, at.item);
    let (offsets, changed) =
        plan_pages(&mut state.paging, key, at.offset, page.row_count, page.rows.len(), limit);
    let follow_ups: Vec<Job> = offsets
        .into_iter()
        .map(|offset| Job::PeriodPage { property: at.property, item: at.item, offset })
        .collect();
    if changed {
        tracing::warn!(
            location = at.location,
            row_count = page.row_count,
            rows = page.rows.len(),
            "the period report changed while it was paged: its periods are not published this time"
        );
        state.lose(periods);
    }
    let cx = RowContext { property, spec };
    let mut repeated = 0u64;
    for (index, row) in page.rows.iter().enumerate() {
        if let Some(paging) = state.paging.get_mut(&key) {
            let dimensions = row.get("dimensionValues").map(row_hash).unwrap_or_default();
            if !paging.seen.insert(dimensions) {
                repeated += 1;
                continue;
            }
        }
        match normalize_period_row(row, &page, cx, periods) {
            Ok(rows) => state.rows.extend(rows.into_iter().map(|r| (at.item.spec, r))),
            Err(reason) => {
                out.quarantine(Quarantined {
                    stream: spec.stream().to_owned(),
                    location: format!("{} row {}", at.location, at.offset + index as u64),
                    reason,
                    raw: row.to_string(),
                })
                .await?;
            }
        }
    }
    if repeated > 0 {
        tracing::warn!(
            location = at.location,
            repeated,
            "rows already read from another page: the period report changed while it was paged; its \
             periods are not published this time"
        );
        state.lose(periods);
    }
    Ok(follow_ups)
}

/// Where a page belongs.
struct Page<'a> {
    slice: usize,
    property: usize,
    spec: usize,
    offset: u64,
    location: &'a str,
}

/// Writes one report page's rows (or quarantines what cannot be read); for a first page, returns
/// the requests of the report's other pages.
async fn write_page(
    source: &GoogleAnalyticsSource,
    state: &mut PullState,
    at: Page<'_>,
    report: &Value,
    out: &mut Emitter,
) -> Result<Vec<Job>, SourceError> {
    let spec = &source.specs[at.spec];
    let property = &source.properties[at.property].id;
    let page = match read_page(report, spec, source.currency) {
        Ok(page) => page,
        Err(reason) => {
            tracing::warn!(location = at.location, %reason, "unreadable report page quarantined");
            out.quarantine(Quarantined {
                stream: spec.stream().to_owned(),
                location: at.location.to_owned(),
                reason,
                raw: report.to_string(),
            })
            .await?;
            state.lose(at.slice);
            return Ok(Vec::new());
        }
    };
    for caveat in &page.caveats {
        tracing::warn!(property = %property, report = %spec.name, days = %state.slices[at.slice], "{caveat}");
    }
    let limit = u64::from(source.page_size);
    let key = (at.slice, at.property, at.spec);
    let (offsets, changed) =
        plan_pages(&mut state.paging, key, at.offset, page.row_count, page.rows.len(), limit);
    let follow_ups: Vec<Job> = offsets
        .into_iter()
        .map(|offset| Job::Page { slice: at.slice, property: at.property, spec: at.spec, offset })
        .collect();
    if changed {
        tracing::warn!(
            location = at.location,
            row_count = page.row_count,
            rows = page.rows.len(),
            "the report changed while it was paged (GA4 is still processing these days): rows may be \
             missing; these days are not declared complete"
        );
        state.lose(at.slice);
    }
    let cx = RowContext { property, spec };
    out.set_stream(spec.stream());
    let mut repeated = 0u64;
    for (index, row) in page.rows.iter().enumerate() {
        if let Some(paging) = state.paging.get_mut(&key) {
            let dimensions = row.get("dimensionValues").map(row_hash).unwrap_or_default();
            if !paging.seen.insert(dimensions) {
                repeated += 1;
                continue;
            }
        }
        match normalize_row(row, &page, cx) {
            Ok(rows) => out.emit_all(rows).await?,
            Err(reason) => {
                out.quarantine(Quarantined {
                    stream: spec.stream().to_owned(),
                    location: format!("{} row {}", at.location, at.offset + index as u64),
                    reason,
                    raw: row.to_string(),
                })
                .await?;
            }
        }
    }
    if repeated > 0 {
        tracing::warn!(location = at.location, repeated, "rows already written from another page skipped");
        state.lose(at.slice);
    }
    Ok(follow_ups)
}
