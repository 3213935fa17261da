//! Fault injection: scripted by request number, periodic, or random with the server seed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::config::CannedResponse;
use crate::error::SimError;
use crate::rng::SimRng;

/// What goes wrong with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this canned response instead of the route's (429 with or without
    /// `Retry-After`, a 5xx with a JSON body, or a throttling error in a 200/400 body).
    Respond(CannedResponse),
    /// Close the connection without answering: the client sees a transport error.
    DropConnection,
    /// Send the route's status, headers and `Content-Length`, then only half of the body, then
    /// close the connection: the client sees an error while reading the body.
    TruncatedBody,
    /// Answer the route's status with the first half of its JSON body (a consistent
    /// `Content-Length`): the transfer succeeds, the JSON does not parse.
    MalformedJson,
    /// Mark the presented access token expired and answer the expired-token response (401):
    /// a token that dies mid-run.
    ExpireToken,
    /// Wait this long on top of the configured latency, then answer normally.
    Delay(Duration),
}

impl Fault {
    /// `429 Too Many Requests`, with `Retry-After: <seconds>` when given.
    #[must_use]
    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        let response = CannedResponse::too_many_requests();
        Self::Respond(match retry_after {
            Some(seconds) => response.with_retry_after(seconds),
            None => response,
        })
    }

    /// A server error (500, 502, 503, ...) with a JSON error body.
    #[must_use]
    pub fn server_error(status: u16) -> Self {
        Self::Respond(CannedResponse::server_error(status))
    }

    /// Any status with this JSON body (e.g. a throttling error inside a 200 or 400).
    #[must_use]
    pub fn respond(status: u16, body: Value) -> Self {
        Self::Respond(CannedResponse::json(status, body))
    }
}

/// When a fault rule fires, counting the requests on the paths it covers from 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// On exactly these request numbers.
    Requests(Vec<u64>),
    /// On every `n`th request (`n`, `2n`, ...).
    Every(u64),
    /// On every request after the first `n`.
    After(u64),
    /// On each request with this probability, drawn from the server seed (deterministic for a
    /// given seed and request number).
    Probability(f64),
    /// On every request.
    Always,
}

/// A fault and when it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// When it fires.
    pub trigger: Trigger,
    /// The paths it covers: those starting with this prefix; `None` = every API path (all but
    /// the token endpoint).
    pub path_prefix: Option<String>,
    /// Only requests whose query string holds each of these texts (`level=campaign&`): a
    /// source sending several requests to one path at once may send them in any order.
    pub query_contains: Vec<String>,
    /// What happens.
    pub fault: Fault,
}

impl FaultRule {
    /// `fault` on request number `n` (1-based) of the covered paths.
    #[must_use]
    pub fn on_request(n: u64, fault: Fault) -> Self {
        Self::on_requests([n], fault)
    }

    /// `fault` on these request numbers (1-based) of the covered paths.
    #[must_use]
    pub fn on_requests(ns: impl IntoIterator<Item = u64>, fault: Fault) -> Self {
        Self {
            trigger: Trigger::Requests(ns.into_iter().collect()),
            path_prefix: None,
            query_contains: Vec::new(),
            fault,
        }
    }

    /// `fault` on every `n`th request.
    #[must_use]
    pub fn every(n: u64, fault: Fault) -> Self {
        Self { trigger: Trigger::Every(n), path_prefix: None, query_contains: Vec::new(), fault }
    }

    /// `fault` on every request after the first `n`.
    #[must_use]
    pub fn after(n: u64, fault: Fault) -> Self {
        Self { trigger: Trigger::After(n), path_prefix: None, query_contains: Vec::new(), fault }
    }

    /// `fault` with probability `p` per request, seeded.
    #[must_use]
    pub fn with_probability(p: f64, fault: Fault) -> Self {
        Self { trigger: Trigger::Probability(p), path_prefix: None, query_contains: Vec::new(), fault }
    }

    /// `fault` on every request.
    #[must_use]
    pub fn always(fault: Fault) -> Self {
        Self { trigger: Trigger::Always, path_prefix: None, query_contains: Vec::new(), fault }
    }

