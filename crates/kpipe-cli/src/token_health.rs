//! Token health: what `kpipe auth` records about a refresh token next to it in the secrets file,
//! and how `kpipe check` judges each source's credential from that record, from what the source
//! learnt on its cheap call, and from the platform's rules, with warnings ahead of an expiry.
//!
//! Nothing here ever holds a token: only kinds, dates and lifetimes.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use kpipe_core::{CredentialKind, TokenFacts};
use serde::Serialize;

use crate::auth::{Platform, RefreshLifetime};

/// The secrets-file key of when the refresh token was issued (a TOML date-time, UTC).
pub const ISSUED_AT_KEY: &str = "refresh_token_issued_at";
/// The secrets-file key of when the refresh token stops working, when that is known.
pub const EXPIRES_AT_KEY: &str = "refresh_token_expires_at";
/// The secrets-file key of where that date comes from, in words.
pub const EXPIRY_BASIS_KEY: &str = "refresh_token_expiry_basis";

/// The secrets-file keys of a [`RefreshTokenRecord`]: kept out of the connector's table.
pub const RECORD_KEYS: [&str; 3] = [ISSUED_AT_KEY, EXPIRES_AT_KEY, EXPIRY_BASIS_KEY];

/// Days before an expiry from which `kpipe check` warns, unless `--warn-days` says otherwise.
pub const DEFAULT_WARN_DAYS: u32 = 30;
/// The same for short-lived refresh tokens (Google's 7 days while an app is in Testing): 30
/// days ahead would warn from the first day.
pub const SHORT_LIVED_WARN_DAYS: u32 = 2;
/// Refresh tokens living at most this long get [`SHORT_LIVED_WARN_DAYS`].
const SHORT_LIVED: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// What a secrets file records about its refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefreshTokenRecord {
    /// When `kpipe auth` obtained it.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it stops working; `None` when it has no fixed expiry or none is known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Where `expires_at` comes from ("announced by the token endpoint", a platform's rule).
    pub basis: Option<String>,
}

impl RefreshTokenRecord {
    /// Removes the record's keys from a secrets file's table and reads them; `Ok(None)` when
    /// the file has none. The error names the key; no value of the file is quoted.
    pub fn take_from(table: &mut toml::Table) -> Result<Option<RefreshTokenRecord>, String> {
        if RECORD_KEYS.iter().all(|k| !table.contains_key(*k)) {
            return Ok(None);
        }
        let instant = |value: Option<toml::Value>, key: &str| -> Result<Option<DateTime<Utc>>, String> {
            match value {
                None => Ok(None),
                Some(v) => parse_instant(&v).map(Some).ok_or_else(|| {
                    format!("`{key}` is not a date-time; expected one such as 2027-01-31T09:00:00Z")
                }),
            }
        };
        let issued_at = instant(table.remove(ISSUED_AT_KEY), ISSUED_AT_KEY)?;
        let expires_at = instant(table.remove(EXPIRES_AT_KEY), EXPIRES_AT_KEY)?;
        let basis = match table.remove(EXPIRY_BASIS_KEY) {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => return Err(format!("`{EXPIRY_BASIS_KEY}` is not a string")),
        };
        Ok(Some(RefreshTokenRecord { issued_at, expires_at, basis }))
    }

    /// The record's keys, for a secrets file: date-times in UTC, to the second.
    pub fn to_entries(&self) -> Vec<(&'static str, toml::Value)> {
        let instant = |at: DateTime<Utc>| {
            let text = at.to_rfc3339_opts(SecondsFormat::Secs, true);
            text.parse::<toml::value::Datetime>()
                .map(toml::Value::Datetime)
                .unwrap_or(toml::Value::String(text))
        };
        let mut entries = Vec::new();
        if let Some(at) = self.issued_at {
            entries.push((ISSUED_AT_KEY, instant(at)));
        }
        if let Some(at) = self.expires_at {
            entries.push((EXPIRES_AT_KEY, instant(at)));
        }
        if let Some(basis) = &self.basis {
            entries.push((EXPIRY_BASIS_KEY, toml::Value::String(basis.clone())));
        }
        entries
    }
}

