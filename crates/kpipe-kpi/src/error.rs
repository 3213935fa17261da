//! Why the KPI stage failed.

use std::path::PathBuf;

use crate::compute::OutOfOrder;

/// A failure of the KPI stage. Nothing of a failed stage is published: the KPI files of the
/// previous run stay as they were.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    /// A file or folder could not be read, written, renamed or removed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored metric file could not be read as one.
    #[error("cannot read {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A KPI file could not be encoded.
    #[error("cannot write {}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The table writer or the storage failed.
    #[error(transparent)]
    Sink(#[from] kpipe_core::SinkError),
    /// The output could not be listed or read.
    #[error(transparent)]
    Storage(#[from] kpipe_sink_parquet::StorageError),
    /// Days were fed out of order (a bug of the caller).
    #[error(transparent)]
    OutOfOrder(#[from] OutOfOrder),
}

impl KpiError {
    pub(crate) fn sink(e: kpipe_core::SinkError) -> KpiError {
        KpiError::Sink(e)
    }

    pub(crate) fn storage(e: kpipe_sink_parquet::StorageError) -> KpiError {
        KpiError::Storage(e)
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> KpiError {
        let path = path.into();
        move |source| KpiError::Io { action, path, source }
    }
}
