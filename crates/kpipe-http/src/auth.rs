//! OAuth2 access tokens: a static bearer token, the refresh-token grant, client credentials, and
//! the Google service-account JWT bearer grant. A token is shared by every request of a source,
//! refreshed before it expires and once when the platform refuses it, and never logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kpipe_core::{BoxFuture, CredentialKind, Secret, TokenFacts};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use url::Url;

use crate::client::HttpClient;
use crate::error::{HttpError, excerpt};
use crate::url::parse_base_url;

/// Refresh this long before the token's announced expiry, so that no request carries a token
/// that expires in flight.
const EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// An access token and the generation it belongs to (to refresh it at most once when refused).
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    generation: u64,
}

impl AccessToken {
    /// The value, for the `Authorization` header or the platform's query parameter.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// Which refresh produced it.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("value", &"***").field("generation", &self.generation).finish()
    }
}

/// Where requests get their access token.
pub trait TokenProvider: Send + Sync + std::fmt::Debug {
    /// A valid token, refreshed first if it expires soon or was refused.
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, HttpError>>;
    /// The platform refused the token of `generation`: the next call refreshes, once, however
    /// many requests saw the refusal.
    fn invalidate(&self, generation: u64);
    /// Tokens obtained so far.
    fn refreshes(&self) -> u64 {
        0
    }
    /// The kind of credential and the lifetimes announced with the last token; never a token.
    fn facts(&self) -> Option<TokenFacts> {
        None
    }
}

/// A token given in the configuration; it cannot be refreshed.
#[derive(Debug)]
pub struct StaticToken(Secret);

