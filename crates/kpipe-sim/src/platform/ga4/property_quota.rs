//! Analytics property quotas (notes §6): tokens per property per day and per hour, tokens per
//! project per property per hour, and concurrent requests per property, enforced per property
//! and reported as `propertyQuota` (notes §3). The counters are what tests read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// The limits of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyQuotaLimits {
    /// Tokens per property per day (never reset while the server runs).
    pub tokens_per_day: u64,
    /// Tokens per property per hour.
    pub tokens_per_hour: u64,
    /// Tokens per project per property per hour (the simulator is one project).
    pub tokens_per_project_per_hour: u64,
    /// Requests of one property in flight at once.
    pub concurrent_requests: u64,
    /// Reported only: server errors per project per property per hour.
    pub server_errors_per_project_per_hour: u64,
    /// Reported only: potentially thresholded requests per hour.
    pub potentially_thresholded_requests_per_hour: u64,
}

impl PropertyQuotaLimits {
    /// A standard property's limits (notes §6).
    pub const STANDARD: Self = Self {
        tokens_per_day: 200_000,
        tokens_per_hour: 40_000,
        tokens_per_project_per_hour: 14_000,
        concurrent_requests: 10,
        server_errors_per_project_per_hour: 10,
        potentially_thresholded_requests_per_hour: 120,
    };

    /// An Analytics 360 property's limits (notes §6).
    pub const ANALYTICS_360: Self = Self {
        tokens_per_day: 2_000_000,
        tokens_per_hour: 400_000,
        tokens_per_project_per_hour: 140_000,
        concurrent_requests: 50,
        server_errors_per_project_per_hour: 50,
        potentially_thresholded_requests_per_hour: 120,
    };
}

impl Default for PropertyQuotaLimits {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// Which property quota refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaRefusal {
    /// Too many requests of the property in flight.
    Concurrent,
    /// The property's hourly tokens are used up.
    Hourly,
    /// This project's hourly tokens for the property are used up.
    ProjectHourly,
    /// The property's daily tokens are used up.
    Daily,
}

#[derive(Debug, Default)]
struct PropertyState {
    in_flight: u64,
    max_in_flight: u64,
    requests: u64,
    day_consumed: u64,
    hour_index: u128,
    hour_consumed: u64,
    refused: HashMap<QuotaRefusal, u64>,
}

/// The quota state of every property and what tests observe. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Ga4Monitor {
    inner: Arc<MonitorInner>,
}

#[derive(Debug, Default)]
struct MonitorInner {
    properties: Mutex<HashMap<String, PropertyState>>,
    started: Mutex<Option<Instant>>,
}

/// A request of a property in flight; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct InFlight {
    monitor: Ga4Monitor,
    property: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut properties = self.monitor.lock();
        if let Some(state) = properties.get_mut(&self.property) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// What one request consumed and what remains, for `propertyQuota`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuotaSnapshot {
    consumed: u64,
    day_remaining: u64,
    hour_remaining: u64,
    project_hour_remaining: u64,
    concurrent_remaining: u64,
    limits: PropertyQuotaLimits,
}

impl QuotaSnapshot {
    /// The `propertyQuota` object. Zero counters are left out, as proto3 JSON does (notes §3).
    pub(crate) fn to_json(self) -> Value {
        let status = |consumed: u64, remaining: u64| {
            let mut s = serde_json::Map::new();
            if consumed > 0 {
                s.insert("consumed".into(), json!(consumed));
            }
            if remaining > 0 {
                s.insert("remaining".into(), json!(remaining));
            }
            Value::Object(s)
        };
        json!({
            "tokensPerDay": status(self.consumed, self.day_remaining),
            "tokensPerHour": status(self.consumed, self.hour_remaining),
            "concurrentRequests": status(0, self.concurrent_remaining),
            "serverErrorsPerProjectPerHour": status(0, self.limits.server_errors_per_project_per_hour),
            "potentiallyThresholdedRequestsPerHour":
                status(0, self.limits.potentially_thresholded_requests_per_hour),
            "tokensPerProjectPerHour": status(self.consumed, self.project_hour_remaining),
        })
    }
}

