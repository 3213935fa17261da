//! The HTTP client of the OTLP exporters: the workspace's reqwest (rustls with ring), driven by a
//! small runtime of its own.
//!
//! The SDK's batch span processor and periodic metric reader run on threads of their own and
//! wait on each export with a plain executor, where reqwest's connections, which need a Tokio
//! reactor, cannot make progress. Each request is therefore spawned onto a one-thread runtime
//! that lives as long as the exporters, and the exporter waits on its join handle, which any
//! executor can wait on. The process's main runtime is never involved, so a flush at exit works
//! after it has stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Collectors answer an export with a small message; more than this is not read.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Whether the last export failed (and was reported).
static FAILING: AtomicBool = AtomicBool::new(false);

/// Whether the last export failed; its warning has been logged then.
pub fn failing() -> bool {
    FAILING.load(Ordering::SeqCst)
}

/// Why an export request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request could not be sent or its answer read (the URL is left out: it may carry
    /// credentials).
    #[error("{0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was larger than a collector's should be.
    #[error("the collector's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The task sending it was cancelled (the exporters are shutting down).
    #[error("the export was cancelled")]
    Cancelled,
}

/// Sends the exporters' requests; warns once when exports start failing and once when they
/// work again, so that a collector that is down does not flood the logs, and never fails a run.
#[derive(Debug, Clone)]
pub struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    /// A client whose requests give up after `timeout`, running on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> Result<ExportClient, reqwest::Error> {
        // reqwest is built without a bundled crypto provider; ring is the process's (as for the
        // platform APIs' clients). A second call finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(kpipe_http::USER_AGENT)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            // A collector has no reason to redirect; following one could carry the headers
            // (often an API key) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ExportClient { client, runtime })
    }

    fn failed(&self, endpoint: &str, why: &str) {
        if FAILING.swap(true, Ordering::SeqCst) {
            tracing::debug!(endpoint, error = why, "OTLP export failed again");
        } else {
            tracing::warn!(
                endpoint,
                error = why,
                "cannot export telemetry over OTLP; runs are not affected (said once until an export works again)"
            );
        }
    }

    fn worked(&self, endpoint: &str) {
        if FAILING.swap(false, Ordering::SeqCst) {
            tracing::info!(endpoint, "OTLP export works again");
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let endpoint = shown_uri(request.uri());
        let client = self.client.clone();
        let outcome = match self.runtime.spawn(send(client, request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ExportError::Cancelled),
        };
        match &outcome {
            Ok(response) if response.status().is_success() => self.worked(&endpoint),
            Ok(response) => self.failed(&endpoint, &format!("the collector answered {}", response.status())),
            Err(e) => self.failed(&endpoint, &kpipe_core::ErrorChain(e).to_string()),
        }
        outcome.map_err(HttpError::from)
    }
}

async fn send(client: reqwest::Client, request: Request<Bytes>) -> Result<Response<Bytes>, ExportError> {
    let transport = |e: reqwest::Error| ExportError::Transport(e.without_url());
    let request = reqwest::Request::try_from(request).map_err(transport)?;
    let mut answer = client.execute(request).await.map_err(transport)?;
    let status = answer.status();
    let headers = std::mem::take(answer.headers_mut());
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ExportError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// `scheme://host:port/path` of an endpoint, for messages: without user, password or query.
fn shown_uri(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_shown_without_credentials_or_query() {
        let uri: http::Uri =
            "https://user:hunter2@collector.example:4318/v1/traces?key=abc".parse().expect("a URI");
        assert_eq!(shown_uri(&uri), "https://collector.example:4318/v1/traces");
    }
}