/// A TOML date-time with an offset, an RFC 3339 string, or a date (midnight UTC, for a
/// hand-edited file).
fn parse_instant(value: &toml::Value) -> Option<DateTime<Utc>> {
    let text = match value {
        toml::Value::Datetime(dt) => dt.to_string(),
        toml::Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    parse_rfc3339_or_date(&text)
}

/// An RFC 3339 date-time, or a `YYYY-MM-DD` date meaning its midnight UTC.
pub fn parse_rfc3339_or_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// How a finding weighs: the worst of a report decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing to do.
    Ok,
    /// Works now; needs attention before it stops working.
    Warning,
    /// Does not work (or will not by the time judged).
    Error,
}

/// The credential of a source as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// See [`CredentialKind::StaticAccessToken`].
    StaticAccessToken,
    /// See [`CredentialKind::RefreshToken`].
    RefreshToken,
    /// See [`CredentialKind::ServiceAccount`].
    ServiceAccount,
    /// See [`CredentialKind::ClientCredentials`].
    ClientCredentials,
    /// The source needs none (local files).
    None,
}

impl Credential {
    fn of(facts: Option<&TokenFacts>) -> Credential {
        match facts.map(|f| f.credential) {
            Some(CredentialKind::StaticAccessToken) => Credential::StaticAccessToken,
            Some(CredentialKind::RefreshToken) => Credential::RefreshToken,
            Some(CredentialKind::ServiceAccount) => Credential::ServiceAccount,
            Some(CredentialKind::ClientCredentials) => Credential::ClientCredentials,
            None => Credential::None,
        }
    }

    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Credential::StaticAccessToken => "static access token",
            Credential::RefreshToken => "refresh token",
            Credential::ServiceAccount => "service account",
            Credential::ClientCredentials => "client credentials",
            Credential::None => "none",
        }
    }
}

/// Where a refresh token's expiry date comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryKnowledge {
    /// The token endpoint announced what is left of it when the check refreshed the access token.
    Announced,
    /// `kpipe auth` recorded it in the secrets file.
    Recorded,
    /// The platform's refresh tokens do not expire (until revoked).
    DoesNotExpire,
    /// Nothing says when it expires.
    Unknown,
}

/// The verdict on one source's credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenReport {
    /// The kind of credential.
    pub credential: Credential,
    /// How it weighs.
    pub status: Level,
    /// The finding, for people (never a token).
    pub message: String,
    /// When the refresh token was issued, if recorded.
    pub refresh_token_issued_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, if known.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// Whole days from the judgement time to the expiry; negative once expired.
    pub refresh_token_days_left: Option<i64>,
    /// Where the expiry date comes from (`null` for credentials other than refresh tokens).
    pub refresh_token_expiry: Option<ExpiryKnowledge>,
    /// The warning threshold applied to this refresh token, in days.
    pub warn_days: Option<u32>,
    /// The lifetime the token endpoint gave the access token obtained on the check.
    pub access_token_lifetime_seconds: Option<u64>,
}

/// What is known about one source's credential, for [`assess`].
#[derive(Debug, Clone)]
pub struct TokenInputs<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The configuration file, for the `kpipe auth` command line of a message.
    pub config: &'a str,
    /// The platform, for its refresh tokens' rules (`None` for connectors without consent).
    pub platform: Option<&'static Platform>,
    /// What the source reported after its check.
    pub facts: Option<TokenFacts>,
    /// What its secrets file records.
    pub record: Option<&'a RefreshTokenRecord>,
    /// When the source's check ran: an announced remaining lifetime counts from here.
    pub observed_at: DateTime<Utc>,
    /// The time expiries are judged at: `observed_at`, unless another time is asked for.
    pub now: DateTime<Utc>,
    /// `--warn-days`, overriding the defaults.
    pub warn_days: Option<u32>,
}

