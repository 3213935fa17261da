//! The OAuth2 token endpoint (refresh_token with form or Basic client auth, client_credentials,
//! RS256 JWT bearer verified with the fixture key) and the bearer check on API routes (unknown
//! tokens, expiry after N uses or T seconds, the expire-token fault, platform envelopes).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kpipe_sim::platform::{ga4, linkedin};
use kpipe_sim::{
    AuthConfig, Fault, FaultRule, JWT_BEARER_GRANT, JwtBearerConfig, RefreshRotation, SimConfig, SimServer,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::client;

const PRIVATE_KEY: &str = include_str!("../fixtures/test-service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../fixtures/test-service-account-key.pub.pem");
const ISSUER: &str = "kpipe-test@kpipe-sim.iam.gserviceaccount.com";

async fn token_request(sim: &SimServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client().post(sim.token_url()).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn refresh_form(refresh_token: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "sim-client"),
        ("client_secret", "sim-secret"),
    ]
}

async fn api_status(sim: &SimServer, token: &str) -> (u16, Value) {
    let response = client().get(sim.url("/test/items")).bearer_auth(token).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn key_pair() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let der = PrivatePkcs8KeyDer::from_pem_slice(PRIVATE_KEY.as_bytes()).unwrap();
        RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap()
    })
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = key_pair();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"})
}

fn claims(aud: &str) -> Value {
    let iat = now();
    json!({"iss": ISSUER, "scope": "https://www.googleapis.com/auth/analytics.readonly",
           "aud": aud, "iat": iat, "exp": iat + 3600})
}

#[tokio::test]
async fn refresh_grant_with_form_fields_or_basic_auth() {
    let sim = SimServer::start(SimConfig::new(1)).await.unwrap();
    let (status, body) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().starts_with("sim-at-"));
    assert!(body.get("refresh_token").is_none(), "Omit is the default rotation");

    let basic = STANDARD.encode("sim-client:sim-secret");
    let response = client()
        .post(sim.token_url())
        .header("Authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "sim-refresh-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["access_token"], body["access_token"], "a fresh token per issue");
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn token_errors_use_the_oauth_envelope() {
    let sim = SimServer::start(SimConfig::new(2)).await.unwrap();
    let wrong_secret = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "sim-refresh-token"),
        ("client_id", "sim-client"),
        ("client_secret", "nope"),
    ];
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Form<'_>, u16, &str)> = vec![
        (wrong_secret.to_vec(), 401, "invalid_client"),
        (vec![("grant_type", "refresh_token"), ("refresh_token", "x")], 401, "invalid_client"),
        (refresh_form("revoked"), 400, "invalid_grant"),
        (vec![("grant_type", "authorization_code"), ("code", "x")], 400, "unsupported_grant_type"),
        (vec![("refresh_token", "sim-refresh-token")], 400, "invalid_request"),
        (vec![("grant_type", JWT_BEARER_GRANT), ("assertion", "a.b.c")], 400, "unsupported_grant_type"),
    ];
    for (form, status, error) in cases {
        let (got, body) = token_request(&sim, &form).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{form:?}: {body}");
        assert!(body["error_description"].is_string());
    }
    let not_a_form =
        client().post(sim.token_url()).json(&json!({"grant_type": "refresh_token"})).send().await.unwrap();
    assert_eq!(not_a_form.status(), 400);
    assert_eq!(sim.tokens_issued(), 0);
}

#[tokio::test]
async fn client_credentials_grant() {
    let sim = SimServer::start(SimConfig::new(3)).await.unwrap();
    let form =
        [("grant_type", "client_credentials"), ("client_id", "sim-client"), ("client_secret", "sim-secret")];
    let (status, body) = token_request(&sim, &form).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].is_string());
    let disabled = SimServer::start(
        SimConfig::new(3).with_auth(AuthConfig { allow_client_credentials: false, ..AuthConfig::default() }),
    )
    .await
    .unwrap();
    assert_eq!(token_request(&disabled, &form).await.1["error"], "unauthorized_client");
}

#[tokio::test]
async fn rotated_refresh_tokens_replace_the_old_one() {
    let auth = AuthConfig { refresh_rotation: RefreshRotation::Rotate, ..AuthConfig::default() };
    let sim = SimServer::start(SimConfig::new(4).with_auth(auth)).await.unwrap();
    let (_, first) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    let rotated = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, "sim-refresh-token");
    assert_eq!(token_request(&sim, &refresh_form("sim-refresh-token")).await.1["error"], "invalid_grant");
    assert_eq!(token_request(&sim, &refresh_form(&rotated)).await.0, 200);
}

