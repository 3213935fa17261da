//! Keeping within the Analytics property quotas: the `propertyQuota` of each answer says what a
//! request cost and what remains of the property's hourly and daily tokens and how many requests
//! it may have in flight. A property's requests pass a gate of that many slots (one until the
//! first answer says), and none is sent while its tokens cannot pay for it: an hourly shortage
//! waits for the next hour when the pull's deadline allows, a daily one stops the pull until
//! midnight Pacific time. A 429 `RESOURCE_EXHAUSTED` is classified the same way: concurrent
//! requests are retried after a backoff, hourly tokens wait or stop, daily tokens stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Days, TimeZone, Timelike, Utc};
use chrono_tz::America::Los_Angeles;
use kpipe_core::ErrorKind;
use kpipe_http::{Decision, FnClassifier, Outcome};
use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Where "now" comes from: the system clock, or a fixed point in tests of the hourly wait.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// One `QuotaStatus`: what the request consumed and what remains. proto3 JSON leaves zeros
/// out, so a missing counter is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaStatus {
    /// Tokens this request consumed.
    pub consumed: u64,
    /// Tokens left after it.
    pub remaining: u64,
}

/// The `propertyQuota` of an answer, as far as pacing needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyQuota {
    /// `tokensPerDay`.
    pub tokens_per_day: Option<QuotaStatus>,
    /// `tokensPerHour`.
    pub tokens_per_hour: Option<QuotaStatus>,
    /// `tokensPerProjectPerHour`.
    pub tokens_per_project_per_hour: Option<QuotaStatus>,
    /// `concurrentRequests.remaining`: requests the property may have in flight now.
    pub concurrent_remaining: Option<u64>,
}

impl PropertyQuota {
    /// What is left of the daily and hourly tokens, as the run summary shows it: the hourly
    /// figure is the lower of the property's and this project's share of it.
    pub fn left(&self) -> kpipe_core::QuotaLeft {
        let hourly = [self.tokens_per_hour, self.tokens_per_project_per_hour]
            .iter()
            .flatten()
            .map(|s| s.remaining)
            .min();
        kpipe_core::QuotaLeft {
            daily_tokens: self.tokens_per_day.map(|s| s.remaining),
            hourly_tokens: hourly,
            ..kpipe_core::QuotaLeft::default()
        }
    }

    /// Reads a `propertyQuota` object; what is missing or not a count stays unknown.
    pub fn read(value: &Value) -> PropertyQuota {
        let status = |key: &str| {
            let object = value.get(key)?.as_object()?;
            let number = |k: &str| object.get(k).map_or(Some(0), Value::as_u64);
            Some(QuotaStatus { consumed: number("consumed")?, remaining: number("remaining")? })
        };
        PropertyQuota {
            tokens_per_day: status("tokensPerDay"),
            tokens_per_hour: status("tokensPerHour"),
            tokens_per_project_per_hour: status("tokensPerProjectPerHour"),
            concurrent_remaining: status("concurrentRequests").map(|s| s.remaining),
        }
    }
}

/// The top of the next hour: when hourly tokens return.
pub fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    let hour_start = now.with_nanosecond(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_minute(0));
    hour_start.map_or(now, |t| t + chrono::Duration::hours(1))
}

/// The next midnight in US Pacific time (`America/Los_Angeles`, daylight saving time included),
/// when GA4's daily property tokens return.
pub fn next_pacific_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let pacific = Los_Angeles;
    let Some(tomorrow) = now.with_timezone(&pacific).date_naive().checked_add_days(Days::new(1)) else {
        return now;
    };
    // Los Angeles changes its clocks at 2:00: every day has exactly one midnight.
    tomorrow
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| pacific.from_local_datetime(&midnight).earliest())
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Which property quota a 429 `RESOURCE_EXHAUSTED` says is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Too many requests of the property in flight: free again as soon as one ends.
    Concurrent,
    /// Tokens per hour (of the property, or of this project for the property), or another
    /// hourly bucket: back within the hour.
    Hourly,
    /// Tokens per day: back at midnight Pacific time.
    Daily,
}

/// The quota a 429 body names, if it is Google's `RESOURCE_EXHAUSTED` envelope. The status
/// says it is a quota; only the message says which (notes §6).
pub fn exhausted_quota(body: &[u8]) -> Option<Exhausted> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value.pointer("/error/status").and_then(Value::as_str) != Some("RESOURCE_EXHAUSTED") {
        return None;
    }
    let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    Some(if message.contains("concurrent") {
        Exhausted::Concurrent
    } else if message.contains("per day") {
        Exhausted::Daily
    } else {
        Exhausted::Hourly
    })
}