/// Judges one source's credential.
pub fn assess(inputs: &TokenInputs<'_>) -> TokenReport {
    let facts = inputs.facts.as_ref();
    let credential = Credential::of(facts);
    let access_token_lifetime_seconds = facts.and_then(|f| f.access_token_lifetime).map(|d| d.as_secs());
    let mut report = TokenReport {
        credential,
        status: Level::Ok,
        message: String::new(),
        refresh_token_issued_at: None,
        refresh_token_expires_at: None,
        refresh_token_days_left: None,
        refresh_token_expiry: None,
        warn_days: None,
        access_token_lifetime_seconds,
    };
    let mut parts = Vec::new();
    match credential {
        Credential::RefreshToken => assess_refresh_token(inputs, &mut report, &mut parts),
        Credential::StaticAccessToken => parts
            .push("no expiry known (nothing renews it: replace it before the platform ends it)".to_owned()),
        Credential::ServiceAccount | Credential::ClientCredentials => {
            parts.push("no expiry: access tokens are obtained as needed".to_owned())
        }
        Credential::None => {}
    }
    if let Some(lifetime) = facts.and_then(|f| f.access_token_lifetime) {
        parts.push(format!("access tokens live {}", approximate(lifetime)));
    }
    report.message = parts.join("; ");
    report
}

fn assess_refresh_token(inputs: &TokenInputs<'_>, report: &mut TokenReport, parts: &mut Vec<String>) {
    let record = inputs.record;
    report.refresh_token_issued_at = record.and_then(|r| r.issued_at);
    let announced = inputs
        .facts
        .and_then(|f| f.refresh_token_remaining)
        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        .and_then(|d| inputs.observed_at.checked_add_signed(d));
    let recorded = record.and_then(|r| r.expires_at);
    // The token endpoint's figure of this very check is fresher than the one of the consent.
    let (expires_at, knowledge) = match (announced, recorded) {
        (Some(at), _) => (Some(at), ExpiryKnowledge::Announced),
        (None, Some(at)) => (Some(at), ExpiryKnowledge::Recorded),
        (None, None) => match inputs.platform.map(|p| p.refresh_token_lifetime) {
            Some(RefreshLifetime::UntilRevoked) => (None, ExpiryKnowledge::DoesNotExpire),
            _ => (None, ExpiryKnowledge::Unknown),
        },
    };
    report.refresh_token_expiry = Some(knowledge);
    let renew = format!("kpipe auth {} -c {}", inputs.source, inputs.config);
    let Some(expires_at) = expires_at else {
        parts.push(match (knowledge, inputs.platform.map(|p| (p.name, p.refresh_token_lifetime))) {
            (ExpiryKnowledge::DoesNotExpire, _) => {
                "does not expire (until the app is uninstalled or the grant revoked)".to_owned()
            }
            (_, Some((name, RefreshLifetime::FixedDays(days)))) => format!(
                "expiry unknown: {name} refresh tokens last {days} days from the consent, and `{renew}` \
                 records the date"
            ),
            (_, Some((name, RefreshLifetime::ConditionalDays(days, _)))) => format!(
                "no fixed expiry known ({name} refresh tokens of OAuth apps in Testing last {days} days: \
                 `{renew} --google-testing-app` records that)"
            ),
            _ => "expiry unknown".to_owned(),
        });
        return;
    };
    let lifetime = report.refresh_token_issued_at.map(|issued| expires_at - issued);
    let warn_days = inputs.warn_days.unwrap_or(match lifetime {
        Some(l) if l <= SHORT_LIVED => SHORT_LIVED_WARN_DAYS,
        _ => DEFAULT_WARN_DAYS,
    });
    let left = expires_at - inputs.now;
    report.refresh_token_expires_at = Some(expires_at);
    report.refresh_token_days_left = Some(left.num_days());
    report.warn_days = Some(warn_days);
    let day = expires_at.format("%Y-%m-%d %H:%M UTC");
    let from = match knowledge {
        ExpiryKnowledge::Announced => "as the token endpoint announced on this check",
        _ => "as recorded by `kpipe auth`",
    };
    if left <= chrono::TimeDelta::zero() {
        report.status = Level::Error;
        parts.push(format!("EXPIRED on {day} ({from}): run `{renew}` for a new one"));
    } else if left <= chrono::TimeDelta::days(i64::from(warn_days)) {
        report.status = Level::Warning;
        parts.push(format!(
            "expires on {day}, in {} ({from}; warning from {warn_days} days before): run `{renew}` \
             before then",
            approximate_delta(left)
        ));
    } else {
        parts.push(format!("expires on {day}, in {} ({from})", approximate_delta(left)));
    }
}

