//! `kpipe auth` against a fake authorization server on 127.0.0.1. The test plays the person's
//! browser: it reads the consent URL the command prints, "approves" it, and follows the redirect
//! to the command's loopback listener. The fake token endpoint answers like LinkedIn's and
//! Google's (shared/apis/linkedin.md §5, ga4.md §7) and checks the PKCE verifier against the
//! challenge of the consent URL (RFC 7636 §4.6, S256), refusing a wrong one with `invalid_grant`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kpipe_core::Secret;
use sha2::{Digest, Sha256};
use url::Url;

const CLIENT_ID: &str = "kpipe-test-client";
const CLIENT_SECRET: &str = "client-secret-7f3a9c";
const CODE: &str = "auth-code-51d2e8";
const ACCESS_TOKEN: &str = "AQX-access-token-93bd1f";
const REFRESH_TOKEN: &str = "AQW-refresh-token-c0ffee42";

/// What the fake authorization server knows and saw.
#[derive(Default)]
struct Provider {
    /// The challenge and redirect URI each issued code was bound to at consent.
    codes: HashMap<String, (String, String)>,
    /// Every token request's form and whether it came with HTTP Basic credentials.
    token_requests: Vec<(HashMap<String, String>, Option<String>)>,
    /// The verifiers that passed the check.
    verified: Vec<String>,
}

struct FakeServer {
    base: String,
    state: Arc<Mutex<Provider>>,
    runtime: tokio::runtime::Runtime,
}

impl FakeServer {
    fn start() -> FakeServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(Mutex::new(Provider::default()));
        let router =
            axum::Router::new().route("/token", axum::routing::post(token)).with_state(state.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        runtime.spawn(async move { axum::serve(listener, router).await });
        FakeServer { base, state, runtime }
    }

    /// The consent: the authorization server binds the code to the challenge it was shown.
    fn approve(&self, code: &str, challenge: &str, redirect_uri: &str) {
        self.state
            .lock()
            .expect("state")
            .codes
            .insert(code.to_owned(), (challenge.to_owned(), redirect_uri.to_owned()));
    }

    fn token_requests(&self) -> usize {
        self.state.lock().expect("state").token_requests.len()
    }
}

fn oauth_error(description: &str) -> axum::response::Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

/// The token endpoint: RFC 6749 §4.1.3 with RFC 7636 §4.6.
async fn token(
    State(state): State<Arc<Mutex<Provider>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let mut provider = state.lock().expect("state");
    provider.token_requests.push((form.clone(), basic.clone()));
    let field = |k: &str| form.get(k).map(String::as_str);
    let (client_id, client_secret) = match &basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or_default();
            (Some(id.to_owned()), Some(secret.to_owned()))
        }
        None => (field("client_id").map(str::to_owned), field("client_secret").map(str::to_owned)),
    };
    if client_id.as_deref() != Some(CLIENT_ID) || client_secret.as_deref() != Some(CLIENT_SECRET) {
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"})))
            .into_response();
    }
    if field("grant_type") != Some("authorization_code") {
        return oauth_error("unsupported grant");
    }
    let Some((challenge, redirect_uri)) = field("code").and_then(|c| provider.codes.remove(c)) else {
        return oauth_error("unknown or used code");
    };
    if field("redirect_uri") != Some(redirect_uri.as_str()) {
        return oauth_error("redirect_uri does not match the authorization request");
    }
    let verifier = field("code_verifier").unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
        return oauth_error("code_verifier does not match the code_challenge");
    }
    provider.verified.push(verifier.to_owned());
    Json(serde_json::json!({
        "access_token": ACCESS_TOKEN,
        "expires_in": 5183999,
        "refresh_token": REFRESH_TOKEN,
        "refresh_token_expires_in": 31535999,
        "scope": "r_ads,r_ads_reporting"
    }))
    .into_response()
}

/// A source whose endpoints are the fake server's, given as the table's `auth_url` and
/// `token_url` keys.
fn write_config(dir: &Path, server: &FakeServer, kind: &str) {
    let text = format!(
        "[pipeline]\noutput = \"out\"\n\n[sources.ads]\ntype = \"{kind}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"${{ADS_CLIENT_SECRET}}\"\n\
         refresh_token = \"${{ADS_REFRESH_TOKEN}}\"\nauth_url = \"{base}/authorize\"\n\
         token_url = \"{base}/token\"\n",
        base = server.base
    );
    std::fs::write(dir.join("kpipe.toml"), text).expect("write");
}