impl StaticToken {
    /// The provider of `token`.
    pub fn new(token: Secret) -> StaticToken {
        StaticToken(token)
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, HttpError>> {
        let token = AccessToken { value: self.0.clone(), generation: 0 };
        Box::pin(async move { Ok(token) })
    }

    fn invalidate(&self, _generation: u64) {}

    fn facts(&self) -> Option<TokenFacts> {
        Some(TokenFacts::of(CredentialKind::StaticAccessToken))
    }
}

/// A token response, reduced to what matters.
struct Granted {
    access_token: Secret,
    expires_in: Option<Duration>,
    /// LinkedIn's `refresh_token_expires_in`: what is left of the refresh token's fixed lifetime.
    refresh_token_expires_in: Option<Duration>,
}

/// One way of obtaining a token.
trait Grant: Send + Sync {
    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>>;
    fn describe(&self) -> &'static str;
    fn credential(&self) -> CredentialKind;
}

/// Caches a grant's token, refreshing it before expiry and after a refusal; concurrent callers
/// wait for one refresh instead of starting their own.
pub struct OAuthTokenProvider {
    grant: Box<dyn Grant>,
    /// How a token request that got no token for a transient reason is tried again: the
    /// backoff of API requests.
    retry: crate::RetryPolicy,
    state: tokio::sync::Mutex<Option<(AccessToken, Option<Instant>)>>,
    invalidated: AtomicU64,
    generations: AtomicU64,
    /// Read without waiting for a refresh in flight, so a std lock next to the async one.
    facts: RwLock<TokenFacts>,
}

impl std::fmt::Debug for OAuthTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokenProvider")
            .field("grant", &self.grant.describe())
            .field("refreshes", &self.generations.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl OAuthTokenProvider {
    fn new(grant: Box<dyn Grant>) -> OAuthTokenProvider {
        let facts = RwLock::new(TokenFacts::of(grant.credential()));
        OAuthTokenProvider {
            grant,
            retry: crate::RetryPolicy::default(),
            state: tokio::sync::Mutex::new(None),
            invalidated: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            facts,
        }
    }

    /// The same provider retrying its token requests with `policy` (the source's `retry`
    /// table), instead of the default policy.
    pub fn with_retry(mut self, policy: crate::RetryPolicy) -> OAuthTokenProvider {
        self.retry = policy;
        self
    }

    /// Asks the grant for a token; an endpoint that cannot be reached, throttles or fails
    /// (429, 5xx) is asked again after the backoff, up to the policy's attempts. A refusal
    /// (`invalid_grant`, ...) is final at once.
    async fn fetch_with_retries(&self) -> Result<Granted, HttpError> {
        let mut attempt = 1;
        loop {
            match self.grant.fetch().await {
                Err(HttpError::TokenEndpointUnavailable(reason)) if attempt < self.retry.max_attempts => {
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(grant = self.grant.describe(), attempt, ?wait, %reason,
                        "no token this time; asking again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(HttpError::TokenEndpointUnavailable(reason)) => {
                    return Err(HttpError::TokenEndpointUnavailable(format!(
                        "{reason} ({attempt} attempt(s))"
                    )));
                }
                other => return other,
            }
        }
    }

    /// The refresh-token grant (RFC 6749 §6). `credentials_in_body` sends the client id and
    /// secret as form fields (LinkedIn, HubSpot) rather than HTTP Basic.
    pub fn refresh_token(
        http: &HttpClient,
        token_url: &str,
        client_id: &str,
        client_secret: &Secret,
        refresh_token: &Secret,
        credentials_in_body: bool,
    ) -> Result<OAuthTokenProvider, HttpError> {
        let client = oauth_client(token_url, client_id, client_secret, credentials_in_body)?;
        Ok(OAuthTokenProvider::new(Box::new(RefreshTokenGrant {
            client,
            refresh_token: RwLock::new(refresh_token.clone()),
            http: TokenHttp(http.token_client()),
        })))
    }

    /// The client-credentials grant (RFC 6749 §4.4).
    pub fn client_credentials(
        http: &HttpClient,
        token_url: &str,
        client_id: &str,
        client_secret: &Secret,
        scopes: &[String],
        credentials_in_body: bool,
    ) -> Result<OAuthTokenProvider, HttpError> {
        let client = oauth_client(token_url, client_id, client_secret, credentials_in_body)?;
        Ok(OAuthTokenProvider::new(Box::new(ClientCredentialsGrant {
            client,
            scopes: scopes.to_vec(),
            http: TokenHttp(http.token_client()),
        })))
    }

    /// The JWT bearer grant of a Google service account (RFC 7523): an RS256-signed assertion
    /// from the key file's `client_email` and `private_key`, sent to its `token_uri` (or
    /// `token_url` when given).
    pub fn service_account(
        http: &HttpClient,
        key: ServiceAccountKey,
        scopes: &[String],
        token_url: Option<&str>,
    ) -> Result<OAuthTokenProvider, HttpError> {
        let token_url = parse_base_url(token_url.unwrap_or(&key.token_uri))?;
        Ok(OAuthTokenProvider::new(Box::new(JwtBearerGrant {
            key,
            scope: scopes.join(" "),
            token_url,
            http: http.token_client(),
        })))
    }
}

impl TokenProvider for OAuthTokenProvider {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, HttpError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            if let Some((token, expires_at)) = state.as_ref() {
                let refused = self.invalidated.load(Ordering::Acquire) >= token.generation;
                let expiring =
                    expires_at.is_some_and(|t| t.saturating_duration_since(Instant::now()) <= EXPIRY_SKEW);
                if !refused && !expiring {
                    return Ok(token.clone());
                }
            }
            let granted = self.fetch_with_retries().await?;
            let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
            let token = AccessToken { value: granted.access_token, generation };
            let expires_at = granted.expires_in.map(|d| Instant::now() + d);
            tracing::debug!(grant = self.grant.describe(), generation, expires_in = ?granted.expires_in,
                refresh_token_expires_in = ?granted.refresh_token_expires_in, "access token obtained");
            if let Ok(mut facts) = self.facts.write() {
                facts.access_token_lifetime = granted.expires_in;
                facts.refresh_token_remaining = granted.refresh_token_expires_in;
            }
            *state = Some((token.clone(), expires_at));
            Ok(token)
        })
    }

    fn invalidate(&self, generation: u64) {
        self.invalidated.fetch_max(generation, Ordering::AcqRel);
    }

    fn refreshes(&self) -> u64 {
        self.generations.load(Ordering::Relaxed)
    }

    fn facts(&self) -> Option<TokenFacts> {
        let facts = self.facts.read().map(|f| *f).unwrap_or_else(|_| TokenFacts::of(self.grant.credential()));
        Some(facts)
    }
}

