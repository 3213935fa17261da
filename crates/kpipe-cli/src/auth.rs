//! `kpipe auth <source>`: the OAuth 2.0 authorization-code flow with PKCE (RFC 7636, `S256`)
//! and a loopback redirect (RFC 8252 §7.3) that turns a person's consent into a refresh token.
//! The token goes into a secrets file that only its owner can read (or, with `--print`, to
//! standard output for a secret store); the code, the verifier and the tokens never reach a log
//! or a message.
//!
//! The flow reads the raw `[sources.<name>]` table rather than building the connector, so that
//! it works before the refresh token it produces exists (`${LINKEDIN_REFRESH_TOKEN}` unset).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use kpipe_core::Secret;
use kpipe_http::{GrantedTokens, HttpClient, HttpError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use url::Url;

use crate::config::{SECRETS_FILE_KEY, substitute_env};
use crate::token_health::{RECORD_KEYS, RefreshTokenRecord};

/// Exit code: the refresh token was stored or printed.
pub const EXIT_OK: u8 = 0;
/// Exit code: the consent or the exchange failed (refused, state mismatch, timeout, token
/// endpoint error) or the file could not be written.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the configuration or the command line is wrong; nothing was sent.
pub const EXIT_USAGE: u8 = 2;

/// The path of the redirect URI on the loopback listener.
pub const CALLBACK_PATH: &str = "/callback";

/// A platform's OAuth endpoints and habits.
#[derive(Debug)]
pub struct Platform {
    /// The connector `type` of its sources.
    pub kind: &'static str,
    /// Its name, for messages.
    pub name: &'static str,
    /// The authorization endpoint the person's browser opens.
    pub authorization_url: &'static str,
    /// The token endpoint that exchanges the code.
    pub token_url: &'static str,
    /// The token endpoint's path below the source's `base_url`, for connectors that derive it
    /// from there when `token_url` is absent.
    pub token_path_under_base_url: Option<&'static str>,
    /// Scopes asked for when the source sets no `scopes`.
    pub scopes: &'static [&'static str],
    /// The client id and secret go in the form body; false: HTTP Basic.
    pub credentials_in_body: bool,
    /// Consent URL parameters the platform needs to grant a refresh token at all.
    pub extra_params: &'static [(&'static str, &'static str)],
    /// How long its refresh tokens live when the token response does not say.
    pub refresh_token_lifetime: RefreshLifetime,
    /// What the OAuth app must have registered for the loopback redirect.
    pub redirect_note: &'static str,
    /// The usual cause when tokens come back without a refresh token.
    pub no_refresh_token_hint: &'static str,
}

/// How long a platform's refresh tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshLifetime {
    /// A fixed number of days from the consent; using the token does not extend it.
    FixedDays(u32),
    /// A number of days that applies only in some app states (explained by the note).
    ConditionalDays(u32, &'static str),
    /// Until the app is uninstalled or the grant revoked.
    UntilRevoked,
}

/// The platforms `kpipe auth` serves, from shared/apis/{linkedin,hubspot,ga4}.md and the
/// platforms' OAuth documentation.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        kind: "linkedin",
        name: "LinkedIn",
        authorization_url: "https://www.linkedin.com/oauth/v2/authorization",
        token_url: "https://www.linkedin.com/oauth/v2/accessToken",
        token_path_under_base_url: None,
        scopes: &["r_ads", "r_ads_reporting", "rw_organization_admin", "r_organization_social"],
        credentials_in_body: true,
        extra_params: &[],
        // Programmatic refresh tokens: 365 days, fixed; refreshing does not extend them.
        refresh_token_lifetime: RefreshLifetime::FixedDays(365),
        redirect_note: "LinkedIn accepts only redirect URLs listed in the app's Auth settings: \
                        add http://127.0.0.1:<port>/callback there and pass that --port",
        no_refresh_token_hint: "LinkedIn issues refresh tokens only to apps approved for programmatic \
                                refresh tokens",
    },
    Platform {
        kind: "hubspot",
        name: "HubSpot",
        authorization_url: "https://app.hubspot.com/oauth/authorize",
        token_url: "https://api.hubapi.com/oauth/v1/token",
        // As the HubSpot connector does, so that one `base_url` points both at a proxy.
        token_path_under_base_url: Some("oauth/v1/token"),
        scopes: &["oauth", "content", "forms", "crm.objects.contacts.read", "crm.objects.deals.read"],
        credentials_in_body: true,
        extra_params: &[],
        refresh_token_lifetime: RefreshLifetime::UntilRevoked,
        redirect_note: "HubSpot accepts only the redirect URL of the app's Auth settings: \
                        set it to http://127.0.0.1:<port>/callback and pass that --port",
        no_refresh_token_hint: "check that the token endpoint is HubSpot's (`token_url`, `base_url`)",
    },
    Platform {
        kind: "google_analytics",
        name: "Google Analytics",
        authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        token_path_under_base_url: None,
        scopes: &["https://www.googleapis.com/auth/analytics.readonly"],
        // Google takes either; the body is what its installed-app guide shows and what the
        // connector's refreshes send.
        credentials_in_body: true,
        // Without these Google grants no refresh token, or none on a second consent.
        extra_params: &[("access_type", "offline"), ("prompt", "consent")],
        refresh_token_lifetime: RefreshLifetime::ConditionalDays(
            7,
            "while the Google Cloud app's publishing status is \"Testing\"; in production it lasts \
             until revoked or unused for 6 months",
        ),
        redirect_note: "use an OAuth client of type \"Desktop app\", which accepts any loopback port",
        no_refresh_token_hint: "Google grants one only with access_type=offline and prompt=consent; \
                                check that the authorization endpoint is Google's (`auth_url`)",
    },
];

