//! The simulator's knobs: seed, latency, quotas, faults, OAuth2 and routes.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::error::SimError;
use crate::fault::FaultRule;
use crate::platform::Platform;
use crate::platform::test_routes::TestRoutesConfig;
use crate::quota::QuotaRule;
use crate::rng::SimRng;

/// A canned HTTP response: a status, extra headers and a JSON body.
///
/// Used for quota rejections, injected faults and authentication failures, so each can be made
/// to look like a given platform's envelope (see the per-platform modules, e.g.
/// [`crate::platform::linkedin::daily_quota_exhausted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CannedResponse {
    /// The HTTP status code (e.g. 429, 503, or 200 for an error hidden in a success body).
    pub status: u16,
    /// Extra headers, in order (e.g. `("Retry-After", "2")`).
    pub headers: Vec<(String, String)>,
    /// The JSON body; [`Value::Null`] sends an empty body.
    pub body: Value,
}

impl CannedResponse {
    /// A response with this status and JSON body and no extra headers.
    #[must_use]
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    /// The same response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same response with `Retry-After: <seconds>` (replacing any earlier one).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("retry-after"));
        self.with_header("Retry-After", seconds.to_string())
    }

    /// A generic `429 Too Many Requests` with a small JSON body and no `Retry-After`.
    #[must_use]
    pub fn too_many_requests() -> Self {
        Self::json(429, json!({"status": 429, "error": "rate_limited", "message": "Too many requests"}))
    }

    /// A generic server error (`500`, `502`, `503`, ...) with a JSON error body.
    #[must_use]
    pub fn server_error(status: u16) -> Self {
        let reason =
            StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
        Self::json(status, json!({"status": status, "error": "server_error", "message": reason}))
    }

    /// Builds the HTTP response. Headers that are not valid HTTP are skipped with a warning.
    pub(crate) fn to_response(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if self.body.is_null() {
            status.into_response()
        } else {
            let body = self.body.to_string();
            let mut response = (status, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        for (name, value) in &self.headers {
            match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
                (Ok(name), Ok(value)) => {
                    response.headers_mut().insert(name, value);
                }
                _ => tracing::warn!(header = %name, "kpipe-sim: skipping an invalid canned header"),
            }
        }
        response
    }
}

/// How long the simulator waits before answering a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// Always wait this long.
    Fixed(Duration),
    /// Wait a duration drawn uniformly (from the seeded generator) in `[min, max]`.
    Uniform {
        /// The shortest wait.
        min: Duration,
        /// The longest wait.
        max: Duration,
    },
}

impl Latency {
    /// A fixed latency of `ms` milliseconds.
    #[must_use]
    pub const fn fixed_ms(ms: u64) -> Self {
        Self::Fixed(Duration::from_millis(ms))
    }

    /// A latency uniform in `[min_ms, max_ms]` milliseconds (e.g. `uniform_ms(150, 600)`).
    #[must_use]
    pub const fn uniform_ms(min_ms: u64, max_ms: u64) -> Self {
        Self::Uniform { min: Duration::from_millis(min_ms), max: Duration::from_millis(max_ms) }
    }

    /// Draws one latency from `rng`.
    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Fixed(d) => d,
            Self::Uniform { min, max } => {
                let low = u64::try_from(min.as_micros()).unwrap_or(u64::MAX);
                let high = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
                Duration::from_micros(rng.range(low, high.saturating_add(1)))
            }
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        match self {
            Self::Uniform { min, max } if min > max => {
                Err(SimError::Config(format!("latency range minimum {min:?} exceeds maximum {max:?}")))
            }
            _ => Ok(()),
        }
    }
}

/// An OAuth2 client the token endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// `client_id`, as a form field or the HTTP Basic user name.
    pub client_id: String,
    /// `client_secret`, as a form field or the HTTP Basic password.
    pub client_secret: String,
}

impl OAuthClient {
    /// A client with this id and secret.
    #[must_use]
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: client_secret.into() }
    }
}