/// A token endpoint's answer (RFC 6749 §5.1) with LinkedIn's `refresh_token_expires_in`.
/// `token_type` may be missing: LinkedIn's documented answers have none
/// (shared/apis/linkedin.md §5), and every platform kpipe serves issues bearer tokens.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct GrantAnswer {
    access_token: oauth2::AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    expires_in: Option<u64>,
    refresh_token: Option<RefreshToken>,
    /// Seconds left of the refresh token's fixed lifetime (LinkedIn).
    refresh_token_expires_in: Option<u64>,
    /// Not read: tokens are asked for with the scopes they need.
    #[serde(skip)]
    scopes: Option<Vec<Scope>>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl TokenResponse for GrantAnswer {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    GrantAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn oauth_client(
    token_url: &str,
    client_id: &str,
    client_secret: &Secret,
    credentials_in_body: bool,
) -> Result<OAuthClient, HttpError> {
    let url = parse_base_url(token_url)?;
    let token_url = TokenUrl::new(url.to_string())
        .map_err(|e| HttpError::BaseUrl { url: token_url.to_owned(), reason: e.to_string() })?;
    Ok(oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_client_secret(ClientSecret::new(client_secret.expose().to_owned()))
        .set_token_uri(token_url)
        .set_auth_type(if credentials_in_body { AuthType::RequestBody } else { AuthType::BasicAuth }))
}

struct RefreshTokenGrant {
    client: OAuthClient,
    refresh_token: RwLock<Secret>,
    http: TokenHttp,
}

impl Grant for RefreshTokenGrant {
    fn describe(&self) -> &'static str {
        "refresh_token"
    }

    fn credential(&self) -> CredentialKind {
        CredentialKind::RefreshToken
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>> {
        Box::pin(async move {
            let current = self
                .refresh_token
                .read()
                .map_err(|_| HttpError::Auth("token state poisoned".into()))?
                .clone();
            let refresh = RefreshToken::new(current.expose().to_owned());
            let response = self
                .client
                .exchange_refresh_token(&refresh)
                .request_async(&self.http)
                .await
                .map_err(|e| token_error(e, self.client.token_uri().as_str()))?;
            // Platforms that rotate refresh tokens send a new one; the old one stops working.
            if let Some(rotated) = response.refresh_token()
                && let Ok(mut slot) = self.refresh_token.write()
            {
                *slot = Secret::new(rotated.secret().clone());
            }
            Ok(Granted {
                access_token: Secret::new(response.access_token().secret().clone()),
                expires_in: response.expires_in(),
                refresh_token_expires_in: response.refresh_token_expires_in.map(Duration::from_secs),
            })
        })
    }
}

struct ClientCredentialsGrant {
    client: OAuthClient,
    scopes: Vec<String>,
    http: TokenHttp,
}

impl Grant for ClientCredentialsGrant {
    fn describe(&self) -> &'static str {
        "client_credentials"
    }

    fn credential(&self) -> CredentialKind {
        CredentialKind::ClientCredentials
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>> {
        Box::pin(async move {
            let mut request = self.client.exchange_client_credentials();
            for s in &self.scopes {
                request = request.add_scope(Scope::new(s.clone()));
            }
            let response = request
                .request_async(&self.http)
                .await
                .map_err(|e| token_error(e, self.client.token_uri().as_str()))?;
            Ok(Granted {
                access_token: Secret::new(response.access_token().secret().clone()),
                expires_in: response.expires_in(),
                refresh_token_expires_in: None,
            })
        })
    }
}

/// `url` without what it must not show (a query, user info): the token endpoint as messages
/// name it.
fn shown_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(the configured token URL)".to_owned(),
    }
}

/// The token endpoint at `url` could not be reached.
fn unreachable(url: &str, e: reqwest::Error) -> HttpError {
    let e = e.without_url();
    HttpError::TokenEndpointUnavailable(format!(
        "the token endpoint {} could not be reached: {}",
        shown_url(url),
        kpipe_core::ErrorChain(&e)
    ))
}

