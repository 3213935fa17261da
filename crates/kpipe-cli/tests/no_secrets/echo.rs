//! No credential appears in what a run or a check leaves behind even when every server answers
//! with an error that quotes the whole request: method, path and query, every header (the
//! `Authorization` header too) and the body (a token request's client secret, refresh token or
//! signed assertion).
//!
//! The echo server's answers have the shape of an RFC 6749 token endpoint's error (400,
//! `{"error", "error_description"}`) and of the platforms' API errors (401 with the message
//! where each platform puts it) when they quote the request; no real API is reached. One token
//! endpoint path grants an access token instead, so that an access token obtained at run time
//! travels in `Authorization: Bearer` headers and comes back quoted in the 401 answers.
//!
//! One Google Analytics source is granted its token and then answered `200` with a
//! `batchRunReports` body (Data API v1beta, `BatchRunReportsResponse`) that holds no report but
//! quotes the request: the source quarantines that body as it came and ends with its state
//! written, so the quarantine and the state objects are checked too, not only errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

const LINKEDIN_CLIENT_SECRET: &str = "planted-linkedin-client-secret-5c81e2";
const LINKEDIN_REFRESH_TOKEN: &str = "planted-linkedin-refresh-token-97d04b";
const HUBSPOT_PRIVATE_APP_TOKEN: &str = "planted-hubspot-private-app-token-3e6a10";
const HUBSPOT_CLIENT_SECRET: &str = "planted-hubspot-client-secret-b2f7c9";
const HUBSPOT_REFRESH_TOKEN: &str = "planted-hubspot-refresh-token-4a19d3";
const FACEBOOK_ACCESS_TOKEN: &str = "planted-facebook-access-token-e0c3f5";
/// What the granting token endpoint issues: the access token obtained at run time.
const ISSUED_ACCESS_TOKEN: &str = "issued-access-token-by-the-echo-grant-6d2b8a";

const PLANTED: [&str; 7] = [
    LINKEDIN_CLIENT_SECRET,
    LINKEDIN_REFRESH_TOKEN,
    HUBSPOT_PRIVATE_APP_TOKEN,
    HUBSPOT_CLIENT_SECRET,
    HUBSPOT_REFRESH_TOKEN,
    FACEBOOK_ACCESS_TOKEN,
    ISSUED_ACCESS_TOKEN,
];

const PRIVATE_KEY: &str = include_str!("../../../kpipe-sim/tests/fixtures/test-service-account-key.pem");

/// The path of the token endpoint that grants; every other request is refused.
const GRANTING_TOKEN_PATH: &str = "/granting/oauth/v1/token";

/// The API path prefix of the Google Analytics source whose answers are readable JSON.
const ANSWERING_API_PREFIX: &str = "/answering/";

/// Every request the echo server got, as it echoed it.
type Seen = Arc<Mutex<Vec<String>>>;

async fn echo(
    seen: axum::extract::State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut echoed = format!("{method} {uri}\n{}\n", String::from_utf8_lossy(&body));
    for (name, value) in &headers {
        echoed.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    if let Ok(mut seen) = seen.lock() {
        seen.push(echoed.clone());
    }
    let path = uri.path();
    let json = |status: StatusCode, body: serde_json::Value| (status, axum::Json(body)).into_response();
    if path == GRANTING_TOKEN_PATH {
        return json(
            StatusCode::OK,
            serde_json::json!({
                "access_token": ISSUED_ACCESS_TOKEN,
                "token_type": "bearer",
                "expires_in": 1800,
                "refresh_token": HUBSPOT_REFRESH_TOKEN,
            }),
        );
    }
    if path.starts_with(ANSWERING_API_PREFIX) {
        // A `BatchRunReportsResponse` without the reports asked for: quarantined whole.
        return json(
            StatusCode::OK,
            serde_json::json!({ "reports": [], "kind": "analyticsData#batchRunReports", "echo": echoed }),
        );
    }
    let body_text = String::from_utf8_lossy(&body);
    if method == Method::POST && body_text.contains("grant_type=") {
        // RFC 6749 §5.2.
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "invalid_grant", "error_description": echoed }),
        );
    }
    let answer = if path.starts_with("/rest/") {
        serde_json::json!({ "status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": echoed })
    } else if path.starts_with("/v1beta/") {
        serde_json::json!({ "error": { "code": 401, "message": echoed, "status": "UNAUTHENTICATED" } })
    } else if path.starts_with("/v2") {
        serde_json::json!({ "error": { "message": echoed, "type": "OAuthException", "code": 190 } })
    } else {
        serde_json::json!({ "status": "error", "message": echoed, "category": "INVALID_AUTHENTICATION" })
    };
    json(StatusCode::UNAUTHORIZED, answer)
}

fn every_file_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

/// The secret, or an assertion's header (`{"alg":"RS256"` in base64url: every JWT starts so).
fn leaked(text: &str) -> Option<&'static str> {
    PLANTED.into_iter().chain(["eyJhbGciOiJSUzI1NiIs"]).find(|secret| text.contains(secret))
}

