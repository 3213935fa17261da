//! The contracts of kpipe: the metric schema and vocabulary, and the traits that sources,
//! transforms and sinks implement.
//!
//! A connector implements [`Source`] with plain `async fn`s and exports a
//! [`ConnectorFactory::of`]; the runtime holds it as a [`DynSource`] and feeds what it
//! [`Emitter::emit`]s through the [`Transform`]s into a [`Sink`].

#![deny(missing_docs)]

pub mod catalog;
pub mod connector;
pub mod decimal;
pub mod error;
pub mod label;
pub mod metric;
pub mod period;
pub mod quota;
pub mod record;
pub mod secret;
pub mod shard;
pub mod sink;
pub mod source;
pub mod transform;
pub mod window;

pub use catalog::{CatalogMetric, Grains, MetricOrigin, StreamCatalog, check_row};
pub use connector::{BuildContext, ConnectorFactory};
pub use decimal::{Decimal, DecimalError};
pub use error::{ConfigError, ErrorChain, ErrorKind, SinkError, SourceError};
pub use label::Label;
pub use metric::{Additivity, METRICS, Metric, MetricDef, Unit};
pub use period::{Period, PeriodGrain, PeriodRequest, PeriodRow, PeriodRowError};
pub use quota::{Pace, QuotaCost, QuotaLeft, RequestEstimate};
pub use record::{Currency, Dimensions, MetricBatch, MetricName, MetricRow, RowError, is_identifier};
pub use secret::{REDACTED, Secret, is_secret_key, is_secret_key_path, register as register_secret, scrub};
pub use shard::{Shard, ShardError, SharedRateLimit, UnitKey};
pub use sink::{CommitStats, Sink, SinkTarget, SinkWriter};
pub use source::{
    BoxFuture, CredentialKind, DynSource, Emitter, History, PullRequest, Quarantined, RequestTelemetry,
    Source, SourceEvent, StreamInfo, StreamRequests, TokenFacts,
};
pub use transform::{Transform, TransformError};
pub use window::{DateWindow, InvertedWindow};

pub use chrono::NaiveDate;