/// The platform of a connector `type`.
pub fn platform(kind: &str) -> Option<&'static Platform> {
    PLATFORMS.iter().find(|p| p.kind == kind)
}

/// Why the flow stopped. No variant carries a code, a verifier, a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The configuration does not allow the flow.
    #[error("{}: {key}: {message}", file.display())]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The loopback port cannot be listened on.
    #[error("cannot listen on 127.0.0.1:{port} for the redirect: {source}")]
    Listen {
        /// The port asked for (0: any).
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// No redirect arrived in time.
    #[error("no redirect arrived within {0:?}; run `kpipe auth` again")]
    Timeout(Duration),
    /// The redirect's `state` is not the one this flow sent: an answer to another (or a forged)
    /// consent request, refused.
    #[error("the redirect's `state` does not match this request: refused (a stale tab or a forged redirect)")]
    StateMismatch,
    /// The platform reported an error instead of a code (the person declined, a bad scope...).
    #[error("the authorization was refused: {error}{}", in_parentheses(description.as_deref()))]
    Denied {
        /// The OAuth `error` code.
        error: String,
        /// Its `error_description`.
        description: Option<String>,
    },
    /// The redirect carries no `code`.
    #[error("the redirect carries no authorization code")]
    MissingCode,
    /// The token endpoint did not grant tokens for the code.
    #[error(transparent)]
    Exchange(#[from] HttpError),
    /// Tokens were granted, but no refresh token.
    #[error("{platform} granted an access token but no refresh token: {hint}")]
    NoRefreshToken {
        /// The platform's name.
        platform: &'static str,
        /// What usually causes it.
        hint: &'static str,
    },
    /// The secrets file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn in_parentheses(text: Option<&str>) -> String {
    text.map(|t| format!(" ({t})")).unwrap_or_default()
}

/// A source's OAuth settings, read from its `[sources.<name>]` table.
#[derive(Debug, Clone)]
pub struct AuthSource {
    /// The source's name.
    pub name: String,
    /// Its platform.
    pub platform: &'static Platform,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Secret,
    /// `auth_url`, or the platform's authorization endpoint.
    pub authorization_url: Url,
    /// `token_url`, or the platform's token endpoint.
    pub token_url: String,
    /// `scopes`, or the platform's defaults.
    pub scopes: Vec<String>,
    /// The table's `secrets_file`, resolved against the configuration's directory.
    pub secrets_file: Option<PathBuf>,
    /// The configuration's directory.
    pub config_dir: PathBuf,
}

/// Reads the OAuth settings of source `name` from the configuration at `path`, taking
/// `${NAME}` values from `env`. Only the keys the flow uses are interpolated, so a variable
/// the flow does not need (the refresh token it is about to produce) may be unset.
pub fn read_source(
    path: &Path,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthSource, AuthError> {
    let fail = |key: &str, message: String| AuthError::Config {
        file: path.to_path_buf(),
        key: key.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail("", format!("cannot read the configuration file: {e}")))?;
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        fail("", format!("not valid TOML: {}", crate::redact::toml_syntax_error(&text, &e)))
    })?;
    let at = format!("sources.{name}");
    let sources = match doc.get("sources") {
        Some(toml::Value::Table(t)) => t,
        _ => return Err(fail("sources", "missing; expected [sources.<name>] tables".into())),
    };
    let Some(toml::Value::Table(table)) = sources.get(name) else {
        let known = sources.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        return Err(fail(&at, format!("no such source; configured: {known}")));
    };
    let string = |key: &str| -> Result<Option<String>, AuthError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => {
                substitute_env(s, env).map(Some).map_err(|m| fail(&format!("{at}.{key}"), m))
            }
            Some(_) => Err(fail(&format!("{at}.{key}"), "expected a string".into())),
        }
    };
    let kind = string("type")?.ok_or_else(|| fail(&format!("{at}.type"), "missing".into()))?;
    let platform = platform(&kind).ok_or_else(|| {
        let kinds = PLATFORMS.iter().map(|p| p.kind).collect::<Vec<_>>().join(", ");
        fail(
            &format!("{at}.type"),
            format!("`{kind}` does not use an OAuth consent; `kpipe auth` serves: {kinds}"),
        )
    })?;
    let required = |key: &str| -> Result<String, AuthError> {
        string(key)?.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            fail(
                &format!("{at}.{key}"),
                format!(
                    "missing; `kpipe auth` needs the {} OAuth app's {key} (a service-account source \
                     needs no consent)",
                    platform.name
                ),
            )
        })
    };
    let client_id = required("client_id")?;
    let client_secret = Secret::new(required("client_secret")?);
    let authorization_text = string("auth_url")?.unwrap_or_else(|| platform.authorization_url.to_owned());
    let authorization_url = kpipe_http::url::parse_base_url(&authorization_text)
        .map_err(|e| fail(&format!("{at}.auth_url"), e.to_string()))?;
    let token_url = match (string("token_url")?, platform.token_path_under_base_url) {
        (Some(url), _) => url,
        (None, Some(path)) => match string("base_url")? {
            Some(base) => format!("{}/{path}", base.trim_end_matches('/')),
            None => platform.token_url.to_owned(),
        },
        (None, None) => platform.token_url.to_owned(),
    };
    kpipe_http::url::parse_base_url(&token_url)
        .map_err(|e| fail(&format!("{at}.token_url"), e.to_string()))?;
    let scopes = match table.get("scopes") {
        None => platform.scopes.iter().map(|s| (*s).to_owned()).collect(),
        Some(toml::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| fail(&format!("{at}.scopes"), "expected strings".into()))?,
        Some(_) => return Err(fail(&format!("{at}.scopes"), "expected a list of scope names".into())),
    };
    let config_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let secrets_file = string(SECRETS_FILE_KEY)?.map(|p| config_dir.join(p.trim()));
    Ok(AuthSource {
        name: name.to_owned(),
        platform,
        client_id,
        client_secret,
        authorization_url,
        token_url,
        scopes,
        secrets_file,
        config_dir,
    })
}

