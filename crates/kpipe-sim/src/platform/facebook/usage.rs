//! Rate-limit usage as the Graph API reports it (`shared/apis/facebook.md` §6, "Usage
//! headers"): every answer carries `X-App-Usage`, and per business object
//! `X-Business-Use-Case-Usage` (keyed by the ad account id without `act_`, or the Page id) with
//! `X-Ad-Account-Usage` or `X-Page-Usage`. Usage is the share of a rolling window's call budget;
//! a call arriving when the budget is spent is refused with `(#80000)` (ad account) or
//! `(#80001)` (Page), HTTP 400, and does not count.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::config::CannedResponse;

/// A call budget: `calls` per rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageBudget {
    /// Calls allowed in any window.
    pub calls: u64,
    /// The window.
    pub window: Duration,
}

impl UsageBudget {
    /// `calls` per `window`.
    #[must_use]
    pub const fn new(calls: u64, window: Duration) -> Self {
        Self { calls, window }
    }
}

/// What a call is about, for the business-use-case counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BusinessObject {
    /// An ad account (id without `act_`): `ads_insights` usage.
    AdAccount(String),
    /// A Page: `pages` usage.
    Page(String),
    /// Nothing known (an unknown id): app usage only.
    None,
}

/// The counters of one server.
#[derive(Debug)]
pub(crate) struct UsageTracker {
    object_budget: UsageBudget,
    app_budget: UsageBudget,
    objects: HashMap<String, VecDeque<Instant>>,
    app: VecDeque<Instant>,
}

/// The verdict on one call: the usage headers to send, and whether it was refused.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) throttled: Option<CannedResponse>,
}

fn prune(calls: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while calls.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        calls.pop_front();
    }
}

fn percent(count: usize, budget: u64) -> u64 {
    (count as u64).saturating_mul(100) / budget.max(1)
}

impl UsageTracker {
    pub(crate) fn new(object_budget: UsageBudget, app_budget: UsageBudget) -> Self {
        Self { object_budget, app_budget, objects: HashMap::new(), app: VecDeque::new() }
    }

    /// Counts a call about `object` arriving `now` (unless refused) and returns its headers.
    pub(crate) fn admit(&mut self, object: &BusinessObject, now: Instant) -> Admission {
        prune(&mut self.app, self.app_budget.window, now);
        let (id, page) = match object {
            BusinessObject::AdAccount(id) => (Some(id.as_str()), false),
            BusinessObject::Page(id) => (Some(id.as_str()), true),
            BusinessObject::None => (None, false),
        };
        let mut headers = Vec::new();
        let mut throttled = None;
        if let Some(id) = id {
            let budget = self.object_budget;
            let calls = self.objects.entry(id.to_owned()).or_default();
            prune(calls, budget.window, now);
            let full = calls.len() as u64 >= budget.calls;
            let regain = if full {
                let oldest = calls.front().copied().unwrap_or(now);
                budget.window.saturating_sub(now.saturating_duration_since(oldest))
            } else {
                calls.push_back(now);
                Duration::ZERO
            };
            let pct = percent(calls.len(), budget.calls);
            // Minutes, rounded up: a wait shorter than a minute still reads 1 while refused.
            let eta_minutes = if full { regain.as_secs().div_ceil(60).max(1) } else { 0 };
            let reset_seconds = budget.window.as_secs().max(1);
            let kind = if page { "pages" } else { "ads_insights" };
            let entry = json!({
                "type": kind,
                "call_count": pct,
                "total_cputime": pct / 3,
                "total_time": pct / 3,
                "estimated_time_to_regain_access": eta_minutes,
                "ads_api_access_tier": "standard_access",
            });
            headers.push(("X-Business-Use-Case-Usage".to_owned(), json!({ id: [entry] }).to_string()));
            if page {
                let usage = json!({"call_count": pct, "total_cputime": pct / 3, "total_time": pct / 3,
                                   "estimated_time_to_regain_access": eta_minutes});
                headers.push(("X-Page-Usage".to_owned(), usage.to_string()));
            } else {
                let util = (calls.len() as f64) * 100.0 / (budget.calls.max(1) as f64);
                let usage = json!({"acc_id_util_pct": (util * 100.0).round() / 100.0,
                                   "reset_time_duration": reset_seconds,
                                   "ads_api_access_tier": "standard_access"});
                headers.push(("X-Ad-Account-Usage".to_owned(), usage.to_string()));
            }
            if full {
                throttled = Some(if page { super::page_limit() } else { super::ad_account_limit() });
            }
        }
        if throttled.is_none() {
            self.app.push_back(now);
        }
        let app = percent(self.app.len(), self.app_budget.calls);
        let app_usage = json!({"call_count": app, "total_cputime": app / 2, "total_time": app / 2});
        headers.insert(0, ("X-App-Usage".to_owned(), app_usage.to_string()));
        Admission { headers, throttled }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn header(admission: &Admission, name: &str) -> Value {
        let text = admission.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap();
        serde_json::from_str(text).unwrap()
    }

    /// shared/apis/facebook.md §6: header shapes, minutes in `estimated_time_to_regain_access`.
    #[tokio::test]
    async fn usage_climbs_then_the_call_is_refused_until_the_window_passes() {
        let mut tracker = UsageTracker::new(
            UsageBudget::new(4, Duration::from_secs(120)),
            UsageBudget::new(100, Duration::from_secs(3600)),
        );
        let account = BusinessObject::AdAccount("101".into());
        let now = Instant::now();
        let mut last = None;
        for _ in 0..4 {
            last = Some(tracker.admit(&account, now));
        }
        let last = last.unwrap();
        assert!(last.throttled.is_none());
        assert_eq!(header(&last, "X-Business-Use-Case-Usage")["101"][0]["call_count"], 100);
        assert_eq!(header(&last, "X-Ad-Account-Usage")["acc_id_util_pct"], 100.0);
        let refused = tracker.admit(&account, now + Duration::from_secs(10));
        assert!(refused.throttled.is_some());
        let entry = &header(&refused, "X-Business-Use-Case-Usage")["101"][0];
        assert_eq!(entry["estimated_time_to_regain_access"], 2, "110 s left, in minutes rounded up");
        assert_eq!(header(&refused, "X-App-Usage")["call_count"], 4);
        let later = tracker.admit(&account, now + Duration::from_secs(121));
        assert!(later.throttled.is_none());
        let page = tracker.admit(&BusinessObject::Page("200".into()), now);
        assert_eq!(header(&page, "X-Business-Use-Case-Usage")["200"][0]["type"], "pages");
        assert_eq!(header(&page, "X-Page-Usage")["call_count"], 25);
    }
}
