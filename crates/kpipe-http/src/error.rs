//! What can go wrong talking to a platform, in terms the runtime acts on.

use chrono::{DateTime, Utc};
use kpipe_core::{ErrorKind, Quarantined, SourceError};

/// An HTTP request that did not produce a usable response. Messages never contain tokens or
/// secrets: URLs are shown without credential query parameters and bodies are excerpts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A `base_url` or `token_url` that cannot be used.
    #[error("`{url}` cannot be used as a base URL: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// No response: connection refused, reset, timed out, or a body cut short.
    #[error("{method} {url}: no usable response after {attempts} attempt(s)")]
    Transport {
        /// The method.
        method: String,
        /// The URL, redacted.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last transport error, its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// The platform answered with an error that retrying cannot fix, or that outlived the retries.
    #[error("{method} {url} answered {status} after {attempts} attempt(s): {body}")]
    Status {
        /// The method.
        method: String,
        /// The URL, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
        /// How many times it was tried.
        attempts: u32,
        /// The start of the response body.
        body: String,
        /// What the runtime should make of it.
        kind: ErrorKind,
    },
    /// The platform's quota is used up until `reset_at`: stop this stream, keep what was written.
    #[error("{url}: the platform's quota is exhausted{}", reset_at.map(|t| format!(" until {t}")).unwrap_or_default())]
    QuotaExhausted {
        /// The URL, redacted.
        url: String,
        /// When the quota resets, if known.
        reset_at: Option<DateTime<Utc>>,
    },
    /// A token could not be obtained or was refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The token endpoint could not be reached, or answered 429 or 5xx, through every retry:
    /// nothing says the credentials are wrong, so the failure is transient, not an
    /// authentication error.
    #[error("no token: {0}")]
    TokenEndpointUnavailable(String),
    /// A successful response whose body stayed unreadable (not JSON) after the retries. The
    /// body is kept whole so the connector can quarantine it; it is not in the message.
    #[error("{url}: the response body is not JSON after {attempts} attempt(s)")]
    Malformed {
        /// The URL, redacted.
        url: String,
        /// How many times it was fetched.
        attempts: u32,
        /// The last body received.
        body: String,
    },
    /// A response that is not what the API documents.
    #[error("{url}: cannot read the response: {reason}")]
    Decode {
        /// The URL, redacted.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl HttpError {
    /// The kind the runtime acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::BaseUrl { .. } => ErrorKind::Config,
            HttpError::Transport { .. } => ErrorKind::Transient,
            HttpError::Status { kind, .. } => *kind,
            HttpError::QuotaExhausted { reset_at, .. } => ErrorKind::QuotaExhausted { reset_at: *reset_at },
            HttpError::Auth(_) => ErrorKind::Auth,
            HttpError::TokenEndpointUnavailable(_) => ErrorKind::Transient,
            HttpError::Decode { .. } | HttpError::Malformed { .. } => ErrorKind::Data,
        }
    }
}

impl HttpError {
    /// The record to quarantine for a response that could not be read ([`HttpError::Malformed`]
    /// and [`HttpError::Decode`]), so the run goes on and keeps the evidence; `None` for errors
    /// that are not about one response's content.
    pub fn to_quarantined(&self, stream: &str) -> Option<Quarantined> {
        match self {
            HttpError::Malformed { url, body, .. } => Some(Quarantined {
                stream: stream.to_owned(),
                location: url.clone(),
                reason: "the response body is not JSON".to_owned(),
                raw: body.clone(),
            }),
            HttpError::Decode { url, reason } => Some(Quarantined {
                stream: stream.to_owned(),
                location: url.clone(),
                reason: reason.clone(),
                raw: String::new(),
            }),
            _ => None,
        }
    }
}

impl From<HttpError> for SourceError {
    fn from(e: HttpError) -> SourceError {
        SourceError::new(e.kind(), e.to_string()).with_source(e)
    }
}

/// At most `max` characters of `body`, for messages.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}