/// A PKCE pair (RFC 7636 §4.1, §4.2): the verifier stays here, the challenge goes in the URL.
#[derive(Debug)]
pub struct Pkce {
    /// `code_verifier`: 43 characters of base64url from 32 random bytes.
    pub verifier: Secret,
    /// `code_challenge`: `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair from the operating system's randomness.
    pub fn generate() -> Pkce {
        let verifier = random_token(32);
        let challenge = s256_challenge(&verifier);
        Pkce { verifier: Secret::new(verifier), challenge }
    }
}

/// The `S256` code challenge of `verifier` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `bytes` random bytes as unpadded base64url: 32 bytes give 256 bits in 43 characters.
fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The consent URL: the authorization request of RFC 6749 §4.1.1 with the PKCE challenge.
pub fn consent_url(source: &AuthSource, redirect_uri: &str, state: &str, challenge: &str) -> Url {
    let mut url = source.authorization_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &source.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &source.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in source.platform.extra_params {
            q.append_pair(k, v);
        }
    }
    url
}

/// The loopback listener the platform redirects the browser to.
#[derive(Debug)]
pub struct Loopback {
    listener: tokio::net::TcpListener,
    port: u16,
    redirect_uri: String,
}

impl Loopback {
    /// Listens on `127.0.0.1:<port>` (0: a free port the system picks).
    pub async fn bind(port: u16) -> Result<Loopback, AuthError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| AuthError::Listen { port, source })?;
        let bound = listener.local_addr().map_err(|source| AuthError::Listen { port, source })?.port();
        Ok(Loopback {
            listener,
            port: bound,
            redirect_uri: format!("http://127.0.0.1:{bound}{CALLBACK_PATH}"),
        })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Serves until the first request to the callback path, and returns its code once its
    /// `state` is the expected one. Exactly one callback is accepted: whatever it carries, the
    /// listener closes after it.
    pub async fn wait(self, state: &str, timeout: Duration) -> Result<Secret, AuthError> {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Callback { state: state.to_owned(), answer: Mutex::new(Some(tx)) });
        let router =
            axum::Router::new().route(CALLBACK_PATH, axum::routing::get(callback)).with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(self.listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            // The sender lives as long as the server; it cannot go away first.
            Ok(Err(_)) => Err(AuthError::MissingCode),
            Err(_) => Err(AuthError::Timeout(timeout)),
        };
        let _ = stop.send(());
        // Let the browser receive its page, but never wait on a connection it keeps open.
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        result
    }
}

