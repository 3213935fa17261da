//! The part of kpipe's `--summary-json` the bench reads: rows, requests and throttling per
//! source.

use std::collections::BTreeMap;

/// A run summary (`kpipe run --summary-json`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RunSummary {
    /// Wall time of the pull, the KPI stage excluded, milliseconds.
    pub duration_ms: u64,
    /// `succeeded`, `partial`, `failed`, `skipped`.
    pub status: String,
    /// Per source.
    pub sources: Vec<SourceSummary>,
    /// For a run of one shard (`--shard K/N`): how the configuration was split.
    #[serde(default)]
    pub shard: Option<ShardSummary>,
}

/// What one shard of a sharded run held.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ShardSummary {
    /// `K/N`.
    pub shard: String,
    /// Units of work (accounts, properties, or whole sources) it pulled.
    #[serde(default)]
    pub units: u64,
    /// The part of per-application rate limits it took.
    #[serde(default)]
    pub rate_share: f64,
}

/// One source's part of a run.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SourceSummary {
    /// The configured name.
    pub name: String,
    /// The connector type.
    #[serde(rename = "type")]
    pub kind: String,
    /// How it ended.
    pub status: String,
    /// Rows written.
    pub rows_written: u64,
    /// Wall time of its pull, milliseconds.
    pub duration_ms: u64,
    /// What its requests cost.
    pub http: Option<Http>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A source's request counters.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
pub struct Http {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that waited for the rate limiter.
    #[serde(default)]
    pub throttle_waits: u64,
    /// Time spent waiting for the rate limiter, milliseconds.
    #[serde(default)]
    pub throttle_wait_ms: u64,
    /// Retries by reason.
    #[serde(default)]
    pub retries: BTreeMap<String, u64>,
}

/// One platform's sources added up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlatformTotals {
    /// Sources of this type.
    pub sources: usize,
    /// Rows written.
    pub rows: u64,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// Requests that waited for the rate limiter.
    pub throttle_waits: u64,
    /// The longest pull of a source of this type, seconds.
    pub slowest_s: f64,
    /// Sources that did not succeed, with why.
    pub failures: Vec<String>,
}

/// A summary that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the run summary: {0}")]
pub struct SummaryError(#[from] serde_json::Error);

impl RunSummary {
    /// Parses `--summary-json` output.
    pub fn parse(text: &str) -> Result<RunSummary, SummaryError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The summaries of the shards of one run as one: every shard's sources, the longest pull,
    /// and `succeeded` only when every shard succeeded.
    pub fn merge(runs: &[RunSummary]) -> RunSummary {
        let status = runs
            .iter()
            .map(|r| r.status.as_str())
            .find(|s| *s != "succeeded")
            .unwrap_or("succeeded")
            .to_owned();
        RunSummary {
            duration_ms: runs.iter().map(|r| r.duration_ms).max().unwrap_or(0),
            status,
            sources: runs.iter().flat_map(|r| r.sources.iter().cloned()).collect(),
            shard: None,
        }
    }

    /// Rows written by every source.
    pub fn rows(&self) -> u64 {
        self.sources.iter().map(|s| s.rows_written).sum()
    }

    /// Requests of every source, retries included.
    pub fn requests(&self) -> u64 {
        self.sources.iter().filter_map(|s| s.http.as_ref()).map(|h| h.requests).sum()
    }

    /// The sources of connector type `kind`, added up.
    pub fn platform(&self, kind: &str) -> PlatformTotals {
        let mut totals = PlatformTotals::default();
        for s in self.sources.iter().filter(|s| s.kind == kind) {
            totals.sources += 1;
            totals.rows += s.rows_written;
            totals.slowest_s = totals.slowest_s.max(s.duration_ms as f64 / 1000.0);
            if let Some(h) = &s.http {
                totals.requests += h.requests;
                totals.retries += h.retries.values().sum::<u64>();
                totals.throttle_waits += h.throttle_waits;
            }
            if s.status != "succeeded" {
                totals.failures.push(format!(
                    "{}: {} ({})",
                    s.name,
                    s.status,
                    s.error.as_deref().unwrap_or("")
                ));
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_adds_up_by_platform() {
        let text = r#"{"run_id": "r", "duration_ms": 1200, "status": "succeeded", "output": "/o",
          "sources": [
            {"name": "a", "type": "hubspot", "status": "succeeded", "rows_written": 10, "duration_ms": 900,
             "http": {"requests": 4, "bytes_received": 1, "throttle_waits": 1, "throttle_wait_ms": 3,
                      "token_refreshes": 1, "retries": {"throttled": 2}}, "error": null},
            {"name": "b", "type": "hubspot", "status": "failed", "rows_written": 0, "duration_ms": 1100,
             "http": null, "error": "quota"},
            {"name": "c", "type": "files", "status": "succeeded", "rows_written": 5, "duration_ms": 1}]}"#;
        let summary = RunSummary::parse(text).unwrap();
        assert_eq!((summary.rows(), summary.requests()), (15, 4));
        let hubspot = summary.platform("hubspot");
        assert_eq!((hubspot.sources, hubspot.requests, hubspot.retries, hubspot.rows), (2, 4, 2, 10));
        assert!((hubspot.slowest_s - 1.1).abs() < 1e-9);
        assert_eq!(hubspot.failures, ["b: failed (quota)"]);
        assert!(RunSummary::parse("{}").is_err());

        let mut shard = summary.clone();
        shard.status = "partial".into();
        shard.duration_ms = 1500;
        let both = RunSummary::merge(&[summary, shard]);
        assert_eq!((both.status.as_str(), both.duration_ms, both.rows()), ("partial", 1500, 30));
        let text = r#"{"duration_ms": 1, "status": "succeeded", "sources": [],
          "shard": {"shard": "3/8", "units": 12, "sources_elsewhere": ["a"], "rate_share": 0.125}}"#;
        assert_eq!(RunSummary::parse(text).unwrap().shard.unwrap().units, 12);
    }
}
