//! Errors the runtime can act on.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure a source hit, so that the runtime can decide what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is wrong; nothing will work until a person fixes it.
    Config,
    /// Credentials were refused or could not be obtained.
    Auth,
    /// A passing failure (network, 5xx) that outlived its retries.
    Transient,
    /// The platform's daily or hourly quota is used up until the given time; what was pulled so
    /// far stays valid.
    QuotaExhausted {
        /// When the quota resets, if the platform said.
        reset_at: Option<DateTime<Utc>>,
    },
    /// The platform sent something the connector cannot read at all.
    Data,
    /// A local file could not be read or written.
    Io,
    /// The run was cancelled (the sink stopped accepting rows, or shutdown).
    Cancelled,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Config => f.write_str("configuration"),
            ErrorKind::Auth => f.write_str("authentication"),
            ErrorKind::Transient => f.write_str("transient"),
            ErrorKind::QuotaExhausted { reset_at: Some(t) } => write!(f, "quota exhausted until {t}"),
            ErrorKind::QuotaExhausted { reset_at: None } => f.write_str("quota exhausted"),
            ErrorKind::Data => f.write_str("data"),
            ErrorKind::Io => f.write_str("i/o"),
            ErrorKind::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// A failure of a source as a whole (a bad record is quarantined instead).
#[derive(Debug)]
pub struct SourceError {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl SourceError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> SourceError {
        SourceError { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> SourceError {
        self.source = Some(source.into());
        self
    }

    /// A configuration problem found at run time (a glob that matches nothing, say).
    pub fn config(message: impl Into<String>) -> SourceError {
        SourceError::new(ErrorKind::Config, message)
    }

    /// Input that cannot be read at all.
    pub fn data(message: impl Into<String>) -> SourceError {
        SourceError::new(ErrorKind::Data, message)
    }

    /// A local file that could not be read.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> SourceError {
        let path = path.into();
        SourceError::new(ErrorKind::Io, format!("cannot read {}", path.display())).with_source(error)
    }

    /// The pipeline no longer accepts rows.
    pub fn cancelled() -> SourceError {
        SourceError::new(ErrorKind::Cancelled, "the pipeline stopped accepting rows")
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without its causes.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// A configuration value that is wrong, with the key path that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Dotted key path, relative to the table being read (`account_ids[2]`).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { path: path.into(), message: message.into() }
    }

    /// An error a deserializer reported at `path`. When a key of the path says that it holds a
    /// secret ([`crate::is_secret_key`]), the value that serde quotes ("invalid type: integer
    /// `12345`, expected a string") is left out: a secret put where it does not belong is still
    /// a secret. The key path, the kind of value found and what was expected are kept.
    pub fn from_deserializer(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let path = path.into();
        let message = message.into();
        if crate::is_secret_key_path(&path) {
            ConfigError { message: without_value(&message), path }
        } else {
            ConfigError { path, message }
        }
    }

    /// An optional numeric setting `key`: `default` when absent, an error naming the key when
    /// outside `range`.
    pub fn number_in(
        key: &str,
        value: Option<u32>,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let value = value.unwrap_or(default);
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(key, format!("{value} is not within {}..={}", range.start(), range.end())))
        }
    }

    /// The same error seen from an enclosing table called `prefix`.
    pub fn within(self, prefix: &str) -> ConfigError {
        let path = if self.path.is_empty() || self.path == "." {
            prefix.to_owned()
        } else if self.path.starts_with('[') {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}.{}", self.path)
        };
        ConfigError { path, message: self.message }
    }
}

/// `message` of a deserializer without the value it quotes.
fn without_value(message: &str) -> String {
    const NOT_SHOWN: &str = "(the value is not shown: the key holds a secret)";
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(at) = rest.rfind(", expected ")
        {
            // serde writes the value after its kind: integer `12345`, string "abc".
            let kind = rest[..at].split(['`', '"', '\'']).next().unwrap_or_default().trim();
            let kind = if kind.is_empty() { "a value" } else { kind };
            return format!("{prefix}{kind}{} {NOT_SHOWN}", &rest[at..]);
        }
    }
    // These quote key names, not values.
    if ["unknown field ", "missing field ", "duplicate field "].iter().any(|p| message.starts_with(p)) {
        return message.to_owned();
    }
    if message.contains(['`', '"', '\'']) { format!("is not valid {NOT_SHOWN}") } else { message.to_owned() }
}

/// A sink could not write or commit.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    source: Option<BoxError>,
}

impl SinkError {
    /// An error described by `message`.
    pub fn new(message: impl Into<String>) -> SinkError {
        SinkError { message: message.into(), source: None }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> SinkError {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// Writes an error with its chain of causes on one line: `a: b: c`.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        let mut next = self.0.source();
        while let Some(e) = next {
            // Many errors already quote their cause in their own message (`thiserror`'s
            // `{0}` next to `#[source]`, a wrapper built from `e.to_string()`): a cause said
            // already is not said twice.
            let text = e.to_string();
            if !said.contains(&text) {
                said.push_str(": ");
                said.push_str(&text);
            }
            next = e.source();
        }
        f.write_str(&said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_read_on_one_line() {
        let e = SourceError::io("/x/y.csv", std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(ErrorChain(&e).to_string(), "cannot read /x/y.csv: gone");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let cause = SourceError::data("the token endpoint could not be reached");
        let e = SourceError::data(format!("authentication failed: {cause}")).with_source(cause);
        assert_eq!(
            ErrorChain(&e).to_string(),
            "authentication failed: the token endpoint could not be reached"
        );
    }

    #[test]
    fn paths_nest() {
        assert_eq!(ConfigError::new("kind", "bad").within("sources.crm").path, "sources.crm.kind");
        assert_eq!(ConfigError::new("[2]", "bad").within("ids").path, "ids[2]");
        assert_eq!(ConfigError::new(".", "bad").within("sources.crm").path, "sources.crm");
    }

    #[test]
    fn a_deserializer_error_at_a_secret_key_shows_no_value() {
        let e = ConfigError::from_deserializer(
            "client_secret",
            "invalid type: integer `12345`, expected a string",
        )
        .within("sources.li");
        assert_eq!(e.path, "sources.li.client_secret");
        assert_eq!(
            e.message,
            "invalid type: integer, expected a string (the value is not shown: the key holds a secret)"
        );
        let e =
            ConfigError::from_deserializer("refresh_token", "invalid value: string \"a`b, c\", expected x");
        assert!(e.message.starts_with("invalid value: string, expected x"), "{}", e.message);
        let e = ConfigError::from_deserializer("api_key", "no good: `hunter22`");
        assert!(!e.message.contains("hunter22"), "{}", e.message);
        // Other keys keep serde's message whole.
        let e = ConfigError::from_deserializer("page_size", "invalid type: string \"x\", expected u32");
        assert_eq!(e.message, "invalid type: string \"x\", expected u32");
    }
}
