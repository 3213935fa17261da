//! The pull: every report of every property for every span of days, as a queue of requests of
//! which `concurrency` are in flight at once (each property's gate allows fewer). The first page
//! of a property's reports for a span comes from one `batchRunReports`; its `rowCount`s say how
//! many more pages there are, which are then fetched with `runReport` at their offsets. Rows are
//! written as pages arrive; a span of days is declared complete once every page of it, for every
//! property and report, has been written without loss.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::DateTime;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kpipe_core::{DateWindow, Emitter, Quarantined, SourceError};
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use super::{FetchError, GoogleAnalyticsSource, MAX_BATCH};
use crate::normalize::{RowContext, normalize_row, read_page};

/// One request of the pull.
#[derive(Debug, Clone)]
enum Job {
    /// The first page of up to five reports of a property, in one `batchRunReports`.
    First { slice: usize, property: usize, specs: Vec<usize> },
    /// A later page of one report.
    Page { slice: usize, property: usize, spec: usize, offset: u64 },
}

impl Job {
    fn slice(&self) -> usize {
        match self {
            Job::First { slice, .. } | Job::Page { slice, .. } => *slice,
        }
    }
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
}

impl PullState {
    fn lose(&mut self, slice: usize) {
        if let Some(l) = self.lossy.get_mut(slice) {
            *l = true;
        }
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
    let per_slice = source.properties.len() * spec_chunks.len();
    let mut state = PullState {
        outstanding: vec![per_slice; spans.len()],
        lossy: vec![false; spans.len()],
        slices: spans,
        paging: HashMap::new(),
    };
    tracing::debug!(requests = queue.len(), spans = state.slices.len(), "pull planned");
    let stopping = AtomicBool::new(false);
    let mut running = FuturesUnordered::new();
    let mut stopped: Option<SourceError> = None;
    loop {
        while stopped.is_none() && running.len() < source.concurrency {
            let Some(job) = queue.pop_front() else { break };
            let window = state.slices[job.slice()];
            running.push(request(source, window, job, deadline, &stopping));
        }
        let Some(done) = running.next().await else { break };
        match handle(source, &mut state, done, out).await {
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
    stopped.map_or(Ok(()), Err)
}

/// Sends one job's request.
async fn request(
    source: &GoogleAnalyticsSource,
    window: DateWindow,
    job: Job,
    deadline: DateTime<chrono::Utc>,
    stopping: &AtomicBool,
) -> Done {
    let limit = u64::from(source.page_size);
    let currency = source.currency.map(|c| c.as_str().to_owned());
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
    };
    let what = match &job {
        Job::Page { spec, offset, .. } => format!(" report `{}` offset {offset}", source.specs[*spec].name),
        Job::First { .. } => String::new(),
    };
    // Reports only read: sending one twice is harmless, so it may be retried like a GET.
    let mut api_request = ApiRequest::post_json(&path, body).idempotent(true);
    // A batch of reports of several streams serves them all, and is counted for none.
    let specs: &[usize] = match &job {
        Job::First { specs, .. } => specs,
        Job::Page { spec, .. } => std::slice::from_ref(spec),
    };
    if let Some((first, rest)) = specs.split_first() {
        let stream = source.specs[*first].stream();
        if rest.iter().all(|s| source.specs[*s].stream() == stream) {
            api_request = api_request.stream(stream);
        }
    }
    let location = format!("{path} {window}{what}");
    let result = source.fetch(property, &api_request, deadline, stopping).await;
    Done { job, location, result }
}

/// Writes what one request brought; returns the requests it calls for, or the error that stops
/// the pull (and whether it is a quota's).
async fn handle(
    source: &GoogleAnalyticsSource,
    state: &mut PullState,
    done: Done,
    out: &mut Emitter,
) -> Result<Vec<Job>, (SourceError, bool)> {
    let slice = done.job.slice();
    // Quarantined records name the source's stream; their location names the report.
    let stream = |spec: usize| source.specs[spec].stream().to_owned();
    let mut follow_ups = Vec::new();
    match done.result {
        Err(error) => {
            let first_spec = match &done.job {
                Job::First { specs, .. } => specs.first().copied().unwrap_or(0),
                Job::Page { spec, .. } => *spec,
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
    if let Some(paging) = state.paging.get_mut(&key) {
        paging.pages_left = paging.pages_left.saturating_sub(1);
        if paging.pages_left == 0 {
            state.paging.remove(&key);
        }
    }
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
    let mut follow_ups = Vec::new();
    if at.offset == 0 {
        let mut offset = limit;
        while offset < page.row_count {
            follow_ups.push(Job::Page { slice: at.slice, property: at.property, spec: at.spec, offset });
            offset += limit;
        }
        if !follow_ups.is_empty() {
            let paging =
                Paging { row_count: page.row_count, pages_left: follow_ups.len(), seen: HashSet::new() };
            state.paging.insert(key, paging);
        }
    }
    let expected = page.row_count.saturating_sub(at.offset).min(limit);
    let changed = match state.paging.get(&key) {
        Some(p) => p.row_count != page.row_count || page.rows.len() as u64 != expected,
        None => page.rows.len() as u64 != expected,
    };
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