/// A lifetime in the unit people use for it: `60 days`, `1 hour`, `30 minutes`.
pub fn approximate(lifetime: Duration) -> String {
    let seconds = lifetime.as_secs_f64();
    let (amount, unit) = if seconds >= 2.0 * 86_400.0 {
        (seconds / 86_400.0, "day")
    } else if seconds >= 3_000.0 {
        (seconds / 3_600.0, "hour")
    } else if seconds >= 60.0 {
        (seconds / 60.0, "minute")
    } else {
        (seconds, "second")
    };
    let n = amount.round() as u64;
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Time left, down to hours when less than two days are.
fn approximate_delta(left: chrono::TimeDelta) -> String {
    match left.to_std() {
        Ok(d) if d.as_secs() >= 2 * 86_400 => {
            let days = left.num_days();
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        Ok(d) => approximate(d),
        Err(_) => "no time".to_owned(),
    }
}

/// Exit code of `kpipe check`: every source is ready and no credential expires soon.
pub const EXIT_HEALTHY: u8 = 0;
/// Exit code of `kpipe check`: a source's check failed, or a credential has expired.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of `kpipe check`: every source works, but a refresh token expires within the
/// warning threshold. The same code as a `kpipe run` that worked with something to look at.
pub const EXIT_WARNINGS: u8 = 3;

/// One source's line of a check.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    /// The source's name.
    pub name: String,
    /// Its connector type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The worst of its check and its credential; `skipped` when disabled.
    pub status: SourceStatus,
    /// What the cheap call found.
    pub check: Option<String>,
    /// Why the cheap call failed.
    pub error: Option<String>,
    /// The verdict on its credential (`null` when disabled).
    pub token: Option<TokenReport>,
}

/// How a source came out of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Ready, and its credential is not about to expire.
    Ok,
    /// Ready, but its credential expires soon.
    Warning,
    /// Its check failed or its credential has expired.
    Error,
    /// Disabled in the configuration: not checked.
    Skipped,
}

impl SourceCheck {
    /// A disabled source.
    pub fn skipped(name: &str, kind: &str) -> SourceCheck {
        SourceCheck {
            name: name.to_owned(),
            kind: kind.to_owned(),
            status: SourceStatus::Skipped,
            check: None,
            error: None,
            token: None,
        }
    }

    /// A checked source: the outcome of its cheap call and the verdict on its credential.
    pub fn checked(
        name: &str,
        kind: &str,
        outcome: Result<String, String>,
        token: TokenReport,
    ) -> SourceCheck {
        let call = if outcome.is_ok() { Level::Ok } else { Level::Error };
        let status = match call.max(token.status) {
            Level::Ok => SourceStatus::Ok,
            Level::Warning => SourceStatus::Warning,
            Level::Error => SourceStatus::Error,
        };
        let (check, error) = match outcome {
            Ok(message) => (Some(message), None),
            Err(message) => (None, Some(message)),
        };
        SourceCheck { name: name.to_owned(), kind: kind.to_owned(), status, check, error, token: Some(token) }
    }

