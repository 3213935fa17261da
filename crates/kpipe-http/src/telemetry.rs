//! Per-source counters of what the HTTP runtime did, for the run summary: in total, per stream
//! (for requests a connector labelled with [`ApiRequest::stream`](crate::ApiRequest::stream)),
//! and what the platform said is left of its quotas per account.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kpipe_core::{QuotaLeft, StreamRequests};

/// Counters shared by every request of one source.
#[derive(Debug, Default)]
pub struct Telemetry {
    requests: AtomicU64,
    bytes_received: AtomicU64,
    throttle_waits: AtomicU64,
    throttle_wait_micros: AtomicU64,
    retries: Mutex<BTreeMap<&'static str, u64>>,
    streams: Mutex<BTreeMap<String, StreamRequests>>,
    quota_left: Mutex<BTreeMap<String, QuotaLeft>>,
}

/// A copy of the counters: the figures the run summary reports per source.
pub type TelemetrySnapshot = kpipe_core::RequestTelemetry;

/// A lock whose holder panicked still holds valid counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Telemetry {
    fn stream(&self, stream: Option<&str>, count: impl FnOnce(&mut StreamRequests)) {
        if let Some(name) = stream {
            let mut streams = lock(&self.streams);
            match streams.get_mut(name) {
                Some(counts) => count(counts),
                None => count(streams.entry(name.to_owned()).or_default()),
            }
        }
    }

    pub(crate) fn request(&self, stream: Option<&str>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.stream(stream, |s| s.requests += 1);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self, stream: Option<&str>, waited: Duration) {
        if !waited.is_zero() {
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.throttle_waits.fetch_add(1, Ordering::Relaxed);
            self.throttle_wait_micros.fetch_add(micros, Ordering::Relaxed);
            self.stream(stream, |s| {
                s.throttle_waits += 1;
                s.throttle_wait_ms += micros / 1000;
            });
        }
    }

    pub(crate) fn retry(&self, stream: Option<&str>, reason: &'static str) {
        *lock(&self.retries).entry(reason).or_default() += 1;
        self.stream(stream, |s| *s.retries.entry(reason.to_owned()).or_default() += 1);
    }

    /// Records what the platform said is left of `account`'s quotas; the lowest figures seen
    /// are kept.
    pub fn quota(&self, account: &str, left: &QuotaLeft) {
        if left.is_empty() {
            return;
        }
        lock(&self.quota_left).entry(account.to_owned()).or_default().keep_lowest(left);
    }

    /// The counters now.
    pub fn snapshot(&self) -> TelemetrySnapshot {
        TelemetrySnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            throttle_waits: self.throttle_waits.load(Ordering::Relaxed),
            throttle_wait_ms: self.throttle_wait_micros.load(Ordering::Relaxed) / 1000,
            token_refreshes: 0,
            retries: lock(&self.retries).iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            streams: lock(&self.streams).clone(),
            quota_left: lock(&self.quota_left).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_requests_are_counted_per_stream_as_well() {
        let t = Telemetry::default();
        t.request(Some("ads"));
        t.request(Some("ads"));
        t.request(None);
        t.retry(Some("ads"), "throttled");
        t.throttled(Some("pages"), Duration::from_millis(1500));
        t.quota("act_1", &QuotaLeft { used_percent: Some(20.0), ..QuotaLeft::default() });
        t.quota("act_1", &QuotaLeft { used_percent: Some(35.0), ..QuotaLeft::default() });
        t.quota("act_2", &QuotaLeft::default());
        let s = t.snapshot();
        assert_eq!((s.requests, s.throttle_waits, s.retries["throttled"]), (3, 1, 1));
        assert_eq!(s.streams["ads"].requests, 2);
        assert_eq!(s.streams["ads"].retries["throttled"], 1);
        assert_eq!((s.streams["pages"].requests, s.streams["pages"].throttle_wait_ms), (0, 1500));
        assert_eq!(s.quota_left["act_1"].used_percent, Some(35.0));
        assert!(!s.quota_left.contains_key("act_2"), "nothing known is nothing recorded");
    }
}
