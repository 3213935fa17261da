//! Token health from consent to monitoring: `kpipe auth` records when the refresh token was
//! issued and expires, and `kpipe check` warns ahead of the expiry and fails once it passed.
//!
//! The consent and the token endpoint are a fake authorization server on 127.0.0.1 answering as
//! LinkedIn's and Google's do (shared/apis/linkedin.md §5: `refresh_token_expires_in` on the
//! authorization-code and the refresh answers; ga4.md §7: no refresh-token lifetime at all). The
//! cheap call of the check goes to kpipe-sim's LinkedIn and GA4 APIs. `KPIPE_NOW` moves the time
//! `kpipe check` judges expiry dates at, as a monitoring job would see them months later.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use chrono::{DateTime, Utc};
use kpipe_sim::platform::ga4::Ga4Api;
use kpipe_sim::platform::linkedin::LinkedInApi;
use kpipe_sim::{SimConfig, SimServer};
use url::Url;

use common::text;

const CLIENT_ID: &str = "kpipe-test-client";
const CLIENT_SECRET: &str = "client-secret-5e1b7a";
const CODE: &str = "auth-code-a9d04c";
const ACCESS_TOKEN: &str = "AQX-access-token-7c21e9";
const REFRESH_TOKEN: &str = "AQW-refresh-token-e3f0d8";
const STATIC_TOKEN: &str = "AQV-static-token-44b2c1";
/// LinkedIn's documented `refresh_token_expires_in` of a fresh consent: 365 days less a second.
const YEAR_SECONDS: u64 = 31_535_999;

/// How the fake token endpoint answers.
struct Answers {
    /// `refresh_token_expires_in` of the authorization-code answer; `None`: left out (Google).
    on_consent: Option<u64>,
    /// What is left of the refresh token at a refresh: the consent's figure less the time since
    /// (LinkedIn's fixed TTL), or a given figure; `None`: left out.
    on_refresh: RefreshLifetime,
    /// When the refresh token was issued.
    issued: Option<Instant>,
}

enum RefreshLifetime {
    Omitted,
    CountingDown,
    Fixed(u64),
}

struct AuthServer {
    base: String,
    answers: Arc<Mutex<Answers>>,
    runtime: tokio::runtime::Runtime,
}

impl AuthServer {
    fn start(on_consent: Option<u64>, on_refresh: RefreshLifetime) -> AuthServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let answers = Arc::new(Mutex::new(Answers { on_consent, on_refresh, issued: None }));
        let router =
            axum::Router::new().route("/token", axum::routing::post(token)).with_state(answers.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        runtime.spawn(async move { axum::serve(listener, router).await });
        AuthServer { base, answers, runtime }
    }

    /// A simulated platform API for the check's cheap call; it takes any bearer token.
    fn api(&self, platform: Arc<dyn kpipe_sim::Platform>) -> SimServer {
        self.runtime
            .block_on(SimServer::start(SimConfig::new(7).with_platform(platform)))
            .expect("the simulator starts")
    }
}

/// The token endpoint (RFC 6749 §4.1.3 and §6) with the client's credentials in the form body.
async fn token(
    State(answers): State<Arc<Mutex<Answers>>>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"})))
            .into_response();
    }
    let mut answers = answers.lock().expect("answers");
    let remaining = match field("grant_type") {
        Some("authorization_code") if field("code") == Some(CODE) => {
            answers.issued = Some(Instant::now());
            answers.on_consent
        }
        Some("refresh_token") if field("refresh_token") == Some(REFRESH_TOKEN) => match answers.on_refresh {
            RefreshLifetime::Omitted => None,
            RefreshLifetime::Fixed(seconds) => Some(seconds),
            RefreshLifetime::CountingDown => {
                let spent = answers.issued.map(|i| i.elapsed().as_secs()).unwrap_or_default();
                answers.on_consent.map(|s| s.saturating_sub(spent))
            }
        },
        _ => {
            return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"})))
                .into_response();
        }
    };
    let mut body = serde_json::json!({
        "access_token": ACCESS_TOKEN,
        "expires_in": 5_183_999,
        "refresh_token": REFRESH_TOKEN,
        "scope": "r_ads,r_ads_reporting"
    });
    if let Some(seconds) = remaining {
        body["refresh_token_expires_in"] = serde_json::json!(seconds);
    }
    Json(body).into_response()
}

