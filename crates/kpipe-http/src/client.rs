//! The shared HTTP client and the per-source API client that every connector sends through:
//! rate limit, token, send, classify, wait or refresh or stop, all in one loop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::TokenProvider;
use crate::error::{HttpError, excerpt};
use crate::ratelimit::RateLimiter;
use crate::retry::{Classifier, Decision, Outcome, RetryPolicy, decide, default_classifiers};
use crate::telemetry::{Telemetry, TelemetrySnapshot};
use crate::url::{parse_base_url, redact, same_origin};

/// How many times one request refreshes its token when each refresh's token is refused in
/// turn: a credential that is refused for good fails after these, not after every attempt.
const MAX_REFRESHES_PER_REQUEST: u32 = 3;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str =
    concat!("kpipe/", env!("CARGO_PKG_VERSION"), " (+https://github.com/kpipe/kpipe)");

/// The process's HTTP clients: one connection pool for API calls, one for token endpoints
/// (which never follow redirects, so credentials cannot be sent elsewhere). Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    api: reqwest::Client,
    token: reqwest::Client,
}

impl HttpClient {
    /// Clients with rustls, gzip, timeouts and kpipe's user agent.
    pub fn new() -> Result<HttpClient, HttpError> {
        // reqwest is built without a bundled crypto provider; ring is ours. A second call
        // finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = crate::tls::client_config()?;
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .user_agent(USER_AGENT)
                .gzip(true)
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(120))
                .pool_idle_timeout(Duration::from_secs(60))
                .redirect(redirects)
                .build()
                .map_err(|e| HttpError::Auth(format!("cannot build the HTTP client: {e}")))
        };
        Ok(HttpClient {
            api: build(reqwest::redirect::Policy::limited(5))?,
            token: build(reqwest::redirect::Policy::none())?,
        })
    }

    pub(crate) fn token_client(&self) -> reqwest::Client {
        self.token.clone()
    }
}

/// How the access token travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPlacement {
    /// `Authorization: Bearer <token>`.
    BearerHeader,
    /// A query parameter such as `access_token` (redacted wherever the URL is shown).
    QueryParam(&'static str),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// JSON.
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

#[derive(Clone)]
enum Target {
    Path(String),
    Url(Url),
}

/// One API call, built by a connector.
#[derive(Clone)]
pub struct ApiRequest {
    method: Method,
    target: Target,
    query: Vec<(String, String)>,
    raw_query: Option<String>,
    headers: HeaderMap,
    body: Option<Body>,
    limit_key: Option<String>,
    stream: Option<Arc<str>>,
    idempotent: bool,
    json_body: bool,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = k == http::header::AUTHORIZATION
                    || k.as_str().contains("token")
                    || k.as_str().contains("key");
                (k.as_str(), if secret { "***" } else { v.to_str().unwrap_or("<binary>") })
            })
            .collect();
        let target = match &self.target {
            Target::Path(p) => p.clone(),
            Target::Url(u) => redact(u),
        };
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("target", &target)
            .field("query", &self.query.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("headers", &headers)
            .field("limit_key", &self.limit_key)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    /// A request for `path`, relative to the base URL.
    pub fn new(method: Method, path: &str) -> ApiRequest {
        let idempotent = !matches!(method, Method::POST | Method::PATCH);
        ApiRequest {
            method,
            target: Target::Path(path.to_owned()),
            query: Vec::new(),
            raw_query: None,
            headers: HeaderMap::new(),
            body: None,
            limit_key: None,
            stream: None,
            idempotent,
            json_body: true,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> ApiRequest {
        ApiRequest::new(Method::GET, path)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(path: &str, body: serde_json::Value) -> ApiRequest {
        let mut r = ApiRequest::new(Method::POST, path);
        r.body = Some(Body::Json(body));
        r
    }

    /// `GET` of an absolute URL the platform gave (a next-page link); it must be on the base
    /// URL's origin to receive credentials.
    pub fn get_url(url: Url) -> ApiRequest {
        let mut r = ApiRequest::get("");
        r.target = Target::Url(url);
        r
    }

    /// Adds a query parameter (percent-encoded).
    pub fn query(mut self, key: &str, value: impl Into<String>) -> ApiRequest {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    /// Sets a query parameter, replacing earlier values of it.
    pub fn set_query(mut self, key: &str, value: impl Into<String>) -> ApiRequest {
        self.query.retain(|(k, _)| k != key);
        self.query(key, value)
    }

    /// A query string used exactly as given, for APIs with their own encoding (Rest.li).
    pub fn raw_query(mut self, query: impl Into<String>) -> ApiRequest {
        self.raw_query = Some(query.into());
        self
    }

    /// Adds a header; an invalid name or value is ignored with a warning.
    pub fn header(mut self, name: &str, value: &str) -> ApiRequest {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            _ => tracing::warn!(header = name, "invalid header ignored"),
        }
        self
    }

    /// The rate-limit key (an ad account, a property); the client's default otherwise.
    pub fn limit_key(mut self, key: impl Into<String>) -> ApiRequest {
        self.limit_key = Some(key.into());
        self
    }

    /// The source's stream this request is for (a `StreamInfo::name`): the run summary counts
    /// requests, retries and throttle waits per stream as well. Requests that serve several
    /// streams (an account's details) stay unlabelled and count for the source only.
    pub fn stream(mut self, stream: &str) -> ApiRequest {
        self.stream = Some(Arc::from(stream));
        self
    }

    /// Takes the headers, rate-limit key and stream of `other` (a next-page link keeps the
    /// first request's API version headers, budget and stream).
    pub(crate) fn inherit(&mut self, other: &ApiRequest) {
        self.headers = other.headers.clone();
        self.limit_key = other.limit_key.clone();
        self.stream = other.stream.clone();
    }

    /// Whether a successful response must be JSON (the default). A 2xx body that is not JSON
    /// (cut short by a proxy, garbled) is fetched again like a transient error, and if it stays
    /// unreadable the request fails with [`HttpError::Malformed`] carrying the body, so that the
    /// connector can quarantine it.
    pub fn json_body(mut self, json: bool) -> ApiRequest {
        self.json_body = json;
        self
    }

    /// Whether sending twice is harmless; POST reports that only read are.
    pub fn idempotent(mut self, idempotent: bool) -> ApiRequest {
        self.idempotent = idempotent;
        self
    }
}

/// A response the classifiers accepted.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The URL, redacted.
    pub url: String,
}

impl ApiResponse {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Decode { url: self.url.clone(), reason: e.to_string() })
    }
}