fn token_error(
    e: RequestTokenError<TokenTransportError, oauth2::basic::BasicErrorResponse>,
    url: &str,
) -> HttpError {
    match e {
        RequestTokenError::ServerResponse(r) => HttpError::Auth(format!(
            "the token endpoint refused the grant: {}{}",
            r.error(),
            r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        RequestTokenError::Request(e) if e.transient => HttpError::TokenEndpointUnavailable(format!(
            "the token endpoint {} could not be reached: {}",
            shown_url(url),
            kpipe_core::ErrorChain(&e)
        )),
        RequestTokenError::Request(e) => HttpError::Auth(format!(
            "the token endpoint {} could not be reached: {}",
            shown_url(url),
            kpipe_core::ErrorChain(&e)
        )),
        RequestTokenError::Parse(e, body) => {
            let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
            let holds_tokens = json.as_ref().is_some_and(|v| {
                ["access_token", "refresh_token", "id_token"].iter().any(|k| v.get(k).is_some())
            });
            if holds_tokens {
                // A granting answer: where it broke is told, never its text or a value of it.
                let inner = e.inner().to_string();
                let what = if inner.starts_with("missing field") {
                    inner.split(" at line").next().unwrap_or_default().to_owned()
                } else {
                    format!("`{}` has an unexpected value", e.path())
                };
                HttpError::Auth(format!("the token endpoint's answer is not a token response: {what}"))
            } else {
                HttpError::Auth(format!(
                    "the token endpoint's answer is not a token response ({e}): {}",
                    excerpt(&body, 200)
                ))
            }
        }
        RequestTokenError::Other(s) => HttpError::Auth(format!("the token request failed: {s}")),
    }
}

/// The oauth2 crate's HTTP client: our shared reqwest client, redirects off.
struct TokenHttp(reqwest::Client);

/// A token endpoint request that got no usable response: no answer at all, or a 429 or 5xx
/// (`transient`), which the same request may get past later.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TokenTransportError {
    message: String,
    transient: bool,
}

/// Whether a token endpoint's status is worth asking again: throttled or a server error, as
/// for API requests. A 400 (`invalid_grant`, `invalid_client`) is final.
fn transient_status(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenTransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TokenTransportError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let fail = |e: reqwest::Error| TokenTransportError {
                message: kpipe_core::ErrorChain(&e.without_url()).to_string(),
                transient: true,
            };
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(fail)?;
            if transient_status(response.status()) {
                return Err(TokenTransportError {
                    message: format!("it answered {}", response.status()),
                    transient: true,
                });
            }
            let mut builder = http::Response::builder().status(response.status());
            for (k, v) in response.headers() {
                builder = builder.header(k, v);
            }
            let bytes = response.bytes().await.map_err(fail)?;
            builder
                .body(bytes.to_vec())
                .map_err(|e| TokenTransportError { message: e.to_string(), transient: false })
        })
    }
}

/// A Google service-account key file, read for the JWT bearer grant. Its `Debug` shows no key.
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    key_pair: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    /// Reads the JSON key file's `client_email`, `private_key` (PEM, PKCS#8 or PKCS#1),
    /// `private_key_id` and `token_uri`.
    pub fn from_json(text: &str) -> Result<ServiceAccountKey, HttpError> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            // serde's message names the field or position, never the key material.
            HttpError::Auth(format!("the service-account key file is not valid: {e}"))
        })?;
        let not_rsa = || {
            HttpError::Auth("the service-account key's `private_key` is not an RSA private key in PEM".into())
        };
        // Google writes PKCS#8; a key converted with openssl may be PKCS#1. The parsers' own
        // errors are dropped so that nothing they might quote of the key reaches a message.
        let pem = file.private_key.as_bytes();
        let key_pair = match PrivatePkcs8KeyDer::from_pem_slice(pem) {
            Ok(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            Err(_) => {
                let der = PrivatePkcs1KeyDer::from_pem_slice(pem).map_err(|_| not_rsa())?;
                RsaKeyPair::from_der(der.secret_pkcs1_der())
            }
        }
        .map_err(|_| not_rsa())?;
        Ok(ServiceAccountKey {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            token_uri: file.token_uri.unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            key_pair,
        })
    }

    /// The service account's email.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// A signed assertion for `audience`, valid one hour from `now` (seconds since the epoch).
    pub fn assertion(&self, scope: &str, audience: &str, now: i64) -> Result<String, HttpError> {
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = serde_json::Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        // ring asks every RSA padding for a random source; PKCS#1 v1.5 draws nothing from it.
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| HttpError::Auth("the service-account assertion could not be signed".into()))?;
        let assertion = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        // The assertion is a credential for its hour: a token endpoint that quotes the request
        // in its refusal must not get it into a log or a summary.
        kpipe_core::register_secret(&assertion);
        Ok(assertion)
    }
}

struct JwtBearerGrant {
    key: ServiceAccountKey,
    scope: String,
    token_url: Url,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl Grant for JwtBearerGrant {
    fn describe(&self) -> &'static str {
        "jwt_bearer"
    }

