//! Pacing below HubSpot's own accounting. Every response but search carries
//! `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds` (and for private apps
//! `-Daily` and `-Daily-Remaining`, §8 of the wire notes). The burst limit is shared with every
//! other client of the same app, so the fixed rate limiter alone can still run into 429s: what
//! the headers say others used is taken off this source's share of the window. A daily remainder
//! of zero, or this source's own `daily_limit`, stops the pull before the request HubSpot would
//! refuse.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use kpipe_core::QuotaLeft;

use crate::portal::Zone;

/// HubSpot's burst interval, until a response says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The burst window as the last response reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    max: u64,
    remaining: u64,
    interval: Duration,
    /// Requests of this source within the interval when the response came.
    ours: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    window: Option<Window>,
    daily_remaining: Option<u64>,
    /// When this source's requests were sent, within the longest interval seen.
    sent: VecDeque<Instant>,
    /// The portal's zone, for its days and midnight (UTC until the account details are read).
    zone: Zone,
    /// The portal day `sent_today` counts, and the count.
    today: Option<NaiveDate>,
    sent_today: u64,
    /// The lowest remainders the headers reported, for the run summary.
    lowest: QuotaLeft,
    /// The portal they are about, once known.
    portal: Option<String>,
}

/// What the pacer decided for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send now.
    Go,
    /// Wait this long, then ask again.
    Wait(Duration),
    /// The daily limit is used up until the given time.
    DailyLimit(Option<DateTime<Utc>>),
}

/// Shared by the requests of one source and by its response classifier.
#[derive(Debug)]
pub struct Usage {
    state: Mutex<State>,
    daily_limit: Option<u64>,
}

impl Usage {
    /// Pacing with an optional cap on this source's requests per portal day.
    pub fn new(daily_limit: Option<u64>) -> Usage {
        Usage { state: Mutex::new(State::default()), daily_limit }
    }

    /// The portal's zone, for its days and midnight. The requests counted so far stay counted:
    /// they were sent on the portal's current day, whichever date the zone assumed before made
    /// of it (learning the zone between the two midnights must not reset the count).
    pub fn set_zone(&self, zone: Zone) {
        let mut state = self.lock();
        if std::mem::replace(&mut state.zone, zone) != zone && state.today.is_some() {
            state.today = zone.day_of(Utc::now().timestamp_millis());
        }
    }

    /// The portal the headers are about, for the run summary.
    pub fn set_portal(&self, portal: &str) {
        self.lock().portal = Some(portal.to_owned());
    }

    /// The lowest remainders the headers reported, by portal (`portal` until its id is known);
    /// `None` when no response carried them.
    pub fn quota_left(&self) -> Option<(String, QuotaLeft)> {
        let state = self.lock();
        let portal = state.portal.clone().unwrap_or_else(|| "portal".to_owned());
        (!state.lowest.is_empty()).then(|| (portal, state.lowest))
    }

    /// When the daily limit resets: the portal's next midnight.
    pub fn daily_reset(&self) -> Option<DateTime<Utc>> {
        self.daily_reset_after(Utc::now())
    }

    /// The portal's first midnight after `now`.
    pub fn daily_reset_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let zone = self.lock().zone;
        zone.next_midnight(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the rate-limit headers of a response (search responses have none); `header` gives
    /// a header's value as a number.
    pub fn observe(&self, header: impl Fn(&str) -> Option<u64>) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(daily) = header("x-hubspot-ratelimit-daily-remaining") {
            state.daily_remaining = Some(daily);
        }
        let seen = QuotaLeft {
            daily_requests: header("x-hubspot-ratelimit-daily-remaining"),
            daily_requests_limit: header("x-hubspot-ratelimit-daily"),
            window_requests: header("x-hubspot-ratelimit-remaining"),
            ..QuotaLeft::default()
        };
        state.lowest.keep_lowest(&seen);
        let (Some(max), Some(remaining), Some(interval)) = (
            header("x-hubspot-ratelimit-max"),
            header("x-hubspot-ratelimit-remaining"),
            header("x-hubspot-ratelimit-interval-milliseconds"),
        ) else {
            return;
        };
        let interval = Duration::from_millis(interval);
        let ours = state.sent.iter().filter(|t| now.saturating_duration_since(**t) < interval).count() as u64;
        state.window = Some(Window { max, remaining, interval, ours, at: now });
    }

