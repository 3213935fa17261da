//! Synchronous insights reports and the paging they share with report-run results: follow
//! `paging.next` (an absolute URL, on the base URL's origin) until it is absent, or re-ask with
//! `after=<cursor>` when the link points elsewhere (a proxy in front of the API); halve the page
//! size when Meta asks to reduce the amount of data.

use std::collections::HashSet;

use kpipe_core::{
    DateWindow, Emitter, Metric, MetricName, MetricRow, PeriodRequest, PeriodRow, Quarantined, SourceError,
};
use kpipe_http::{ApiClient, ApiRequest};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::client::{CallError, ErrorClass, GraphObject, scrub};
use crate::forked::run_forked;
use crate::normalize::{InsightsReader, Level};
use crate::source::FacebookSource;

/// The stream of ads insights rows.
pub const ADS_STREAM: &str = "ads_insights";

/// Pages one listing may have at most; the API ends listings long before.
const MAX_PAGES: usize = 100_000;

/// A page of an insights listing, borrowed from the response's bytes: each element stays raw
/// JSON text until it is read, so a page costs about its own size in memory.
#[derive(Deserialize)]
struct InsightsPage<'a> {
    #[serde(default, borrow)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    paging: Option<Paging<'a>>,
}

/// `paging`: the next page's link and the cursors.
#[derive(Deserialize)]
struct Paging<'a> {
    #[serde(default, borrow)]
    next: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cursors: Option<Cursors<'a>>,
}

#[derive(Deserialize)]
struct Cursors<'a> {
    #[serde(default, borrow)]
    after: Option<&'a RawValue>,
}

/// A string value of a raw field; anything else is `None` (as an absent link is).
fn raw_string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

/// Reads the insights page `body` as a listing does, without a client or an emitter: each
/// element of `data` made rows by `reader` (a refused one is scrubbed for the quarantine, as a
/// listing does), then the next page's link or cursor. `None` when the body is no page; else
/// the rows made, the elements refused and where the next page is. A hook for the parsers'
/// fuzz targets.
#[doc(hidden)]
pub fn read_insights_page(
    body: &[u8],
    reader: &mut InsightsReader<'_>,
) -> Option<(usize, usize, Option<String>)> {
    let page: InsightsPage<'_> = match serde_json::from_slice(body) {
        Ok(page) => page,
        Err(_) => {
            // What the quarantine of an unreadable page holds.
            let _ = scrub(&String::from_utf8_lossy(body));
            return None;
        }
    };
    let data = page.data.as_ref()?;
    let (mut rows, mut refused) = (0, 0);
    for element in data {
        match reader.rows(element.get()) {
            Ok(made) => rows += made.len(),
            Err(_) => {
                // The text the listing quarantines.
                let _ = scrub(element.get());
                refused += 1;
            }
        }
    }
    let paging = page.paging.as_ref();
    let next = raw_string(paging.and_then(|p| p.next))
        .or_else(|| raw_string(paging.and_then(|p| p.cursors.as_ref()).and_then(|c| c.after)));
    Some((rows, refused, next))
}

/// What the elements of an insights listing become.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// Day rows (`time_increment=1`).
    Days,
    /// The reach of each entity over each of these periods' days, from a report over their
    /// ranges (`time_ranges`): period rows.
    Periods(&'a [PeriodRequest]),
}

/// One synchronous insights listing: the account (its index), the level of its rows, its first
/// request (without `limit`) and what its rows become.
#[derive(Debug)]
pub(crate) struct Listing<'a> {
    pub(crate) account: usize,
    pub(crate) level: Level,
    pub(crate) first: ApiRequest,
    pub(crate) rows: Rows<'a>,
}

/// Emits the period rows of one element of a report over ranges: its `reach` (dated its first
/// day, through `stop`) for every period asked for whose days are that range (a week and a
/// month may share one). `Ok(Err(reason))` when the range is none of them.
async fn emit_periods(
    requests: &[PeriodRequest],
    rows: Vec<MetricRow>,
    stop: chrono::NaiveDate,
    out: &mut Emitter,
) -> Result<Result<(), String>, SourceError> {
    let reach = MetricName::from(Metric::Reach);
    let Some(start) = rows.first().map(|r| r.date) else { return Ok(Ok(())) };
    let matching: Vec<&PeriodRequest> =
        requests.iter().filter(|r| r.period.start == start && r.through == stop).collect();
    if matching.is_empty() {
        return Ok(Err(format!("the row covers {start}..={stop}, which is none of the periods asked for")));
    }
    for request in matching {
        for row in rows.iter().filter(|r| r.metric == reach) {
            out.emit_period(PeriodRow::new(*request, row.clone())).await?;
        }
    }
    Ok(Ok(()))
}

