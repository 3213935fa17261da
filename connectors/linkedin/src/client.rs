//! The source's HTTP client: LinkedIn's version and protocol headers on every request, tokens
//! from a refresh token or a fixed access token, and LinkedIn's way of saying "stop": a 429
//! whose message names a daily limit (`APPLICATION DAY`, `MEMBER DAY`) lasts until midnight
//! UTC (`shared/apis/linkedin.md` §6), and a 426 means the version is no longer served (§1).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use futures::Stream;
use kpipe_core::{ConfigError, Emitter, ErrorKind, RequestTelemetry, SourceError, TokenFacts};
use kpipe_http::{
    ApiClient, ApiRequest, AuthPlacement, Decision, FnClassifier, HttpClient, HttpError, OAuthTokenProvider,
    Outcome, Page, Pagination, RateLimit, RateLimiter, StaticToken, TokenProvider,
};

use crate::config::{Credentials, Settings};

/// LinkedIn publishes daily limits only; this pace stays clear of its infrastructure throttling.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit { requests: 10, per: Duration::from_secs(1), burst: 1 };

/// The source's door to LinkedIn: the HTTP client and what every call needs to know.
#[derive(Debug, Clone)]
pub struct Api {
    client: ApiClient,
    api_version: String,
    page_size: u32,
}

impl Api {
    /// The client for `settings`. Nothing is sent.
    pub fn new(settings: &Settings) -> Result<Api, ConfigError> {
        Ok(Api {
            client: api_client(settings)?,
            api_version: settings.api_version.clone(),
            page_size: settings.page_size,
        })
    }

    /// Elements per listing page.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// What the requests cost so far.
    pub fn telemetry(&self) -> RequestTelemetry {
        self.client.telemetry()
    }

    /// The credential's kind and announced lifetimes; never a token.
    pub fn token_facts(&self) -> Option<TokenFacts> {
        self.client.token_facts()
    }

    /// Sends `request` and reads the body as JSON; the URL (without credentials) comes back
    /// for quarantine locations.
    pub async fn get_json(&self, request: &ApiRequest) -> Result<(serde_json::Value, String), HttpError> {
        let response = self.client.send(request).await?;
        let body = response.json()?;
        Ok((body, response.url))
    }

    /// Sends `request` and keeps the body as text, to be read in place (see [`crate::json`]);
    /// the URL (without credentials) comes back for quarantine locations. A body that is not
    /// UTF-8 fails as unreadable, as a body that is not JSON does.
    pub async fn get_text(&self, request: &ApiRequest) -> Result<(String, String), HttpError> {
        let response = self.client.send(request).await?;
        let url = response.url;
        match String::from_utf8(Vec::from(response.body)) {
            Ok(body) => Ok((body, url)),
            Err(e) => Err(HttpError::Decode { url, reason: format!("the response body is not UTF-8: {e}") }),
        }
    }

    /// The pages of a listing.
    pub fn pages(
        &self,
        first: ApiRequest,
        pagination: Pagination,
    ) -> impl Stream<Item = Result<Page, HttpError>> + Send + use<'_> {
        self.client.paginate(first, pagination)
    }

    /// An HTTP failure as the source reports it (see [`source_error`]).
    pub fn error(&self, error: HttpError) -> SourceError {
        source_error(error, &self.api_version)
    }

    /// A response that cannot be read is kept in the quarantine of `stream` and the pull goes
    /// on; anything else (auth, quota, version, transport) stops it.
    pub async fn quarantine_or_fail(
        &self,
        error: HttpError,
        stream: &str,
        out: &mut Emitter,
    ) -> Result<(), SourceError> {
        match error.to_quarantined(stream) {
            Some(record) => {
                tracing::warn!(location = %record.location, reason = %record.reason,
                    "unreadable response quarantined");
                out.quarantine(record).await
            }
            None => Err(self.error(error)),
        }
    }
}

