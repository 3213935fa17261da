//! Proactive rate limiting: requests wait for their key's budget (app, token, ad account,
//! portal, property) before they are sent, so that the platform never has to say 429.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};

/// A platform's published limit: `requests` per `per`, with at most `burst` sent back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per period (at least 1).
    #[serde(deserialize_with = "at_least_one")]
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// The period, in seconds.
    #[serde(rename = "per_seconds", with = "secs")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub per: Duration,
    /// Requests that may be sent at once after a quiet spell (default 1).
    #[serde(default = "one", deserialize_with = "at_least_one")]
    #[schemars(range(min = 1))]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// A count that must be 1 or more: 0 requests per period would be no pace at all, and a
/// limiter given one runs at one request per period instead.
fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v: u32 = serde::Deserialize::deserialize(d)?;
    if v == 0 { Err(serde::de::Error::custom("is 0; expected 1 or more")) } else { Ok(v) }
}

mod secs {
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v: f64 = serde::Deserialize::deserialize(d)?;
        if v.is_finite() && v > 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(serde::de::Error::custom("expected a positive number of seconds"))
        }
    }
}

impl RateLimit {
    /// `requests` per `per`, no burst.
    pub fn new(requests: u32, per: Duration) -> RateLimit {
        RateLimit { requests, per, burst: 1 }
    }

    /// The same limit with a burst.
    pub fn with_burst(mut self, burst: u32) -> RateLimit {
        self.burst = burst.max(1);
        self
    }

    /// How many requests must be in flight to keep this pace when an answer takes `answer`
    /// (Little's law: the sustained pace, `requests - burst` per `per`, times the time each
    /// request is out), rounded up, within `1..=most`. Connectors derive their default concurrency from it, so that a source with
    /// the default settings is held back by the platform's limit, not by waiting for answers
    /// one at a time.
    pub fn requests_in_flight_for(&self, answer: Duration, most: u32) -> u32 {
        if self.per.is_zero() {
            return most.max(1);
        }
        let spread = self.requests.saturating_sub(self.burst.clamp(1, self.requests.max(1))).max(1);
        let per_second = f64::from(spread) / self.per.as_secs_f64();
        let needed = (per_second * answer.as_secs_f64()).ceil();
        if needed >= f64::from(most) { most.max(1) } else { (needed as u32).clamp(1, most.max(1)) }
    }

    /// The limit as `kpipe plan` reckons with it.
    pub fn pace(&self) -> kpipe_core::Pace {
        kpipe_core::Pace::new(self.requests, self.per, self.burst)
    }

    /// The governor quota that never exceeds `requests` in any window of `per`: a burst of `b`
    /// leaves `requests - b` to spread evenly, one every `per / (requests - b)`.
    fn quota(&self) -> Option<Quota> {
        let burst = self.burst.clamp(1, self.requests.max(1));
        let spread = self.requests.saturating_sub(burst).max(1);
        let interval = self.per.checked_div(spread)?;
        Some(Quota::with_period(interval)?.allow_burst(NonZeroU32::new(burst)?))
    }
}