    fn credential(&self) -> CredentialKind {
        CredentialKind::ServiceAccount
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>> {
        Box::pin(async move {
            let assertion =
                self.key.assertion(&self.scope, self.token_url.as_str(), chrono::Utc::now().timestamp())?;
            let response = self
                .http
                .post(self.token_url.clone())
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ])
                .send()
                .await
                .map_err(|e| unreachable(self.token_url.as_str(), e))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| {
                HttpError::Auth(format!("the token endpoint's answer was cut: {}", e.without_url()))
            })?;
            if transient_status(status) {
                return Err(HttpError::TokenEndpointUnavailable(format!(
                    "the token endpoint {} answered {status}",
                    shown_url(self.token_url.as_str())
                )));
            }
            if !status.is_success() {
                return Err(HttpError::Auth(format!(
                    "the token endpoint refused the assertion ({status}): {}",
                    excerpt(&body, 300)
                )));
            }
            let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
                HttpError::Auth(format!("the token endpoint's answer is not a token response: {e}"))
            })?;
            Ok(Granted {
                access_token: Secret::new(answer.access_token),
                expires_in: answer.expires_in.map(Duration::from_secs),
                refresh_token_expires_in: None,
            })
        })
    }
}

/// Shares one provider between the requests of a source.
pub type SharedTokenProvider = Arc<dyn TokenProvider>;

// ---------------------------------------------------------------------------------------------
// The authorization-code grant with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5), used once by
// `kpipe auth` to turn the code of a consent into a refresh token.

/// What the token endpoint granted for an authorization code. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct GrantedTokens {
    /// The access token (short-lived; kpipe obtains fresh ones from the refresh token).
    pub access_token: Secret,
    /// The access token's lifetime, when announced.
    pub access_token_expires_in: Option<Duration>,
    /// The refresh token, absent when the platform granted none (a Google consent without
    /// `access_type=offline`, a LinkedIn app without programmatic refresh tokens).
    pub refresh_token: Option<Secret>,
    /// The refresh token's lifetime, when announced (LinkedIn's `refresh_token_expires_in`).
    pub refresh_token_expires_in: Option<Duration>,
    /// The scopes granted, as the platform spelled them (`scope`, or HubSpot's `scopes` array).
    pub scope: Option<String>,
}

/// The fields of an authorization-code token response (RFC 6749 §5.1) that kpipe uses.
#[derive(serde::Deserialize)]
struct CodeAnswer {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<u64>,
    scope: Option<String>,
    scopes: Option<Vec<String>>,
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(serde::Deserialize)]
struct OAuthErrorAnswer {
    error: String,
    error_description: Option<String>,
}

