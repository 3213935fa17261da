//! OpenTelemetry: the spans of runs (`kpipe.run`, `kpipe.source`, `kpipe.kpis`) and the run
//! metrics, exported over OTLP/HTTP with protobuf bodies when the standard variables ask for it:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` and `/v1/metrics` are appended), or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as they
//!   are) for one signal;
//! - `OTEL_EXPORTER_OTLP_HEADERS` (and the per-signal ones), `OTEL_EXPORTER_OTLP_TIMEOUT`,
//!   `OTEL_SERVICE_NAME` (default `kpipe`), `OTEL_RESOURCE_ATTRIBUTES`;
//! - `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none`.
//!
//! Only spans go to the collector, not log events: the logs stay on standard error, scrubbed of
//! secrets, and span attributes hold names, statuses and counts only. An export that fails is
//! logged as a warning and never fails a run. The exporters are flushed when the [`Telemetry`]
//! returned by [`Telemetry::from_env`] is dropped, or by [`shutdown`] before a process exits on
//! its own.

mod export;
mod record;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::registry::LookupSpan;

pub use export::{ExportClient, ExportError};
pub use record::{
    kpi_span, kpi_status_name, kpis_finished, run_finished, run_not_started, run_span, run_started,
    source_finished, source_span, status_name,
};

/// The service name when `OTEL_SERVICE_NAME` does not give one.
pub const SERVICE_NAME: &str = "kpipe";

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
const HEADERS: [&str; 3] =
    ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"];
const PROTOCOLS: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
];
const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// The exporters' default timeout per export, as the specification sets it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether run metrics are recorded: only when a meter provider exports them.
static METRICS_ON: AtomicBool = AtomicBool::new(false);

/// The exporters, flushed and stopped by [`shutdown`].
static PROVIDERS: Mutex<Option<Providers>> = Mutex::new(None);

struct Providers {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    /// Where the export requests run (see `export`).
    runtime: tokio::runtime::Runtime,
}

/// The OpenTelemetry set-up of the process: a tracing layer when spans are exported, and what
/// to report once logging works. Dropping it flushes and stops the exporters.
#[derive(Debug)]
pub struct Telemetry {
    tracer: Option<SdkTracer>,
    notes: Vec<Note>,
}

#[derive(Debug)]
enum Note {
    Exporting { traces: Option<String>, metrics: Option<String> },
    Problem(String),
}

