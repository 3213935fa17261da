//! What a platform's quotas allow: what its answers say is left ([`QuotaLeft`]), and what a run
//! would cost before it is started ([`RequestEstimate`]).

use std::fmt;
use std::time::Duration;

/// What a platform says is left of its quotas for one account (a portal, an ad account, a
/// property), as its answers report it: the lowest seen during the run, that is how tight it
/// got. Fields the platform does not report stay `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QuotaLeft {
    /// Requests left of the day's allowance (HubSpot's `X-HubSpot-RateLimit-Daily-Remaining`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_requests: Option<u64>,
    /// The day's allowance (HubSpot's `X-HubSpot-RateLimit-Daily`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_requests_limit: Option<u64>,
    /// Requests left in the platform's short rolling window (HubSpot's
    /// `X-HubSpot-RateLimit-Remaining`, per 10 seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_requests: Option<u64>,
    /// The highest share of a usage budget in use, in percent (Meta's `X-App-Usage`,
    /// `X-Ad-Account-Usage`, `X-Page-Usage` and `X-Business-Use-Case-Usage`: the largest of call
    /// count, CPU time and total time). Throttling starts at 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<f64>,
    /// Tokens left of the day (GA4's `propertyQuota.tokensPerDay.remaining`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    /// Tokens left of the hour (GA4's `tokensPerHour`, or `tokensPerProjectPerHour` when lower).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_tokens: Option<u64>,
}

fn lower(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl QuotaLeft {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == QuotaLeft::default()
    }

    /// Keeps the tighter of what is known and `other`: the lower remainders, the higher usage.
    pub fn keep_lowest(&mut self, other: &QuotaLeft) {
        self.daily_requests = lower(self.daily_requests, other.daily_requests);
        self.daily_requests_limit = self.daily_requests_limit.max(other.daily_requests_limit);
        self.window_requests = lower(self.window_requests, other.window_requests);
        self.used_percent = match (self.used_percent, other.used_percent) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self.daily_tokens = lower(self.daily_tokens, other.daily_tokens);
        self.hourly_tokens = lower(self.hourly_tokens, other.hourly_tokens);
    }
}

impl fmt::Display for QuotaLeft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match (self.daily_requests, self.daily_requests_limit) {
            (Some(left), Some(limit)) => parts.push(format!("{left} of {limit} requests left today")),
            (Some(left), None) => parts.push(format!("{left} requests left today")),
            _ => {}
        }
        if let Some(left) = self.window_requests {
            parts.push(format!("{left} requests left in the rolling window"));
        }
        if let Some(pct) = self.used_percent {
            parts.push(format!("{pct:.0} % of the usage budget used"));
        }
        if let Some(left) = self.daily_tokens {
            parts.push(format!("{left} tokens left today"));
        }
        if let Some(left) = self.hourly_tokens {
            parts.push(format!("{left} tokens left this hour"));
        }
        if parts.is_empty() { f.write_str("unknown") } else { f.write_str(&parts.join(", ")) }
    }
}

/// The pace a source keeps: `requests` per `per_ms` milliseconds, at most `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pace {
    /// Requests per period.
    pub requests: u32,
    /// The period, in milliseconds.
    pub per_ms: u64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl Pace {
    /// `requests` per `per`, `burst` at once.
    pub fn new(requests: u32, per: Duration, burst: u32) -> Pace {
        Pace { requests, per_ms: u64::try_from(per.as_millis()).unwrap_or(u64::MAX), burst }
    }

    /// The least time `requests` requests take at this pace: the burst goes at once, the rest
    /// one per interval (the period shared by the requests beyond the burst, as the HTTP
    /// runtime's limiter spreads them).
    pub fn least_time(&self, requests: u64) -> Duration {
        let burst = u64::from(self.burst.clamp(1, self.requests.max(1)));
        let spread = u64::from(self.requests).saturating_sub(burst).max(1);
        let interval_ms = self.per_ms as f64 / spread as f64;
        Duration::from_secs_f64(requests.saturating_sub(burst) as f64 * interval_ms / 1000.0)
    }
}

/// A daily quota and what a run would take of it, in the quota's own unit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuotaCost {
    /// The allowance per day.
    pub limit: u64,
    /// What it counts: `requests` or `tokens`.
    pub unit: &'static str,
    /// What it is per (`portal`, `property`); the cost is that of the busiest one.
    pub per: &'static str,
    /// The least the run takes of it.
    pub min: u64,
    /// The most; `None` when it depends on data of unknown size.
    pub max: Option<u64>,
}