impl Ga4Monitor {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, PropertyState>> {
        self.inner.properties.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the hour windows (when the server starts).
    pub(crate) fn start(&self) {
        let mut started = self.inner.started.lock().unwrap_or_else(PoisonError::into_inner);
        started.get_or_insert_with(Instant::now);
    }

    fn hour_index(&self, hour: Duration) -> u128 {
        let started = *self.inner.started.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
        elapsed.as_nanos() / hour.as_nanos().max(1)
    }

    /// Admits a request of `property` unless as many are in flight as the limit allows.
    pub(crate) fn enter(
        &self,
        property: &str,
        limits: &PropertyQuotaLimits,
    ) -> Result<InFlight, QuotaRefusal> {
        let mut properties = self.lock();
        let state = properties.entry(property.to_owned()).or_default();
        state.requests += 1;
        if state.in_flight >= limits.concurrent_requests {
            *state.refused.entry(QuotaRefusal::Concurrent).or_default() += 1;
            return Err(QuotaRefusal::Concurrent);
        }
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        Ok(InFlight { monitor: self.clone(), property: property.to_owned() })
    }

    /// Refuses a request when one of the property's token quotas is used up.
    pub(crate) fn check_tokens(
        &self,
        property: &str,
        limits: &PropertyQuotaLimits,
        hour: Duration,
    ) -> Result<(), QuotaRefusal> {
        let index = self.hour_index(hour);
        let mut properties = self.lock();
        let state = properties.entry(property.to_owned()).or_default();
        if state.hour_index != index {
            state.hour_index = index;
            state.hour_consumed = 0;
        }
        let refusal = if state.day_consumed >= limits.tokens_per_day {
            Some(QuotaRefusal::Daily)
        } else if state.hour_consumed >= limits.tokens_per_hour {
            Some(QuotaRefusal::Hourly)
        } else if state.hour_consumed >= limits.tokens_per_project_per_hour {
            Some(QuotaRefusal::ProjectHourly)
        } else {
            None
        };
        match refusal {
            Some(r) => {
                *state.refused.entry(r).or_default() += 1;
                Err(r)
            }
            None => Ok(()),
        }
    }

    /// Charges `cost` tokens to `property` and says what remains. The request holding a slot
    /// is about to end, so it does not count against the concurrent requests remaining.
    pub(crate) fn consume(&self, property: &str, limits: &PropertyQuotaLimits, cost: u64) -> QuotaSnapshot {
        let mut properties = self.lock();
        let state = properties.entry(property.to_owned()).or_default();
        state.day_consumed += cost;
        state.hour_consumed += cost;
        QuotaSnapshot {
            consumed: cost,
            day_remaining: limits.tokens_per_day.saturating_sub(state.day_consumed),
            hour_remaining: limits.tokens_per_hour.saturating_sub(state.hour_consumed),
            project_hour_remaining: limits.tokens_per_project_per_hour.saturating_sub(state.hour_consumed),
            concurrent_remaining: limits
                .concurrent_requests
                .saturating_sub(state.in_flight.saturating_sub(1)),
            limits: *limits,
        }
    }

    /// The most requests of `property` that were in flight at once.
    #[must_use]
    pub fn max_in_flight(&self, property: &str) -> u64 {
        self.lock().get(property).map_or(0, |s| s.max_in_flight)
    }

    /// Report requests `property` received (refused ones included).
    #[must_use]
    pub fn requests(&self, property: &str) -> u64 {
        self.lock().get(property).map_or(0, |s| s.requests)
    }

    /// Requests of `property` refused by `quota`.
    #[must_use]
    pub fn refused(&self, property: &str, quota: QuotaRefusal) -> u64 {
        self.lock().get(property).and_then(|s| s.refused.get(&quota).copied()).unwrap_or(0)
    }

    /// Requests of every property refused by any property quota.
    #[must_use]
    pub fn refused_total(&self) -> u64 {
        self.lock().values().flat_map(|s| s.refused.values()).sum()
    }

    /// Tokens `property` has consumed since the server started.
    #[must_use]
    pub fn tokens_consumed(&self, property: &str) -> u64 {
        self.lock().get(property).map_or(0, |s| s.day_consumed)
    }
}
