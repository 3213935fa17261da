//! Enforced quotas: N requests per fixed or rolling window, or per "day" (never resetting),
//! counted per key.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use serde_json::json;
use tokio::time::Instant;

use crate::config::CannedResponse;
use crate::error::SimError;

/// What a quota counts requests by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QuotaKey {
    /// One counter for every request.
    #[default]
    Global,
    /// One counter per value of this request header (absent header: one shared counter).
    Header(String),
    /// One counter per value of this query parameter (absent: one shared counter).
    QueryParam(String),
    /// One counter per `Authorization` header value (per access token).
    BearerToken,
    /// One counter per request path.
    Path,
}

/// The period a quota's limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// Windows of this length back to back from server start; the count resets at each boundary.
    FixedWindow(Duration),
    /// At most `limit` accepted requests in any interval of this length.
    RollingWindow(Duration),
    /// `limit` requests per key, then refused for the rest of the test (a daily cap that never
    /// resets while the server runs).
    Daily,
}

/// The `Retry-After` header on a quota rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After` header.
    Omit,
    /// Always this many seconds.
    Seconds(u64),
    /// The whole seconds (rounded up, at least 1) until the window admits a request again;
    /// omitted for [`QuotaPeriod::Daily`].
    UntilReset,
}

/// One quota: `limit` requests per `period`, per `key`, on the paths it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRule {
    /// A name for logs and [`crate::SimServer::rejections_for_quota`].
    pub name: String,
    /// The paths it covers: those starting with this prefix; `None` = every API path (all but
    /// the token endpoint).
    pub path_prefix: Option<String>,
    /// What requests are counted by.
    pub key: QuotaKey,
    /// Accepted requests per period and key (0 refuses everything).
    pub limit: u64,
    /// The period.
    pub period: QuotaPeriod,
    /// The `Retry-After` header on rejections.
    pub retry_after: RetryAfter,
    /// The rejection (status and body); the `Retry-After` header is added to it.
    pub response: CannedResponse,
}

impl QuotaRule {
    /// `limit` requests per fixed window, global, answered `429` with `Retry-After` until the
    /// window ends.
    #[must_use]
    pub fn fixed_window(limit: u64, window: Duration) -> Self {
        Self {
            name: "fixed_window".to_owned(),
            path_prefix: None,
            key: QuotaKey::Global,
            limit,
            period: QuotaPeriod::FixedWindow(window),
            retry_after: RetryAfter::UntilReset,
            response: CannedResponse::too_many_requests(),
        }
    }

    /// `limit` requests in any rolling window, global, answered `429` with `Retry-After` until
    /// the oldest counted request leaves the window.
    #[must_use]
    pub fn rolling_window(limit: u64, window: Duration) -> Self {
        Self {
            name: "rolling_window".to_owned(),
            period: QuotaPeriod::RollingWindow(window),
            ..Self::fixed_window(limit, window)
        }
    }

    /// `limit` requests per key for the whole test, then `429` with a body saying the daily
    /// quota is exhausted and no `Retry-After`.
    #[must_use]
    pub fn daily(limit: u64) -> Self {
        Self {
            name: "daily".to_owned(),
            path_prefix: None,
            key: QuotaKey::Global,
            limit,
            period: QuotaPeriod::Daily,
            retry_after: RetryAfter::Omit,
            response: CannedResponse::json(
                429,
                json!({"status": 429, "error": "daily_quota_exhausted",
                       "message": "The daily quota for this resource is exhausted."}),
            ),
        }
    }

    /// Renames the rule.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Restricts the rule to paths starting with `prefix` (name the token path to limit it).
    #[must_use]
    pub fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Counts requests by `key`.
    #[must_use]
    pub fn keyed_by(mut self, key: QuotaKey) -> Self {
        self.key = key;
        self
    }