/// Where the next page of a listing comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NextPage {
    First,
    Link(String),
    After(String),
}

/// A request for `link`, a `next` URL from a response: only on the client's own origin (where
/// credentials may go), without the `access_token` Meta embeds (the token travels in a header),
/// with `limit` set to the current page size.
fn link_request(api: &ApiClient, link: &str, limit: u32) -> Option<ApiRequest> {
    let mut url = kpipe_http::url::parse_base_url(link).ok()?;
    if !kpipe_http::url::same_origin(&url, api.base_url()) {
        return None;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "access_token" && k != "limit")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept).append_pair("limit", &limit.to_string());
    Some(ApiRequest::get_url(url))
}

/// Keeps a response that could not be read in the quarantine (without tokens) and goes on, or
/// stops the pull for anything else (auth, quota, transport).
pub async fn quarantine_or_fail(
    error: CallError,
    stream: &str,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    match error.error.to_quarantined(stream) {
        Some(mut record) => {
            record.raw = scrub(&record.raw);
            record.location = scrub(&record.location);
            tracing::warn!(
                location = %record.location,
                reason = %record.reason,
                "unreadable page quarantined"
            );
            out.quarantine(record).await
        }
        None => Err(error.into()),
    }
}

/// The first page of the listing `first` asks for, `limit` rows long.
fn first_page(first: &ApiRequest, limit: u32) -> ApiRequest {
    first.clone().set_query("limit", limit.to_string())
}

impl FacebookSource {
    /// Every account's synchronous report at every level for `range`, then each account's daily
    /// reach (when the `account` level is not pulled), up to `concurrency` listings read at once.
    /// `Ok(false)` when a page was quarantined.
    pub(crate) async fn sync_reports(
        &self,
        range: DateWindow,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let mut listings = Vec::new();
        for (index, account) in self.accounts.iter().enumerate() {
            for level in &self.settings.levels {
                let first = self.report_request(account, *level, range);
                listings.push(Listing { account: index, level: *level, first, rows: Rows::Days });
            }
        }
        listings.extend(self.account_reach_listings(range));
        self.read_listings(listings, out).await
    }

    /// Every page of each of `listings`, up to `concurrency` listings read at once (fewer for
    /// large pages: [`FacebookSource::readers`]), each into a fork of `out`
    /// ([`crate::forked`]). `Ok(false)` when a page was quarantined.
    pub(crate) async fn read_listings(
        &self,
        listings: Vec<Listing<'_>>,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let in_flight = usize::try_from(self.settings.concurrency).unwrap_or(1);
        run_forked(out, listings, in_flight, |listing, mut fork| async move {
            let account = &self.accounts[listing.account];
            let read =
                self.read_insights_from(account, listing.level, listing.first, listing.rows, &mut fork).await;
            (fork, read)
        })
        .await
    }

    /// `GET /act_{id}/insights` for `range`, daily rows at `level`.
    pub(crate) fn report_request(
        &self,
        account: &GraphObject,
        level: Level,
        range: DateWindow,
    ) -> ApiRequest {
        let range = json!({"since": range.start().to_string(), "until": range.end().to_string()});
        let request = ApiRequest::get(&format!("{}/act_{}/insights", self.settings.api_version, account.id))
            .query("level", level.api_name())
            .query("fields", level.fields())
            .query("time_range", range.to_string())
            .query("time_increment", "1");
        match &self.settings.attribution_windows {
            Some(windows) => request.query("action_attribution_windows", json!(windows).to_string()),
            None => request.query("use_account_attribution_setting", "true"),
        }
    }

    /// The daily rows of one account at one level for `range`, by a synchronous report.
    /// `Ok(false)` when a page could not be read and was quarantined.
    pub(crate) async fn sync_report(
        &self,
        account: &GraphObject,
        level: Level,
        range: DateWindow,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        let first = self.report_request(account, level, range);
        self.read_insights(account, level, first, out).await
    }

    /// Every page of an insights listing, each element normalized and emitted or quarantined.
    /// `Ok(false)` when a page was quarantined (the rest of the listing is lost with it).
    pub(crate) async fn read_insights(
        &self,
        account: &GraphObject,
        level: Level,
        first: ApiRequest,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        self.read_insights_from(account, level, first, Rows::Days, out).await
    }