/// Waits for a key's budget. Cloning shares the budget.
#[derive(Clone)]
pub struct RateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    limit: RateLimit,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter enforcing `limit` per key; `None` for a limit that allows nothing.
    pub fn new(limit: RateLimit) -> Option<RateLimiter> {
        let quota = limit.quota()?;
        Some(RateLimiter { limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)), limit })
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits until a request for `key` may be sent; returns how long it waited.
    pub async fn acquire(&self, key: &str) -> Duration {
        let start = Instant::now();
        let key = key.to_owned();
        if self.limiter.check_key(&key).is_err() {
            // Waiters wake when the next slot opens and one of them takes it; the others see
            // the slot after and sleep again. No jitter: every wait it added was quota unused.
            // No queue either: a waiter holding a turn could be a future its owner is not
            // polling (a request asked for ahead), and every other request would wait on it.
            self.limiter.until_key_ready(&key).await;
        }
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_keep_the_pace_for_the_answer_time() {
        // Ten in any second, one of them a burst: nine a second spread evenly.
        let ten_a_second = RateLimit::new(10, Duration::from_secs(1));
        assert_eq!(ten_a_second.requests_in_flight_for(Duration::from_secs(1), 16), 9);
        assert_eq!(ten_a_second.requests_in_flight_for(Duration::from_millis(250), 16), 3);
        assert_eq!(ten_a_second.requests_in_flight_for(Duration::ZERO, 16), 1);
        let bursty = RateLimit::new(20, Duration::from_secs(1)).with_burst(10);
        assert_eq!(bursty.requests_in_flight_for(Duration::from_secs(1), 16), 10);
        let two_hundred_in_ten = RateLimit::new(200, Duration::from_secs(10));
        assert_eq!(two_hundred_in_ten.requests_in_flight_for(Duration::from_secs(1), 16), 16);
        let slow = RateLimit::new(1, Duration::from_secs(60));
        assert_eq!(slow.requests_in_flight_for(Duration::from_secs(1), 16), 1);
    }

    #[test]
    fn a_limit_of_zero_requests_is_refused() {
        let zero = serde_json::from_str::<RateLimit>(r#"{"requests": 0, "per_seconds": 1}"#);
        assert!(zero.is_err_and(|e| e.to_string().contains("is 0; expected 1 or more")));
        let burst = serde_json::from_str::<RateLimit>(r#"{"requests": 5, "per_seconds": 1, "burst": 0}"#);
        assert!(burst.is_err());
        let ok = serde_json::from_str::<RateLimit>(r#"{"requests": 5, "per_seconds": 1}"#);
        assert!(ok.is_ok_and(|l| l == RateLimit::new(5, Duration::from_secs(1))));
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_a_window() {
        let limiter = RateLimiter::new(RateLimit::new(10, Duration::from_millis(500)).with_burst(3))
            .unwrap_or_else(|| panic!("limit"));
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..25 {
            limiter.acquire("acct").await;
            sent.push(start.elapsed());
        }
        // Any 500 ms window holds at most 10 requests.
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| **u < *t + Duration::from_millis(500)).count();
            assert!(in_window <= 10, "{in_window} requests within 500 ms from {t:?}");
        }
        // And the limit is used: 25 requests need about (25 - 3) / 7 * 500 ms.
        assert!(start.elapsed() < Duration::from_millis(2300), "{:?}", start.elapsed());
    }

    /// Many requests waiting at once for one key still never exceed the limit in a window, and
    /// each is served once: none is starved by the others.
    #[tokio::test]
    async fn concurrent_waiters_share_the_limit() {
        let limiter = RateLimiter::new(RateLimit::new(10, Duration::from_millis(500)))
            .unwrap_or_else(|| panic!("limit"));
        let start = Instant::now();
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire("acct").await;
                    start.elapsed()
                })
            })
            .collect();
        let mut sent = Vec::new();
        for task in tasks {
            sent.push(task.await.unwrap_or_else(|e| panic!("{e}")));
        }
        sent.sort();
        assert_eq!(sent.len(), 24);
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| **u < *t + Duration::from_millis(500)).count();
            assert!(in_window <= 10, "{in_window} requests within 500 ms from {t:?}");
        }
    }

    /// A request asked for ahead and then not polled (its owner is busy with an earlier one)
    /// must not hold up the others.
    #[tokio::test]
    async fn a_waiter_left_unpolled_holds_up_no_one() {
        let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_millis(100)))
            .unwrap_or_else(|| panic!("limit"));
        limiter.acquire("k").await;
        let mut ahead = std::pin::pin!(limiter.acquire("k"));
        // Polled once: it is now waiting for the next slot.
        std::future::poll_fn(|cx| {
            assert!(ahead.as_mut().poll(cx).is_pending(), "the slot was taken");
            std::task::Poll::Ready(())
        })
        .await;
        let next = tokio::time::timeout(Duration::from_secs(10), limiter.acquire("k")).await;
        assert!(next.is_ok(), "a request waited on one that nobody polled");
    }

    #[tokio::test]
    async fn keys_have_their_own_budget() {
        let limiter =
            RateLimiter::new(RateLimit::new(2, Duration::from_secs(60))).unwrap_or_else(|| panic!("limit"));
        assert!(limiter.acquire("a").await < Duration::from_millis(50));
        assert!(limiter.acquire("b").await < Duration::from_millis(50));
    }
}
