//! Deciding what to do with a response: classifiers in priority order (transport, status,
//! `Retry-After`, then the platform's usage headers and body codes) refine one decision, and a
//! backoff policy with limits turns "retry" into a wait.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use kpipe_core::ErrorKind;
use rand::Rng;

/// What the runtime does next with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The response is the answer.
    Accept,
    /// Try again, after `after` if the platform said how long, else after the backoff.
    Retry {
        /// Why, for telemetry (`throttled`, `server_error`, `transport`, ...).
        reason: &'static str,
        /// How long the platform asked to wait.
        after: Option<Duration>,
    },
    /// The access token was refused: get a new one and try once more.
    RefreshToken,
    /// The quota is used up until `reset_at`: do not retry, stop the stream.
    QuotaExhausted {
        /// When it resets, if known.
        reset_at: Option<DateTime<Utc>>,
    },
    /// An error retrying cannot fix.
    GiveUp {
        /// What kind of failure it is.
        kind: ErrorKind,
    },
}

/// What a classifier looks at.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// No response arrived.
    Transport {
        /// Whether the failure was a timeout.
        timeout: bool,
        /// Whether the connection could not be made (so nothing was sent).
        connect: bool,
    },
    /// A response arrived.
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers.
        headers: &'a HeaderMap,
        /// Its body.
        body: &'a [u8],
    },
}

/// One step of the decision chain. It sees the outcome and the decision so far, and returns
/// the decision, refined or unchanged.
pub trait Classifier: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// The refined decision.
    fn classify(&self, outcome: &Outcome<'_>, current: Decision) -> Decision;
}

/// Transport failures are retried: the request may not have reached the platform.
#[derive(Debug)]
pub struct TransportClassifier;

impl Classifier for TransportClassifier {
    fn name(&self) -> &'static str {
        "transport"
    }

    fn classify(&self, outcome: &Outcome<'_>, current: Decision) -> Decision {
        match outcome {
            Outcome::Transport { timeout: true, .. } => Decision::Retry { reason: "timeout", after: None },
            Outcome::Transport { .. } => Decision::Retry { reason: "transport", after: None },
            Outcome::Response { .. } => current,
        }
    }
}

/// The status code's meaning: 2xx accepted, 401 refresh the token, 408/429 throttled, 5xx
/// server error, other 4xx give up.
#[derive(Debug)]
pub struct StatusClassifier;

impl Classifier for StatusClassifier {
    fn name(&self) -> &'static str {
        "status"
    }

    fn classify(&self, outcome: &Outcome<'_>, current: Decision) -> Decision {
        let Outcome::Response { status, .. } = outcome else { return current };
        match status.as_u16() {
            200..=299 => Decision::Accept,
            401 => Decision::RefreshToken,
            408 => Decision::Retry { reason: "timeout", after: None },
            429 => Decision::Retry { reason: "throttled", after: None },
            500 | 502 | 503 | 504 => Decision::Retry { reason: "server_error", after: None },
            403 => Decision::GiveUp { kind: ErrorKind::Auth },
            400..=499 => Decision::GiveUp { kind: ErrorKind::Config },
            _ => Decision::GiveUp { kind: ErrorKind::Transient },
        }
    }
}

/// `Retry-After` (seconds or an HTTP date) sets the wait of a retry, capped; a wait beyond the
/// cap means a quota that resets later: stop instead of sleeping for hours.
#[derive(Debug)]
pub struct RetryAfterClassifier {
    /// The longest wait honoured by sleeping.
    pub cap: Duration,
}

impl Classifier for RetryAfterClassifier {
    fn name(&self) -> &'static str {
        "retry_after"
    }

    fn classify(&self, outcome: &Outcome<'_>, current: Decision) -> Decision {
        let (Outcome::Response { headers, .. }, Decision::Retry { reason, .. }) = (outcome, &current) else {
            return current;
        };
        let Some(wait) =
            headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
        else {
            return current;
        };
        if wait > self.cap {
            let reset_at =
                chrono::Duration::from_std(wait).ok().and_then(|d| Utc::now().checked_add_signed(d));
            return Decision::QuotaExhausted { reset_at };
        }
        Decision::Retry { reason, after: Some(wait) }
    }
}

/// Reads `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&Utc) - Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A platform classifier from a function: how a connector adds its usage headers and body
/// error codes to the chain.
pub struct FnClassifier<F> {
    name: &'static str,
    f: F,
}

impl<F> FnClassifier<F>
where
    F: Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync,
{
    /// A classifier called `name` that runs `f`.
    pub fn new(name: &'static str, f: F) -> FnClassifier<F> {
        FnClassifier { name, f }
    }
}