/// The classifier of GA4's quota answers. A daily exhaustion becomes the runtime's
/// `QuotaExhausted` (the stream stops). An hourly one gives up with the quota kind, so that the
/// connector, which knows the pull's deadline, decides between waiting and stopping; nothing is
/// retried into it. Concurrent-request refusals are retried after the backoff.
pub fn quota_classifier(
    clock: Clock,
) -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("ga4_property_quota", move |outcome: &Outcome<'_>, current| match outcome {
        Outcome::Response { status, body, .. } if status.as_u16() == 429 => match exhausted_quota(body) {
            Some(Exhausted::Concurrent) => Decision::Retry { reason: "throttled", after: None },
            Some(Exhausted::Daily) => {
                Decision::QuotaExhausted { reset_at: Some(next_pacific_midnight(clock())) }
            }
            Some(Exhausted::Hourly) => {
                Decision::GiveUp { kind: ErrorKind::QuotaExhausted { reset_at: Some(next_hour(clock())) } }
            }
            None => current,
        },
        _ => current,
    })
}

/// May a request of the property be sent now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes.
    Go,
    /// Not before the hourly tokens return at `reset_at`.
    HourlyExhausted {
        /// The top of the next hour.
        reset_at: DateTime<Utc>,
    },
    /// Not before the daily tokens return at `reset_at`.
    DailyExhausted {
        /// The next midnight Pacific time.
        reset_at: DateTime<Utc>,
    },
}

#[derive(Debug, Default)]
struct Budget {
    /// Tokens per day left, and until when that is known to hold.
    day: Option<(u64, DateTime<Utc>)>,
    /// The smaller of the property's and this project's hourly tokens left, and until when.
    hour: Option<(u64, DateTime<Utc>)>,
    /// The most a request of the property has cost: what the next one is expected to cost.
    max_cost: u64,
    /// Requests admitted and not answered yet.
    in_flight: u64,
}

/// One property's gate and token budget.
#[derive(Debug)]
pub struct PropertyPacer {
    gate: Semaphore,
    ceiling: usize,
    learned: AtomicBool,
    budget: Mutex<Budget>,
}

impl PropertyPacer {
    /// A pacer allowing at most `ceiling` requests in flight, one until the property's first
    /// answer tells its `concurrentRequests`.
    pub fn new(ceiling: usize) -> PropertyPacer {
        PropertyPacer {
            gate: Semaphore::new(1),
            ceiling: ceiling.max(1),
            learned: AtomicBool::new(false),
            budget: Mutex::new(Budget::default()),
        }
    }