#[tokio::test]
async fn linkedin_echoes_its_refresh_token() {
    let sim = SimServer::start(SimConfig::new(5).with_auth(linkedin::auth_config())).await.unwrap();
    let (status, body) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    assert_eq!(status, 200);
    assert_eq!(body["refresh_token"], "sim-refresh-token");
    assert_eq!(body["expires_in"], 5_183_999);
    assert_eq!(body["refresh_token_expires_in"], 31_535_999);
}

#[tokio::test]
async fn jwt_bearer_assertions_are_verified() {
    let jwt = JwtBearerConfig::new(PUBLIC_KEY, ISSUER);
    let sim = SimServer::start(SimConfig::new(6).with_auth(ga4::auth_config(jwt))).await.unwrap();
    let aud = sim.token_url().to_owned();

    let good = sign(&rs256(), &claims(&aud));
    let (status, body) = token_request(&sim, &[("grant_type", JWT_BEARER_GRANT), ("assertion", &good)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
    // The issued token opens the API.
    assert_eq!(api_status(&sim, body["access_token"].as_str().unwrap()).await.0, 200);

    let mut wrong_iss = claims(&aud);
    wrong_iss["iss"] = json!("someone-else@example.com");
    let mut expired = claims(&aud);
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let mut too_long = claims(&aud);
    too_long["exp"] = json!(now() + 86_400);
    let tampered = {
        let token = sign(&rs256(), &claims(&aud));
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims(&aud);
        evil["scope"] = json!("https://www.googleapis.com/auth/cloud-platform");
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(evil.to_string()), parts[2])
    };
    let cases = [
        ("wrong audience", sign(&rs256(), &claims("https://oauth2.googleapis.com/token"))),
        ("wrong issuer", sign(&rs256(), &wrong_iss)),
        ("expired", sign(&rs256(), &expired)),
        ("too long-lived", sign(&rs256(), &too_long)),
        ("tampered claims", tampered),
        ("alg none", sign(&json!({"alg": "none"}), &claims(&aud))),
        ("not a JWT", "abc".to_owned()),
    ];
    for (what, assertion) in cases {
        let (status, body) =
            token_request(&sim, &[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{what}: {body}");
    }
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test]
async fn api_routes_require_a_valid_bearer_token() {
    let auth = AuthConfig { static_tokens: vec!["static-token".to_owned()], ..AuthConfig::required() };
    let sim = SimServer::start(SimConfig::new(7).with_auth(auth)).await.unwrap();
    let missing = client().get(sim.url("/test/items")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    assert_eq!(api_status(&sim, "made-up").await.0, 401);

    let token = sim.issue_token();
    assert_eq!(api_status(&sim, &token).await.0, 200);
    assert_eq!(api_status(&sim, "static-token").await.0, 200);
    // Facebook-style `access_token` query parameter.
    let via_query = client().get(sim.url(&format!("/test/items?access_token={token}"))).send().await.unwrap();
    assert_eq!(via_query.status(), 200);
    assert_eq!(sim.token_uses(&token), Some(2));
    assert_eq!(sim.auth_rejections(), 2);
}

#[tokio::test]
async fn tokens_expire_after_n_uses_with_a_platform_body() {
    let auth = AuthConfig { expire_after_uses: Some(3), ..linkedin::auth_config() };
    let sim = SimServer::start(SimConfig::new(8).with_auth(auth)).await.unwrap();
    let (_, body) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(api_status(&sim, &token).await.0, 200);
    }
    let (status, body) = api_status(&sim, &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "EXPIRED_ACCESS_TOKEN");
    // A refresh mid-run gives a working token again.
    let (_, fresh) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    assert_eq!(api_status(&sim, fresh["access_token"].as_str().unwrap()).await.0, 200);
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn tokens_expire_after_a_time() {
    let auth = AuthConfig { expire_after: Some(Duration::from_millis(200)), ..AuthConfig::required() };
    let sim = SimServer::start(SimConfig::new(9).with_auth(auth)).await.unwrap();
    let (_, body) = token_request(&sim, &refresh_form("sim-refresh-token")).await;
    assert_eq!(body["expires_in"], 3600, "the reported lifetime is independent of the enforced one");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(&sim, &token).await.0, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, body) = api_status(&sim, &token).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
}

#[tokio::test]
async fn the_expire_token_fault_kills_a_token_mid_run() {
    let sim = SimServer::start(
        SimConfig::new(10)
            .with_auth(AuthConfig::required())
            .with_fault(FaultRule::on_request(2, Fault::ExpireToken)),
    )
    .await
    .unwrap();
    let token = sim.issue_token();
    assert_eq!(api_status(&sim, &token).await.0, 200);
    assert_eq!(api_status(&sim, &token).await.0, 401);
    assert_eq!(api_status(&sim, &token).await.0, 401, "stays expired");
    let fresh = sim.issue_token();
    assert_eq!(api_status(&sim, &fresh).await.0, 200);
    sim.expire_all_tokens();
    assert_eq!(api_status(&sim, &fresh).await.0, 401);
}