    /// Sets the `Retry-After` behaviour.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: RetryAfter) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets the rejection's status and body.
    #[must_use]
    pub fn with_response(mut self, response: CannedResponse) -> Self {
        self.response = response;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        match self.period {
            QuotaPeriod::FixedWindow(w) | QuotaPeriod::RollingWindow(w) if w.is_zero() => {
                Err(SimError::Config(format!("quota {:?} has a zero-length window", self.name)))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
enum KeyState {
    Fixed { window: u128, count: u64 },
    Rolling(VecDeque<Instant>),
    Count(u64),
}

#[derive(Debug)]
struct RuleState {
    rule: QuotaRule,
    keys: Mutex<HashMap<String, KeyState>>,
    rejected: AtomicU64,
}

/// The quota counters of a running server.
#[derive(Debug)]
pub(crate) struct QuotaEngine {
    rules: Vec<RuleState>,
    started: Instant,
}

/// A request refused by a quota.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) rule: String,
    pub(crate) response: CannedResponse,
}

impl QuotaEngine {
    pub(crate) fn new(rules: Vec<QuotaRule>, started: Instant) -> Self {
        let rules = rules
            .into_iter()
            .map(|rule| RuleState { rule, keys: Mutex::new(HashMap::new()), rejected: AtomicU64::new(0) })
            .collect();
        Self { rules, started }
    }

    /// Counts one arriving request against every rule covering it, in order; the first rule
    /// whose quota is exhausted refuses it (earlier rules have counted it).
    pub(crate) fn check(
        &self,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        token_path: &str,
        now: Instant,
    ) -> Option<Rejection> {
        for state in &self.rules {
            let rule = &state.rule;
            if !crate::scope_matches(rule.path_prefix.as_deref(), path, token_path) {
                continue;
            }
            let key = key_of(&rule.key, path, query, headers);
            let verdict = {
                let mut keys = state.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                admit(rule, keys.entry(key).or_insert_with(|| initial(rule)), now, self.started)
            };
            if let Err(wait) = verdict {
                state.rejected.fetch_add(1, Ordering::Relaxed);
                let mut response = rule.response.clone();
                let seconds = match rule.retry_after {
                    RetryAfter::Omit => None,
                    RetryAfter::Seconds(s) => Some(s),
                    RetryAfter::UntilReset => wait.map(ceil_seconds),
                };
                if let Some(seconds) = seconds {
                    response = response.with_retry_after(seconds);
                }
                tracing::debug!(quota = %rule.name, path, "kpipe-sim: over quota, answering {}", response.status);
                return Some(Rejection { rule: rule.name.clone(), response });
            }
        }
        None
    }

    /// How many requests the rule named `name` refused.
    pub(crate) fn rejected(&self, name: &str) -> u64 {
        self.rules.iter().filter(|s| s.rule.name == name).map(|s| s.rejected.load(Ordering::Relaxed)).sum()
    }
}

fn initial(rule: &QuotaRule) -> KeyState {
    match rule.period {
        QuotaPeriod::FixedWindow(_) => KeyState::Fixed { window: 0, count: 0 },
        QuotaPeriod::RollingWindow(_) => KeyState::Rolling(VecDeque::new()),
        QuotaPeriod::Daily => KeyState::Count(0),
    }
}

/// `Ok` admits the request (and counts it); `Err(Some(wait))` refuses it until `wait` has
/// passed; `Err(None)` refuses it for good.
fn admit(
    rule: &QuotaRule,
    state: &mut KeyState,
    now: Instant,
    started: Instant,
) -> Result<(), Option<Duration>> {
    match (rule.period, state) {
        (QuotaPeriod::FixedWindow(window), KeyState::Fixed { window: current, count }) => {
            let elapsed = now.saturating_duration_since(started);
            let index = elapsed.as_nanos() / window.as_nanos().max(1);
            if index != *current {
                *current = index;
                *count = 0;
            }
            if *count < rule.limit {
                *count += 1;
                Ok(())
            } else {
                let end = window.as_nanos().saturating_mul(index + 1);
                let wait = end.saturating_sub(elapsed.as_nanos());
                Err(Some(Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))))
            }
        }
        (QuotaPeriod::RollingWindow(window), KeyState::Rolling(times)) => {
            while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
                times.pop_front();
            }
            if (times.len() as u64) < rule.limit {
                times.push_back(now);
                Ok(())
            } else {
                let wait =
                    times.front().map_or(window, |oldest| (*oldest + window).saturating_duration_since(now));
                Err(Some(wait))
            }
        }
        (QuotaPeriod::Daily, KeyState::Count(count)) => {
            if *count < rule.limit {
                *count += 1;
                Ok(())
            } else {
                Err(None)
            }
        }
        // The state always matches the rule's period (see `initial`); refuse if it ever does not.
        _ => Err(None),
    }
}