/// What a `refresh_token` grant returns besides the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshRotation {
    /// No `refresh_token` in the response (Google).
    #[default]
    Omit,
    /// The same refresh token is echoed back (LinkedIn's fixed-TTL refresh tokens).
    Echo,
    /// A new refresh token is issued and the one used becomes invalid.
    Rotate,
}

/// The `urn:ietf:params:oauth:grant-type:jwt-bearer` grant (Google service accounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerConfig {
    /// The RSA public key that verifies assertions, PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub public_key_pem: String,
    /// The required `iss` claim (the service account's e-mail).
    pub issuer: String,
    /// The required `aud` claim; `None` means the simulator's token URL.
    pub audience: Option<String>,
    /// The longest accepted `exp - iat` (Google: one hour).
    pub max_lifetime: Duration,
}

impl JwtBearerConfig {
    /// Assertions signed by the key whose public half is `public_key_pem`, issued by `issuer`,
    /// addressed to the token URL, living at most one hour.
    #[must_use]
    pub fn new(public_key_pem: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            public_key_pem: public_key_pem.into(),
            issuer: issuer.into(),
            audience: None,
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// The OAuth2 token endpoint and the bearer-token check on API routes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// Whether API routes require `Authorization: Bearer <token issued by the simulator>`.
    /// Off by default; the token endpoint works either way.
    pub require_bearer: bool,
    /// The token endpoint's path (default `/oauth/token`).
    pub token_path: String,
    /// Accepted clients for the `refresh_token` and `client_credentials` grants.
    pub clients: Vec<OAuthClient>,
    /// Refresh tokens accepted by the `refresh_token` grant.
    pub refresh_tokens: Vec<String>,
    /// What the `refresh_token` grant returns as `refresh_token`.
    pub refresh_rotation: RefreshRotation,
    /// Whether the `client_credentials` grant is enabled.
    pub allow_client_credentials: bool,
    /// The JWT-bearer grant; `None` disables it.
    pub jwt_bearer: Option<JwtBearerConfig>,
    /// The `expires_in` reported for issued tokens.
    pub expires_in: Duration,
    /// How long issued tokens really work; `None` means `expires_in`.
    pub expire_after: Option<Duration>,
    /// Each issued token works for this many API requests, then answers 401.
    pub expire_after_uses: Option<u64>,
    /// The `token_type` in token responses (`Bearer`; Facebook and HubSpot send `bearer`).
    pub token_type: String,
    /// Extra fields merged into every token response (e.g. LinkedIn's `refresh_token_expires_in`).
    pub extra_token_fields: Map<String, Value>,
    /// Access tokens that are always valid (static/private-app tokens); never expire.
    pub static_tokens: Vec<String>,
    /// The prefix of issued access tokens.
    pub token_prefix: String,
    /// The answer to an expired token.
    pub expired_response: CannedResponse,
    /// The answer to a missing or unknown token.
    pub invalid_response: CannedResponse,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            require_bearer: false,
            token_path: "/oauth/token".to_owned(),
            clients: vec![OAuthClient::new("sim-client", "sim-secret")],
            refresh_tokens: vec!["sim-refresh-token".to_owned()],
            refresh_rotation: RefreshRotation::Omit,
            allow_client_credentials: true,
            jwt_bearer: None,
            expires_in: Duration::from_secs(3600),
            expire_after: None,
            expire_after_uses: None,
            token_type: "Bearer".to_owned(),
            extra_token_fields: Map::new(),
            static_tokens: Vec::new(),
            token_prefix: "sim-at-".to_owned(),
            expired_response: CannedResponse::json(
                401,
                json!({"error": "invalid_token", "error_description": "The access token expired"}),
            )
            .with_header("WWW-Authenticate", r#"Bearer error="invalid_token""#),
            invalid_response: CannedResponse::json(
                401,
                json!({"error": "invalid_token", "error_description": "Missing or unknown access token"}),
            )
            .with_header("WWW-Authenticate", r#"Bearer error="invalid_token""#),
        }
    }
}

impl AuthConfig {
    /// The default configuration with bearer tokens required on API routes.
    #[must_use]
    pub fn required() -> Self {
        Self { require_bearer: true, ..Self::default() }
    }
}

/// Everything [`crate::SimServer::start`] needs. `SimConfig::default()` is seed 0, no latency,
/// no quotas, no faults, no bearer check, and the generic `/test/...` routes.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed of every generated value: same seed, same responses.
    pub seed: u64,
    /// The latency of every API response (not the token endpoint's).
    pub latency: Latency,
    /// Latency overrides by path prefix; the first match wins over [`SimConfig::latency`].
    pub path_latency: Vec<(String, Latency)>,
    /// The latency of the token endpoint.
    pub token_latency: Latency,
    /// Quotas, checked in order when a request arrives.
    pub quotas: Vec<QuotaRule>,
    /// Injected faults; the first rule that triggers wins.
    pub faults: Vec<FaultRule>,
    /// The token endpoint and the bearer check.
    pub auth: AuthConfig,
    /// The generic `/test/...` routes; `None` leaves them out.
    pub test_routes: Option<TestRoutesConfig>,
    /// Platform route modules mounted on the server.
    pub platforms: Vec<Arc<dyn Platform>>,
    /// How many requests [`crate::SimServer::requests`] remembers (the oldest are forgotten).
    pub request_log_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latency: Latency::None,
            path_latency: Vec::new(),
            token_latency: Latency::None,
            quotas: Vec::new(),
            faults: Vec::new(),
            auth: AuthConfig::default(),
            test_routes: Some(TestRoutesConfig::default()),
            platforms: Vec::new(),
            request_log_limit: 10_000,
        }
    }
}

