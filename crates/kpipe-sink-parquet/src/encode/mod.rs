//! Parquet column chunks encoded by the sink itself (see [`column`]).

pub(crate) mod column;
mod rle;