fn ceil_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

fn key_of(key: &QuotaKey, path: &str, query: Option<&str>, headers: &HeaderMap) -> String {
    match key {
        QuotaKey::Global => String::new(),
        QuotaKey::Path => path.to_owned(),
        QuotaKey::Header(name) => {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        }
        QuotaKey::BearerToken => headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        QuotaKey::QueryParam(name) => crate::query_pairs(query.unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(engine: &QuotaEngine, now: Instant) -> Option<Rejection> {
        engine.check("/x", None, &HeaderMap::new(), "/oauth/token", now)
    }

    #[test]
    fn fixed_window_resets_at_the_boundary() {
        let start = Instant::now();
        let engine = QuotaEngine::new(vec![QuotaRule::fixed_window(2, Duration::from_secs(10))], start);
        assert!(check(&engine, start).is_none());
        assert!(check(&engine, start + Duration::from_secs(1)).is_none());
        let rejected = check(&engine, start + Duration::from_millis(2500)).unwrap();
        assert_eq!(rejected.response.status, 429);
        // 7.5 s left in the window, rounded up.
        assert!(rejected.response.headers.contains(&("Retry-After".to_owned(), "8".to_owned())));
        assert!(check(&engine, start + Duration::from_secs(10)).is_none());
        assert_eq!(engine.rejected("fixed_window"), 1);
    }

    #[test]
    fn rolling_window_frees_slots_one_by_one() {
        let start = Instant::now();
        let engine = QuotaEngine::new(vec![QuotaRule::rolling_window(2, Duration::from_secs(10))], start);
        assert!(check(&engine, start).is_none());
        assert!(check(&engine, start + Duration::from_secs(6)).is_none());
        let r = check(&engine, start + Duration::from_secs(9)).unwrap();
        assert!(r.response.headers.contains(&("Retry-After".to_owned(), "1".to_owned())));
        assert!(check(&engine, start + Duration::from_secs(10)).is_none());
        assert!(check(&engine, start + Duration::from_secs(11)).is_some());
    }

    #[test]
    fn daily_cap_never_resets_and_is_per_key() {
        let start = Instant::now();
        let rule = QuotaRule::daily(1).keyed_by(QuotaKey::QueryParam("account".to_owned()));
        let engine = QuotaEngine::new(vec![rule], start);
        let h = HeaderMap::new();
        assert!(engine.check("/x", Some("account=1"), &h, "/t", start).is_none());
        assert!(engine.check("/x", Some("account=2"), &h, "/t", start).is_none());
        let r =
            engine.check("/x", Some("account=1"), &h, "/t", start + Duration::from_secs(86_400 * 3)).unwrap();
        assert!(r.response.headers.is_empty());
        assert_eq!(r.rule, "daily");
    }

    #[test]
    fn the_token_path_is_exempt_unless_named() {
        let start = Instant::now();
        let engine = QuotaEngine::new(vec![QuotaRule::daily(0)], start);
        let h = HeaderMap::new();
        assert!(engine.check("/oauth/token", None, &h, "/oauth/token", start).is_none());
        assert!(engine.check("/test/items", None, &h, "/oauth/token", start).is_some());
    }
}