impl Telemetry {
    /// Sets up the exporters the environment asks for (none when it asks for none).
    pub fn from_env() -> Telemetry {
        from_lookup(&|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The layer that turns kpipe's spans into OpenTelemetry spans: none when no traces are
    /// exported. It sees spans only (no log events), from kpipe's own crates, at info and above.
    pub fn layer<S>(&self) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let tracer = self.tracer.clone()?;
        let spans_only = Targets::new()
            .with_target("kpipe", tracing::Level::INFO)
            .and(filter_fn(|metadata| metadata.is_span()));
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(spans_only);
        Some(Box::new(layer))
    }

    /// Logs where telemetry goes and what could not be set up; called once logging works.
    pub fn log_setup(&self) {
        for note in &self.notes {
            match note {
                Note::Exporting { traces, metrics } => tracing::info!(
                    traces = traces.as_deref().unwrap_or("off"),
                    metrics = metrics.as_deref().unwrap_or("off"),
                    "exporting telemetry over OTLP/HTTP"
                ),
                Note::Problem(problem) => tracing::warn!("OpenTelemetry: {problem}"),
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        shutdown();
    }
}

/// Exports what is still buffered and stops the exporters; later calls do nothing. Blocks for
/// at most the exporters' timeouts.
pub fn shutdown() {
    let providers = PROVIDERS.lock().ok().and_then(|mut held| held.take());
    let Some(providers) = providers else { return };
    METRICS_ON.store(false, Ordering::Relaxed);
    // A collector that cannot be reached has been reported already; the SDK's own word for
    // it ("Failed to shutdown") adds nothing then.
    let report = |what: &str, e: &dyn std::fmt::Display| {
        if export::failing() {
            tracing::debug!(error = %e, "OpenTelemetry: the last {what} could not be exported");
        } else {
            tracing::warn!(error = %e, "OpenTelemetry: the last {what} could not be exported");
        }
    };
    if let Some(tracer) = providers.tracer
        && let Err(e) = tracer.shutdown()
    {
        report("spans", &e);
    }
    if let Some(meter) = providers.meter
        && let Err(e) = meter.shutdown()
    {
        report("metrics", &e);
    }
    // Without waiting: this may be called from within the main runtime, where blocking on
    // another runtime's shutdown is not allowed. Every export has returned by now.
    providers.runtime.shutdown_background();
}

fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Telemetry {
    let mut telemetry = Telemetry { tracer: None, notes: Vec::new() };
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return telemetry;
    }
    let off = |name: &str| env(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    let traces_endpoint =
        env(TRACES_ENDPOINT).or_else(|| env(ENDPOINT)).filter(|_| !off("OTEL_TRACES_EXPORTER"));
    let metrics_endpoint =
        env(METRICS_ENDPOINT).or_else(|| env(ENDPOINT)).filter(|_| !off("OTEL_METRICS_EXPORTER"));
    if traces_endpoint.is_none() && metrics_endpoint.is_none() {
        return telemetry;
    }
    register_secrets(env, [&traces_endpoint, &metrics_endpoint]);
    for name in PROTOCOLS {
        if let Some(protocol) = env(name).filter(|p| p.trim() != "http/protobuf") {
            telemetry.notes.push(Note::Problem(format!(
                "{name}={protocol} is not supported; kpipe exports with http/protobuf"
            )));
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("kpipe-otlp")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            telemetry.notes.push(Note::Problem(format!("cannot start the export thread: {e}")));
            return telemetry;
        }
    };
    let timeout =
        env(TIMEOUT).and_then(|ms| ms.trim().parse().ok()).map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let client = match ExportClient::new(runtime.handle().clone(), timeout) {
        Ok(client) => client,
        Err(e) => {
            telemetry.notes.push(Note::Problem(format!("cannot build the HTTP client: {e}")));
            return telemetry;
        }
    };
    let resource = resource(env);
    let mut providers = Providers { tracer: None, meter: None, runtime };
    let mut exporting = (None, None);
    if let Some(endpoint) = &traces_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .with_protocol(Protocol::HttpBinary)
            .build();
        match exporter {
            Ok(exporter) => {
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build();
                telemetry.tracer = Some(provider.tracer("kpipe"));
                providers.tracer = Some(provider);
                exporting.0 = Some(shown(endpoint));
            }
            Err(e) => telemetry.notes.push(Note::Problem(format!("traces are not exported: {e}"))),
        }
    }
    if let Some(endpoint) = &metrics_endpoint {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .build();
        match exporter {
            Ok(exporter) => {
                let provider = SdkMeterProvider::builder()
                    .with_periodic_exporter(exporter)
                    .with_resource(resource)
                    .build();
                opentelemetry::global::set_meter_provider(provider.clone());
                METRICS_ON.store(true, Ordering::Relaxed);
                providers.meter = Some(provider);
                exporting.1 = Some(shown(endpoint));
            }
            Err(e) => telemetry.notes.push(Note::Problem(format!("metrics are not exported: {e}"))),
        }
    }
    if exporting.0.is_some() || exporting.1.is_some() {
        telemetry.notes.insert(0, Note::Exporting { traces: exporting.0, metrics: exporting.1 });
    }
    if let Ok(mut held) = PROVIDERS.lock() {
        *held = Some(providers);
    }
    telemetry
}

/// The process's resource: what the SDK reads from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`, with `service.name` = `kpipe` when neither names the service, and
/// kpipe's version.
fn resource(env: &dyn Fn(&str) -> Option<String>) -> Resource {
    let named = env("OTEL_SERVICE_NAME").is_some()
        || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
            a.split(',').any(|kv| kv.split('=').next().is_some_and(|k| k.trim() == "service.name"))
        });
    let builder = Resource::builder()
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named { builder.build() } else { builder.with_service_name(SERVICE_NAME).build() }
}

/// Header values (API keys, `Authorization`) and passwords in endpoint URLs are secrets: a log
/// line or error message that quotes one has it scrubbed.
fn register_secrets(env: &dyn Fn(&str) -> Option<String>, endpoints: [&Option<String>; 2]) {
    for name in HEADERS {
        let Some(headers) = env(name) else { continue };
        for pair in headers.split(',') {
            if let Some((_, value)) = pair.split_once('=') {
                kpipe_core::register_secret(value.trim());
                if let Ok(decoded) = percent_decode(value.trim()) {
                    kpipe_core::register_secret(&decoded);
                }
            }
        }
    }
    for endpoint in endpoints.into_iter().flatten() {
        if let Ok(url) = url::Url::parse(endpoint)
            && let Some(password) = url.password()
        {
            kpipe_core::register_secret(password);
        }
    }
}

/// `%XX` sequences decoded, as the exporter decodes header values.
fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

/// An endpoint for messages: scheme, host, port and path only.
fn shown(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}{}", url.scheme(), url.host_str().unwrap_or("?"), url.path())
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_disabled() {
        let none = from_lookup(&|_| None);
        assert!(none.tracer.is_none() && none.notes.is_empty());
        let disabled = from_lookup(&|name| match name {
            "OTEL_SDK_DISABLED" => Some("true".into()),
            ENDPOINT => Some("http://127.0.0.1:4318".into()),
            _ => None,
        });
        assert!(disabled.tracer.is_none() && disabled.notes.is_empty());
    }

    #[test]
    fn endpoints_are_shown_without_credentials_and_headers_are_decoded() {
        assert_eq!(
            shown("https://u:p@collector.example:4318/otlp?x=1"),
            "https://collector.example:4318/otlp"
        );
        assert_eq!(percent_decode("Bearer%20abc%2Fd").as_deref(), Ok("Bearer abc/d"));
        assert_eq!(percent_decode("100%").as_deref(), Ok("100%"));
    }
}