    /// Its lines in `kpipe check`'s text output.
    pub fn render(&self) -> String {
        let tag = match self.status {
            SourceStatus::Ok => "ok  ",
            SourceStatus::Warning => "WARN",
            SourceStatus::Error => "FAIL",
            SourceStatus::Skipped => return format!("  skip {} ({}): disabled\n", self.name, self.kind),
        };
        let what = self.error.as_deref().or(self.check.as_deref()).unwrap_or_default();
        let mut text = format!("  {tag} {} ({}): {what}\n", self.name, self.kind);
        if let Some(token) = &self.token {
            let details =
                if token.message.is_empty() { String::new() } else { format!("; {}", token.message) };
            text.push_str(&format!("       credential: {}{details}\n", token.credential.words()));
        }
        text
    }
}

/// The whole check, as `kpipe check --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The configuration file.
    pub config: String,
    /// When the check ended, or the time set to judge expiries at (`KPIPE_NOW`).
    pub checked_at: DateTime<Utc>,
    /// The worst status of any source.
    pub status: Level,
    /// The exit code of the command.
    pub exit_code: u8,
    /// Every source, in name order.
    pub sources: Vec<SourceCheck>,
    /// Whether the output can be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputCheck>,
}

/// What `kpipe check` found of `pipeline.output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputCheck {
    /// The output as configured (a directory or a URL).
    pub location: String,
    /// Whether it could be listed, written, read back and cleaned up.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl OutputCheck {
    /// One line for the terminal.
    pub fn render(&self) -> String {
        match &self.error {
            None => format!(
                "output {}: ok (listed, wrote, read back and removed a probe object)\n",
                self.location
            ),
            Some(e) => format!("output {}: ERROR {e}\n", self.location),
        }
    }
}

impl CheckReport {
    /// The report with the output's check: a failed output fails the check.
    pub fn with_output(mut self, output: OutputCheck) -> CheckReport {
        if !output.ok {
            self.status = Level::Error;
            self.exit_code = EXIT_FAILED;
        }
        self.output = Some(output);
        self
    }

    /// The report of `sources`.
    pub fn new(config: &str, checked_at: DateTime<Utc>, sources: Vec<SourceCheck>) -> CheckReport {
        let status = sources
            .iter()
            .map(|s| match s.status {
                SourceStatus::Ok | SourceStatus::Skipped => Level::Ok,
                SourceStatus::Warning => Level::Warning,
                SourceStatus::Error => Level::Error,
            })
            .max()
            .unwrap_or(Level::Ok);
        let exit_code = match status {
            Level::Ok => EXIT_HEALTHY,
            Level::Warning => EXIT_WARNINGS,
            Level::Error => EXIT_FAILED,
        };
        CheckReport { config: config.to_owned(), checked_at, status, exit_code, sources, output: None }
    }

    /// The closing line of the text output.
    pub fn tally(&self) -> String {
        let count = |status: SourceStatus| self.sources.iter().filter(|s| s.status == status).count();
        format!(
            "{} ok, {} with warnings, {} failed, {} skipped",
            count(SourceStatus::Ok),
            count(SourceStatus::Warning),
            count(SourceStatus::Error),
            count(SourceStatus::Skipped)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::platform;

    fn at(text: &str) -> DateTime<Utc> {
        parse_rfc3339_or_date(text).expect("a date-time")
    }

    fn inputs<'a>(
        kind: &str,
        facts: Option<TokenFacts>,
        record: Option<&'a RefreshTokenRecord>,
    ) -> TokenInputs<'a> {
        TokenInputs {
            source: "ads",
            config: "kpipe.toml",
            platform: platform(kind),
            facts,
            record,
            observed_at: at("2026-06-01T00:00:00Z"),
            now: at("2026-06-01T00:00:00Z"),
            warn_days: None,
        }
    }

    fn refresh(remaining_days: Option<u64>) -> Option<TokenFacts> {
        Some(TokenFacts {
            credential: CredentialKind::RefreshToken,
            access_token_lifetime: Some(Duration::from_secs(5_183_999)),
            refresh_token_remaining: remaining_days.map(|d| Duration::from_secs(d * 86_400)),
        })
    }

    fn record(issued: &str, expires: Option<&str>) -> RefreshTokenRecord {
        RefreshTokenRecord { issued_at: Some(at(issued)), expires_at: expires.map(at), basis: None }
    }