    /// [`Self::read_insights`], the elements made into `rows`.
    async fn read_insights_from(
        &self,
        account: &GraphObject,
        level: Level,
        first: ApiRequest,
        rows: Rows<'_>,
        out: &mut Emitter,
    ) -> Result<bool, SourceError> {
        // Held while the listing is read: the answers in flight of the whole source stay within
        // `ROWS_IN_FLIGHT` rows, whatever reads them (slices, reach, periods, report results).
        let _reading = self.readers.acquire().await.map_err(|_| SourceError::cancelled())?;
        let mut reader = InsightsReader::new(&account.id, level, &self.settings.actions);
        let mut limit = account.page_size();
        let mut next = NextPage::First;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let request = match &next {
                NextPage::First => first_page(&first, limit),
                NextPage::After(cursor) => first_page(&first, limit).set_query("after", cursor.clone()),
                NextPage::Link(link) => match link_request(&account.api, link, limit) {
                    Some(request) => request,
                    None => return Err(SourceError::data("a next-page link stopped being a URL")),
                },
            };
            let answer =
                account.call(&self.book, self.max_wait, request.stream(ADS_STREAM), &self.token).await;
            let response = match answer {
                Ok(response) => response,
                Err(e) if e.class() == Some(ErrorClass::ReduceData) && limit > 1 => {
                    limit = (limit / 2).max(1);
                    account.shrink_pages(limit);
                    tracing::warn!(
                        account = %account.id,
                        limit,
                        "the API asks for less data per page; halving the page size"
                    );
                    continue;
                }
                Err(e) => {
                    quarantine_or_fail(e, ADS_STREAM, out).await?;
                    return Ok(false);
                }
            };
            let page: InsightsPage<'_> = match serde_json::from_slice(&response.body) {
                Ok(page) => page,
                Err(e) => {
                    out.quarantine(Quarantined {
                        stream: ADS_STREAM.into(),
                        location: response.url.clone(),
                        reason: format!("the response cannot be read as an insights page: {e}"),
                        raw: scrub(&String::from_utf8_lossy(&response.body)),
                    })
                    .await?;
                    return Ok(false);
                }
            };
            let Some(data) = &page.data else {
                out.quarantine(Quarantined {
                    stream: ADS_STREAM.into(),
                    location: response.url.clone(),
                    reason: "the response has no `data` array".into(),
                    raw: scrub(&String::from_utf8_lossy(&response.body)),
                })
                .await?;
                return Ok(false);
            };
            for (index, element) in data.iter().enumerate() {
                let read = match rows {
                    Rows::Days => match reader.rows(element.get()) {
                        Ok(made) => Ok(out.emit_all(made).await?),
                        Err(reason) => Err(reason),
                    },
                    Rows::Periods(requests) => match reader.range_rows(element.get()) {
                        Ok((made, stop)) => emit_periods(requests, made, stop, out).await?,
                        Err(reason) => Err(reason),
                    },
                };
                match read {
                    Ok(()) => {}
                    Err(reason) => {
                        out.quarantine(Quarantined {
                            stream: ADS_STREAM.into(),
                            location: format!("{} element {index}", response.url),
                            reason,
                            raw: scrub(element.get()),
                        })
                        .await?;
                    }
                }
            }
            // A page may be empty and still link to the next: stop only when the link is gone.
            let paging = page.paging.as_ref();
            let Some(link) = raw_string(paging.and_then(|p| p.next)) else { return Ok(true) };
            if !seen.insert(link.clone()) {
                tracing::warn!(
                    url = %response.url,
                    "the API repeated a next-page link; the listing ends here"
                );
                return Ok(true);
            }
            next = if link_request(&account.api, &link, limit).is_some() {
                NextPage::Link(link)
            } else {
                match raw_string(paging.and_then(|p| p.cursors.as_ref()).and_then(|c| c.after)) {
                    Some(cursor) => NextPage::After(cursor),
                    None => {
                        return Err(SourceError::data(format!(
                            "{}: the next-page link is not on the base URL's origin and the page has \
                             no cursor",
                            response.url
                        )));
                    }
                }
            };
        }
        tracing::warn!(account = %account.id, pages = MAX_PAGES, "listing stopped at the page cap");
        Ok(false)
    }
}