/// A running `kpipe auth` whose standard error is read as it comes.
struct Auth {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

fn spawn(dir: &Path, args: &[&str]) -> Auth {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["auth", "ads", "-c", "kpipe.toml", "--timeout", "30"])
        .args(args)
        .current_dir(dir)
        .env("ADS_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("ADS_REFRESH_TOKEN")
        // Every log line there is: none may carry a secret.
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpipe");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = channel();
    let all = Arc::new(Mutex::new(String::new()));
    let kept = all.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().expect("stderr").push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    Auth { child, lines, stderr: all }
}

impl Auth {
    /// The consent URL the command printed.
    fn consent_url(&self, server: &FakeServer) -> Url {
        let prefix = format!("{}/authorize?", server.base);
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
                panic!("no consent URL; stderr:\n{}", self.stderr.lock().expect("stderr"))
            });
            if let Some(at) = line.find(&prefix) {
                return Url::parse(line[at..].trim()).expect("a URL");
            }
        }
    }

    /// Waits for the exit; returns the output with all of standard error.
    fn finish(mut self) -> (Output, String) {
        let mut stdout = Vec::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_end(&mut stdout).expect("stdout");
        }
        let status = self.child.wait().expect("wait");
        // The reader thread ends with the pipe.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().expect("stderr").clone();
        (Output { status, stdout, stderr: Vec::new() }, stderr)
    }
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The browser following the redirect: a plain HTTP/1.1 GET; returns the status and body.
fn browser_get(url: &str) -> (u16, String) {
    let url = Url::parse(url).expect("a URL");
    let host = url.host_str().expect("host");
    let port = url.port().expect("port");
    let mut stream = TcpStream::connect((host, port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn assert_no_secret(text: &str, verifier: Option<&str>) {
    for secret in [CLIENT_SECRET, CODE, ACCESS_TOKEN, REFRESH_TOKEN].into_iter().chain(verifier) {
        assert!(!text.contains(secret), "`{secret}` appears in the output:\n{text}");
    }
}

#[test]
fn the_consent_yields_a_private_secrets_file_and_no_secret_in_the_output() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &server, "linkedin");
    let auth = spawn(dir.path(), &["--no-browser"]);

    let consent = auth.consent_url(&server);
    let q = query(&consent);
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert_eq!(
        q.get("scope").map(String::as_str),
        Some("r_ads r_ads_reporting rw_organization_admin r_organization_social")
    );
    let redirect_uri = q.get("redirect_uri").expect("redirect_uri").clone();
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"));
    let state = q.get("state").expect("state").clone();
    assert!(state.len() >= 22, "state has at least 128 bits: {state}");
    let challenge = q.get("code_challenge").expect("code_challenge").clone();
    assert_eq!(challenge.len(), 43);

    server.approve(CODE, &challenge, &redirect_uri);
    let (status, page) = browser_get(&format!("{redirect_uri}?code={CODE}&state={state}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this tab"), "{page}");

    let (out, stderr) = auth.finish();
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // The server checked the verifier against the challenge and it matched.
    let verifier = {
        let provider = server.state.lock().expect("state");
        assert_eq!(provider.token_requests.len(), 1);
        let (form, basic) = &provider.token_requests[0];
        assert_eq!(basic, &None, "LinkedIn takes the client credentials in the body");
        assert_eq!(form.get("redirect_uri"), Some(&redirect_uri));
        assert_eq!(provider.verified.len(), 1);
        provider.verified[0].clone()
    };
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), challenge);

    let file = dir.path().join(".kpipe-secrets/ads.toml");
    let mode = std::fs::metadata(&file).expect("the secrets file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let dir_mode = std::fs::metadata(dir.path().join(".kpipe-secrets")).expect("dir").permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let table: toml::Table = std::fs::read_to_string(&file).expect("read").parse().expect("TOML");
    assert_eq!(table.get("refresh_token").and_then(|v| v.as_str()), Some(REFRESH_TOKEN));
    let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "refresh_token",
            "refresh_token_expires_at",
            "refresh_token_expiry_basis",
            "refresh_token_issued_at"
        ],
        "only the refresh token and its dates: {table:?}"
    );

    assert!(stderr.contains("(mode 0600)"), "{stderr}");
    assert!(stderr.contains("secrets_file = \".kpipe-secrets/ads.toml\""), "{stderr}");
    assert!(stderr.contains("using it does not extend it"), "{stderr}");
    let everything = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_no_secret(&everything, Some(&verifier));
}

#[test]
fn the_fake_server_refuses_a_wrong_verifier() {
    // The check the flow's test relies on really happens: the right verifier passes, any
    // other is refused with invalid_grant, and the refusal carries no secret.
    let server = FakeServer::start();
    let http = kpipe_http::HttpClient::new().expect("client");
    let redirect = "http://127.0.0.1:1/callback";
    let verifier = "correct-verifier-0123456789-0123456789-abcdef";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let exchange = |code: &str, verifier: &str| {
        server.runtime.block_on(kpipe_http::exchange_authorization_code(
            &http,
            &format!("{}/token", server.base),
            CLIENT_ID,
            &Secret::new(CLIENT_SECRET),
            &Secret::new(code),
            redirect,
            &Secret::new(verifier),
            true,
        ))
    };
    server.approve("code-1", &challenge, redirect);
    let err = exchange("code-1", "wrong-verifier-0123456789-0123456789-abcdef").expect_err("refused");
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    assert!(err.to_string().contains("code_verifier does not match"), "{err}");
    assert!(!err.to_string().contains("wrong-verifier"), "{err}");

    server.approve("code-2", &challenge, redirect);
    let granted = exchange("code-2", verifier).expect("the right verifier passes");
    assert_eq!(granted.refresh_token.as_ref().map(Secret::expose), Some(REFRESH_TOKEN));
}