/// Builds the client for `settings`. Nothing is sent.
pub fn api_client(settings: &Settings) -> Result<ApiClient, ConfigError> {
    let http = HttpClient::new().map_err(|e| ConfigError::new("base_url", e.to_string()))?;
    let provider: Arc<dyn TokenProvider> = match &settings.credentials {
        Credentials::AccessToken(token) => Arc::new(StaticToken::new(token.clone())),
        Credentials::Refresh { client_id, client_secret, refresh_token, token_url } => {
            // LinkedIn takes the client credentials as form fields, not HTTP Basic (§5).
            let provider = OAuthTokenProvider::refresh_token(
                &http,
                token_url,
                client_id,
                client_secret,
                refresh_token,
                true,
            )
            .map_err(|e| ConfigError::new("token_url", e.to_string()))?;
            Arc::new(provider)
        }
    };
    let limiter = RateLimiter::new(settings.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT))
        .ok_or_else(|| ConfigError::new("rate_limit", "must allow at least one request per period"))?;
    let header_error = |e: HttpError| ConfigError::new("api_version", e.to_string());
    let mut builder = ApiClient::builder(&http, &settings.base_url)
        .map_err(|e| ConfigError::new("base_url", e.to_string()))?
        .rate_limit(limiter, "app")
        .classifier(daily_cap())
        .auth(provider, AuthPlacement::BearerHeader)
        .default_header("linkedin-version", &settings.api_version)
        .map_err(header_error)?
        .default_header("x-restli-protocol-version", "2.0.0")
        .map_err(header_error)?;
    if let Some(retry) = settings.retry {
        builder = builder.retry_policy(retry.policy());
    }
    Ok(builder.build())
}

/// Whether a 429 body is a daily limit: its message names `APPLICATION DAY` or `MEMBER DAY`.
/// The `code` and `serviceErrorCode` of these bodies are unconfirmed, the message text is not.
pub fn is_daily_cap(body: &[u8]) -> bool {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
        .to_ascii_uppercase();
    message.contains("APPLICATION DAY") || message.contains("MEMBER DAY")
}

/// The next midnight UTC after `now`, when LinkedIn's daily limits reset.
pub fn next_midnight_utc(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tomorrow = now.date_naive().checked_add_days(Days::new(1))?;
    Some(tomorrow.and_hms_opt(0, 0, 0)?.and_utc())
}

/// A daily limit stops the stream until midnight UTC; retrying before then only burns what is
/// left of the other limits. Other 429s stay retryable.
fn daily_cap() -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("linkedin_daily_cap", |outcome: &Outcome<'_>, current| match outcome {
        Outcome::Response { status, body, .. } if status.as_u16() == 429 && is_daily_cap(body) => {
            Decision::QuotaExhausted { reset_at: next_midnight_utc(Utc::now()) }
        }
        _ => current,
    })
}

/// The month before `today` as `YYYYMM`: a version LinkedIn serves (versions are monthly and
/// served for about a year).
pub fn recent_version(today: NaiveDate) -> String {
    let (year, month) =
        if today.month() == 1 { (today.year() - 1, 12) } else { (today.year(), today.month() - 1) };
    format!("{year:04}{month:02}")
}

/// An HTTP failure as the source reports it. A 426 is LinkedIn refusing the `LinkedIn-Version`
/// (sunset or never released): the message says which `api_version` to set.
pub fn source_error(error: HttpError, api_version: &str) -> SourceError {
    if let HttpError::Status { status: 426, body, .. } = &error {
        let message = format!(
            "LinkedIn does not serve API version {api_version} any more (426: {body}); \
             set `api_version = \"{}\"` in this source's configuration (versions are monthly, YYYYMM, \
             each served for about a year: https://learn.microsoft.com/linkedin/marketing/versioning)",
            recent_version(Utc::now().date_naive())
        );
        return SourceError::new(ErrorKind::Config, message).with_source(error);
    }
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_limits_are_told_from_other_throttling() {
        // shared/apis/linkedin.md §6: the message text of the daily throttle, both variants.
        let app = br#"{"status":429,"serviceErrorCode":101,"code":"TOO_MANY_REQUESTS","message":
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}"#;
        let member = br#"{"status":429,
            "message":"Resource level throttle MEMBER DAY limit for calls to this resource is reached."}"#;
        assert!(is_daily_cap(app) && is_daily_cap(member));
        assert!(!is_daily_cap(br#"{"status":429,"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#));
        assert!(is_daily_cap(b"Resource level throttle APPLICATION DAY limit reached"));
    }

    #[test]
    fn limits_reset_at_the_next_midnight_utc() {
        let now = DateTime::parse_from_rfc3339("2026-10-05T17:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(next_midnight_utc(now).unwrap().to_rfc3339(), "2026-10-06T00:00:00+00:00");
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(recent_version(day("2026-11-23")), "202610");
        assert_eq!(recent_version(day("2027-01-02")), "202612");
    }
}
