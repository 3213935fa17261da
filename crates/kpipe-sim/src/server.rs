//! The running simulator: listener, router, the middleware that applies latency, quotas, faults
//! and the bearer check, and the counters tests read.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderValue, header};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::auth::{JwtVerifier, TokenCheck, TokenStore};
use crate::config::{AuthConfig, CannedResponse, Latency, SimConfig};
use crate::conn::{ConnHandle, SimListener};
use crate::error::SimError;
use crate::fault::{Fault, FaultEngine};
use crate::platform::test_routes::TestRoutes;
use crate::platform::{Platform, PlatformContext};
use crate::quota::QuotaEngine;
use crate::rng::SimRng;

/// One request the simulator received, as [`SimServer::requests`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The request's number, from 1, in arrival order over the whole server.
    pub number: u64,
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The request headers (lowercase names), in order.
    pub headers: Vec<(String, String)>,
    /// The status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
    /// When it arrived, since the server started.
    pub arrived_after: Duration,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Counters {
    total: AtomicU64,
    over_quota: AtomicU64,
    auth_rejections: AtomicU64,
    dropped: AtomicU64,
    paths: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shared by the middleware, the token endpoint and [`SimServer`].
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) seed: u64,
    pub(crate) auth: AuthConfig,
    pub(crate) tokens: TokenStore,
    pub(crate) jwt: Option<JwtVerifier>,
    latency: Latency,
    path_latency: Vec<(String, Latency)>,
    token_latency: Latency,
    quotas: QuotaEngine,
    faults: FaultEngine,
    counters: Counters,
    log: Mutex<VecDeque<RecordedRequest>>,
    log_limit: usize,
    started: Instant,
}

impl SimState {
    fn latency_for(&self, path: &str, number: u64) -> Duration {
        let latency = if path == self.auth.token_path {
            &self.token_latency
        } else {
            self.path_latency
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map_or(&self.latency, |(_, l)| l)
        };
        latency.sample(&mut SimRng::derive(self.seed, "latency", number))
    }

    fn record(&self, entry: RecordedRequest) {
        if self.log_limit == 0 {
            return;
        }
        let mut log = lock(&self.log);
        while log.len() >= self.log_limit {
            log.pop_front();
        }
        log.push_back(entry);
    }
}

