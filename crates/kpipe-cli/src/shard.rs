//! What one shard of a configuration runs (`--shard K/N`): the units of work (a source's ad
//! accounts, pages, properties; or a source as a whole) that the shard owns, picked from each
//! `[sources.<name>]` table before its connector is built, so that a connector sees only its
//! shard's accounts; and, for limits a platform counts per application, the shard's part.

use std::collections::BTreeMap;

use kpipe_core::{ConfigError, ConnectorFactory, Shard, SharedRateLimit};

/// The units of one source that a shard runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceUnits {
    /// The units this shard pulls, as the rows' `account_id` names them; empty when the source
    /// is one unit as a whole.
    pub here: Vec<String>,
    /// The units the configuration lists for the source, in all shards.
    pub total: usize,
}

impl SourceUnits {
    /// Whether the source is one unit as a whole (it lists no accounts).
    pub fn whole(&self) -> bool {
        self.total == 0
    }
}

/// How a configuration was split for this process.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ShardSplit {
    /// This process's shard (`0/1`: the whole configuration).
    #[serde(serialize_with = "as_text")]
    pub shard: Shard,
    /// Per source this shard runs, its units.
    pub units: BTreeMap<String, SourceUnits>,
    /// Sources with no unit in this shard.
    pub elsewhere: Vec<String>,
    /// The part of per-application rate limits this shard takes (`1 / N` unless
    /// `pipeline.shard_rate_share` says otherwise).
    pub rate_share: f64,
}

fn as_text<S: serde::Serializer>(shard: &Shard, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&shard.to_string())
}

/// Keeps in `table` (the source `name`'s, without the common keys) the units that `shard` owns;
/// `None` when it owns none, and the source is not run by this shard. With more than one shard,
/// a per-application rate limit is replaced by `share` of it.
pub(crate) fn select(
    name: &str,
    factory: &ConnectorFactory,
    table: &mut toml::Table,
    shard: Shard,
    share: f64,
) -> Result<Option<SourceUnits>, ConfigError> {
    let mut units = SourceUnits::default();
    for unit_key in factory.unit_keys {
        let Some(toml::Value::Array(items)) = table.get_mut(unit_key.key) else { continue };
        items.retain(|item| {
            // Anything but a string is kept for the connector to reject with its own message.
            let toml::Value::String(text) = item else { return true };
            units.total += 1;
            let label = (unit_key.label)(text);
            let owned = shard.owns(name, &label);
            if owned {
                units.here.push(label);
            }
            owned
        });
    }
    let owned = if units.whole() { shard.owns(name, "") } else { !units.here.is_empty() };
    if !owned {
        return Ok(None);
    }
    if let Some(limit) = factory.shared_rate_limit.filter(|_| !shard.is_all()) {
        let shared = shared_limit(table.get(limit.key), limit, share)?;
        table.insert(limit.key.to_owned(), toml::Value::Table(shared));
    }
    Ok(Some(units))
}