struct Callback {
    state: String,
    answer: Mutex<Option<oneshot::Sender<Result<Secret, AuthError>>>>,
}

async fn callback(State(shared): State<Arc<Callback>>, RawQuery(query): RawQuery) -> impl IntoResponse {
    let Some(answer) = shared.answer.lock().ok().and_then(|mut a| a.take()) else {
        return (StatusCode::GONE, Html(page("This authorization request has already been answered.")));
    };
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let result = evaluate_callback(&params, &shared.state);
    let response = match &result {
        Ok(_) => (
            StatusCode::OK,
            Html(page(
                "kpipe received the authorization. You can close this tab and return to the terminal.",
            )),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, Html(page(&format!("kpipe did not accept this redirect: {e}")))),
    };
    let _ = answer.send(result);
    response
}

/// Checks a redirect's query (RFC 6749 §4.1.2, §4.1.2.1): the `state` first, so that nothing
/// of a forged redirect is believed, then the error or the code.
pub fn evaluate_callback(params: &[(String, String)], expected_state: &str) -> Result<Secret, AuthError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("state") {
        Some(state) if constant_time_eq(state.as_bytes(), expected_state.as_bytes()) => {}
        _ => return Err(AuthError::StateMismatch),
    }
    if let Some(error) = get("error") {
        return Err(AuthError::Denied {
            error: printable(error, 100),
            description: get("error_description").map(|d| printable(d, 300)),
        });
    }
    match get("code") {
        Some(code) if !code.is_empty() => Ok(Secret::new(code)),
        _ => Err(AuthError::MissingCode),
    }
}

/// Compares without stopping at the first difference, so timing tells nothing of the state.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Text from the redirect, fit for a terminal: no control characters, bounded.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn page(message: &str) -> String {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kpipe auth</title></head>\
         <body><p>{escaped}</p></body></html>"
    )
}

/// How the flow runs.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// The loopback port (0: any free port).
    pub port: u16,
    /// How long to wait for the redirect.
    pub timeout: Duration,
    /// Open the consent URL with the desktop's browser as well as printing it.
    pub open_browser: bool,
}

/// The outcome of a consent.
#[derive(Debug)]
pub struct Authorized {
    /// The refresh token.
    pub refresh_token: Secret,
    /// When the token endpoint granted it.
    pub granted_at: DateTime<Utc>,
    /// When it expires, if the token response said so.
    pub announced_expiry: Option<DateTime<Utc>>,
    /// The scopes granted, if the platform said.
    pub scope: Option<String>,
}

/// Runs the consent: prints the URL to `out`, waits for the one redirect, checks its state, and
/// exchanges its code with the PKCE verifier for tokens.
pub async fn authorize(
    source: &AuthSource,
    http: &HttpClient,
    options: &FlowOptions,
    out: &mut dyn Write,
) -> Result<Authorized, AuthError> {
    let loopback = Loopback::bind(options.port).await?;
    let redirect_uri = loopback.redirect_uri().to_owned();
    let state = random_token(16);
    let pkce = Pkce::generate();
    let url = consent_url(source, &redirect_uri, &state, &pkce.challenge);
    let p = source.platform;
    let _ = writeln!(
        out,
        "Open this URL in a browser, sign in to {} and approve access for source `{}`:\n\n  {url}\n",
        p.name, source.name
    );
    let _ = writeln!(out, "Note: {}.", p.redirect_note);
    if options.open_browser
        && let Err(e) = open_browser(&url)
    {
        let _ = writeln!(out, "(could not open a browser: {e}; open the URL yourself)");
    }
    let _ = writeln!(
        out,
        "Waiting for the redirect to {redirect_uri} (for {}s; on another machine, forward the port \
         with `ssh -L {port}:127.0.0.1:{port}` and use --port {port})...",
        options.timeout.as_secs(),
        port = loopback.port(),
    );
    let _ = out.flush();
    let code = loopback.wait(&state, options.timeout).await?;
    let _ = writeln!(out, "Authorization received; exchanging it at {}.", source.token_url);
    tracing::info!(source = %source.name, token_url = %source.token_url, "exchanging the authorization code");
    let granted: GrantedTokens = kpipe_http::exchange_authorization_code(
        http,
        &source.token_url,
        &source.client_id,
        &source.client_secret,
        &code,
        &redirect_uri,
        &pkce.verifier,
        p.credentials_in_body,
    )
    .await?;
    let refresh_token = granted
        .refresh_token
        .ok_or(AuthError::NoRefreshToken { platform: p.name, hint: p.no_refresh_token_hint })?;
    let granted_at = Utc::now();
    let announced_expiry = granted
        .refresh_token_expires_in
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| granted_at.checked_add_signed(d));
    Ok(Authorized { refresh_token, granted_at, announced_expiry, scope: granted.scope })
}

