//! The OAuth2 token endpoint (refresh_token, client_credentials, JWT bearer) and the store of
//! issued access tokens with their use counts and expiry.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderMap;
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;

use crate::config::{AuthConfig, CannedResponse, JwtBearerConfig, RefreshRotation};
use crate::error::SimError;
use crate::rng::SimRng;
use crate::server::SimState;

/// The JWT-bearer grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Debug)]
struct TokenInfo {
    expires_at: Option<Instant>,
    max_uses: Option<u64>,
    uses: u64,
    expired: bool,
}

/// What the bearer check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    Expired,
    Invalid,
}

/// Issued access tokens and valid refresh tokens.
#[derive(Debug)]
pub(crate) struct TokenStore {
    seed: u64,
    prefix: String,
    tokens: Mutex<HashMap<String, TokenInfo>>,
    refresh_tokens: Mutex<HashSet<String>>,
    counter: AtomicU64,
    issued: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenStore {
    pub(crate) fn new(seed: u64, config: &AuthConfig) -> Self {
        let tokens = config
            .static_tokens
            .iter()
            .map(|t| (t.clone(), TokenInfo { expires_at: None, max_uses: None, uses: 0, expired: false }))
            .collect();
        Self {
            seed,
            prefix: config.token_prefix.clone(),
            tokens: Mutex::new(tokens),
            refresh_tokens: Mutex::new(config.refresh_tokens.iter().cloned().collect()),
            counter: AtomicU64::new(0),
            issued: AtomicU64::new(0),
        }
    }

    fn random(&self, label: &str, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{}", SimRng::derive(self.seed, label, n).hex(16))
    }

    /// Issues a new access token valid for `lifetime` and `max_uses` requests.
    pub(crate) fn issue(&self, lifetime: Option<Duration>, max_uses: Option<u64>) -> String {
        let token = self.random("access-token", &self.prefix);
        let info =
            TokenInfo { expires_at: lifetime.map(|l| Instant::now() + l), max_uses, uses: 0, expired: false };
        lock(&self.tokens).insert(token.clone(), info);
        self.issued.fetch_add(1, Ordering::Relaxed);
        token
    }

    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Checks a presented token and counts one use when it is valid.
    pub(crate) fn check_and_use(&self, token: &str) -> TokenCheck {
        let mut tokens = lock(&self.tokens);
        let Some(info) = tokens.get_mut(token) else { return TokenCheck::Invalid };
        let timed_out = info.expires_at.is_some_and(|at| Instant::now() >= at);
        let used_up = info.max_uses.is_some_and(|max| info.uses >= max);
        if info.expired || timed_out || used_up {
            info.expired = true;
            return TokenCheck::Expired;
        }
        info.uses += 1;
        TokenCheck::Valid
    }

    /// Marks one token (or, with `None`, every issued token) expired.
    pub(crate) fn expire(&self, token: Option<&str>) {
        let mut tokens = lock(&self.tokens);
        match token {
            Some(token) => {
                if let Some(info) = tokens.get_mut(token) {
                    info.expired = true;
                }
            }
            None => tokens.values_mut().for_each(|info| info.expired = true),
        }
    }

    /// How many API requests a token has been used for.
    pub(crate) fn uses(&self, token: &str) -> Option<u64> {
        lock(&self.tokens).get(token).map(|i| i.uses)
    }

    fn refresh_is_valid(&self, token: &str) -> bool {
        lock(&self.refresh_tokens).contains(token)
    }

    fn rotate_refresh(&self, old: &str) -> String {
        let new = self.random("refresh-token", "sim-rt-");
        let mut set = lock(&self.refresh_tokens);
        set.remove(old);
        set.insert(new.clone());
        new
    }
}

/// The parsed JWT-bearer configuration.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    key: VerifyingKey<Sha256>,
    issuer: String,
    audience: String,
    max_lifetime: Duration,
}

impl JwtVerifier {
    pub(crate) fn new(config: &JwtBearerConfig, token_url: &str) -> Result<Self, SimError> {
        let pem = config.public_key_pem.trim();
        let key = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| SimError::PublicKey(e.to_string()))?;
        Ok(Self {
            key: VerifyingKey::new(key),
            issuer: config.issuer.clone(),
            audience: config.audience.clone().unwrap_or_else(|| token_url.to_owned()),
            max_lifetime: config.max_lifetime,
        })
    }

    /// Verifies an RS256 assertion: signature, `alg`, `iss`, `aud`, `exp` (and `iat` when sent).
    pub(crate) fn verify(&self, assertion: &str, now_unix: u64) -> Result<Value, String> {
        let mut parts = assertion.split('.');
        let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("Invalid JWT: expected three dot-separated parts.".to_owned());
        };
        let header: Value =
            decode_json(header_b64).ok_or("Invalid JWT: the header is not base64url JSON.")?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("Invalid JWT: the algorithm must be RS256.".to_owned());
        }
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64.trim_end_matches('='))
            .ok()
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or("Invalid JWT Signature.")?;
        let signed = &assertion[..header_b64.len() + 1 + claims_b64.len()];
        self.key.verify(signed.as_bytes(), &signature).map_err(|_| "Invalid JWT Signature.".to_owned())?;

        let claims: Value =
            decode_json(claims_b64).ok_or("Invalid JWT: the claims are not base64url JSON.")?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("Invalid JWT: unknown issuer (iss).".to_owned());
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(format!("Invalid JWT: the audience (aud) must be {}.", self.audience));
        }
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or("Invalid JWT: missing exp.")?;
        if exp <= now_unix {
            return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (exp is in the past).".to_owned());
        }
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64) {
            let too_long = exp.saturating_sub(iat) > self.max_lifetime.as_secs();
            let in_future = iat > now_unix + 300;
            if too_long || in_future {
                return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".to_owned());
            }
        }
        Ok(claims)
    }
}

