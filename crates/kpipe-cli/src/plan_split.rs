//! `kpipe plan --shards N`: how N shards would split a configuration, from the configuration
//! and the ledgers alone: per shard its sources and units, the requests it would send and the
//! least time they take at the (shared) pace, and the units too large for an even split.

use std::fmt::Write as _;

use kpipe_core::Shard;

use crate::config::Config;
use crate::plan::{RunPlan, plan};
use crate::runner::{RunError, RunOptions};

/// One shard's part.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardPlan {
    /// `K/N`.
    pub shard: String,
    /// Sources with units in this shard.
    pub sources: usize,
    /// Units: accounts, pages, properties, or sources as a whole.
    pub units: usize,
    /// Requests at least.
    pub min_requests: u64,
    /// Requests at most; `None` when a listing's size only the platform knows.
    pub max_requests: Option<u64>,
    /// The least time its requests take at its pace, in seconds: its sources run at once, so
    /// the slowest source's.
    pub least_seconds: f64,
}

/// A unit whose requests alone exceed an even shard's share.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LargeUnit {
    /// Its source.
    pub source: String,
    /// The account, page or property (empty for a source that is one unit).
    pub unit: String,
    /// Its requests at least.
    pub min_requests: u64,
}

/// The split of a configuration into N shards.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitPlan {
    /// Per shard, in order.
    pub shards: Vec<ShardPlan>,
    /// Requests of the whole configuration, at least.
    pub min_requests: u64,
    /// Units larger than `min_requests / N`: the shard holding one cannot finish before it.
    pub large_units: Vec<LargeUnit>,
    /// The part of per-application rate limits each shard takes.
    pub rate_share: f64,
}

/// The split of the configuration that `load` reads for a shard into `count` shards.
pub fn split<E: std::fmt::Display>(
    load: impl Fn(Shard) -> Result<Config, E>,
    count: u32,
    options: &RunOptions,
) -> Result<SplitPlan, String> {
    let whole = load(Shard::ALL).map_err(|e| e.to_string())?;
    let whole_plan = plan(&whole, options).map_err(|e| e.to_string())?;
    let mut shards = Vec::new();
    let mut rate_share = 1.0;
    for index in 0..count {
        let shard = Shard::new(index, count).map_err(|e| e.to_string())?;
        let config = load(shard).map_err(|e| e.to_string())?;
        rate_share = config.pipeline.split.rate_share;
        let shard_plan = plan(&config, options).map_err(|e: RunError| e.to_string())?;
        shards.push(summarize(shard, &config, &shard_plan));
    }
    let min_requests = total(&whole_plan).0;
    let even = min_requests / u64::from(count.max(1));
    let mut large_units = Vec::new();
    for source in &whole_plan.sources {
        let Some(estimate) = &source.estimate else { continue };
        let units = whole.pipeline.split.units.get(&source.name).cloned().unwrap_or_default();
        // Estimates grow with the number of accounts: each is taken to cost the same.
        let per_unit = estimate.min_requests / (units.here.len().max(1) as u64);
        if count > 1 && per_unit > even {
            let names = if units.whole() { vec![String::new()] } else { units.here.clone() };
            large_units.extend(names.into_iter().map(|unit| LargeUnit {
                source: source.name.clone(),
                unit,
                min_requests: per_unit,
            }));
        }
    }
    Ok(SplitPlan { shards, min_requests, large_units, rate_share })
}

fn total(plan: &RunPlan) -> (u64, Option<u64>, f64) {
    let mut min = 0u64;
    let mut max = Some(0u64);
    let mut seconds = 0f64;
    for s in &plan.sources {
        if let Some(e) = &s.estimate {
            min += e.min_requests;
            max = max.zip(e.max_requests).map(|(a, b)| a + b);
        }
        seconds = seconds.max(s.least_seconds.unwrap_or(0.0));
    }
    (min, max, seconds)
}

fn summarize(shard: Shard, config: &Config, plan: &RunPlan) -> ShardPlan {
    let (min_requests, max_requests, least_seconds) = total(plan);
    let split = &config.pipeline.split;
    ShardPlan {
        shard: shard.to_string(),
        sources: split.units.len(),
        units: split.units.values().map(|u| if u.whole() { 1 } else { u.here.len() }).sum(),
        min_requests,
        max_requests,
        least_seconds,
    }
}

impl SplitPlan {
    /// A table for a terminal, then the warnings.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let count = self.shards.len();
        let _ = writeln!(
            out,
            "{count} shard(s); each takes {:.3} of per-application rate limits (LinkedIn, Meta)",
            self.rate_share
        );
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>8} {:>22} {:>14}",
            "shard", "sources", "units", "requests", "least time"
        );
        for s in &self.shards {
            let requests = match s.max_requests {
                Some(max) if max == s.min_requests => max.to_string(),
                Some(max) => format!("{}..{max}", s.min_requests),
                None => format!("{} or more", s.min_requests),
            };
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:>8} {:>22} {:>14}",
                s.shard,
                s.sources,
                s.units,
                requests,
                humanize(s.least_seconds)
            );
        }
        let slowest = self.shards.iter().map(|s| s.least_seconds).fold(0.0, f64::max);
        let _ = writeln!(out, "the run takes at least {} (its slowest shard)", humanize(slowest));
        if let (Some(most), Some(least)) = (
            self.shards.iter().map(|s| s.min_requests).max(),
            self.shards.iter().map(|s| s.min_requests).min(),
        ) && least > 0
            && most as f64 > least as f64 * 1.5
        {
            let _ = writeln!(
                out,
                "warning: the shards are uneven ({least} to {most} requests): a few large units, or too few units for {count} shards"
            );
        }
        for unit in &self.large_units {
            let name =
                if unit.unit.is_empty() { "as a whole".to_owned() } else { format!("account {}", unit.unit) };
            let _ = writeln!(
                out,
                "warning: source {} {name} needs {} request(s) or more, over an even shard's {}: its shard finishes last whatever N is",
                unit.source,
                unit.min_requests,
                self.min_requests / count.max(1) as u64
            );
        }
        out
    }
}

fn humanize(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 60.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}