    #[test]
    fn a_linkedin_token_warns_30_days_ahead_and_fails_once_expired() {
        let year = record("2025-07-02T00:00:00Z", Some("2026-07-02T00:00:00Z"));
        let healthy = assess(&inputs("linkedin", refresh(None), Some(&year)));
        assert_eq!(healthy.status, Level::Ok, "{healthy:?}");
        assert_eq!(healthy.refresh_token_days_left, Some(31));
        assert_eq!(healthy.refresh_token_expiry, Some(ExpiryKnowledge::Recorded));
        assert_eq!(healthy.warn_days, Some(30));
        assert!(healthy.message.contains("access tokens live 60 days"), "{}", healthy.message);

        // Thirty days ahead is within the threshold.
        let mut later = inputs("linkedin", refresh(None), Some(&year));
        later.now = at("2026-06-02T00:00:00Z");
        let warned = assess(&later);
        assert_eq!(warned.status, Level::Warning, "{warned:?}");
        assert_eq!(warned.refresh_token_days_left, Some(30));
        assert!(
            warned.message.contains("run `kpipe auth ads -c kpipe.toml` before then"),
            "{}",
            warned.message
        );

        later.warn_days = Some(10);
        assert_eq!(assess(&later).status, Level::Ok);

        later.now = at("2026-07-02T00:00:00Z");
        let expired = assess(&later);
        assert_eq!(expired.status, Level::Error, "{expired:?}");
        assert_eq!(expired.refresh_token_days_left, Some(0));
        assert!(expired.message.starts_with("EXPIRED on 2026-07-02 00:00 UTC"), "{}", expired.message);
    }

    #[test]
    fn the_figure_announced_on_the_check_wins_over_the_recorded_one() {
        let year = record("2026-01-01T00:00:00Z", Some("2027-01-01T00:00:00Z"));
        let report = assess(&inputs("linkedin", refresh(Some(12)), Some(&year)));
        assert_eq!(report.refresh_token_expiry, Some(ExpiryKnowledge::Announced));
        assert_eq!(report.refresh_token_expires_at, Some(at("2026-06-13T00:00:00Z")));
        assert_eq!(report.status, Level::Warning);
        assert!(report.message.contains("as the token endpoint announced"), "{}", report.message);
        // Without a record, the announcement alone is judged with the default threshold.
        assert_eq!(assess(&inputs("linkedin", refresh(Some(31)), None)).status, Level::Ok);
    }

    #[test]
    fn a_seven_day_token_warns_two_days_ahead() {
        let week = record("2026-05-27T00:00:00Z", Some("2026-06-03T00:00:00Z"));
        let report = assess(&inputs("google_analytics", refresh(None), Some(&week)));
        assert_eq!(report.warn_days, Some(2));
        assert_eq!(report.status, Level::Warning, "{report:?}");
        assert!(report.message.contains("in 2 days"), "{}", report.message);
        let mut earlier = inputs("google_analytics", refresh(None), Some(&week));
        earlier.now = at("2026-05-31T23:00:00Z");
        assert_eq!(assess(&earlier).status, Level::Ok);
        earlier.now = at("2026-06-02T12:00:00Z");
        let soon = assess(&earlier);
        assert!(soon.message.contains("in 12 hours"), "{}", soon.message);
    }

    #[test]
    fn what_cannot_be_dated_is_said_so() {
        let hubspot = assess(&inputs("hubspot", refresh(None), None));
        assert_eq!(hubspot.status, Level::Ok);
        assert_eq!(hubspot.refresh_token_expiry, Some(ExpiryKnowledge::DoesNotExpire));
        assert!(hubspot.message.starts_with("does not expire"), "{}", hubspot.message);

        let linkedin = assess(&inputs("linkedin", refresh(None), None));
        assert_eq!(linkedin.refresh_token_expiry, Some(ExpiryKnowledge::Unknown));
        assert!(linkedin.message.contains("last 365 days from the consent"), "{}", linkedin.message);

        let google = assess(&inputs("google_analytics", refresh(None), None));
        assert!(google.message.contains("--google-testing-app"), "{}", google.message);

        let fixed =
            assess(&inputs("facebook", Some(TokenFacts::of(CredentialKind::StaticAccessToken)), None));
        assert_eq!((fixed.credential, fixed.status), (Credential::StaticAccessToken, Level::Ok));
        assert!(fixed.message.starts_with("no expiry known"), "{}", fixed.message);
        assert_eq!(fixed.refresh_token_expiry, None);

        let none = assess(&inputs("files", None, None));
        assert_eq!((none.credential, none.message.as_str()), (Credential::None, ""));
    }

