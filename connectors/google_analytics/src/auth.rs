//! Credentials: a service account's JSON key (the JWT bearer grant, RS256, to the key's
//! `token_uri`) or an OAuth client with a refresh token. Token errors of a key file name the file
//! and the service account, never the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kpipe_core::{BoxFuture, BuildContext, ConfigError};
use kpipe_http::{AccessToken, HttpClient, HttpError, OAuthTokenProvider, ServiceAccountKey, TokenProvider};

use crate::config::{DEFAULT_TOKEN_URL, GoogleAnalyticsConfig};

/// The read-only Analytics scope the tokens are asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";

/// The token provider the configuration describes. A key file is read here, so that a missing
/// or unreadable file is a configuration error before any request.
pub fn token_provider(
    config: &GoogleAnalyticsConfig,
    cx: &BuildContext,
    http: &HttpClient,
) -> Result<Arc<dyn TokenProvider>, ConfigError> {
    let oauth = (&config.client_id, &config.client_secret, &config.refresh_token);
    match (&config.credentials_file, oauth) {
        (Some(file), (None, None, None)) => {
            let path = resolve(&cx.config_dir, file);
            let key = read_key(&path)?;
            let email = key.client_email().to_owned();
            let scopes = config.scopes.clone().unwrap_or_else(|| vec![SCOPE.to_owned()]);
            if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty()) {
                return Err(ConfigError::new("scopes", "give at least one scope, none empty"));
            }
            let provider =
                OAuthTokenProvider::service_account(http, key, &scopes, config.token_url.as_deref())
                    .map_err(|e| ConfigError::new("token_url", e.to_string()))?;
            Ok(Arc::new(KeyFileTokens { inner: provider, path, email }))
        }
        (None, (Some(id), Some(secret), Some(refresh))) => {
            let token_url = config.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL);
            // Google accepts the client's credentials in the form body, as its own clients send them.
            let provider = OAuthTokenProvider::refresh_token(http, token_url, id, secret, refresh, true)
                .map_err(|e| ConfigError::new("token_url", e.to_string()))?;
            Ok(Arc::new(provider))
        }
        _ => Err(ConfigError::new(
            "credentials_file",
            "give either `credentials_file` (a service account's JSON key), or `client_id`, \
             `client_secret` and `refresh_token`",
        )),
    }
}

fn resolve(config_dir: &Path, file: &str) -> PathBuf {
    let path = PathBuf::from(file);
    if path.is_absolute() { path } else { config_dir.join(path) }
}

fn read_key(path: &Path) -> Result<ServiceAccountKey, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("credentials_file", format!("cannot read the key file `{}`: {e}", path.display()))
    })?;
    // kpipe-http's messages name the field at fault, never the key material.
    ServiceAccountKey::from_json(&text).map_err(|e| {
        ConfigError::new(
            "credentials_file",
            format!(
                "`{}` is not a service account's JSON key ({e}); create a key of type JSON for the \
                 service account, not OAuth client credentials",
                path.display()
            ),
        )
    })
}

/// The JWT bearer grant of one key file: its errors say which file and account they are about.
struct KeyFileTokens {
    inner: OAuthTokenProvider,
    path: PathBuf,
    email: String,
}

impl std::fmt::Debug for KeyFileTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileTokens")
            .field("path", &self.path)
            .field("client_email", &self.email)
            .finish_non_exhaustive()
    }
}

impl TokenProvider for KeyFileTokens {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, HttpError>> {
        Box::pin(async move {
            self.inner.token().await.map_err(|e| match e {
                HttpError::Auth(reason) => HttpError::Auth(format!(
                    "service account {} (key file `{}`): {reason}",
                    self.email,
                    self.path.display()
                )),
                other => other,
            })
        })
    }

    fn invalidate(&self, generation: u64) {
        self.inner.invalidate(generation);
    }

    fn refreshes(&self) -> u64 {
        self.inner.refreshes()
    }

    fn facts(&self) -> Option<kpipe_core::TokenFacts> {
        self.inner.facts()
    }
}
