//! The pull of each stream for one slice of days: CRM search for contacts, deals and survey
//! responses, listings for forms and marketing emails. Each adds what it reads to the slice's
//! [`Tally`](crate::tally::Tally); a record that cannot be read is quarantined with its reason
//! and the others go on; a page that cannot be read is quarantined and stops the pull, because
//! the days it covers would otherwise be written with counts that are too low.

pub mod crm;
pub mod marketing;

use kpipe_core::{DateWindow, Emitter, Quarantined, SourceError};
use kpipe_http::HttpError;
use serde_json::Value;

use crate::hub::Hub;
use crate::portal::Portal;

/// What every stream of a pull shares.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The client.
    pub hub: &'a Hub,
    /// The portal.
    pub portal: &'a Portal,
    /// The configured page size (each endpoint caps it at its own maximum).
    pub page_size: u32,
}

impl Context<'_> {
    /// Results per page of an endpoint allowing `max`.
    pub fn limit(&self, max: u64) -> u64 {
        u64::from(self.page_size).clamp(1, max)
    }
}

/// Quarantines a record that cannot be counted; the pull goes on.
pub async fn refuse(
    out: &mut Emitter,
    stream: &str,
    location: String,
    reason: String,
    raw: &Value,
) -> Result<(), SourceError> {
    tracing::warn!(stream, %location, %reason, "record quarantined");
    out.quarantine(Quarantined { stream: stream.to_owned(), location, reason, raw: raw.to_string() }).await
}

/// The error that ends the pull. A response that cannot be read is kept in the quarantine
/// first: its body is the evidence, and without it the slice's counts would be short, so the
/// pull fails as a data error rather than write them.
pub async fn stop(error: HttpError, stream: &str, slice: DateWindow, out: &mut Emitter) -> SourceError {
    match error.to_quarantined(stream) {
        Some(record) => {
            let location = record.location.clone();
            if let Err(e) = out.quarantine(record).await {
                return e;
            }
            SourceError::data(format!(
                "{stream}: a response for {slice} stayed unreadable ({location}); it is quarantined, \
                 and the window is not written so that no day gets a partial count"
            ))
            .with_source(error)
        }
        None => error.into(),
    }
}