    #[test]
    fn a_record_round_trips_through_a_secrets_file_and_leaves_the_other_keys() {
        let written = RefreshTokenRecord {
            issued_at: Some(at("2026-01-01T10:00:00Z")),
            expires_at: Some(at("2026-12-31T10:00:00Z")),
            basis: Some("announced by the token endpoint".into()),
        };
        let mut table = toml::Table::new();
        table.insert("refresh_token".into(), toml::Value::String("kept".into()));
        for (key, value) in written.to_entries() {
            table.insert(key.to_owned(), value);
        }
        let text = toml::to_string(&table).expect("TOML");
        assert!(text.contains("refresh_token_expires_at = 2026-12-31T10:00:00Z"), "{text}");
        let mut read: toml::Table = text.parse().expect("parsed");
        assert_eq!(RefreshTokenRecord::take_from(&mut read), Ok(Some(written)));
        assert_eq!(read.keys().collect::<Vec<_>>(), ["refresh_token"]);

        let mut none: toml::Table = "refresh_token = \"x\"".parse().expect("parsed");
        assert_eq!(RefreshTokenRecord::take_from(&mut none), Ok(None));
        let mut by_hand: toml::Table = "refresh_token_expires_at = 2027-01-31".parse().expect("parsed");
        let record = RefreshTokenRecord::take_from(&mut by_hand).expect("a date").expect("a record");
        assert_eq!(record.expires_at, Some(at("2027-01-31T00:00:00Z")));
        let mut wrong: toml::Table = "refresh_token_issued_at = 5".parse().expect("parsed");
        let err = RefreshTokenRecord::take_from(&mut wrong).expect_err("not a date");
        assert!(err.starts_with("`refresh_token_issued_at` is not a date-time"), "{err}");
    }

    #[test]
    fn the_exit_code_is_the_worst_finding() {
        let token = |status| TokenReport { status, ..assess(&inputs("files", None, None)) };
        let ok = SourceCheck::checked("a", "files", Ok("fine".into()), token(Level::Ok));
        let warned = SourceCheck::checked("b", "linkedin", Ok("fine".into()), token(Level::Warning));
        let failed = SourceCheck::checked("c", "linkedin", Err("401".into()), token(Level::Ok));
        let now = at("2026-01-01T00:00:00Z");
        let code = |sources: Vec<SourceCheck>| CheckReport::new("k.toml", now, sources).exit_code;
        assert_eq!(code(vec![ok.clone(), SourceCheck::skipped("d", "files")]), EXIT_HEALTHY);
        assert_eq!(code(vec![ok.clone(), warned.clone()]), EXIT_WARNINGS);
        assert_eq!(code(vec![ok, warned.clone(), failed.clone()]), EXIT_FAILED);
        assert_eq!(failed.status, SourceStatus::Error);
        assert_eq!(warned.render(), "  WARN b (linkedin): fine\n       credential: none\n");
        assert!(failed.render().starts_with("  FAIL c (linkedin): 401\n"));
    }

    #[test]
    fn lifetimes_read_as_people_say_them() {
        assert_eq!(approximate(Duration::from_secs(5_183_999)), "60 days");
        assert_eq!(approximate(Duration::from_secs(3_599)), "1 hour");
        assert_eq!(approximate(Duration::from_secs(1_800)), "30 minutes");
        assert_eq!(approximate(Duration::from_secs(86_400)), "24 hours");
    }
}