/// `share` of a rate limit. kpipe's pacing never lets more than `requests` through in any
/// window of `per_seconds`; the shards' limits add up to at most the platform's only if each
/// keeps that window and takes its part of the requests in it: `floor(requests * share)` per
/// the same period (rounded down, since N rounded-up parts would exceed the whole), or, when
/// that is less than one, one request per period stretched by `1 / (requests * share)`. The
/// burst is the shard's part too, at least 1 and at most its requests.
fn shared_limit(
    given: Option<&toml::Value>,
    default: SharedRateLimit,
    share: f64,
) -> Result<toml::Table, ConfigError> {
    let (mut requests, mut per_seconds, mut burst) =
        (i64::from(default.requests), default.per_seconds, i64::from(default.burst));
    if let Some(value) = given {
        let bad = |what: &str| {
            ConfigError::new(
                default.key,
                format!("{what}; expected a table such as {{ requests = 100, per_seconds = 60, burst = 1 }}"),
            )
        };
        let toml::Value::Table(t) = value else { return Err(bad("is not a table")) };
        if let Some(v) = t.get("requests") {
            requests = v
                .as_integer()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("`requests` is not a positive whole number"))?;
        }
        if let Some(v) = t.get("per_seconds") {
            per_seconds = v
                .as_float()
                .or_else(|| v.as_integer().map(|n| n as f64))
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| bad("`per_seconds` is not a positive number"))?;
        }
        if let Some(v) = t.get("burst") {
            burst = v
                .as_integer()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("`burst` is not a positive whole number"))?;
        }
    }
    let part = requests as f64 * share;
    let (requests, per_seconds) =
        if part >= 1.0 { (part.floor() as i64, per_seconds) } else { (1, per_seconds / part) };
    let burst = ((burst as f64 * share).floor() as i64).clamp(1, requests);
    let mut out = toml::Table::new();
    out.insert("requests".into(), toml::Value::Integer(requests));
    out.insert("per_seconds".into(), toml::Value::Float(per_seconds));
    out.insert("burst".into(), toml::Value::Integer(burst));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linkedin() -> ConnectorFactory {
        crate::registry::find("linkedin").unwrap()
    }

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn each_account_goes_to_one_shard() {
        let ids: Vec<String> = (0..40).map(|i| format!("\"{}\"", 508_000_000 + i)).collect();
        let text = format!("account_ids = [{}]\naccess_token = \"t\"", ids.join(", "));
        let mut seen = Vec::new();
        for k in 0..4 {
            let mut t = table(&text);
            let shard = Shard::new(k, 4).unwrap();
            if let Some(units) = select("li", &linkedin(), &mut t, shard, 0.25).unwrap() {
                assert_eq!(units.total, 40);
                assert_eq!(t["account_ids"].as_array().unwrap().len(), units.here.len());
                seen.extend(units.here);
            }
        }
        seen.sort();
        let want: Vec<String> = (0..40).map(|i| (508_000_000 + i).to_string()).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn urns_are_owned_by_their_id() {
        let shard = Shard::new(1, 3).unwrap();
        let mut by_urn = table("account_ids = [\"urn:li:sponsoredAccount:508000007\"]");
        let mut by_id = table("account_ids = [\"508000007\"]");
        let a = select("li", &linkedin(), &mut by_urn, shard, 0.5).unwrap();
        let b = select("li", &linkedin(), &mut by_id, shard, 0.5).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn per_application_limits_are_shared() {
        let shard = Shard::new(0, 4).unwrap();
        let ids: Vec<String> = (0..64).map(|i| format!("\"{}\"", 508_000_000 + i)).collect();
        let mut t = table(&format!(
            "account_ids = [{}]\nrate_limit = {{ requests = 100, per_seconds = 60, burst = 8 }}",
            ids.join(", ")
        ));
        select("li", &linkedin(), &mut t, shard, 0.25).unwrap().unwrap();
        let limit = t["rate_limit"].as_table().unwrap();
        assert_eq!(limit["requests"].as_integer(), Some(25));
        assert_eq!(limit["per_seconds"].as_float(), Some(60.0));
        assert_eq!(limit["burst"].as_integer(), Some(2));
        // Four shards of 10 requests a second: 2 each (not 2.5: four would make 10 + 2).
        let li = SharedRateLimit { key: "rate_limit", requests: 10, per_seconds: 1.0, burst: 1 };
        let limit = shared_limit(None, li, 0.25).unwrap();
        assert_eq!((limit["requests"].as_integer(), limit["per_seconds"].as_float()), (Some(2), Some(1.0)));
        // Less than one request a period each: one request per longer period.
        let given = table("requests = 2\nper_seconds = 1");
        let limit = shared_limit(Some(&toml::Value::Table(given)), li, 0.25).unwrap();
        assert_eq!((limit["requests"].as_integer(), limit["per_seconds"].as_float()), (Some(1), Some(2.0)));
        // One shard: the limit stays as written.
        let mut whole = table("account_ids = [\"1\"]");
        select("li", &linkedin(), &mut whole, Shard::ALL, 1.0).unwrap().unwrap();
        assert!(!whole.contains_key("rate_limit"));
    }

    #[test]
    fn a_source_without_accounts_is_one_unit() {
        let files = crate::registry::find("files").unwrap();
        let owners: Vec<u32> = (0..5)
            .filter(|k| {
                let mut t = table("paths = [\"a.csv\"]");
                select("sheet", &files, &mut t, Shard::new(*k, 5).unwrap(), 0.2).unwrap().is_some()
            })
            .collect();
        assert_eq!(owners.len(), 1);
    }
}
