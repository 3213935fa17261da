//! The `kpipe` command as a library: configuration, the pipeline runner, the run summary and the
//! demo. The binary is a thin layer of argument parsing and terminal output over it.

pub mod auth;
pub mod backfill;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod demo_apis;
pub mod lock;
pub mod malloc;
pub mod plan;
pub mod plan_split;
pub mod quarantine;
pub mod redact;
pub mod registry;
pub mod report;
mod row_tally;
pub mod run_metrics;
pub mod run_progress;
pub mod runner;
pub mod schedule;
pub mod shard;
pub mod state;
pub mod state_cmd;
pub mod summary;
pub mod telemetry;
pub mod token_health;
pub mod vacuum;

pub use config::{Config, ConfigFileError, load, parse_date};
pub use runner::{RunError, RunObserver, RunOptions, run};
pub use summary::{RunSummary, SourceStatus, SourceSummary};