/// Exchanges an authorization `code` for tokens at `token_url`, proving possession of the
/// PKCE `code_verifier`. `credentials_in_body` sends the client id and secret as form fields
/// (LinkedIn, HubSpot) instead of HTTP Basic (RFC 6749 §2.3.1). The request goes through the
/// token client, which never follows redirects, and no error message carries the code, the
/// verifier, the secret or a token.
#[allow(clippy::too_many_arguments)] // each is one field of the grant; a struct would only rename them
pub async fn exchange_authorization_code(
    http: &HttpClient,
    token_url: &str,
    client_id: &str,
    client_secret: &Secret,
    code: &Secret,
    redirect_uri: &str,
    code_verifier: &Secret,
    credentials_in_body: bool,
) -> Result<GrantedTokens, HttpError> {
    let url = parse_base_url(token_url)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier.expose()),
    ];
    let mut request = http.token_client().post(url);
    if credentials_in_body {
        form.push(("client_id", client_id));
        form.push(("client_secret", client_secret.expose()));
    } else {
        // RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        request = request.basic_auth(encode(client_id), Some(encode(client_secret.expose())));
    }
    let response = request.form(&form).send().await.map_err(|e| unreachable(token_url, e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError::Auth(format!("the token endpoint's answer was cut: {}", e.without_url())))?;
    if !status.is_success() {
        let reason = match serde_json::from_slice::<OAuthErrorAnswer>(&body) {
            Ok(e) => {
                format!("{}{}", e.error, e.error_description.map(|d| format!(" ({d})")).unwrap_or_default())
            }
            Err(_) => excerpt(&body, 200),
        };
        // An endpoint that echoes the request must not put the grant into our messages.
        let reason = [code, code_verifier, client_secret]
            .iter()
            .filter(|s| !s.expose().is_empty())
            .fold(reason, |r, s| r.replace(s.expose(), "***"));
        return Err(HttpError::Auth(format!(
            "the token endpoint refused the authorization code ({status}): {reason}"
        )));
    }
    // A success body holds tokens: its text never goes into a message, only serde's position.
    let answer: CodeAnswer = serde_json::from_slice(&body).map_err(|e| {
        HttpError::Auth(format!(
            "the token endpoint's answer is not a token response (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(GrantedTokens {
        access_token: Secret::new(answer.access_token),
        access_token_expires_in: answer.expires_in.map(Duration::from_secs),
        refresh_token: answer.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        refresh_token_expires_in: answer.refresh_token_expires_in.map(Duration::from_secs),
        scope: answer.scope.or_else(|| answer.scopes.map(|s| s.join(" "))),
    })
}

#[cfg(test)]
mod facts_tests {
    use kpipe_sim::platform::linkedin;
    use kpipe_sim::{AuthConfig, SimConfig, SimServer};

    use super::*;

    fn provider(http: &HttpClient, sim: &SimServer) -> OAuthTokenProvider {
        OAuthTokenProvider::refresh_token(
            http,
            sim.token_url(),
            "sim-client",
            &Secret::new("sim-secret"),
            &Secret::new("sim-refresh-token"),
            true,
        )
        .expect("provider")
    }

    #[tokio::test]
    async fn a_refresh_records_the_lifetimes_the_token_endpoint_announced() {
        // LinkedIn's refresh answer carries `expires_in` and `refresh_token_expires_in`
        // (shared/apis/linkedin.md §5), as the simulator's LinkedIn token endpoint sends them.
        let sim = SimServer::start(SimConfig::new(1).with_auth(linkedin::auth_config())).await.expect("sim");
        let http = HttpClient::new().expect("client");
        let tokens = provider(&http, &sim);
        assert_eq!(tokens.facts(), Some(TokenFacts::of(CredentialKind::RefreshToken)));
        tokens.token().await.expect("a token");
        let facts = tokens.facts().expect("facts");
        assert_eq!(facts.credential, CredentialKind::RefreshToken);
        assert_eq!(facts.access_token_lifetime, Some(Duration::from_secs(5_183_999)));
        assert_eq!(facts.refresh_token_remaining, Some(Duration::from_secs(31_535_999)));
    }

    #[tokio::test]
    async fn an_answer_without_a_refresh_lifetime_leaves_it_unknown() {
        // RFC 6749 §5.1: `expires_in` only, as Google and HubSpot answer (ga4.md §7, hubspot.md §7).
        let sim = SimServer::start(SimConfig::new(1).with_auth(AuthConfig::required())).await.expect("sim");
        let http = HttpClient::new().expect("client");
        let tokens = provider(&http, &sim);
        tokens.token().await.expect("a token");
        let facts = tokens.facts().expect("facts");
        assert_eq!(facts.access_token_lifetime, Some(Duration::from_secs(3600)));
        assert_eq!(facts.refresh_token_remaining, None);
        assert_eq!(
            StaticToken::new(Secret::new("t")).facts(),
            Some(TokenFacts::of(CredentialKind::StaticAccessToken))
        );
    }
}

#[cfg(test)]
mod authorization_code_tests {
    //! Against a one-connection HTTP server on 127.0.0.1 that records the request and answers
    //! as the platforms' token endpoints do (shared/apis/linkedin.md §5, hubspot.md §7, ga4.md §7).

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Serves one request with `status` and the JSON `body`; yields the raw request text.
    async fn one_shot(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/oauth/v2/accessToken", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.expect("read");
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&request).to_string()
        });
        (url, task)
    }

    fn form_of(request: &str) -> Vec<(String, String)> {
        let body = request.split("\r\n\r\n").nth(1).unwrap_or_default();
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
    }

    #[tokio::test]
    async fn the_code_and_verifier_are_sent_and_the_refresh_token_comes_back() {
        // LinkedIn's documented authorization_code response (linkedin.md §5).
        let (url, server) = one_shot(
            200,
            r#"{"access_token": "AQX-access", "expires_in": 5183999, "refresh_token": "AQW-refresh",
                "refresh_token_expires_in": 31535999, "scope": "r_ads,r_ads_reporting"}"#,
        )
        .await;
        let http = HttpClient::new().expect("client");
        let granted = exchange_authorization_code(
            &http,
            &url,
            "client-1",
            &Secret::new("s3cret"),
            &Secret::new("the-code"),
            "http://127.0.0.1:8765/callback",
            &Secret::new("the-verifier"),
            true,
        )
        .await
        .expect("granted");
        assert_eq!(granted.refresh_token.as_ref().map(Secret::expose), Some("AQW-refresh"));
        assert_eq!(granted.refresh_token_expires_in, Some(Duration::from_secs(31535999)));
        assert_eq!(granted.access_token_expires_in, Some(Duration::from_secs(5183999)));
        assert_eq!(granted.scope.as_deref(), Some("r_ads,r_ads_reporting"));
        assert!(!format!("{granted:?}").contains("AQW-refresh"));

        let request = server.await.expect("served");
        assert!(request.starts_with("POST /oauth/v2/accessToken "), "{request}");
        assert!(!request.to_ascii_lowercase().contains("authorization: basic"), "{request}");
        let form = form_of(&request);
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some("authorization_code"));
        assert_eq!(get("code"), Some("the-code"));
        assert_eq!(get("code_verifier"), Some("the-verifier"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:8765/callback"));
        assert_eq!(get("client_id"), Some("client-1"));
        assert_eq!(get("client_secret"), Some("s3cret"));
    }

    #[tokio::test]
    async fn basic_credentials_are_form_encoded_and_hubspot_scopes_are_read() {
        // HubSpot's AccessTokenResponse lists `scopes` as an array (hubspot.md §7).
        let (url, server) = one_shot(
            200,
            r#"{"token_type": "bearer", "access_token": "CKDZ", "expires_in": 1800,
                "refresh_token": "6f18f26a", "scopes": ["oauth", "content"]}"#,
        )
        .await;
        let http = HttpClient::new().expect("client");
        let granted = exchange_authorization_code(
            &http,
            &url,
            "id:1",
            &Secret::new("a b"),
            &Secret::new("c"),
            "http://127.0.0.1:1/callback",
            &Secret::new("v"),
            false,
        )
        .await
        .expect("granted");
        assert_eq!(granted.scope.as_deref(), Some("oauth content"));
        assert_eq!(granted.refresh_token_expires_in, None);
        let request = server.await.expect("served");
        // base64("id%3A1:a+b")
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3A1:a+b");
        assert!(request.contains(&format!("authorization: Basic {expected}")), "{request}");
        let form = form_of(&request);
        assert!(form.iter().all(|(k, _)| k != "client_secret" && k != "client_id"), "{form:?}");
    }

    #[tokio::test]
    async fn a_refusal_names_the_oauth_error_and_never_the_grant() {
        // A server that echoes the verifier back in its description.
        let (url, server) = one_shot(
            400,
            r#"{"error": "invalid_grant", "error_description": "code_verifier the-verifier does not match"}"#,
        )
        .await;
        let http = HttpClient::new().expect("client");
        let err = exchange_authorization_code(
            &http,
            &url,
            "client-1",
            &Secret::new("s3cret"),
            &Secret::new("the-code"),
            "http://127.0.0.1:8765/callback",
            &Secret::new("the-verifier"),
            true,
        )
        .await
        .expect_err("refused");
        server.await.expect("served");
        let message = err.to_string();
        assert!(message.contains("invalid_grant"), "{message}");
        assert!(message.contains("400"), "{message}");
        assert!(!message.contains("the-verifier"), "{message}");
        assert!(matches!(err.kind(), kpipe_core::ErrorKind::Auth));
    }

    #[tokio::test]
    async fn a_refresh_answer_as_linkedin_documents_it_is_read_without_a_token_type() {
        // linkedin.md §5: no `token_type`, and what is left of the refresh token's 365 days.
        let (url, server) = one_shot(
            200,
            r#"{"access_token": "AQX-access", "expires_in": 5183999, "refresh_token": "AQW-refresh",
                "refresh_token_expires_in": 26438399, "scope": "r_ads,r_ads_reporting"}"#,
        )
        .await;
        let http = HttpClient::new().expect("client");
        let tokens = OAuthTokenProvider::refresh_token(
            &http,
            &url,
            "client-1",
            &Secret::new("s3cret"),
            &Secret::new("AQW-refresh"),
            true,
        )
        .expect("provider");
        let token = tokens.token().await.expect("granted");
        assert_eq!(token.expose(), "AQX-access");
        let request = server.await.expect("served");
        let form = form_of(&request);
        assert!(form.contains(&("grant_type".to_owned(), "refresh_token".to_owned())), "{form:?}");
        let facts = tokens.facts().expect("facts");
        assert_eq!(facts.refresh_token_remaining, Some(Duration::from_secs(26_438_399)));
        assert_eq!(facts.access_token_lifetime, Some(Duration::from_secs(5_183_999)));
    }

    #[tokio::test]
    async fn a_granting_refresh_answer_that_cannot_be_read_is_not_quoted() {
        let (url, server) = one_shot(
            200,
            r#"{"access_token": "AQX-leaked-if-quoted", "expires_in": "AQW-leaked-if-quoted"}"#,
        )
        .await;
        let http = HttpClient::new().expect("client");
        let tokens =
            OAuthTokenProvider::refresh_token(&http, &url, "c", &Secret::new("s"), &Secret::new("r"), true)
                .expect("provider");
        let err = tokens.token().await.expect_err("not a token response");
        server.await.expect("served");
        let message = err.to_string();
        assert!(message.contains("`expires_in` has an unexpected value"), "{message}");
        assert!(!message.contains("leaked-if-quoted"), "{message}");
    }

    #[tokio::test]
    async fn a_success_body_that_is_not_a_token_response_is_not_quoted() {
        let (url, server) = one_shot(200, r#"{"refresh_token": "leaked-if-quoted"}"#).await;
        let http = HttpClient::new().expect("client");
        let err = exchange_authorization_code(
            &http,
            &url,
            "c",
            &Secret::new("s"),
            &Secret::new("code"),
            "http://127.0.0.1:1/callback",
            &Secret::new("v"),
            true,
        )
        .await
        .expect_err("not a token response");
        server.await.expect("served");
        assert!(!err.to_string().contains("leaked-if-quoted"), "{err}");
    }
}