/// Builds an [`ApiClient`].
pub struct ApiClientBuilder {
    inner: Inner,
}

impl std::fmt::Debug for ApiClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClientBuilder")
            .field("base_url", &self.inner.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl ApiClientBuilder {
    /// Proactive rate limiting; `default_key` is used by requests that name no key.
    pub fn rate_limit(mut self, limiter: RateLimiter, default_key: &str) -> ApiClientBuilder {
        self.inner.limiter = Some(limiter);
        self.inner.default_limit_key = default_key.to_owned();
        self
    }

    /// Retry limits.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> ApiClientBuilder {
        self.inner.policy = policy;
        self
    }

    /// Appends a platform classifier (usage headers, error codes in the body) after the
    /// default transport, status and `Retry-After` ones.
    pub fn classifier(mut self, classifier: impl Classifier + 'static) -> ApiClientBuilder {
        self.inner.classifiers.push(Box::new(classifier));
        self
    }

    /// Where tokens come from.
    pub fn auth(mut self, provider: Arc<dyn TokenProvider>, placement: AuthPlacement) -> ApiClientBuilder {
        self.inner.auth = Some(provider);
        self.inner.placement = placement;
        self
    }

    /// A header sent with every request (an API version, a protocol version).
    pub fn default_header(mut self, name: &'static str, value: &str) -> Result<ApiClientBuilder, HttpError> {
        let v = HeaderValue::from_str(value).map_err(|e| HttpError::BaseUrl {
            url: self.inner.base_url.to_string(),
            reason: format!("header {name}: {e}"),
        })?;
        self.inner.headers.insert(HeaderName::from_static(name), v);
        Ok(self)
    }

    /// The client. The default classifiers (transport, status, `Retry-After`) run first, the
    /// platform's after them.
    pub fn build(self) -> ApiClient {
        let mut inner = self.inner;
        let mut classifiers = default_classifiers(&inner.policy);
        classifiers.append(&mut inner.classifiers);
        inner.classifiers = classifiers;
        ApiClient { inner: Arc::new(inner) }
    }
}

struct Inner {
    http: HttpClient,
    base_url: Url,
    limiter: Option<RateLimiter>,
    default_limit_key: String,
    policy: RetryPolicy,
    classifiers: Vec<Box<dyn Classifier>>,
    auth: Option<Arc<dyn TokenProvider>>,
    placement: AuthPlacement,
    headers: HeaderMap,
    telemetry: Telemetry,
}