fn decode_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    CannedResponse::json(status, json!({"error": error, "error_description": description})).to_response()
}

/// `(client_id, client_secret)` from HTTP Basic auth, else from the form.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())));
    basic.or_else(|| Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone())))
}

/// `POST <token_path>`, `application/x-www-form-urlencoded`.
pub(crate) async fn token_endpoint(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return oauth_error(400, "invalid_request", &rejection.body_text()),
    };
    let config = &state.auth;
    let grant = form.get("grant_type").map(String::as_str).unwrap_or_default();
    let mut refresh_token_out = None;
    match grant {
        "refresh_token" | "client_credentials" => {
            let Some((id, secret)) = client_credentials(&headers, &form) else {
                return oauth_error(401, "invalid_client", "Client authentication is required.");
            };
            if !config.clients.iter().any(|c| c.client_id == id && c.client_secret == secret) {
                return oauth_error(401, "invalid_client", "Unknown client or wrong client secret.");
            }
            if grant == "refresh_token" {
                let Some(refresh) = form.get("refresh_token") else {
                    return oauth_error(400, "invalid_request", "Missing refresh_token.");
                };
                if !state.tokens.refresh_is_valid(refresh) {
                    return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
                }
                refresh_token_out = match config.refresh_rotation {
                    RefreshRotation::Omit => None,
                    RefreshRotation::Echo => Some(refresh.clone()),
                    RefreshRotation::Rotate => Some(state.tokens.rotate_refresh(refresh)),
                };
            } else if !config.allow_client_credentials {
                return oauth_error(400, "unauthorized_client", "The client_credentials grant is disabled.");
            }
        }
        JWT_BEARER_GRANT => {
            let Some(verifier) = state.jwt.as_ref() else {
                return oauth_error(400, "unsupported_grant_type", "The JWT-bearer grant is disabled.");
            };
            let Some(assertion) = form.get("assertion") else {
                return oauth_error(400, "invalid_request", "Missing assertion.");
            };
            if let Err(description) = verifier.verify(assertion, now_unix()) {
                tracing::debug!(%description, "kpipe-sim: JWT assertion refused");
                return oauth_error(400, "invalid_grant", &description);
            }
        }
        "" => return oauth_error(400, "invalid_request", "Missing grant_type."),
        other => {
            return oauth_error(400, "unsupported_grant_type", &format!("Unsupported grant_type {other:?}."));
        }
    }

    let lifetime = config.expire_after.unwrap_or(config.expires_in);
    let access_token = state.tokens.issue(Some(lifetime), config.expire_after_uses);
    let mut body = serde_json::Map::new();
    body.insert("access_token".to_owned(), Value::String(access_token));
    body.insert("token_type".to_owned(), Value::String(config.token_type.clone()));
    body.insert("expires_in".to_owned(), json!(config.expires_in.as_secs()));
    if let Some(refresh) = refresh_token_out {
        body.insert("refresh_token".to_owned(), Value::String(refresh));
    }
    if let Some(scope) = form.get("scope") {
        body.insert("scope".to_owned(), Value::String(scope.clone()));
    }
    for (k, v) in &config.extra_token_fields {
        body.insert(k.clone(), v.clone());
    }
    let mut response = CannedResponse::json(200, Value::Object(body)).to_response();
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_after_their_uses() {
        let store = TokenStore::new(1, &AuthConfig::default());
        let t = store.issue(None, Some(2));
        assert!(t.starts_with("sim-at-"));
        assert_eq!(store.check_and_use(&t), TokenCheck::Valid);
        assert_eq!(store.check_and_use(&t), TokenCheck::Valid);
        assert_eq!(store.check_and_use(&t), TokenCheck::Expired);
        assert_eq!(store.check_and_use("nope"), TokenCheck::Invalid);
        assert_eq!(store.uses(&t), Some(2));
    }

    #[test]
    fn issued_tokens_are_seeded_and_distinct() {
        let a = TokenStore::new(7, &AuthConfig::default());
        let b = TokenStore::new(7, &AuthConfig::default());
        let (a1, a2) = (a.issue(None, None), a.issue(None, None));
        assert_ne!(a1, a2);
        assert_eq!(a1, b.issue(None, None));
        assert_eq!(a.issued(), 2);
    }

    #[test]
    fn malformed_assertions_are_refused() {
        let config = JwtBearerConfig::new(
            include_str!("../tests/fixtures/test-service-account-key.pub.pem"),
            "sa@example.iam.gserviceaccount.com",
        );
        let verifier = JwtVerifier::new(&config, "http://127.0.0.1:1/oauth/token").unwrap();
        assert!(verifier.verify("a.b", 0).is_err());
        assert!(verifier.verify("a.b.c.d", 0).is_err());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let err = verifier.verify(&format!("{header}.e30.AAAA"), 0).unwrap_err();
        assert!(err.contains("RS256"), "{err}");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let err = verifier.verify(&format!("{header}.e30.AAAA"), 0).unwrap_err();
        assert!(err.contains("Signature"), "{err}");
        assert!(JwtVerifier::new(&JwtBearerConfig::new("not a key", "x"), "u").is_err());
    }
}