fn service_account_key(token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "kpipe-test",
        "private_key_id": "0123456789abcdef",
        "private_key": PRIVATE_KEY,
        "client_email": "reader@kpipe-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    })
    .to_string()
}

fn config(dir: &Path, base: &str) -> PathBuf {
    std::fs::write(dir.join("ga-key.json"), service_account_key(&format!("{base}/token")))
        .expect("a key file");
    std::fs::write(
        dir.join("ga-granted-key.json"),
        service_account_key(&format!("{base}{GRANTING_TOKEN_PATH}")),
    )
    .expect("a key file");
    let text = format!(
        r#"[pipeline]
output = "out"

[sources.li]
type = "linkedin"
account_ids = ["508000001"]
client_id = "linkedin-client-id"
client_secret = "{LINKEDIN_CLIENT_SECRET}"
refresh_token = "{LINKEDIN_REFRESH_TOKEN}"
token_url = "{base}/oauth/v2/accessToken"
base_url = "{base}"

[sources.hs_app]
type = "hubspot"
access_token = "{HUBSPOT_PRIVATE_APP_TOKEN}"
base_url = "{base}"

[sources.hs_oauth]
type = "hubspot"
client_id = "hubspot-client-id"
client_secret = "{HUBSPOT_CLIENT_SECRET}"
refresh_token = "{HUBSPOT_REFRESH_TOKEN}"
token_url = "{base}{GRANTING_TOKEN_PATH}"
base_url = "{base}"

[sources.fb]
type = "facebook"
ad_account_ids = ["act_1234567890123456"]
page_ids = ["298712583335639"]
access_token = "{FACEBOOK_ACCESS_TOKEN}"
base_url = "{base}"

[sources.ga]
type = "google_analytics"
property_ids = ["123456789"]
credentials_file = "ga-key.json"
base_url = "{base}"

[sources.ga_answered]
type = "google_analytics"
property_ids = ["987654321"]
credentials_file = "ga-granted-key.json"
base_url = "{base}{ANSWERING_API_PREFIX}"
"#
    );
    let path = dir.join("kpipe.toml");
    std::fs::write(&path, text).expect("a config");
    path
}

async fn kpipe(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    cmd.arg("-vvv").args(args).current_dir(dir).env("RUST_LOG", "trace");
    tokio::task::spawn_blocking(move || cmd.output()).await.expect("joined").expect("kpipe runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_anything_left_behind_when_every_server_quotes_the_request() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback(echo).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("a temp dir");
    config(dir.path(), &base);
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.display().to_string();
    let runs = [
        kpipe(
            dir.path(),
            &[
                "run",
                "-c",
                "kpipe.toml",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-02",
                "--summary-json",
                &summary_arg,
            ],
        )
        .await,
        kpipe(dir.path(), &["check", "-c", "kpipe.toml"]).await,
        kpipe(dir.path(), &["check", "-c", "kpipe.toml", "--json"]).await,
    ];

    // Every secret reached the echo server, and so came back quoted in an answer.
    let requests = seen.lock().map(|s| s.join("\n")).unwrap_or_default();
    for secret in PLANTED {
        assert!(requests.contains(secret), "{secret} was never sent: the test would prove nothing");
    }
    assert!(requests.contains("assertion=eyJhbGciOiJSUzI1NiIs"), "no assertion was sent:\n{requests}");

    for (out, what) in runs.iter().zip(["run", "check", "check --json"]) {
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(said.lines().count() > 20, "{what}: trace logging is on:\n{said}");
        if let Some(line) = said.lines().find(|l| leaked(l).is_some()) {
            panic!("{what} shows a secret: {line}");
        }
        assert!(
            said.contains("[redacted]"),
            "{what}: the answers' quotes of the requests were shown:\n{said}"
        );
    }
    let run = &runs[0];
    assert_eq!(run.status.code(), Some(1), "every source fails");
    let summary_text = std::fs::read_to_string(&summary).expect("the summary JSON");
    assert!(summary_text.contains("\"error\""), "{summary_text}");
    assert_eq!(leaked(&summary_text), None, "{summary_text}");

    // State objects, quarantine files, and whatever else the run wrote.
    let written = every_file_below(&dir.path().join("out"));
    for file in &written {
        let text = String::from_utf8_lossy(&std::fs::read(file).expect("readable")).into_owned();
        assert_eq!(leaked(&text), None, "{} holds a secret:\n{text}", file.display());
    }
    let names: Vec<String> = written.iter().map(|f| f.display().to_string()).collect();
    let quarantine = written
        .iter()
        .find(|f| f.to_string_lossy().contains("quarantine/source=ga_answered/"))
        .unwrap_or_else(|| panic!("no quarantine file for the answered source: {names:?}"));
    let quarantined = std::fs::read_to_string(quarantine).expect("the quarantine");
    assert!(
        quarantined.contains("batchRunReports") && quarantined.contains("[redacted]"),
        "the quarantined body quotes the request, its bearer token redacted:\n{quarantined}"
    );
    assert!(
        written.iter().any(|f| f.to_string_lossy().ends_with(".kpipe/state/ga_answered.json")),
        "the answered source's state was written: {names:?}"
    );
    server.abort();
}
