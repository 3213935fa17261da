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
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
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
    key: UnparsedPublicKey<Vec<u8>>,
    issuer: String,
    audience: String,
    max_lifetime: Duration,
}

impl JwtVerifier {
    pub(crate) fn new(config: &JwtBearerConfig, token_url: &str) -> Result<Self, SimError> {
        let key = rsa_public_key_der(&config.public_key_pem).map_err(SimError::PublicKey)?;
        Ok(Self {
            key: UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key),
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
        let signature =
            URL_SAFE_NO_PAD.decode(sig_b64.trim_end_matches('=')).map_err(|_| "Invalid JWT Signature.")?;
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

/// The PKCS#1 `RSAPublicKey` DER of a PEM public key, SPKI ("PUBLIC KEY") or PKCS#1
/// ("RSA PUBLIC KEY"): the form ring verifies with.
fn rsa_public_key_der(pem: &str) -> Result<Vec<u8>, String> {
    let (label, der) = pem_decode(pem)?;
    let pkcs1 = match label {
        "PUBLIC KEY" => spki_rsa_public_key(&der)?.to_vec(),
        "RSA PUBLIC KEY" => der,
        other => return Err(format!("expected a PUBLIC KEY or RSA PUBLIC KEY PEM, found {other}")),
    };
    check_rsa_public_key(&pkcs1)?;
    Ok(pkcs1)
}

/// The label and decoded body of the first PEM block in `text`.
fn pem_decode(text: &str) -> Result<(&str, Vec<u8>), String> {
    let (_, rest) = text.split_once("-----BEGIN ").ok_or("no PEM BEGIN line")?;
    let (label, rest) = rest.split_once("-----").ok_or("a malformed PEM BEGIN line")?;
    let (body, _) = rest
        .split_once(&format!("-----END {label}-----"))
        .ok_or_else(|| format!("no END line for the PEM {label}"))?;
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(body).map_err(|e| format!("the PEM {label} is not base64: {e}"))?;
    Ok((label, der))
}

const DER_INTEGER: u8 = 0x02;
const DER_BIT_STRING: u8 = 0x03;
const DER_NULL: u8 = 0x05;
const DER_OID: u8 = 0x06;
const DER_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1, rsaEncryption.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Splits the DER element of type `tag` at the start of `input` into its contents and what
/// follows it. Only definite, minimal lengths are DER; a key needs no more than four length bytes.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().fold(0u32, |len, &b| (len << 8) | u32::from(b));
        if bytes.first() == Some(&0) || len < 0x80 {
            return None;
        }
        (usize::try_from(len).ok()?, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The `subjectPublicKey` of an RSA SubjectPublicKeyInfo (RFC 5280 §4.1, RFC 3279 §2.3.1).
fn spki_rsa_public_key(spki: &[u8]) -> Result<&[u8], String> {
    let malformed = || "the PUBLIC KEY is not a DER SubjectPublicKeyInfo".to_owned();
    let (info, trailing) = der_element(spki, DER_SEQUENCE).ok_or_else(malformed)?;
    if !trailing.is_empty() {
        return Err(malformed());
    }
    let (algorithm, rest) = der_element(info, DER_SEQUENCE).ok_or_else(malformed)?;
    let (bits, rest) = der_element(rest, DER_BIT_STRING).ok_or_else(malformed)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    let (oid, parameters) = der_element(algorithm, DER_OID).ok_or_else(malformed)?;
    if oid != RSA_ENCRYPTION_OID {
        return Err("the PUBLIC KEY is not an RSA key (rsaEncryption)".to_owned());
    }
    // RFC 3279 asks for NULL parameters; some encoders leave them out.
    let null_or_absent = parameters.is_empty()
        || der_element(parameters, DER_NULL).is_some_and(|(null, rest)| null.is_empty() && rest.is_empty());
    if !null_or_absent {
        return Err(malformed());
    }
    // The key is whole bytes: the leading "unused bits" count must be zero.
    match bits.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err(malformed()),
    }
}

/// Checks that `der` is an `RSAPublicKey` (RFC 8017 §A.1.1) of a size ring verifies, so that a
/// wrong key fails when the simulator is configured, not as a refused signature later.
fn check_rsa_public_key(der: &[u8]) -> Result<(), String> {
    let malformed = || "the key is not a DER RSAPublicKey".to_owned();
    let (key, trailing) = der_element(der, DER_SEQUENCE).ok_or_else(malformed)?;
    let (modulus, rest) = der_element(key, DER_INTEGER).ok_or_else(malformed)?;
    let (exponent, rest) = der_element(rest, DER_INTEGER).ok_or_else(malformed)?;
    if !trailing.is_empty() || !rest.is_empty() || exponent.is_empty() {
        return Err(malformed());
    }
    // A positive INTEGER has a clear high bit, behind a zero byte when its magnitude's is set.
    let magnitude = match modulus {
        [first, ..] if first & 0x80 != 0 => return Err(malformed()),
        [0, magnitude @ ..] => magnitude,
        _ => modulus,
    };
    let bits = match magnitude.first() {
        Some(&top) if top != 0 => magnitude.len() * 8 - top.leading_zeros() as usize,
        _ => 0,
    };
    if !(2048..=8192).contains(&bits) {
        return Err(format!("RS256 verification takes a 2048- to 8192-bit RSA key, not {bits} bits"));
    }
    Ok(())
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

    const SPKI_PEM: &str = include_str!("../tests/fixtures/test-service-account-key.pub.pem");

    fn pem(label: &str, der: &[u8]) -> String {
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(der))
    }

    #[test]
    fn spki_and_pkcs1_public_keys_give_the_same_key() {
        let from_spki = rsa_public_key_der(SPKI_PEM).unwrap();
        let from_pkcs1 = rsa_public_key_der(&pem("RSA PUBLIC KEY", &from_spki)).unwrap();
        assert_eq!(from_spki, from_pkcs1);
        // The fixture's SPKI wraps the key in 24 bytes: SEQUENCE, AlgorithmIdentifier, BIT STRING.
        let (_, spki) = pem_decode(SPKI_PEM).unwrap();
        assert_eq!(spki.get(24..), Some(from_spki.as_slice()));
        let config = JwtBearerConfig::new(pem("RSA PUBLIC KEY", &from_spki), "x");
        assert!(JwtVerifier::new(&config, "u").is_ok());
    }

    #[test]
    fn malformed_public_keys_are_errors() {
        let (_, spki) = pem_decode(SPKI_PEM).unwrap();
        // Every truncation, and a trailing byte, are refused without a panic.
        for len in 0..spki.len() {
            assert!(rsa_public_key_der(&pem("PUBLIC KEY", &spki[..len])).is_err(), "{len} bytes");
        }
        let mut longer = spki.clone();
        longer.push(0);
        assert!(rsa_public_key_der(&pem("PUBLIC KEY", &longer)).is_err());

        // rsaEncryption's last arc changed: another algorithm.
        let mut other_algorithm = spki.clone();
        other_algorithm[16] = 0x02;
        let err = rsa_public_key_der(&pem("PUBLIC KEY", &other_algorithm)).unwrap_err();
        assert!(err.contains("rsaEncryption"), "{err}");

        // Unused bits in the BIT STRING.
        let mut unused_bits = spki.clone();
        unused_bits[23] = 1;
        assert!(rsa_public_key_der(&pem("PUBLIC KEY", &unused_bits)).is_err());

        // A small modulus is refused when configured, not at the first assertion.
        let small = [0x30, 0x08, 0x02, 0x03, 0x00, 0xc5, 0x21, 0x02, 0x01, 0x03];
        let err = rsa_public_key_der(&pem("RSA PUBLIC KEY", &small)).unwrap_err();
        assert!(err.contains("16 bits"), "{err}");

        // A long-form length with a leading zero byte is not DER.
        assert!(der_element(&[0x30, 0x82, 0x00, 0x81], DER_SEQUENCE).is_none());
        assert!(der_element(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0], DER_SEQUENCE).is_none());
        assert!(der_element(&[0x30, 0x80, 0x00, 0x00], DER_SEQUENCE).is_none());

        let wrong_label = pem("CERTIFICATE", &spki);
        assert!(rsa_public_key_der(&wrong_label).unwrap_err().contains("CERTIFICATE"));
        assert!(
            rsa_public_key_der("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----").is_err()
        );
        assert!(rsa_public_key_der("-----BEGIN PUBLIC KEY-----\nMIIB").is_err());
    }
}