#[cfg(test)]
mod service_account_tests {
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    const PKCS8_PEM: &str = include_str!("../../kpipe-sim/tests/fixtures/test-service-account-key.pem");
    const NOT_RSA: &str =
        "authentication failed: the service-account key's `private_key` is not an RSA private key in PEM";

    fn key_file(private_key: &str) -> String {
        serde_json::json!({
            "client_email": "sa@example.iam.gserviceaccount.com",
            "private_key_id": "k1",
            "private_key": private_key,
        })
        .to_string()
    }

    /// The fixture key as PKCS#1: the contents of the PKCS#8 wrapper's privateKey OCTET STRING,
    /// which for this key start after 26 bytes (SEQUENCE, version, algorithm, OCTET STRING
    /// headers).
    fn pkcs1_pem() -> String {
        let pkcs8 = PrivatePkcs8KeyDer::from_pem_slice(PKCS8_PEM.as_bytes()).expect("fixture");
        let rsa_private_key = &pkcs8.secret_pkcs8_der()[26..];
        assert_eq!(rsa_private_key.first(), Some(&0x30), "an RSAPrivateKey SEQUENCE");
        let body = STANDARD.encode(rsa_private_key);
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n")
    }

    #[test]
    fn pkcs8_and_pkcs1_keys_sign_the_same_verifiable_assertion() {
        let pkcs8 = ServiceAccountKey::from_json(&key_file(PKCS8_PEM)).expect("PKCS#8");
        let pkcs1 = ServiceAccountKey::from_json(&key_file(&pkcs1_pem())).expect("PKCS#1");
        let scope = "https://www.googleapis.com/auth/analytics.readonly";
        let assertion =
            pkcs8.assertion(scope, "https://oauth2.googleapis.com/token", 1_700_000_000).expect("sign");
        // RSASSA-PKCS1-v1_5 is deterministic: one key, one signature, whatever its encoding.
        assert_eq!(
            pkcs1.assertion(scope, "https://oauth2.googleapis.com/token", 1_700_000_000).expect("sign"),
            assertion
        );

        let (signed, signature) = assertion.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs8.key_pair.public().as_ref())
            .verify(signed.as_bytes(), &signature)
            .expect("a valid RS256 signature");
        let (header, claims) = signed.split_once('.').expect("header and claims");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
        assert_eq!(header, serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "k1" }));
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64url")).expect("JSON");
        assert_eq!(claims["iss"], "sa@example.iam.gserviceaccount.com");
        assert_eq!(claims["exp"], 1_700_003_600);
    }

    #[test]
    fn a_key_that_is_not_an_rsa_private_key_in_pem_is_refused_without_echoing_it() {
        let pkcs1 = pkcs1_pem();
        let truncated = format!("{}\n-----END RSA PRIVATE KEY-----\n", &pkcs1[..400]);
        let public = include_str!("../../kpipe-sim/tests/fixtures/test-service-account-key.pub.pem");
        for private_key in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            truncated.as_str(),
            public,
        ] {
            let err = ServiceAccountKey::from_json(&key_file(private_key)).expect_err("not a key");
            assert_eq!(err.to_string(), NOT_RSA);
            assert!(!format!("{err:?}").contains("AAAA"), "{err:?}");
        }
    }
}