/// A source of `kind` whose consent and tokens come from `auth` and whose API is `api`; the
/// refresh token is read from the secrets file `kpipe auth` writes.
fn write_config(dir: &Path, auth: &AuthServer, api: &SimServer, kind: &str, ids: &str) {
    let text = format!(
        "[pipeline]\noutput = \"out\"\n\n[sources.ads]\ntype = \"{kind}\"\n{ids}\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"${{ADS_CLIENT_SECRET}}\"\n\
         auth_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nbase_url = \"{api}\"\n\
         secrets_file = \".kpipe-secrets/ads.toml\"\n",
        base = auth.base,
        api = api.base_url(),
    );
    std::fs::write(dir.join("kpipe.toml"), text).expect("write");
}

/// Runs `kpipe auth ads` and plays the person's browser: approves the consent URL it prints
/// and follows the redirect to its loopback listener. Returns the outcome and standard error.
fn consent(dir: &Path, auth: &AuthServer, extra: &[&str]) -> (Output, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["auth", "ads", "-c", "kpipe.toml", "--timeout", "30"])
        .args(extra)
        .current_dir(dir)
        .env("ADS_CLIENT_SECRET", CLIENT_SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpipe auth");
    // Drained on a thread: trace logging must never fill the pipe while the redirect is served.
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    let prefix = format!("{}/authorize?", auth.base);
    let consent_url = loop {
        let line = received.recv_timeout(Duration::from_secs(30)).expect("a consent URL on standard error");
        if let Some(at) = line.find(&prefix) {
            break Url::parse(line[at..].trim()).expect("a URL");
        }
    };
    let q: HashMap<String, String> = consent_url.query_pairs().into_owned().collect();
    browser_get(&format!("{}?code={CODE}&state={}", q["redirect_uri"], q["state"]));
    let output = child.wait_with_output().expect("kpipe auth ends");
    let stderr = reader.join().expect("the reader ends with the pipe");
    (output, stderr)
}

