//! Pagination as a lazy stream of pages, for the kinds the platforms use: a cursor in the body,
//! a next-page URL, offset/limit, and a page token. Every kind stops on an empty page, a cursor
//! seen before, or a page cap, so that no API can keep a run paging forever.

use std::collections::HashSet;

use futures::Stream;
use url::Url;

use crate::client::{ApiClient, ApiRequest, ApiResponse};
use crate::error::HttpError;

/// Where the next page comes from. Pointers are JSON pointers (`/paging/cursors/after`).
#[derive(Debug, Clone)]
pub enum PageKind {
    /// The body holds a cursor; the next request sets query parameter `param` to it.
    Cursor {
        /// The query parameter.
        param: String,
        /// Where the cursor is.
        next: String,
    },
    /// The body holds the next page's full URL.
    NextUrl {
        /// Where the URL is.
        next: String,
    },
    /// `offset` and `limit` query parameters; a page shorter than `limit` is the last.
    OffsetLimit {
        /// The offset parameter.
        offset_param: String,
        /// The limit parameter.
        limit_param: String,
        /// Items per page.
        limit: u64,
    },
    /// The body holds a page token for query parameter `param` (Google, LinkedIn's
    /// `nextPageToken`).
    PageToken {
        /// The query parameter.
        param: String,
        /// Where the token is.
        next: String,
    },
}

/// How to page through one listing.
#[derive(Debug, Clone)]
pub struct Pagination {
    /// The kind.
    pub kind: PageKind,
    /// Pointer to the page's array of items; an empty or missing array ends the listing.
    pub items: String,
    /// Pages at most; the listing stops with a warning there.
    pub max_pages: usize,
}

impl Pagination {
    /// A pagination of `kind` with items at `items` and a cap of 10,000 pages.
    pub fn new(kind: PageKind, items: &str) -> Pagination {
        Pagination { kind, items: items.to_owned(), max_pages: 10_000 }
    }

    /// The same with another page cap.
    pub fn max_pages(mut self, max_pages: usize) -> Pagination {
        self.max_pages = max_pages.max(1);
        self
    }
}

/// One page.
#[derive(Debug, Clone)]
pub struct Page {
    /// 0 for the first page.
    pub index: usize,
    /// The parsed body.
    pub body: serde_json::Value,
    /// Items on the page.
    pub items: usize,
    /// The response, for headers.
    pub response: ApiResponse,
}

/// Why a listing ended, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// No next cursor, URL or token; or a short offset page.
    LastPage,
    /// A page without items.
    EmptyPage,
    /// The API sent a cursor it had sent before.
    RepeatedCursor,
    /// [`Pagination::max_pages`] was reached.
    PageCap,
}

struct State {
    client: ApiClient,
    first: ApiRequest,
    next: Option<ApiRequest>,
    pagination: Pagination,
    seen: HashSet<String>,
    index: usize,
    offset: u64,
}

impl ApiClient {
    /// The pages of a listing, fetched one at a time as the stream is polled. An error ends
    /// the stream after it is yielded.
    pub fn paginate(
        &self,
        first: ApiRequest,
        pagination: Pagination,
    ) -> impl Stream<Item = Result<Page, HttpError>> + Send {
        let first = match &pagination.kind {
            PageKind::OffsetLimit { offset_param, limit_param, limit } => {
                first.set_query(offset_param, "0").set_query(limit_param, limit.to_string())
            }
            _ => first,
        };
        let state = State {
            client: self.clone(),
            next: Some(first.clone()),
            first,
            pagination,
            seen: HashSet::new(),
            index: 0,
            offset: 0,
        };
        futures::stream::unfold(state, |mut state| async move {
            let request = state.next.take()?;
            match state.fetch(&request).await {
                Ok((page, next)) => {
                    state.next = next;
                    Some((Ok(page), state))
                }
                Err(e) => Some((Err(e), state)),
            }
        })
    }
}

impl State {
    async fn fetch(&mut self, request: &ApiRequest) -> Result<(Page, Option<ApiRequest>), HttpError> {
        let response = self.client.send(request).await?;
        let body: serde_json::Value = response.json()?;
        let items = body.pointer(&self.pagination.items).and_then(|v| v.as_array()).map_or(0, Vec::len);
        let page = Page { index: self.index, body, items, response };
        self.index += 1;
        let (next, stop) = self.next_request(&page)?;
        if let Some(stop) = stop {
            match stop {
                StopReason::RepeatedCursor | StopReason::PageCap => {
                    tracing::warn!(url = %page.response.url, pages = self.index, ?stop, "listing stopped")
                }
                _ => tracing::debug!(pages = self.index, ?stop, "listing complete"),
            }
        }
        Ok((page, next))
    }

    fn next_request(&mut self, page: &Page) -> Result<(Option<ApiRequest>, Option<StopReason>), HttpError> {
        if page.items == 0 {
            return Ok((None, Some(StopReason::EmptyPage)));
        }
        if self.index >= self.pagination.max_pages {
            return Ok((None, Some(StopReason::PageCap)));
        }
        let text_at = |pointer: &str| {
            page.body.pointer(pointer).and_then(|v| match v {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let next = match &self.pagination.kind {
            PageKind::Cursor { param, next } | PageKind::PageToken { param, next } => match text_at(next) {
                None => return Ok((None, Some(StopReason::LastPage))),
                Some(cursor) => {
                    if !self.seen.insert(cursor.clone()) {
                        return Ok((None, Some(StopReason::RepeatedCursor)));
                    }
                    self.first.clone().set_query(param, cursor)
                }
            },
            PageKind::NextUrl { next } => match text_at(next) {
                None => return Ok((None, Some(StopReason::LastPage))),
                Some(link) => {
                    if !self.seen.insert(link.clone()) {
                        return Ok((None, Some(StopReason::RepeatedCursor)));
                    }
                    let url = Url::parse(&link).map_err(|e| HttpError::Decode {
                        url: page.response.url.clone(),
                        reason: format!("the next-page link is not a URL: {e}"),
                    })?;
                    let mut r = ApiRequest::get_url(url);
                    r = r.idempotent(true);
                    r.inherit(&self.first);
                    r
                }
            },
            PageKind::OffsetLimit { offset_param, limit, .. } => {
                if (page.items as u64) < *limit {
                    return Ok((None, Some(StopReason::LastPage)));
                }
                self.offset += page.items as u64;
                self.first.clone().set_query(offset_param, self.offset.to_string())
            }
        };
        Ok((Some(next), None))
    }
}
