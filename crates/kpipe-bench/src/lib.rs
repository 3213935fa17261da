//! End-to-end benchmarks of kpipe against the simulated platform APIs: `cargo xtask bench`.
//!
//! The simulators run in one process (`kpipe-bench serve`), the measured `kpipe run` in another
//! (`kpipe-bench measure`), so the CPU time and memory reported are kpipe's alone. See
//! docs/benchmarks.md, "End to end", for the scenarios and their targets.

pub mod analysis;
pub mod config;
pub mod defaults;
pub mod measure;
pub mod peer;
pub mod report;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod shards;
pub mod summary;
