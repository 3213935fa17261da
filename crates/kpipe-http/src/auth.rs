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
use kpipe_core::{BoxFuture, Secret};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
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
}

/// A token response, reduced to what matters.
struct Granted {
    access_token: Secret,
    expires_in: Option<Duration>,
}

/// One way of obtaining a token.
trait Grant: Send + Sync {
    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>>;
    fn describe(&self) -> &'static str;
}

/// Caches a grant's token, refreshing it before expiry and after a refusal; concurrent callers
/// wait for one refresh instead of starting their own.
pub struct OAuthTokenProvider {
    grant: Box<dyn Grant>,
    state: tokio::sync::Mutex<Option<(AccessToken, Option<Instant>)>>,
    invalidated: AtomicU64,
    generations: AtomicU64,
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
        OAuthTokenProvider {
            grant,
            state: tokio::sync::Mutex::new(None),
            invalidated: AtomicU64::new(0),
            generations: AtomicU64::new(0),
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
            let granted = self.grant.fetch().await?;
            let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
            let token = AccessToken { value: granted.access_token, generation };
            let expires_at = granted.expires_in.map(|d| Instant::now() + d);
            tracing::debug!(grant = self.grant.describe(), generation, expires_in = ?granted.expires_in, "access token obtained");
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
}

type OAuthClient = BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn oauth_client(
    token_url: &str,
    client_id: &str,
    client_secret: &Secret,
    credentials_in_body: bool,
) -> Result<OAuthClient, HttpError> {
    let url = parse_base_url(token_url)?;
    let token_url = TokenUrl::new(url.to_string())
        .map_err(|e| HttpError::BaseUrl { url: token_url.to_owned(), reason: e.to_string() })?;
    Ok(BasicClient::new(ClientId::new(client_id.to_owned()))
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
                .map_err(token_error)?;
            // Platforms that rotate refresh tokens send a new one; the old one stops working.
            if let Some(rotated) = response.refresh_token()
                && let Ok(mut slot) = self.refresh_token.write()
            {
                *slot = Secret::new(rotated.secret().clone());
            }
            Ok(Granted {
                access_token: Secret::new(response.access_token().secret().clone()),
                expires_in: response.expires_in(),
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

    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>> {
        Box::pin(async move {
            let mut request = self.client.exchange_client_credentials();
            for s in &self.scopes {
                request = request.add_scope(Scope::new(s.clone()));
            }
            let response = request.request_async(&self.http).await.map_err(token_error)?;
            Ok(Granted {
                access_token: Secret::new(response.access_token().secret().clone()),
                expires_in: response.expires_in(),
            })
        })
    }
}

fn token_error<E: std::error::Error + 'static>(
    e: RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> HttpError {
    match e {
        RequestTokenError::ServerResponse(r) => HttpError::Auth(format!(
            "the token endpoint refused the grant: {}{}",
            r.error(),
            r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        RequestTokenError::Request(e) => {
            HttpError::Auth(format!("the token endpoint could not be reached: {e}"))
        }
        RequestTokenError::Parse(e, body) => HttpError::Auth(format!(
            "the token endpoint's answer is not a token response ({e}): {}",
            excerpt(&body, 200)
        )),
        RequestTokenError::Other(s) => HttpError::Auth(format!("the token request failed: {s}")),
    }
}

/// The oauth2 crate's HTTP client: our shared reqwest client, redirects off.
struct TokenHttp(reqwest::Client);

/// A token endpoint request that got no response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenTransportError(String);

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenTransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TokenTransportError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let fail = |e: reqwest::Error| TokenTransportError(e.without_url().to_string());
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(fail)?;
            let mut builder = http::Response::builder().status(response.status());
            for (k, v) in response.headers() {
                builder = builder.header(k, v);
            }
            let bytes = response.bytes().await.map_err(fail)?;
            builder.body(bytes.to_vec()).map_err(|e| TokenTransportError(e.to_string()))
        })
    }
}

/// A Google service-account key file, read for the JWT bearer grant. Its `Debug` shows no key.
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    signing_key: SigningKey<Sha256>,
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
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&file.private_key)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&file.private_key))
            .map_err(|_| {
                HttpError::Auth(
                    "the service-account key's `private_key` is not an RSA private key in PEM".into(),
                )
            })?;
        Ok(ServiceAccountKey {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            token_uri: file.token_uri.unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            signing_key: SigningKey::<Sha256>::new(key),
        })
    }

    /// The service account's email.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// A signed assertion for `audience`, valid one hour from `now` (seconds since the epoch).
    pub fn assertion(&self, scope: &str, audience: &str, now: i64) -> String {
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
        let signature = self.signing_key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
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

    fn fetch(&self) -> BoxFuture<'_, Result<Granted, HttpError>> {
        Box::pin(async move {
            let assertion =
                self.key.assertion(&self.scope, self.token_url.as_str(), chrono::Utc::now().timestamp());
            let response = self
                .http
                .post(self.token_url.clone())
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ])
                .send()
                .await
                .map_err(|e| {
                    HttpError::Auth(format!("the token endpoint could not be reached: {}", e.without_url()))
                })?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| {
                HttpError::Auth(format!("the token endpoint's answer was cut: {}", e.without_url()))
            })?;
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
            })
        })
    }
}

/// Shares one provider between the requests of a source.
pub type SharedTokenProvider = Arc<dyn TokenProvider>;