fn open_browser(url: &Url) -> std::io::Result<()> {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let mut child = std::process::Command::new(program)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped in the background: the opener may outlive the flow.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// What is known at the consent about the refresh token's life: issued when granted; expiring
/// when the token response said (LinkedIn's `refresh_token_expires_in`), else after the
/// platform's fixed lifetime, else (Google) after 7 days when the person says the OAuth app is
/// in Testing.
pub fn refresh_token_record(
    platform: &Platform,
    authorized: &Authorized,
    testing_app: bool,
) -> RefreshTokenRecord {
    let now = authorized.granted_at;
    let after_days = |days: u32| now.checked_add_signed(chrono::Duration::days(i64::from(days)));
    let (expires_at, basis) = match (authorized.announced_expiry, platform.refresh_token_lifetime) {
        (Some(at), _) => {
            (Some(at), Some("announced by the token endpoint (refresh_token_expires_in)".to_owned()))
        }
        (None, RefreshLifetime::FixedDays(days)) => (
            after_days(days),
            Some(format!("{} refresh tokens last {days} days from the consent", platform.name)),
        ),
        (None, RefreshLifetime::ConditionalDays(days, _)) if testing_app => (
            after_days(days),
            Some(format!("{} refresh tokens of OAuth apps in Testing last {days} days", platform.name)),
        ),
        (None, RefreshLifetime::ConditionalDays(..) | RefreshLifetime::UntilRevoked) => (None, None),
    };
    RefreshTokenRecord { issued_at: Some(now), expires_at, basis }
}

/// When the refresh token expires, in words, for the file header and the terminal.
pub fn expiry_text(platform: &Platform, record: &RefreshTokenRecord) -> String {
    let lifetime = platform.refresh_token_lifetime;
    let not_extended =
        matches!(lifetime, RefreshLifetime::FixedDays(_)).then_some("using it does not extend it");
    match (record.expires_at, lifetime) {
        (Some(at), _) => {
            let why = record.basis.as_deref().into_iter().chain(not_extended).collect::<Vec<_>>().join("; ");
            let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
            let or_publish = if matches!(lifetime, RefreshLifetime::ConditionalDays(..)) {
                ", or publish the app"
            } else {
                ""
            };
            format!(
                "expires on {}{why}: run `kpipe auth` again before then{or_publish}; `kpipe check` warns \
                 ahead of it",
                at.format("%Y-%m-%d")
            )
        }
        (None, RefreshLifetime::ConditionalDays(days, when)) => format!(
            "expires after {days} days {when} (if the app is in Testing, `--google-testing-app` has \
             `kpipe check` warn ahead of it)"
        ),
        (None, RefreshLifetime::FixedDays(days)) => {
            format!("expires after {days} days (using it does not extend it)")
        }
        (None, RefreshLifetime::UntilRevoked) => {
            "does not expire: it lasts until the app is uninstalled or the grant revoked".to_owned()
        }
    }
}

/// `<config dir>/.kpipe-secrets/<source>.toml`.
pub fn default_secrets_path(config_dir: &Path, source: &str) -> PathBuf {
    config_dir.join(".kpipe-secrets").join(format!("{source}.toml"))
}

/// Writes the refresh token and its `record` into the TOML secrets file at `path` (mode 0600,
/// atomically), keeping the other keys of an existing file and replacing the record of the
/// token it held. A `[sources.<name>]` table reads it with `secrets_file`.
pub fn store_refresh_token(
    path: &Path,
    source: &AuthSource,
    token: &Secret,
    record: &RefreshTokenRecord,
) -> Result<(), AuthError> {
    let store_error = |source| AuthError::Store { path: path.to_path_buf(), source };
    let mut table = match std::fs::read_to_string(path) {
        Ok(text) => text.parse::<toml::Table>().map_err(|_| {
            store_error(std::io::Error::other(
                "the existing file is not a TOML secrets file; move it away or choose another --secrets-file",
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(store_error(e)),
    };
    // The dates of the token it held do not apply to the new one.
    for key in RECORD_KEYS {
        table.remove(key);
    }
    table.insert("refresh_token".to_owned(), toml::Value::String(token.expose().to_owned()));
    let written = record.issued_at.unwrap_or_else(Utc::now);
    let mut text = format!(
        "# kpipe secrets of source `{}` ({}), written by `kpipe auth` on {}.\n\
         # The refresh token {}.\n\
         # Read by the configuration through `{SECRETS_FILE_KEY} = \"...\"` in [sources.{}].\n",
        source.name,
        source.platform.name,
        written.format("%Y-%m-%d %H:%M UTC"),
        expiry_text(source.platform, record),
        source.name,
    );
    for (key, value) in &table {
        // A TOML value's Display is its quoted, escaped form.
        text.push_str(&format!("{key} = {value}\n"));
    }
    let entries = record.to_entries();
    if !entries.is_empty() {
        text.push_str("\n# When the refresh token was issued and expires, for `kpipe check`'s warnings.\n");
        for (key, value) in entries {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    write_private_file(path, text.as_bytes()).map_err(store_error)
}

/// Writes `contents` to `path` so that no other user can ever read it and no reader ever sees
/// half of it: a temporary file created with mode 0600 in the same directory, synced, then
/// renamed over `path`. A directory it creates gets mode 0700.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), random_token(6)));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        // The umask can only remove bits, but say it exactly anyway.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename itself survives a crash only once the directory is synced.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `kpipe auth <source>`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the refresh token was stored (or printed), 1 the consent or the token \
                        exchange failed, 2 configuration or usage error."
)]
pub struct AuthArgs {
    /// The source to authorize: the name of its [sources.<name>] table (type linkedin, hubspot or
    /// google_analytics, with client_id and client_secret).
    pub source: String,
    /// The configuration file.
    #[arg(short, long)]
    pub config: PathBuf,
    /// Print the refresh token on standard output (for a secret store) instead of storing it.
    #[arg(long)]
    pub print: bool,
    /// Store the refresh token here (mode 0600); default: the source's `secrets_file`, else
    /// .kpipe-secrets/<source>.toml beside the configuration file.
    #[arg(long, value_name = "FILE", conflicts_with = "print")]
    pub secrets_file: Option<PathBuf>,
    /// The port of the redirect URI http://127.0.0.1:<port>/callback; default: any free port.
    /// LinkedIn and HubSpot accept only registered redirect URIs: register one, pass its port.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Also open the consent URL in the desktop's browser.
    #[arg(long, overrides_with = "no_browser")]
    pub browser: bool,
    /// Only print the consent URL (the default).
    #[arg(long, overrides_with = "browser")]
    pub no_browser: bool,
    /// Give up when no redirect arrived after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// The scopes to ask for, space-separated; default: the source's `scopes`, else the
    /// platform's (for connectors whose table has no `scopes` key).
    #[arg(long, value_name = "SCOPES")]
    pub scopes: Option<String>,
    /// The authorization endpoint; default: the source's `auth_url`, else the platform's.
    #[arg(long, value_name = "URL")]
    pub auth_url: Option<String>,
    /// The Google OAuth app's publishing status is "Testing": its refresh tokens expire after 7
    /// days, which is recorded so that `kpipe check` warns ahead of it.
    #[arg(long)]
    pub google_testing_app: bool,
}

/// Runs `kpipe auth`: messages go to standard error, only `--print`'s token to standard output.
/// Returns the exit code.
pub async fn command(args: AuthArgs) -> u8 {
    let env = |name: &str| std::env::var(name).ok();
    let mut source = match read_source(&args.config, &args.source, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error:\n{e}");
            return EXIT_USAGE;
        }
    };
    if args.google_testing_app
        && !matches!(source.platform.refresh_token_lifetime, RefreshLifetime::ConditionalDays(..))
    {
        eprintln!(
            "error: --google-testing-app: only Google's refresh tokens depend on the app's publishing \
             status; `{}` is a {} source",
            source.name, source.platform.name
        );
        return EXIT_USAGE;
    }
    if let Some(scopes) = &args.scopes {
        source.scopes = scopes.split_whitespace().map(str::to_owned).collect();
    }
    if let Some(url) = &args.auth_url {
        match kpipe_http::url::parse_base_url(url) {
            Ok(u) => source.authorization_url = u,
            Err(e) => {
                eprintln!("error: --auth-url: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let http = match HttpClient::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let options = FlowOptions {
        port: args.port,
        timeout: Duration::from_secs(args.timeout),
        open_browser: args.browser && !args.no_browser,
    };
    let mut err = std::io::stderr();
    let authorized = match authorize(&source, &http, &options, &mut err).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let record = refresh_token_record(source.platform, &authorized, args.google_testing_app);
    let expiry = expiry_text(source.platform, &record);
    if let Some(scope) = &authorized.scope {
        eprintln!("Granted scopes: {scope}");
    }
    if args.print {
        println!("{}", authorized.refresh_token.expose());
        eprintln!(
            "The refresh token of `{}` is on standard output; it {expiry}.\n\
             Keep it in a secret store and reference it from [sources.{}] as\n  refresh_token = \"${{{}}}\"",
            source.name,
            source.name,
            env_name(&source.name),
        );
        return EXIT_OK;
    }
    let path = args
        .secrets_file
        .clone()
        .or_else(|| source.secrets_file.clone())
        .unwrap_or_else(|| default_secrets_path(&source.config_dir, &source.name));
    if let Err(e) = store_refresh_token(&path, &source, &authorized.refresh_token, &record) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    eprintln!(
        "Stored the refresh token of `{}` in {} (mode 0600); it {expiry}.",
        source.name,
        path.display()
    );
    eprintln!("{}", usage_hint(&source, &path, &args.config));
    EXIT_OK
}

/// How the configuration reads the stored token.
fn usage_hint(source: &AuthSource, path: &Path, config: &Path) -> String {
    let already = source.secrets_file.as_deref() == Some(path);
    if already {
        return format!("[sources.{}] already reads it through `{SECRETS_FILE_KEY}`.", source.name);
    }
    let shown = path.strip_prefix(&source.config_dir).unwrap_or(path);
    format!(
        "To use it, add this line to [sources.{}] in {} and remove its `refresh_token` line:\n\n  \
         {SECRETS_FILE_KEY} = \"{}\"\n\n\
         (Or keep `refresh_token = \"${{{}}}\"` and set that variable from a secret store: see \
         docs/scheduling.md.)",
        source.name,
        config.display(),
        shown.display(),
        env_name(&source.name),
    )
}

/// `li` -> `LI_REFRESH_TOKEN`: a suggested variable name.
fn env_name(source: &str) -> String {
    format!("{}_REFRESH_TOKEN", source.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::generate();
        // RFC 7636 §4.1: 43 to 128 unreserved characters.
        assert_eq!(pkce.verifier.expose().len(), 43);
        assert!(pkce.verifier.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(pkce.challenge, s256_challenge(pkce.verifier.expose()));
        assert_ne!(Pkce::generate().verifier, pkce.verifier);
    }

    fn config_file(dir: &Path, source: &str) -> PathBuf {
        let path = dir.join("kpipe.toml");
        std::fs::write(&path, format!("[pipeline]\noutput = \"out\"\n{source}")).expect("write");
        path
    }

    fn env(name: &str) -> Option<String> {
        (name == "GA_SECRET").then(|| "ga-secret-value".to_owned())
    }

    #[test]
    fn a_source_is_read_with_platform_defaults_and_only_the_keys_it_needs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = config_file(
            dir.path(),
            "[sources.ga]\ntype = \"google_analytics\"\nproperty_id = \"1\"\nclient_id = \"cid\"\n\
             client_secret = \"${GA_SECRET}\"\nrefresh_token = \"${NOT_YET_SET}\"\n",
        );
        let s = read_source(&path, "ga", &env).expect("read");
        assert_eq!(s.platform.kind, "google_analytics");
        assert_eq!(s.client_secret.expose(), "ga-secret-value");
        assert_eq!(s.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(s.scopes, ["https://www.googleapis.com/auth/analytics.readonly"]);
        assert_eq!(s.secrets_file, None);

        let url = consent_url(&s, "http://127.0.0.1:5000/callback", "st", "ch");
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert!(url.as_str().starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:5000/callback"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("access_type"), Some("offline"));
        assert!(!url.as_str().contains("ga-secret-value"));
    }

    #[test]
    fn overrides_and_mistakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = config_file(
            dir.path(),
            "[sources.li]\ntype = \"linkedin\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             auth_url = \"http://127.0.0.1:9/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
             scopes = [\"r_ads\"]\nsecrets_file = \"private/li.toml\"\n\
             [sources.sheet]\ntype = \"files\"\n[sources.hs]\ntype = \"hubspot\"\nclient_id = \"c\"\n\
             [sources.bad]\ntype = \"linkedin\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             token_url = \"http://example.com/token\"\n\
             [sources.proxied]\ntype = \"hubspot\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             base_url = \"http://127.0.0.1:7/\"\n",
        );
        // HubSpot's token endpoint follows `base_url`, as in the connector.
        let proxied = read_source(&path, "proxied", &env).expect("read");
        assert_eq!(proxied.token_url, "http://127.0.0.1:7/oauth/v1/token");
        assert_eq!(proxied.scopes[0], "oauth");
        let s = read_source(&path, "li", &env).expect("read");
        assert_eq!(s.authorization_url.as_str(), "http://127.0.0.1:9/authorize");
        assert_eq!(s.scopes, ["r_ads"]);
        assert_eq!(s.secrets_file, Some(dir.path().join("private/li.toml")));

        let message = |name: &str| read_source(&path, name, &env).expect_err(name).to_string();
        assert!(
            message("nope").contains("sources.nope: no such source; configured: "),
            "{}",
            message("nope")
        );
        assert!(message("sheet").contains("`files` does not use an OAuth consent"), "{}", message("sheet"));
        assert!(message("hs").contains("sources.hs.client_secret: missing"), "{}", message("hs"));
        assert!(message("bad").contains("sources.bad.token_url: "), "{}", message("bad"));
    }

    #[test]
    fn the_callback_is_checked_state_first() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let ok = evaluate_callback(&p(&[("code", "abc"), ("state", "s1")]), "s1").expect("accepted");
        assert_eq!(ok.expose(), "abc");
        assert!(matches!(
            evaluate_callback(&p(&[("code", "abc"), ("state", "s2")]), "s1"),
            Err(AuthError::StateMismatch)
        ));
        assert!(matches!(evaluate_callback(&p(&[("code", "abc")]), "s1"), Err(AuthError::StateMismatch)));
        // A forged error is not believed either.
        assert!(matches!(
            evaluate_callback(&p(&[("error", "access_denied"), ("state", "x")]), "s1"),
            Err(AuthError::StateMismatch)
        ));
        let denied = evaluate_callback(
            &p(&[("error", "access_denied"), ("error_description", "no\u{1b}[31m"), ("state", "s1")]),
            "s1",
        )
        .expect_err("denied");
        assert_eq!(denied.to_string(), "the authorization was refused: access_denied (no[31m)");
        assert!(matches!(evaluate_callback(&p(&[("state", "s1")]), "s1"), Err(AuthError::MissingCode)));
    }

    #[test]
    fn the_secrets_file_is_private_atomic_and_keeps_other_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new-dir/li.toml");
        let cfg = config_file(
            dir.path(),
            "[sources.li]\ntype = \"linkedin\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        );
        let source = read_source(&cfg, "li", &env).expect("read");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            "other = \"kept\"\nrefresh_token = \"old\"\nrefresh_token_expires_at = 2020-01-01T00:00:00Z\n",
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let record = RefreshTokenRecord { issued_at: Some(Utc::now()), expires_at: None, basis: None };
        store_refresh_token(&path, &source, &Secret::new("new \"quoted\" token"), &record).expect("stored");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let table: toml::Table = std::fs::read_to_string(&path).expect("read").parse().expect("toml");
        assert_eq!(table["refresh_token"].as_str(), Some("new \"quoted\" token"));
        assert_eq!(table["other"].as_str(), Some("kept"));
        // The old token's expiry went with it; the new one's issue date is recorded.
        assert!(!table.contains_key("refresh_token_expires_at"), "{table:?}");
        assert!(table["refresh_token_issued_at"].as_datetime().is_some(), "{table:?}");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // A directory it creates is the owner's only.
        let fresh = dir.path().join("fresh/sub/x.toml");
        write_private_file(&fresh, b"a = \"b\"\n").expect("written");
        let dir_mode = std::fs::metadata(fresh.parent().expect("parent")).expect("meta").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn expiry_is_recorded_and_explained_per_platform() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("date").with_timezone(&Utc);
        let auth = |expiry| Authorized {
            refresh_token: Secret::new("t"),
            granted_at: now,
            announced_expiry: expiry,
            scope: None,
        };
        let day = |r: &RefreshTokenRecord| r.expires_at.map(|t| t.format("%Y-%m-%d").to_string());

        let li = platform("linkedin").expect("linkedin");
        let by_rule = refresh_token_record(li, &auth(None), false);
        assert_eq!((by_rule.issued_at, day(&by_rule).as_deref()), (Some(now), Some("2027-01-01")));
        let text = expiry_text(li, &by_rule);
        assert!(
            text.starts_with(
                "expires on 2027-01-01 (LinkedIn refresh tokens last 365 days from the consent; using it \
                 does not extend it): run `kpipe auth` again before then;"
            ),
            "{text}"
        );
        let announced = refresh_token_record(li, &auth(Some(now + chrono::Duration::days(30))), false);
        assert_eq!(day(&announced).as_deref(), Some("2026-01-31"));
        assert!(announced.basis.as_deref().is_some_and(|b| b.contains("refresh_token_expires_in")));
        assert!(expiry_text(li, &announced).starts_with("expires on 2026-01-31"));

        let ga = platform("google_analytics").expect("ga");
        let testing = refresh_token_record(ga, &auth(None), true);
        assert_eq!(day(&testing).as_deref(), Some("2026-01-08"));
        let text = expiry_text(ga, &testing);
        assert!(
            text.contains(
                "2026-01-08 (Google Analytics refresh tokens of OAuth apps in Testing last 7 days)"
            )
        );
        assert!(text.contains("or publish the app"), "{text}");
        let production = refresh_token_record(ga, &auth(None), false);
        assert_eq!((production.expires_at, production.issued_at), (None, Some(now)));
        assert!(expiry_text(ga, &production).contains("--google-testing-app"));

        let hs = platform("hubspot").expect("hubspot");
        let record = refresh_token_record(hs, &auth(None), false);
        assert_eq!(record.expires_at, None);
        assert!(expiry_text(hs, &record).starts_with("does not expire"));
    }
}
