//! Parquet column chunks encoded by the sink itself (see [`column`]); the KPI stage writes its
//! files with the same encoder.

pub mod column;
mod rle;