/// One source's door to its platform. Cloning shares limiter, token and counters.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base_url", &self.inner.base_url.as_str()).finish_non_exhaustive()
    }
}

enum Sent {
    Response { status: StatusCode, headers: HeaderMap, body: Bytes },
    Transport { error: reqwest::Error, connect: bool, timeout: bool },
}

impl ApiClient {
    /// A builder for `base_url` (https, or http for loopback hosts).
    pub fn builder(http: &HttpClient, base_url: &str) -> Result<ApiClientBuilder, HttpError> {
        let mut base_url = parse_base_url(base_url)?;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(ApiClientBuilder {
            inner: Inner {
                http: http.clone(),
                base_url,
                limiter: None,
                default_limit_key: "default".into(),
                policy: RetryPolicy::default(),
                classifiers: Vec::new(),
                auth: None,
                placement: AuthPlacement::BearerHeader,
                headers: HeaderMap::new(),
                telemetry: Telemetry::default(),
            },
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// What this client has done so far.
    pub fn telemetry(&self) -> TelemetrySnapshot {
        let mut snapshot = self.inner.telemetry.snapshot();
        if let Some(auth) = &self.inner.auth {
            snapshot.token_refreshes = auth.refreshes();
        }
        snapshot
    }

    /// Records what the platform said (in a response's headers or body) is left of `account`'s
    /// quotas; the run summary shows the lowest figures seen. Connectors read their platform's
    /// usage headers and call it; a header that cannot be read is simply not recorded.
    pub fn record_quota(&self, account: &str, left: &kpipe_core::QuotaLeft) {
        self.inner.telemetry.quota(account, left);
    }

    /// What the token provider knows about its credential (`None` without one); never a token.
    pub fn token_facts(&self) -> Option<kpipe_core::TokenFacts> {
        self.inner.auth.as_ref().and_then(|auth| auth.facts())
    }

    fn url(&self, request: &ApiRequest) -> Result<Url, HttpError> {
        let mut url = match &request.target {
            Target::Path(p) => self.inner.base_url.join(p.trim_start_matches('/')).map_err(|e| {
                HttpError::Decode { url: format!("{}{p}", self.inner.base_url), reason: e.to_string() }
            })?,
            Target::Url(u) => {
                if !same_origin(u, &self.inner.base_url) {
                    return Err(HttpError::Decode {
                        url: redact(u),
                        reason: format!(
                            "a link outside {} is not followed with this source's credentials",
                            self.inner.base_url
                        ),
                    });
                }
                u.clone()
            }
        };
        if let Some(raw) = &request.raw_query {
            let joined = match url.query() {
                Some(q) if !q.is_empty() => format!("{q}&{raw}"),
                _ => raw.clone(),
            };
            url.set_query(Some(&joined));
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(request.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(url)
    }

    /// Sends `request`, waiting for the rate limiter, retrying what is worth retrying, and
    /// refreshing the token once for each of its tokens the platform refuses (a few times at most).
    pub async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, HttpError> {
        let inner = &self.inner;
        let url = self.url(request)?;
        let shown = redact(&url);
        let key = request.limit_key.as_deref().unwrap_or(&inner.default_limit_key);
        let stream = request.stream.as_deref();
        // The generations of the tokens this request saw refused: a token refused once is
        // refreshed once; a newer token refused too (it expired while this request waited, as
        // concurrent requests drained a short-lived token) is refreshed again, a few times at most.
        let mut refused: Option<u64> = None;
        let mut refreshes: u32 = 0;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &inner.limiter {
                inner.telemetry.throttled(stream, limiter.acquire(key).await);
            }
            let token = match &inner.auth {
                Some(auth) => Some(auth.token().await?),
                None => None,
            };
            let sent = self.send_once(request, &url, token.as_ref().map(|t| t.expose())).await;
            inner.telemetry.request(stream);
            let decision = match &sent {
                Sent::Response { status, headers, body } => {
                    inner.telemetry.received(body.len());
                    match decide(&inner.classifiers, &Outcome::Response { status: *status, headers, body }) {
                        Decision::Accept if request.json_body && status.is_success() && !is_json(body) => {
                            Decision::Retry { reason: MALFORMED_BODY, after: None }
                        }
                        other => other,
                    }
                }
                Sent::Transport { connect, timeout, .. } => {
                    decide(&inner.classifiers, &Outcome::Transport { timeout: *timeout, connect: *connect })
                }
            };
            tracing::trace!(method = %request.method, url = %shown, attempt, ?decision, "response classified");
            let out_of_attempts = attempt >= inner.policy.max_attempts;
            match decision {
                Decision::Accept => {
                    if let Sent::Response { status, headers, body } = sent {
                        return Ok(ApiResponse { status, headers, body, url: shown });
                    }
                    return Err(HttpError::Decode {
                        url: shown,
                        reason: "accepted without a response".into(),
                    });
                }
                Decision::RefreshToken
                    if refreshes < MAX_REFRESHES_PER_REQUEST
                        && refused.is_none_or(|g| token.as_ref().is_some_and(|t| t.generation() > g))
                        && !out_of_attempts
                        && inner.auth.is_some() =>
                {
                    refreshes += 1;
                    if let (Some(auth), Some(token)) = (&inner.auth, &token) {
                        refused = Some(token.generation());
                        auth.invalidate(token.generation());
                    } else {
                        refused = Some(u64::MAX);
                    }
                    inner.telemetry.retry(stream, "token_refused");
                    tracing::info!(url = %shown, refreshes, "access token refused; refreshing it");
                }
                Decision::Retry { reason, after }
                    if !out_of_attempts && (request.idempotent || may_resend(&sent)) =>
                {
                    let wait = inner.policy.wait(attempt - 1, after);
                    inner.telemetry.retry(stream, reason);
                    tracing::warn!(url = %shown, attempt, reason, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Decision::QuotaExhausted { reset_at } => {
                    tracing::warn!(url = %shown, ?reset_at, "quota exhausted; stopping instead of retrying");
                    return Err(HttpError::QuotaExhausted { url: shown, reset_at });
                }
                other => {
                    return Err(match sent {
                        Sent::Transport { error, .. } => HttpError::Transport {
                            method: request.method.to_string(),
                            url: shown,
                            attempts: attempt,
                            source: error.without_url(),
                        },
                        Sent::Response { status, body, .. } if status.is_success() => HttpError::Malformed {
                            url: shown,
                            attempts: attempt,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        },
                        Sent::Response { status, body, .. } => HttpError::Status {
                            method: request.method.to_string(),
                            url: shown,
                            status: status.as_u16(),
                            attempts: attempt,
                            body: excerpt(&body, 300),
                            kind: match other {
                                Decision::GiveUp { kind } => kind,
                                Decision::RefreshToken => kpipe_core::ErrorKind::Auth,
                                _ => kpipe_core::ErrorKind::Transient,
                            },
                        },
                    });
                }
            }
        }
    }

    async fn send_once(&self, request: &ApiRequest, url: &Url, token: Option<&str>) -> Sent {
        let inner = &self.inner;
        let mut url = url.clone();
        let mut headers = inner.headers.clone();
        headers.extend(request.headers.clone());
        match (token, inner.placement) {
            (Some(t), AuthPlacement::BearerHeader) => {
                if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                    v.set_sensitive(true);
                    headers.insert(http::header::AUTHORIZATION, v);
                }
            }
            (Some(t), AuthPlacement::QueryParam(name)) => {
                url.query_pairs_mut().append_pair(name, t);
            }
            (None, _) => {}
        }
        let mut builder = inner.http.api.request(request.method.clone(), url).headers(headers);
        builder = match &request.body {
            Some(Body::Json(v)) => builder.json(v),
            Some(Body::Form(f)) => builder.form(f),
            None => builder,
        };
        let transport = |error: reqwest::Error| {
            let (connect, timeout) = (error.is_connect(), error.is_timeout());
            Sent::Transport { error, connect, timeout }
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => Sent::Response { status, headers, body },
            Err(e) => transport(e),
        }
    }
}

/// The retry reason of a successful response whose body is not JSON.
const MALFORMED_BODY: &str = "malformed_body";

/// Whether `body` is one well-formed JSON document. Parsing into `IgnoredAny` allocates nothing.
fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// A request that is not idempotent is sent again only when the platform cannot have acted on
/// it: the connection was never made, or it said 429.
fn may_resend(sent: &Sent) -> bool {
    match sent {
        Sent::Transport { connect, .. } => *connect,
        Sent::Response { status, .. } => *status == StatusCode::TOO_MANY_REQUESTS,
    }
}