impl<F> std::fmt::Debug for FnClassifier<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnClassifier").field("name", &self.name).finish()
    }
}

impl<F> Classifier for FnClassifier<F>
where
    F: Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn classify(&self, outcome: &Outcome<'_>, current: Decision) -> Decision {
        (self.f)(outcome, current)
    }
}

/// How many times and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// The backoff's first ceiling; it doubles per attempt.
    pub base_delay: Duration,
    /// The backoff's largest ceiling.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured by waiting; longer means quota exhausted.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(15 * 60),
        }
    }
}

/// The `retry` table of a source's configuration: every key optional, the defaults of
/// [`RetryPolicy::default`] for the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: Option<u32>,
    /// The backoff's first ceiling, in milliseconds.
    pub base_delay_ms: Option<u64>,
    /// The backoff's largest ceiling, in milliseconds.
    pub max_delay_ms: Option<u64>,
    /// The longest `Retry-After` waited for, in seconds; a longer one stops the stream as quota
    /// exhausted.
    pub max_retry_after_seconds: Option<u64>,
}

impl RetryConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> RetryPolicy {
        let d = RetryPolicy::default();
        RetryPolicy {
            max_attempts: self.max_attempts.map_or(d.max_attempts, |n| n.max(1)),
            base_delay: self.base_delay_ms.map_or(d.base_delay, Duration::from_millis),
            max_delay: self.max_delay_ms.map_or(d.max_delay, Duration::from_millis),
            max_retry_after: self.max_retry_after_seconds.map_or(d.max_retry_after, Duration::from_secs),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a random wait between zero and
    /// `min(max_delay, base_delay * 2^attempt)`, so that many clients retrying at once spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(20)).min(self.max_delay);
        let micros = ceiling.as_micros() as u64;
        if micros == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(rand::rng().random_range(0..=micros))
    }

    /// The wait before retry number `attempt` (0-based): the platform's, capped, or the backoff.
    pub fn wait(&self, attempt: u32, after: Option<Duration>) -> Duration {
        match after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }
}

/// The default chain; platform classifiers are appended after it.
pub fn default_classifiers(policy: &RetryPolicy) -> Vec<Box<dyn Classifier>> {
    vec![
        Box::new(TransportClassifier),
        Box::new(StatusClassifier),
        Box::new(RetryAfterClassifier { cap: policy.max_retry_after }),
    ]
}

/// Runs the chain.
pub fn decide(classifiers: &[Box<dyn Classifier>], outcome: &Outcome<'_>) -> Decision {
    classifiers.iter().fold(Decision::GiveUp { kind: ErrorKind::Transient }, |d, c| c.classify(outcome, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Decision {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                v.parse().unwrap_or_else(|e| panic!("{e:?}")),
            );
        }
        let policy = RetryPolicy::default();
        let chain = default_classifiers(&policy);
        let status = StatusCode::from_u16(status).unwrap_or_else(|e| panic!("{e}"));
        decide(&chain, &Outcome::Response { status, headers: &map, body: body.as_bytes() })
    }

    #[test]
    fn statuses() {
        assert_eq!(response(200, &[], ""), Decision::Accept);
        assert_eq!(response(401, &[], ""), Decision::RefreshToken);
        assert_eq!(response(429, &[], ""), Decision::Retry { reason: "throttled", after: None });
        assert_eq!(response(503, &[], ""), Decision::Retry { reason: "server_error", after: None });
        assert_eq!(response(404, &[], ""), Decision::GiveUp { kind: ErrorKind::Config });
        assert_eq!(response(403, &[], ""), Decision::GiveUp { kind: ErrorKind::Auth });
    }

    #[test]
    fn retry_after_sets_the_wait_and_a_long_one_means_quota() {
        assert_eq!(
            response(429, &[("retry-after", "7")], ""),
            Decision::Retry { reason: "throttled", after: Some(Duration::from_secs(7)) }
        );
        assert!(matches!(
            response(429, &[("retry-after", "86400")], ""),
            Decision::QuotaExhausted { reset_at: Some(_) }
        ));
        // Retry-After on a success changes nothing.
        assert_eq!(response(200, &[("retry-after", "7")], ""), Decision::Accept);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn transport_failures_are_retried() {
        let chain = default_classifiers(&RetryPolicy::default());
        assert_eq!(
            decide(&chain, &Outcome::Transport { timeout: true, connect: false }),
            Decision::Retry { reason: "timeout", after: None }
        );
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 0..30 {
            let ceiling = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(1));
            for _ in 0..20 {
                assert!(p.backoff(attempt) <= ceiling);
            }
        }
        assert_eq!(p.wait(3, Some(Duration::from_secs(2))), Duration::from_secs(2));
    }
}