/// A plain HTTP/1.1 GET, as the browser follows the redirect.
fn browser_get(url: &str) {
    let url = Url::parse(url).expect("a URL");
    let (host, port) = (url.host_str().expect("host"), url.port().expect("port"));
    let mut stream = TcpStream::connect((host, port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let target = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// `kpipe check -c kpipe.toml args`, judged at `now` when given, with trace logging on.
fn check(dir: &Path, now: Option<DateTime<Utc>>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    command
        .args(["check", "-c", "kpipe.toml"])
        .args(args)
        .current_dir(dir)
        .env("ADS_CLIENT_SECRET", CLIENT_SECRET)
        .env("RUST_LOG", "trace")
        .env_remove("KPIPE_NOW");
    if let Some(now) = now {
        command.env("KPIPE_NOW", now.to_rfc3339());
    }
    command.output().expect("kpipe check runs")
}

fn assert_no_secret(everything: &str) {
    for secret in [CLIENT_SECRET, CODE, ACCESS_TOKEN, REFRESH_TOKEN, STATIC_TOKEN] {
        assert!(!everything.contains(secret), "`{secret}` appears in the output:\n{everything}");
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// The record `kpipe auth` wrote next to the refresh token.
fn recorded(dir: &Path) -> (DateTime<Utc>, Option<DateTime<Utc>>, toml::Table) {
    let text = std::fs::read_to_string(dir.join(".kpipe-secrets/ads.toml")).expect("the secrets file");
    let table: toml::Table = text.parse().expect("TOML");
    let instant = |key: &str| {
        table
            .get(key)
            .and_then(toml::Value::as_datetime)
            .map(|dt| DateTime::parse_from_rfc3339(&dt.to_string()).expect("RFC 3339").with_timezone(&Utc))
    };
    let issued = instant("refresh_token_issued_at").expect("the issue date is recorded");
    (issued, instant("refresh_token_expires_at"), table)
}

#[test]
fn a_linkedin_refresh_token_is_dated_by_auth_and_watched_by_check() {
    let auth = AuthServer::start(Some(YEAR_SECONDS), RefreshLifetime::CountingDown);
    let api = auth.api(Arc::new(LinkedInApi::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &auth, &api, "linkedin", "account_ids = [\"508000001\"]");

    let (out, stderr) = consent(dir.path(), &auth, &["--no-browser"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("`kpipe check` warns ahead of it"), "{stderr}");
    let mut everything = stderr;

    let (issued, expires, table) = recorded(dir.path());
    let expires = expires.expect("the expiry is recorded");
    assert_eq!((expires - issued).num_seconds(), i64::try_from(YEAR_SECONDS).expect("fits"));
    assert_eq!(table.get("refresh_token").and_then(|v| v.as_str()), Some(REFRESH_TOKEN));

    // Today: a year left.
    let out = check(dir.path(), None, &[]);
    let t = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(t.contains("  ok   ads (linkedin): readable: ad account 508000001"), "{t}");
    assert!(t.contains("       credential: refresh token; expires on "), "{t}");
    assert!(t.contains("access tokens live 60 days"), "{t}");
    everything.push_str(&text(&out));

    // 340 and a half days later: 24 and a half days left, within the 30 days of warning (half a
    // day away from a whole number, whatever the second the consent fell in).
    let later = issued + chrono::Duration::days(340) + chrono::Duration::hours(12);
    let out = check(dir.path(), Some(later), &[]);
    let t = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(t.contains("  WARN ads (linkedin): "), "{t}");
    assert!(
        t.contains("warning from 30 days before): run `kpipe auth ads -c kpipe.toml` before then"),
        "{t}"
    );
    assert!(t.contains("0 ok, 1 with warnings, 0 failed, 0 skipped"), "{t}");
    everything.push_str(&text(&out));

    // A tighter threshold: no warning yet.
    let out = check(dir.path(), Some(later), &["--warn-days", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The monitoring view of the same day.
    let out = check(dir.path(), Some(later), &["--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["status"], "warning");
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["config"], "kpipe.toml");
    let checked_at = report["checked_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    assert_eq!(checked_at.map(|t| t.with_timezone(&Utc)), Some(later), "{report}");
    let source = &report["sources"][0];
    assert_eq!(source["name"], "ads");
    assert_eq!(source["type"], "linkedin");
    assert_eq!(source["status"], "warning");
    assert!(source["check"].as_str().is_some_and(|c| c.contains("508000001")), "{source}");
    assert_eq!(source["error"], serde_json::Value::Null);
    let token = &source["token"];
    assert_eq!(token["credential"], "refresh_token");
    assert_eq!(token["status"], "warning");
    assert_eq!(token["warn_days"], 30);
    // LinkedIn's refresh answer counts down from the consent's 365 days (§5).
    assert_eq!(token["refresh_token_expiry"], "announced");
    assert_eq!(token["refresh_token_days_left"], 24);
    assert_eq!(token["access_token_lifetime_seconds"], 5_183_999);
    let expires_json = token["refresh_token_expires_at"].as_str().expect("a date-time");
    let announced = DateTime::parse_from_rfc3339(expires_json).expect("RFC 3339").with_timezone(&Utc);
    assert!((announced - expires).num_seconds().abs() < 120, "{announced} vs {expires}");
    assert!(token["refresh_token_issued_at"].is_string(), "{token}");
    everything.push_str(&text(&out));

    // A day after the expiry: the check fails.
    let out = check(dir.path(), Some(issued + chrono::Duration::days(366)), &[]);
    let t = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(t.contains("  FAIL ads (linkedin): "), "{t}");
    assert!(t.contains("credential: refresh token; EXPIRED on "), "{t}");
    assert!(t.contains("run `kpipe auth ads -c kpipe.toml` for a new one"), "{t}");
    everything.push_str(&text(&out));

    // The token endpoint knows better than the record: a refresh token revoked early, say.
    auth.answers.lock().expect("answers").on_refresh = RefreshLifetime::Fixed(10 * 86_400);
    let out = check(dir.path(), None, &[]);
    let t = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(t.contains("in 10 days (as the token endpoint announced on this check"), "{t}");
    everything.push_str(&text(&out));

    assert_no_secret(&everything);
}

#[test]
fn a_google_app_in_testing_is_warned_about_two_days_ahead() {
    // Google's answers carry no refresh-token lifetime (ga4.md §7): only the record dates it.
    let auth = AuthServer::start(None, RefreshLifetime::Omitted);
    let api = auth.api(Arc::new(Ga4Api::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &auth, &api, "google_analytics", "property_ids = [\"123456789\"]");

    let (out, stderr) = consent(dir.path(), &auth, &["--google-testing-app"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (issued, expires, table) = recorded(dir.path());
    assert_eq!(expires.map(|e| e - issued), Some(chrono::Duration::days(7)));
    assert!(
        table
            .get("refresh_token_expiry_basis")
            .and_then(|v| v.as_str())
            .is_some_and(|b| b.contains("Testing")),
        "{table:?}"
    );

    let out = check(dir.path(), Some(issued + chrono::Duration::days(4)), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let token = &json(&out)["sources"][0]["token"];
    assert_eq!(token["status"], "ok");
    assert_eq!(token["warn_days"], 2);
    assert_eq!(token["refresh_token_expiry"], "recorded");
    assert_eq!(token["access_token_lifetime_seconds"], 5_183_999);

    let out = check(dir.path(), Some(issued + chrono::Duration::days(6)), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stdout(&out).contains("in 24 hours (as recorded by `kpipe auth`; warning from 2 days before)"),
        "{}",
        text(&out)
    );
    assert_no_secret(&format!("{stderr}{}", text(&out)));

    // Without the flag nothing is dated; and the flag is Google's only.
    let (out, stderr) = consent(dir.path(), &auth, &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (_, expires, _) = recorded(dir.path());
    assert_eq!(expires, None, "the expiry of the earlier consent was not removed");
    let out = check(dir.path(), None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("no fixed expiry known"), "{}", text(&out));
}

#[test]
fn a_static_token_has_no_known_expiry_and_a_file_source_no_credential() {
    let auth = AuthServer::start(None, RefreshLifetime::Omitted);
    let api = auth.api(Arc::new(LinkedInApi::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    common::write(dir.path(), "data/m.csv", "date,platform,account,level,entity,metric,value,currency\n");
    let config = common::config(&format!(
        "\n[sources.ads]\ntype = \"linkedin\"\naccount_ids = [\"508000001\"]\n\
         access_token = \"{STATIC_TOKEN}\"\nbase_url = \"{}\"\n\n[sources.old]\ntype = \"files\"\n\
         kind = \"metrics\"\npath = \"data/*.csv\"\nenabled = false\n",
        api.base_url()
    ));
    common::write(dir.path(), "kpipe.toml", &config);

    let out = check(dir.path(), None, &[]);
    let t = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(t.contains("credential: static access token; no expiry known"), "{t}");
    assert!(t.contains("  ok   sheet (files): 1 file(s) match"), "{t}");
    assert!(t.contains("headers are valid for kind metrics\n       credential: none\n"), "{t}");
    assert!(t.contains("  skip old (files): disabled"), "{t}");
    assert!(t.contains("2 ok, 0 with warnings, 0 failed, 1 skipped"), "{t}");

    let out = check(dir.path(), None, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["status"], "ok");
    let sources = report["sources"].as_array().expect("sources");
    let by_name = |name: &str| sources.iter().find(|s| s["name"] == name).expect(name).clone();
    let ads = by_name("ads");
    assert_eq!(ads["token"]["credential"], "static_access_token");
    assert_eq!(ads["token"]["refresh_token_expires_at"], serde_json::Value::Null);
    assert_eq!(ads["token"]["refresh_token_expiry"], serde_json::Value::Null);
    assert_eq!(by_name("sheet")["token"]["credential"], "none");
    assert_eq!(by_name("old")["status"], "skipped");
    assert_eq!(by_name("old")["token"], serde_json::Value::Null);
    assert_no_secret(&text(&out));

    let out = check(dir.path(), None, &[]);
    assert_no_secret(&text(&out));
    let mut bad = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    let out = bad
        .args(["check", "-c", "kpipe.toml"])
        .current_dir(dir.path())
        .env("KPIPE_NOW", "next tuesday")
        .output()
        .expect("kpipe check runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("KPIPE_NOW: `next tuesday` is not an RFC 3339 date-time"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_simulated_platforms_report_their_credentials() {
    // The simulators' token endpoints answer as the platforms do: LinkedIn with the refresh
    // token's remaining lifetime (linkedin.md §5), HubSpot with 30-minute access tokens
    // (hubspot.md §7), Google with 1-hour ones (ga4.md §7); Facebook takes a fixed token.
    let apis = kpipe_cli::demo_apis::DemoApis::start().await.expect("the simulators start");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!("[pipeline]\noutput = \"out\"\n{}", apis.sources_toml());
    std::fs::write(dir.path().join("kpipe.toml"), config).expect("write");
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || check(&path, None, &["--json"])).await.expect("joined");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let sources = report["sources"].as_array().expect("sources").clone();
    let token =
        |name: &str| sources.iter().find(|s| s["name"] == name).map(|s| s["token"].clone()).expect(name);
    let linkedin = token("linkedin_ads");
    assert_eq!(linkedin["credential"], "refresh_token");
    assert_eq!(linkedin["refresh_token_expiry"], "announced");
    // 31,535,999 seconds: a second short of 365 days.
    assert_eq!(linkedin["refresh_token_days_left"], 364);
    let hubspot = token("hubspot_crm");
    assert_eq!(hubspot["refresh_token_expiry"], "does_not_expire");
    assert_eq!(hubspot["access_token_lifetime_seconds"], 1800);
    let google = token("web_analytics");
    assert_eq!(google["refresh_token_expiry"], "unknown");
    assert!(google["message"].as_str().is_some_and(|m| m.contains("access tokens live 1 hour")), "{google}");
    let facebook = token("facebook_ads");
    assert_eq!(facebook["credential"], "static_access_token");
    for secret in
        ["sim-secret", "sim-refresh-token", "sim-at-", kpipe_sim::platform::facebook::DEMO_ACCESS_TOKEN]
    {
        assert!(!text(&out).contains(secret), "`{secret}` appears in:\n{}", text(&out));
    }
    apis.shutdown().await;
}