/// A running simulator on `127.0.0.1:<random port>`.
///
/// It serves until [`SimServer::shutdown`] or until it is dropped.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    base_url: String,
    token_url: String,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `127.0.0.1:0` and serves `config` on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`SimError::Bind`] when no port can be bound, [`SimError::PublicKey`] for an unreadable
    /// JWT-bearer key, [`SimError::Config`] for an impossible knob.
    ///
    /// # Panics
    ///
    /// When two route modules (or a module and the token endpoint) register the same route:
    /// axum refuses overlapping routes.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::Bind)?;
        let base_url = format!("http://{addr}");
        let token_url = format!("{base_url}{}", config.auth.token_path);
        let jwt = config.auth.jwt_bearer.as_ref().map(|c| JwtVerifier::new(c, &token_url)).transpose()?;
        let started = Instant::now();
        let state = Arc::new(SimState {
            seed: config.seed,
            tokens: TokenStore::new(config.seed, &config.auth),
            jwt,
            latency: config.latency,
            path_latency: config.path_latency,
            token_latency: config.token_latency,
            quotas: QuotaEngine::new(config.quotas, started),
            faults: FaultEngine::new(config.faults, config.seed),
            counters: Counters::default(),
            log: Mutex::new(VecDeque::new()),
            log_limit: config.request_log_limit,
            started,
            auth: config.auth,
        });

        let context = PlatformContext::new(config.seed, base_url.clone(), token_url.clone());
        let mut router: Router = Router::new()
            .route(&state.auth.token_path, post(crate::auth::token_endpoint))
            .with_state(Arc::clone(&state));
        let mut platforms: Vec<Arc<dyn Platform>> = Vec::new();
        if let Some(routes) = config.test_routes {
            platforms.push(Arc::new(TestRoutes::new(routes)));
        }
        platforms.extend(config.platforms);
        for platform in &platforms {
            tracing::debug!(platform = platform.name(), "kpipe-sim: mounting routes");
            router = router.merge(platform.router(&context));
        }
        let router =
            router.fallback(not_found).layer(middleware::from_fn_with_state(Arc::clone(&state), simulate));

        let (tx, rx) = oneshot::channel::<()>();
        let serve = axum::serve(
            SimListener::new(listener),
            router.into_make_service_with_connect_info::<ConnHandle>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::warn!(%error, "kpipe-sim: server stopped with an error");
            }
        });
        tracing::debug!(%base_url, "kpipe-sim: listening");
        Ok(Self { addr, base_url, token_url, state, shutdown: Some(tx), task: Some(task) })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url()` followed by `path_and_query` (which starts with `/`).
    #[must_use]
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// The token endpoint's URL (`<base_url>/oauth/token` by default); also the JWT audience.
    #[must_use]
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The seed the server was started with.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.state.seed
    }

    /// Every request received, the token endpoint's included.
    #[must_use]
    pub fn requests_total(&self) -> u64 {
        self.state.counters.total.load(Ordering::Relaxed)
    }

    /// Requests received on exactly this path (no query).
    #[must_use]
    pub fn requests_for(&self, path: &str) -> u64 {
        lock(&self.state.counters.paths).get(path).copied().unwrap_or(0)
    }

    /// Requests received, per path.
    #[must_use]
    pub fn path_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state.counters.paths).clone()
    }

    /// Requests that arrived while a quota was exhausted and were refused (429 or the quota's
    /// configured status).
    #[must_use]
    pub fn requests_over_quota(&self) -> u64 {
        self.state.counters.over_quota.load(Ordering::Relaxed)
    }

    /// Requests refused by the quota rule(s) with this name.
    #[must_use]
    pub fn rejections_for_quota(&self, name: &str) -> u64 {
        self.state.quotas.rejected(name)
    }

    /// Faults injected so far.
    #[must_use]
    pub fn faults_injected(&self) -> u64 {
        self.state.faults.injected()
    }

    /// Connections closed without an answer (the [`Fault::DropConnection`] fault).
    #[must_use]
    pub fn connections_dropped(&self) -> u64 {
        self.state.counters.dropped.load(Ordering::Relaxed)
    }

    /// API requests refused for a missing, unknown or expired bearer token.
    #[must_use]
    pub fn auth_rejections(&self) -> u64 {
        self.state.counters.auth_rejections.load(Ordering::Relaxed)
    }

    /// Access tokens issued (by the token endpoint and [`SimServer::issue_token`]).
    #[must_use]
    pub fn tokens_issued(&self) -> u64 {
        self.state.tokens.issued()
    }

    /// Issues an access token directly, with the configured lifetime and use limit.
    #[must_use]
    pub fn issue_token(&self) -> String {
        let auth = &self.state.auth;
        self.state.tokens.issue(Some(auth.expire_after.unwrap_or(auth.expires_in)), auth.expire_after_uses)
    }

    /// Makes this access token expired from now on.
    pub fn expire_token(&self, token: &str) {
        self.state.tokens.expire(Some(token));
    }

    /// Makes every access token (static ones included) expired from now on.
    pub fn expire_all_tokens(&self) {
        self.state.tokens.expire(None);
    }

    /// How many API requests this access token has been accepted for.
    #[must_use]
    pub fn token_uses(&self, token: &str) -> Option<u64> {
        self.state.tokens.uses(token)
    }

    /// The most recent requests (up to [`SimConfig::request_log_limit`]), oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.log).iter().cloned().collect()
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 2 s), and stops.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn not_found() -> Response {
    CannedResponse::json(404, json!({"status": 404, "message": "No such route in kpipe-sim"})).to_response()
}

fn bearer_token(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    // Facebook puts the token in the query (`access_token=`), in its `paging.next` URLs too.
    crate::query_pairs(query?).into_iter().find(|(k, _)| k == "access_token").map(|(_, v)| v)
}

/// The middleware every request passes: count, quota, latency, fault, bearer check, route.
async fn simulate(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let number = state.counters.total.fetch_add(1, Ordering::Relaxed) + 1;
    *lock(&state.counters.paths).entry(path.clone()).or_insert(0) += 1;
    let mut entry = RecordedRequest {
        number,
        method: request.method().to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        status: None,
        arrived_after: arrived.saturating_duration_since(state.started),
    };
    let conn = request.extensions().get::<ConnectInfo<ConnHandle>>().map(|c| c.0.clone());
    let token_path = state.auth.token_path.as_str();
    let is_token_endpoint = path == token_path;

    let rejection = state.quotas.check(&path, query.as_deref(), request.headers(), token_path, arrived);
    let fault =
        if rejection.is_none() { state.faults.pick(&path, query.as_deref(), token_path) } else { None };

    let latency = state.latency_for(&path, number);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let response = if let Some(rejection) = rejection {
        state.counters.over_quota.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(number, %path, quota = %rejection.rule, "kpipe-sim: over quota");
        rejection.response.to_response()
    } else {
        let token = bearer_token(request.headers(), query.as_deref());
        match fault {
            Some(Fault::Respond(canned)) => canned.to_response(),
            Some(Fault::DropConnection) => {
                state.counters.dropped.fetch_add(1, Ordering::Relaxed);
                match &conn {
                    Some(conn) => {
                        tracing::debug!(number, %path, peer = %conn.peer, "kpipe-sim: dropping the connection");
                        conn.kill();
                    }
                    None => tracing::warn!("kpipe-sim: no connection handle; cannot drop the connection"),
                }
                state.record(entry);
                return CannedResponse::server_error(500).to_response();
            }
            Some(Fault::ExpireToken) => {
                if let Some(token) = &token {
                    state.tokens.expire(Some(token));
                }
                state.counters.auth_rejections.fetch_add(1, Ordering::Relaxed);
                state.auth.expired_response.to_response()
            }
            other => {
                if let Some(Fault::Delay(extra)) = other {
                    tokio::time::sleep(extra).await;
                }
                let check = if state.auth.require_bearer && !is_token_endpoint {
                    token.as_deref().map_or(TokenCheck::Invalid, |t| state.tokens.check_and_use(t))
                } else {
                    TokenCheck::Valid
                };
                match check {
                    TokenCheck::Valid => {
                        let response = next.run(request).await;
                        match other {
                            Some(Fault::TruncatedBody) => truncate(response, conn).await,
                            Some(Fault::MalformedJson) => cut_in_half(response).await,
                            _ => response,
                        }
                    }
                    TokenCheck::Expired => {
                        state.counters.auth_rejections.fetch_add(1, Ordering::Relaxed);
                        state.auth.expired_response.to_response()
                    }
                    TokenCheck::Invalid => {
                        state.counters.auth_rejections.fetch_add(1, Ordering::Relaxed);
                        state.auth.invalid_response.to_response()
                    }
                }
            }
        }
    };
    entry.status = Some(response.status().as_u16());
    state.record(entry);
    response
}

async fn collect(body: Body) -> Bytes {
    axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default()
}

/// Keeps status, headers and the full `Content-Length`, sends half the body, then fails the
/// connection.
async fn truncate(response: Response, conn: Option<ConnHandle>) -> Response {
    let (mut parts, body) = response.into_parts();
    let full = collect(body).await;
    let declared = full.len().max(1);
    let half = full.slice(..full.len() / 2);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    let stream = futures::stream::unfold(0u8, move |step| {
        let half = half.clone();
        let conn = conn.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, io::Error>(half), 1)),
                1 => {
                    // Give the server time to flush the half body before failing the connection.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(conn) = conn {
                        conn.kill();
                    }
                    Some((Err(io::Error::other("kpipe-sim truncated the body")), 2))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The route's status and headers with the first half of its body (and a matching length).
async fn cut_in_half(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let full = collect(body).await;
    let half = full.slice(..full.len() / 2);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(half.len()));
    Response::from_parts(parts, Body::from(half))
}