    fn budget(&self) -> MutexGuard<'_, Budget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot in the property's gate.
    pub async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        self.gate.acquire().await.ok()
    }

    /// Whether the property's tokens can pay for one more request now (counting the ones in
    /// flight at the highest cost seen); `Go` counts it in flight until [`Self::answered`].
    pub fn admit(&self, now: DateTime<Utc>) -> Admission {
        let mut budget = self.budget();
        let cost = budget.max_cost.max(1);
        let need = cost.saturating_mul(budget.in_flight + 1);
        if let Some((remaining, until)) = budget.day {
            if now >= until {
                budget.day = None;
            } else if remaining < need {
                return Admission::DailyExhausted { reset_at: until };
            }
        }
        if let Some((remaining, until)) = budget.hour {
            if now >= until {
                budget.hour = None;
            } else if remaining < need {
                return Admission::HourlyExhausted { reset_at: until };
            }
        }
        budget.in_flight += 1;
        Admission::Go
    }

    /// An admitted request was answered (or failed), with this `propertyQuota` if any.
    pub fn answered(&self, quota: Option<&PropertyQuota>, now: DateTime<Utc>) {
        {
            let mut budget = self.budget();
            budget.in_flight = budget.in_flight.saturating_sub(1);
            if let Some(q) = quota {
                let cost = [q.tokens_per_day, q.tokens_per_hour, q.tokens_per_project_per_hour]
                    .iter()
                    .flatten()
                    .map(|s| s.consumed)
                    .max()
                    .unwrap_or(0);
                budget.max_cost = budget.max_cost.max(cost);
                if let Some(day) = q.tokens_per_day {
                    budget.day = Some((day.remaining, next_pacific_midnight(now)));
                }
                let hourly = [q.tokens_per_hour, q.tokens_per_project_per_hour]
                    .iter()
                    .flatten()
                    .map(|s| s.remaining)
                    .min();
                if let Some(hour) = hourly {
                    budget.hour = Some((hour, next_hour(now)));
                }
            }
        }
        if !self.learned.swap(true, Ordering::AcqRel) {
            // Requests were sent one at a time until now, so the remaining slots are the limit.
            let slots = match quota {
                None => self.ceiling,
                Some(q) => usize::try_from(q.concurrent_remaining.unwrap_or(0)).unwrap_or(usize::MAX),
            };
            let slots = slots.clamp(1, self.ceiling);
            tracing::debug!(slots, "requests of the property allowed in flight");
            self.gate.add_permits(slots - 1);
        }
    }

    /// The platform said the hourly tokens are used up until `reset_at`.
    pub fn hour_exhausted(&self, reset_at: DateTime<Utc>) {
        self.budget().hour = Some((0, reset_at));
    }

    /// The platform said the daily tokens are used up until `reset_at`.
    pub fn day_exhausted(&self, reset_at: DateTime<Utc>) {
        self.budget().day = Some((0, reset_at));
    }

    /// Slots of the gate, learned or not (for tests and logs).
    pub fn slots(&self) -> usize {
        self.gate.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn resets_are_the_next_hour_and_midnight_pacific() {
        assert_eq!(next_hour(at("2026-10-01T13:45:10.5Z")), at("2026-10-01T14:00:00Z"));
        assert_eq!(next_hour(at("2026-10-01T23:59:59Z")), at("2026-10-02T00:00:00Z"));
        // Summer: PDT, midnight is 07:00 UTC.
        assert_eq!(next_pacific_midnight(at("2026-07-01T12:00:00Z")), at("2026-07-02T07:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-07-01T06:59:00Z")), at("2026-07-01T07:00:00Z"));
        // Winter: PST, midnight is 08:00 UTC.
        assert_eq!(next_pacific_midnight(at("2026-01-15T09:00:00Z")), at("2026-01-16T08:00:00Z"));
        // 2026: DST starts on 8 March and ends on 1 November.
        assert_eq!(next_pacific_midnight(at("2026-03-07T20:00:00Z")), at("2026-03-08T08:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-03-08T20:00:00Z")), at("2026-03-09T07:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-10-31T20:00:00Z")), at("2026-11-01T07:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-11-01T20:00:00Z")), at("2026-11-02T08:00:00Z"));
    }

    #[test]
    fn the_daily_reset_is_midnight_pacific_on_change_days() {
        for (now, midnight) in [
            // 2026-03-08 (23 hours): 23:59 PST the evening before, midnight itself, 01:59 PST
            // and 03:00 PDT.
            ("2026-03-08T07:59:00Z", "2026-03-08T08:00:00Z"),
            ("2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z"),
            ("2026-03-08T09:59:00Z", "2026-03-09T07:00:00Z"),
            ("2026-03-08T10:00:00Z", "2026-03-09T07:00:00Z"),
            ("2026-03-09T06:59:59Z", "2026-03-09T07:00:00Z"),
            // 2026-11-01 (25 hours): 23:59 PDT the evening before, 01:30 PDT and 01:30 PST, the
            // day's last minute.
            ("2026-11-01T06:59:00Z", "2026-11-01T07:00:00Z"),
            ("2026-11-01T08:30:00Z", "2026-11-02T08:00:00Z"),
            ("2026-11-01T09:30:00Z", "2026-11-02T08:00:00Z"),
            ("2026-11-02T07:59:00Z", "2026-11-02T08:00:00Z"),
        ] {
            assert_eq!(next_pacific_midnight(at(now)), at(midnight), "{now}");
        }
        // The day's tokens learned on a change day hold until that midnight.
        let pacer = PropertyPacer::new(1);
        let now = at("2026-11-01T10:00:00Z");
        assert_eq!(pacer.admit(now), Admission::Go);
        let spent = PropertyQuota {
            tokens_per_day: Some(QuotaStatus { consumed: 5, remaining: 0 }),
            ..PropertyQuota::default()
        };
        pacer.answered(Some(&spent), now);
        assert_eq!(pacer.admit(now), Admission::DailyExhausted { reset_at: at("2026-11-02T08:00:00Z") });
        assert_eq!(pacer.admit(at("2026-11-02T08:00:00Z")), Admission::Go);
    }

    #[test]
    fn quota_bodies_say_which_quota() {
        let body = |m: &str| {
            serde_json::to_vec(&json!({"error": {"code": 429, "message": m, "status": "RESOURCE_EXHAUSTED"}}))
                .unwrap()
        };
        assert_eq!(
            exhausted_quota(&body(
                "Exhausted property tokens per day. These quota tokens will return tomorrow."
            )),
            Some(Exhausted::Daily)
        );
        assert_eq!(
            exhausted_quota(&body("Exhausted property tokens per hour for a project per property.")),
            Some(Exhausted::Hourly)
        );
        assert_eq!(
            exhausted_quota(&body("Exhausted concurrent requests quota.")),
            Some(Exhausted::Concurrent)
        );
        assert_eq!(exhausted_quota(br#"{"status": 429, "error": "rate_limited"}"#), None);
        assert_eq!(exhausted_quota(b"not json"), None);
    }

    #[test]
    fn property_quota_reads_proto3_json() {
        let q = PropertyQuota::read(&json!({
            "tokensPerDay": {"consumed": 12, "remaining": 199_867},
            "tokensPerHour": {"remaining": 10},
            "tokensPerProjectPerHour": {},
            "concurrentRequests": {"remaining": 10}
        }));
        assert_eq!(q.tokens_per_day, Some(QuotaStatus { consumed: 12, remaining: 199_867 }));
        assert_eq!(q.tokens_per_hour, Some(QuotaStatus { consumed: 0, remaining: 10 }));
        assert_eq!(q.tokens_per_project_per_hour, Some(QuotaStatus::default()));
        assert_eq!(q.concurrent_remaining, Some(10));
        assert_eq!((q.left().daily_tokens, q.left().hourly_tokens), (Some(199_867), Some(0)));
        assert_eq!(PropertyQuota::read(&json!({})), PropertyQuota::default());
        assert!(PropertyQuota::read(&json!({"tokensPerDay": "many"})).left().is_empty());
    }

    #[test]
    fn the_gate_learns_the_property_limit_from_the_first_answer() {
        let pacer = PropertyPacer::new(10);
        assert_eq!(pacer.slots(), 1);
        let now = at("2026-10-01T10:00:00Z");
        assert_eq!(pacer.admit(now), Admission::Go);
        let quota = PropertyQuota { concurrent_remaining: Some(3), ..PropertyQuota::default() };
        pacer.answered(Some(&quota), now);
        assert_eq!(pacer.slots(), 3);
        // Learned once: later answers do not add slots.
        pacer.answered(Some(&quota), now);
        assert_eq!(pacer.slots(), 3);
        let capped = PropertyPacer::new(2);
        capped.answered(
            Some(&PropertyQuota { concurrent_remaining: Some(50), ..PropertyQuota::default() }),
            now,
        );
        assert_eq!(capped.slots(), 2);
    }

    #[test]
    fn no_request_is_admitted_that_the_tokens_cannot_pay_for() {
        let pacer = PropertyPacer::new(10);
        let now = at("2026-10-01T10:20:00Z");
        let quota = |hour: u64, day: u64| PropertyQuota {
            tokens_per_day: Some(QuotaStatus { consumed: 4, remaining: day }),
            tokens_per_hour: Some(QuotaStatus { consumed: 4, remaining: hour }),
            ..PropertyQuota::default()
        };
        assert_eq!(pacer.admit(now), Admission::Go);
        pacer.answered(Some(&quota(9, 100)), now);
        // 9 tokens pay for two requests of 4, not three.
        assert_eq!(pacer.admit(now), Admission::Go);
        assert_eq!(pacer.admit(now), Admission::Go);
        assert_eq!(pacer.admit(now), Admission::HourlyExhausted { reset_at: at("2026-10-01T11:00:00Z") });
        pacer.answered(Some(&quota(5, 3)), now);
        assert_eq!(pacer.admit(now), Admission::DailyExhausted { reset_at: at("2026-10-02T07:00:00Z") });
        // Once the hour and the day have turned, what was known no longer holds.
        let later = at("2026-10-02T08:00:00Z");
        assert_eq!(pacer.admit(later), Admission::Go);
    }
}