    /// Whether the next request may go now. `Go` records it as sent.
    pub fn admit(&self, now: Instant) -> Admission {
        let utc_now = Utc::now();
        let mut state = self.lock();
        let portal_day = state.zone.day_of(utc_now.timestamp_millis());
        if state.today != portal_day {
            state.today = portal_day;
            state.sent_today = 0;
            // A new portal day brings a new daily allowance.
            state.daily_remaining = None;
        }
        if state.daily_remaining == Some(0) || self.daily_limit.is_some_and(|limit| state.sent_today >= limit)
        {
            return Admission::DailyLimit(state.zone.next_midnight(utc_now));
        }
        let keep = state.window.map_or(DEFAULT_INTERVAL, |w| w.interval);
        while state.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= keep) {
            state.sent.pop_front();
        }
        if let Some(window) = state.window {
            let fresh = now.saturating_duration_since(window.at) < window.interval;
            // What the portal counted beyond this source's own requests.
            let others = window.max.saturating_sub(window.remaining).saturating_sub(window.ours);
            let share = window.max.saturating_sub(others);
            if fresh && state.sent.len() as u64 >= share {
                // A small margin: the platform counts a request when it arrives, a little later
                // than it was sent.
                let margin = window.interval / 50;
                let wait = state.sent.front().map_or(window.interval, |oldest| {
                    (*oldest + window.interval + margin).saturating_duration_since(now)
                });
                return Admission::Wait(wait.max(Duration::from_millis(1)));
            }
        }
        state.sent.push_back(now);
        state.sent_today += 1;
        Admission::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `X-HubSpot-RateLimit-*` headers of §8 (HubSpot's usage guidelines).
    fn headers(
        max: u64,
        remaining: u64,
        interval_ms: u64,
        daily: Option<u64>,
    ) -> impl Fn(&str) -> Option<u64> {
        move |name| match name {
            "x-hubspot-ratelimit-max" => Some(max),
            "x-hubspot-ratelimit-remaining" => Some(remaining),
            "x-hubspot-ratelimit-interval-milliseconds" => Some(interval_ms),
            "x-hubspot-ratelimit-daily-remaining" => daily,
            _ => None,
        }
    }

    #[test]
    fn alone_a_source_may_use_the_whole_window() {
        let usage = Usage::new(None);
        let start = Instant::now();
        for n in 0..4 {
            assert_eq!(usage.admit(start), Admission::Go, "request {n}");
            usage.observe(headers(4, 3 - n, 10_000, None));
        }
        // The window is full: wait until the oldest request leaves it.
        match usage.admit(start) {
            Admission::Wait(d) => {
                assert!(d >= Duration::from_secs(10) && d <= Duration::from_millis(10_300), "{d:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(usage.admit(start + Duration::from_millis(10_300)), Admission::Go);
    }

    #[test]
    fn what_others_used_is_taken_off_this_sources_share() {
        let usage = Usage::new(None);
        let start = Instant::now();
        assert_eq!(usage.admit(start), Admission::Go);
        // One request of ours, yet 7 of 10 are gone: others used 6.
        usage.observe(headers(10, 3, 1_000, None));
        assert_eq!(usage.admit(start), Admission::Go);
        assert_eq!(usage.admit(start), Admission::Go);
        assert_eq!(usage.admit(start), Admission::Go);
        assert!(matches!(usage.admit(start), Admission::Wait(_)));
        // Once the observation is older than the window, it no longer holds anything back.
        assert_eq!(usage.admit(start + Duration::from_millis(1_100)), Admission::Go);
    }

    /// The portal's zone becomes known after the first answers; when its date differs from
    /// UTC's (between the two midnights), the requests already sent still count.
    #[test]
    fn learning_the_portals_zone_keeps_the_days_count() {
        let now = Instant::now();
        let into_utc_day = Utc::now().timestamp_millis().rem_euclid(86_400_000);
        // An offset that puts the portal on the previous date, whatever the time of day.
        let yesterday = -(into_utc_day + 3_600_000);
        let budget = Usage::new(Some(3));
        assert_eq!(budget.admit(now), Admission::Go);
        budget.set_zone(Zone::Fixed(yesterday));
        assert_eq!(budget.admit(now), Admission::Go);
        assert_eq!(budget.admit(now), Admission::Go);
        assert!(matches!(budget.admit(now), Admission::DailyLimit(_)), "a fourth request went");
    }

    #[test]
    fn daily_limits_stop_before_the_refused_request() {
        let usage = Usage::new(None);
        usage.set_zone(Zone::Named(chrono_tz::America::New_York));
        let now = Instant::now();
        assert_eq!(usage.admit(now), Admission::Go);
        usage.observe(headers(190, 189, 10_000, Some(0)));
        let before = Utc::now();
        let Admission::DailyLimit(Some(reset)) = usage.admit(now) else { panic!("the limit did not stop") };
        let after = Utc::now();
        // The reset is New York's next midnight.
        let midnight = |t| Zone::Named(chrono_tz::America::New_York).next_midnight(t);
        assert!(midnight(before) == Some(reset) || midnight(after) == Some(reset), "{reset}");

        let budget = Usage::new(Some(2));
        assert_eq!(budget.admit(now), Admission::Go);
        assert_eq!(budget.admit(now), Admission::Go);
        assert!(matches!(budget.admit(now), Admission::DailyLimit(_)));
    }

    #[test]
    fn the_daily_limit_resets_at_the_portals_midnight_on_change_days() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        let usage = Usage::new(Some(1));
        for (zone, now, reset) in [
            // New York: 2026-03-08 has 23 hours, 2026-11-01 has 25.
            (chrono_tz::America::New_York, "2026-03-08T04:30:00Z", "2026-03-08T05:00:00Z"),
            (chrono_tz::America::New_York, "2026-03-08T12:00:00Z", "2026-03-09T04:00:00Z"),
            (chrono_tz::America::New_York, "2026-11-01T03:30:00Z", "2026-11-01T04:00:00Z"),
            (chrono_tz::America::New_York, "2026-11-01T12:00:00Z", "2026-11-02T05:00:00Z"),
            // Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25.
            (chrono_tz::Europe::Berlin, "2026-03-28T22:30:00Z", "2026-03-28T23:00:00Z"),
            (chrono_tz::Europe::Berlin, "2026-03-29T10:00:00Z", "2026-03-29T22:00:00Z"),
            (chrono_tz::Europe::Berlin, "2026-10-24T21:30:00Z", "2026-10-24T22:00:00Z"),
            (chrono_tz::Europe::Berlin, "2026-10-25T10:00:00Z", "2026-10-25T23:00:00Z"),
        ] {
            usage.set_zone(Zone::Named(zone));
            assert_eq!(usage.daily_reset_after(at(now)), Some(at(reset)), "{zone} at {now}");
        }
    }

    #[test]
    fn the_lowest_remainders_are_kept_for_the_summary() {
        let usage = Usage::new(None);
        assert_eq!(usage.quota_left(), None);
        usage.observe(headers(190, 150, 10_000, Some(624_990)));
        usage.observe(headers(190, 170, 10_000, Some(624_980)));
        usage.set_portal("62515");
        let (portal, left) = usage.quota_left().unwrap();
        assert_eq!(portal, "62515");
        assert_eq!((left.daily_requests, left.window_requests), (Some(624_980), Some(150)));
    }

    #[test]
    fn responses_without_headers_change_nothing() {
        let usage = Usage::new(None);
        usage.observe(|_| None);
        for _ in 0..50 {
            assert_eq!(usage.admit(Instant::now()), Admission::Go);
        }
    }
}