impl SimConfig {
    /// The default configuration with this seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { seed, ..Self::default() }
    }

    /// Sets the latency of every API response.
    #[must_use]
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Adds a latency override for paths starting with `prefix`.
    #[must_use]
    pub fn with_path_latency(mut self, prefix: impl Into<String>, latency: Latency) -> Self {
        self.path_latency.push((prefix.into(), latency));
        self
    }

    /// Adds a quota.
    #[must_use]
    pub fn with_quota(mut self, quota: QuotaRule) -> Self {
        self.quotas.push(quota);
        self
    }

    /// Adds a fault rule.
    #[must_use]
    pub fn with_fault(mut self, fault: FaultRule) -> Self {
        self.faults.push(fault);
        self
    }

    /// Replaces the OAuth2 configuration.
    #[must_use]
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = auth;
        self
    }

    /// Replaces the generic test routes' configuration.
    #[must_use]
    pub fn with_test_routes(mut self, routes: TestRoutesConfig) -> Self {
        self.test_routes = Some(routes);
        self
    }

    /// Mounts a platform's routes.
    #[must_use]
    pub fn with_platform(mut self, platform: Arc<dyn Platform>) -> Self {
        self.platforms.push(platform);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        self.latency.validate()?;
        self.token_latency.validate()?;
        for (_, latency) in &self.path_latency {
            latency.validate()?;
        }
        for quota in &self.quotas {
            quota.validate()?;
        }
        for fault in &self.faults {
            fault.validate()?;
        }
        if !self.auth.token_path.starts_with('/') {
            return Err(SimError::Config(format!(
                "token path {:?} must start with '/'",
                self.auth.token_path
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_latency_stays_in_range_and_is_seeded() {
        let latency = Latency::uniform_ms(150, 600);
        let mut a = SimRng::new(1);
        let mut b = SimRng::new(1);
        for _ in 0..1000 {
            let d = latency.sample(&mut a);
            assert!(d >= Duration::from_millis(150) && d <= Duration::from_millis(600), "{d:?}");
            assert_eq!(d, latency.sample(&mut b));
        }
        assert!(Latency::uniform_ms(10, 5).validate().is_err());
    }

    #[test]
    fn retry_after_replaces_an_earlier_one() {
        let r = CannedResponse::too_many_requests().with_retry_after(3).with_retry_after(5);
        assert_eq!(r.headers, vec![("Retry-After".to_owned(), "5".to_owned())]);
    }
}
