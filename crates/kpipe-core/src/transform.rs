//! Steps between the sources and the sink.

use crate::record::MetricBatch;

/// Changes batches on their way to the sink (filtering, renaming, conversions). Runs on the
/// sink's thread, so it may be CPU-heavy but must not block on I/O.
pub trait Transform: Send {
    /// A short name for logs and the summary.
    fn name(&self) -> &'static str;

    /// Transforms one batch.
    fn apply(&mut self, batch: MetricBatch) -> Result<MetricBatch, TransformError>;
}

/// A transform could not process a batch.
#[derive(Debug, thiserror::Error)]
#[error("transform `{transform}` failed: {message}")]
pub struct TransformError {
    /// The transform's name.
    pub transform: &'static str,
    /// What went wrong.
    pub message: String,
}
