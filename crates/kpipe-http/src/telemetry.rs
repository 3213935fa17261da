//! Per-source counters of what the HTTP runtime did, for the run summary.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by every request of one source.
#[derive(Debug, Default)]
pub struct Telemetry {
    requests: AtomicU64,
    bytes_received: AtomicU64,
    throttle_waits: AtomicU64,
    throttle_wait_micros: AtomicU64,
    retries: Mutex<BTreeMap<&'static str, u64>>,
}

/// A copy of the counters: the figures the run summary reports per source.
pub type TelemetrySnapshot = kpipe_core::RequestTelemetry;

impl Telemetry {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self, waited: Duration) {
        if !waited.is_zero() {
            self.throttle_waits.fetch_add(1, Ordering::Relaxed);
            self.throttle_wait_micros.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn retry(&self, reason: &'static str) {
        if let Ok(mut r) = self.retries.lock() {
            *r.entry(reason).or_default() += 1;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> TelemetrySnapshot {
        TelemetrySnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            throttle_waits: self.throttle_waits.load(Ordering::Relaxed),
            throttle_wait_ms: self.throttle_wait_micros.load(Ordering::Relaxed) / 1000,
            token_refreshes: 0,
            retries: self
                .retries
                .lock()
                .map(|r| r.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
                .unwrap_or_default(),
        }
    }
}