#[test]
fn a_code_bound_to_another_challenge_fails_the_exchange_and_stores_nothing() {
    // An attacker who swapped the authorization request: the code is bound to their challenge,
    // so kpipe's verifier does not match it.
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &server, "linkedin");
    let auth = spawn(dir.path(), &[]);
    let q = query(&auth.consent_url(&server));
    let redirect_uri = q.get("redirect_uri").expect("redirect_uri").clone();
    let forged = URL_SAFE_NO_PAD.encode(Sha256::digest(b"the attacker's own verifier"));
    server.approve(CODE, &forged, &redirect_uri);
    let (status, _) = browser_get(&format!("{redirect_uri}?code={CODE}&state={}", q["state"]));
    assert_eq!(status, 200);
    let (out, stderr) = auth.finish();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert!(!dir.path().join(".kpipe-secrets").exists());
    assert_no_secret(&stderr, None);
}

#[test]
fn a_redirect_with_another_state_is_refused_before_any_exchange() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &server, "linkedin");
    let auth = spawn(dir.path(), &[]);
    let q = query(&auth.consent_url(&server));
    let redirect_uri = q.get("redirect_uri").expect("redirect_uri").clone();
    server.approve(CODE, &q["code_challenge"], &redirect_uri);
    let (status, page) = browser_get(&format!("{redirect_uri}?code={CODE}&state=forged-state"));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("does not match"), "{page}");
    let (out, stderr) = auth.finish();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`state` does not match"), "{stderr}");
    assert_eq!(server.token_requests(), 0, "the code of a forged redirect was sent to the token endpoint");
    assert!(!dir.path().join(".kpipe-secrets").exists());
    assert_no_secret(&stderr, None);
}

#[test]
fn print_puts_only_the_token_on_standard_output_and_google_gets_an_offline_consent() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &server, "google_analytics");
    let auth = spawn(dir.path(), &["--print"]);
    let consent = auth.consent_url(&server);
    let q = query(&consent);
    // Without these Google grants no refresh token.
    assert_eq!(q.get("access_type").map(String::as_str), Some("offline"));
    assert_eq!(q.get("prompt").map(String::as_str), Some("consent"));
    assert_eq!(
        q.get("scope").map(String::as_str),
        Some("https://www.googleapis.com/auth/analytics.readonly")
    );
    let redirect_uri = q["redirect_uri"].clone();
    server.approve(CODE, &q["code_challenge"], &redirect_uri);
    let (status, _) = browser_get(&format!("{redirect_uri}?code={CODE}&state={}", q["state"]));
    assert_eq!(status, 200);
    let (out, stderr) = auth.finish();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{REFRESH_TOKEN}\n"));
    assert!(!dir.path().join(".kpipe-secrets").exists());
    {
        let provider = server.state.lock().expect("state");
        let (form, basic) = &provider.token_requests[0];
        assert_eq!(basic, &None);
        assert_eq!(form.get("client_secret").map(String::as_str), Some(CLIENT_SECRET));
    }
    assert!(stderr.contains("refresh_token = \"${ADS_REFRESH_TOKEN}\""), "{stderr}");
    assert_no_secret(&stderr, None);
}

#[test]
fn a_denied_consent_and_a_bad_source_are_reported() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The HubSpot connector's table has no `auth_url` or `scopes`: the flags give them.
    std::fs::write(
        dir.path().join("kpipe.toml"),
        format!(
            "[sources.ads]\ntype = \"hubspot\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"${{ADS_CLIENT_SECRET}}\"\nbase_url = \"{}\"\n",
            server.base
        ),
    )
    .expect("write");
    let auth_url = format!("{}/authorize", server.base);
    let auth = spawn(dir.path(), &["--auth-url", &auth_url, "--scopes", "oauth content"]);
    let q = query(&auth.consent_url(&server));
    assert_eq!(q.get("scope").map(String::as_str), Some("oauth content"));
    let (status, _) = browser_get(&format!(
        "{}?error=access_denied&error_description=The+user+declined&state={}",
        q["redirect_uri"], q["state"]
    ));
    assert_eq!(status, 400);
    let (out, stderr) = auth.finish();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the authorization was refused: access_denied (The user declined)"), "{stderr}");

    // A source without client credentials: a usage error before anything listens or is sent.
    std::fs::write(dir.path().join("kpipe.toml"), "[sources.ads]\ntype = \"hubspot\"\nclient_id = \"x\"\n")
        .expect("write");
    let (out, stderr) = spawn(dir.path(), &[]).finish();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kpipe.toml: sources.ads.client_secret: missing"), "{stderr}");
}
