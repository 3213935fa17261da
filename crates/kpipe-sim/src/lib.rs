//! `kpipe-sim`: an in-process HTTP simulator of the platform APIs kpipe pulls from, for tests
//! and benchmarks.
//!
//! [`SimServer::start`] binds `127.0.0.1:<random port>` on the current tokio runtime and serves:
//!
//! - an OAuth2 token endpoint (`POST /oauth/token`: `refresh_token`, `client_credentials` and
//!   RS256 JWT-bearer grants) whose tokens API routes can require ([`AuthConfig`]);
//! - generic paginated test routes under `/test/` ([`TestRoutesConfig`]);
//! - the routes of each mounted [`Platform`] module.
//!
//! Every API response can be delayed ([`Latency`]), limited by quotas ([`QuotaRule`]) and
//! replaced by injected faults ([`FaultRule`]): 429s, 5xx, dropped connections, truncated or
//! malformed bodies, expired tokens, throttling errors in a 200/400 body. All generated data
//! comes from a seeded [`SimRng`]: the same seed gives the same responses.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kpipe_sim::SimError> {
//! use std::time::Duration;
//! use kpipe_sim::{Fault, FaultRule, Latency, QuotaRule, SimConfig, SimServer};
//!
//! let sim = SimServer::start(
//!     SimConfig::new(42)
//!         .with_latency(Latency::uniform_ms(5, 20))
//!         .with_quota(QuotaRule::fixed_window(10, Duration::from_secs(1)))
//!         .with_fault(FaultRule::on_request(3, Fault::server_error(503))),
//! )
//! .await?;
//! let url = sim.url("/test/items?page_size=10");
//! // ... point the client under test at `url` ...
//! assert_eq!(sim.requests_over_quota(), 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod auth;
mod config;
mod conn;
mod error;
mod fault;
pub mod platform;
mod quota;
mod rng;
mod server;

pub use auth::JWT_BEARER_GRANT;
pub use config::{
    AuthConfig, CannedResponse, JwtBearerConfig, Latency, OAuthClient, RefreshRotation, SimConfig,
};
pub use error::SimError;
pub use fault::{Fault, FaultRule, Trigger};
pub use platform::test_routes::TestRoutesConfig;
pub use platform::{Platform, PlatformContext};
pub use quota::{QuotaKey, QuotaPeriod, QuotaRule, RetryAfter};
pub use rng::{SimRng, hash_label, mix64};
pub use server::{RecordedRequest, SimServer};

/// Whether a rule restricted to `prefix` (or unrestricted, `None`) covers `path`. Unrestricted
/// rules cover every path but the token endpoint's.
pub(crate) fn scope_matches(prefix: Option<&str>, path: &str, token_path: &str) -> bool {
    match prefix {
        Some(prefix) => path.starts_with(prefix),
        None => path != token_path,
    }
}

/// Decodes an `application/x-www-form-urlencoded` query string into pairs, in order.
#[must_use]
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes pairs as a query string (without the leading `?`).
#[must_use]
pub fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = encode_query([("a b", "c&d=e"), ("urn", "urn:li:x"), ("empty", "")]);
        assert_eq!(q, "a%20b=c%26d%3De&urn=urn%3Ali%3Ax&empty=");
        assert_eq!(
            query_pairs(&q),
            vec![
                ("a b".to_owned(), "c&d=e".to_owned()),
                ("urn".to_owned(), "urn:li:x".to_owned()),
                ("empty".to_owned(), String::new())
            ]
        );
        assert_eq!(
            query_pairs("x=1+2&y=%zz&z=%4"),
            vec![
                ("x".to_owned(), "1 2".to_owned()),
                ("y".to_owned(), "%zz".to_owned()),
                ("z".to_owned(), "%4".to_owned())
            ]
        );
    }

    #[test]
    fn unrestricted_rules_skip_the_token_endpoint() {
        assert!(scope_matches(None, "/test/items", "/oauth/token"));
        assert!(!scope_matches(None, "/oauth/token", "/oauth/token"));
        assert!(scope_matches(Some("/oauth"), "/oauth/token", "/oauth/token"));
        assert!(!scope_matches(Some("/rest"), "/test/items", "/oauth/token"));
    }
}