impl QuotaCost {
    /// The share of the allowance the run takes at least and at most, in percent.
    pub fn share_percent(&self) -> (f64, Option<f64>) {
        let pct = |n: u64| if self.limit == 0 { 100.0 } else { n as f64 * 100.0 / self.limit as f64 };
        (pct(self.min), self.max.map(pct))
    }
}

/// What a pull of some windows would cost the platform, worked out from the configuration and
/// the connector's own paging logic without calling any API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestEstimate {
    /// Requests at least: every listing fits one page, nothing is split or retried.
    pub min_requests: u64,
    /// Requests at most, without retries; `None` when a listing pages through data whose size
    /// only the platform knows (campaigns, forms, records).
    pub max_requests: Option<u64>,
    /// The pace the source keeps (its `rate_limit`, or the platform's published one).
    pub pace: Option<Pace>,
    /// The platform's daily quota the requests count against, where it has one.
    pub daily_quota: Option<QuotaCost>,
    /// What the figures assume or leave out, for people.
    pub notes: Vec<String>,
}

impl RequestEstimate {
    /// `n` requests exactly.
    pub fn exactly(n: u64) -> RequestEstimate {
        RequestEstimate {
            min_requests: n,
            max_requests: Some(n),
            pace: None,
            daily_quota: None,
            notes: Vec::new(),
        }
    }

    /// Adds `min..=max` requests (`max` `None`: without a known bound).
    pub fn add(&mut self, min: u64, max: Option<u64>) {
        self.min_requests = self.min_requests.saturating_add(min);
        self.max_requests = match (self.max_requests, max) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
    }

    /// The same estimate with `note` added.
    pub fn note(mut self, note: impl Into<String>) -> RequestEstimate {
        self.notes.push(note.into());
        self
    }

    /// The least wall time at the source's pace, when it has one.
    pub fn least_time(&self) -> Option<Duration> {
        self.pace.map(|p| p.least_time(self.min_requests))
    }

    /// Whether `requests` lies in the announced range.
    pub fn covers(&self, requests: u64) -> bool {
        requests >= self.min_requests && self.max_requests.is_none_or(|max| requests <= max)
    }
}

impl fmt::Display for RequestEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max_requests {
            Some(max) if max == self.min_requests => write!(f, "{max} request(s)"),
            Some(max) => write!(f, "{}..{max} request(s)", self.min_requests),
            None => write!(f, "{} or more request(s)", self.min_requests),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_figures_are_kept() {
        let mut left =
            QuotaLeft { daily_requests: Some(900), used_percent: Some(12.0), ..QuotaLeft::default() };
        left.keep_lowest(&QuotaLeft {
            daily_requests: Some(950),
            used_percent: Some(30.5),
            daily_tokens: Some(7),
            ..QuotaLeft::default()
        });
        assert_eq!(left.daily_requests, Some(900));
        assert_eq!(left.used_percent, Some(30.5));
        assert_eq!(left.daily_tokens, Some(7));
        assert_eq!(
            left.to_string(),
            "900 requests left today, 30 % of the usage budget used, 7 tokens left today"
        );
        assert_eq!(QuotaLeft::default().to_string(), "unknown");
        assert!(QuotaLeft::default().is_empty() && !left.is_empty());
    }

    #[test]
    fn least_time_spreads_what_exceeds_the_burst() {
        // 10 per second, 5 at once: the other 5 of a second are one every 200 ms.
        let pace = Pace::new(10, Duration::from_secs(1), 5);
        assert_eq!(pace.least_time(5), Duration::ZERO);
        assert_eq!(pace.least_time(15), Duration::from_secs(2));
        let mut estimate = RequestEstimate::exactly(3);
        estimate.add(2, None);
        assert_eq!((estimate.min_requests, estimate.max_requests), (5, None));
        assert!(estimate.covers(5) && estimate.covers(500) && !estimate.covers(4));
        assert_eq!(estimate.to_string(), "5 or more request(s)");
        assert_eq!(RequestEstimate::exactly(4).to_string(), "4 request(s)");
        let cost = QuotaCost { limit: 200, unit: "tokens", per: "property", min: 2, max: Some(20) };
        assert_eq!(cost.share_percent(), (1.0, Some(10.0)));
    }
}