    /// Restricts the rule to paths starting with `prefix`.
    #[must_use]
    pub fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Limits the rule to requests whose query string contains `text` (and the texts of any
    /// earlier call).
    #[must_use]
    pub fn on_query(mut self, text: impl Into<String>) -> Self {
        self.query_contains.push(text.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        match self.trigger {
            Trigger::Probability(p) if !(0.0..=1.0).contains(&p) => {
                Err(SimError::Config(format!("fault probability {p} is not within 0..=1")))
            }
            Trigger::Every(0) => Err(SimError::Config("fault period `Every(0)` never fires".to_owned())),
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    seen: AtomicU64,
}

/// The fault rules of a running server with their request counters.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    rules: Vec<RuleState>,
    seed: u64,
    injected: AtomicU64,
}

impl FaultEngine {
    pub(crate) fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        let rules = rules.into_iter().map(|rule| RuleState { rule, seen: AtomicU64::new(0) }).collect();
        Self { rules, seed, injected: AtomicU64::new(0) }
    }

    /// Counts the request against every rule covering it; returns the first fault that fires.
    pub(crate) fn pick(&self, path: &str, query: Option<&str>, token_path: &str) -> Option<Fault> {
        let mut chosen = None;
        for (index, state) in self.rules.iter().enumerate() {
            if !crate::scope_matches(state.rule.path_prefix.as_deref(), path, token_path) {
                continue;
            }
            let query = query.unwrap_or_default();
            if !state.rule.query_contains.iter().all(|text| query.contains(text.as_str())) {
                continue;
            }
            let n = state.seen.fetch_add(1, Ordering::Relaxed) + 1;
            let fires = match &state.rule.trigger {
                Trigger::Requests(ns) => ns.contains(&n),
                Trigger::Every(k) => *k > 0 && n % k == 0,
                Trigger::After(k) => n > *k,
                Trigger::Always => true,
                Trigger::Probability(p) => {
                    SimRng::derive(self.seed, &format!("fault-{index}"), n).next_f64() < *p
                }
            };
            if fires && chosen.is_none() {
                chosen = Some(state.rule.fault.clone());
            }
        }
        if chosen.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        chosen
    }

    pub(crate) fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_rules_fire_on_their_numbers_only() {
        let engine = FaultEngine::new(
            vec![
                FaultRule::on_requests([2, 4], Fault::server_error(503)),
                FaultRule::every(3, Fault::DropConnection).on_path("/a"),
            ],
            0,
        );
        let fired: Vec<_> = (0..6).map(|_| engine.pick("/a", None, "/t")).collect();
        assert_eq!(fired[0], None);
        assert_eq!(fired[1], Some(Fault::server_error(503)));
        assert_eq!(fired[2], Some(Fault::DropConnection));
        assert_eq!(fired[3], Some(Fault::server_error(503)));
        assert_eq!(fired[4], None);
        assert_eq!(fired[5], Some(Fault::DropConnection));
        assert_eq!(engine.injected(), 4);
        // Other paths are counted separately by the path-restricted rule.
        assert_eq!(engine.pick("/b", None, "/t"), None);
        let by_query = FaultEngine::new(
            vec![FaultRule::on_request(1, Fault::server_error(500)).on_query("level=ad&").on_query("limit=")],
            1,
        );
        assert_eq!(by_query.pick("/a", Some("level=ad&x=1"), "/t"), None, "one text of two");
        assert_eq!(by_query.pick("/a", None, "/t"), None);
        assert!(by_query.pick("/a", Some("level=ad&limit=5"), "/t").is_some());
    }

    #[test]
    fn probability_is_deterministic_per_seed() {
        let run = |seed| {
            let engine =
                FaultEngine::new(vec![FaultRule::with_probability(0.3, Fault::DropConnection)], seed);
            (0..200).map(|_| engine.pick("/x", None, "/t").is_some()).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let hits = run(5).iter().filter(|h| **h).count();
        assert!((30..90).contains(&hits), "{hits} hits of 200 at p = 0.3");
    }
}
