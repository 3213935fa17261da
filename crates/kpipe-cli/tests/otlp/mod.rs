//! OpenTelemetry over OTLP/HTTP: a `kpipe run` against the simulated platform APIs sends its
//! spans and metrics to a collector stand-in on 127.0.0.1, which decodes them with the OTLP
//! protobuf messages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use kpipe_cli::demo_apis::DemoApis;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// A header value, as an API key for a hosted collector would be given.
const HEADER_SECRET: &str = "otlp-header-secret-4f1c9e";

/// What the collector stand-in received: request bodies by path, and the requests' headers.
#[derive(Debug, Default)]
struct Received {
    bodies: Vec<(String, Bytes)>,
    headers: Vec<HeaderMap>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: accepts `POST /v1/traces` and `POST /v1/metrics` and
/// answers each with an empty (successful) export response.
async fn collector() -> (SocketAddr, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let keep = |path: &'static str, received: Arc<Mutex<Received>>| {
        move |headers: HeaderMap, body: Bytes| {
            let received = received.clone();
            async move {
                let mut held = received.lock().expect("received");
                held.bodies.push((path.to_owned(), body));
                held.headers.push(headers);
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new())
            }
        }
    };
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(keep("/v1/traces", received.clone())))
        .route("/v1/metrics", axum::routing::post(keep("/v1/metrics", received.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter().filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref())?))).collect()
}

fn json_number(v: &serde_json::Value) -> String {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")).to_string()
}

#[test]
fn a_run_exports_its_spans_and_metrics_over_otlp_without_secrets() {
    let _serial = super::serial();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(run_and_collect());
}

async fn run_and_collect() {
    let (addr, received) = collector().await;
    let apis = DemoApis::start().await.expect("the simulators start");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kpipe.toml"),
        format!("[pipeline]\noutput = \"out\"\n{}", apis.sources_toml()),
    )
    .expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    command
        .args(["run", "-c", "kpipe.toml", "--from", "2026-10-01", "--to", "2026-10-02"])
        .args(["--summary-json", "summary.json"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .env("OTEL_EXPORTER_OTLP_HEADERS", format!("x-collector-key={HEADER_SECRET}"));
    let out =
        tokio::task::spawn_blocking(move || command.output()).await.expect("joined").expect("kpipe runs");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{output}");
    assert!(!output.contains(HEADER_SECRET), "{output}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).expect("summary"))
            .expect("JSON");

    // The process flushed its exporters before it exited: everything is here.
    let received = std::mem::take(&mut *received.lock().expect("received"));
    assert!(
        received.headers.iter().all(|h| h.get("x-collector-key").is_some_and(|v| v == HEADER_SECRET)),
        "the headers of OTEL_EXPORTER_OTLP_HEADERS go with every export"
    );
    for (_, body) in &received.bodies {
        for secret in [
            "sim-secret",
            "sim-refresh-token",
            kpipe_sim::platform::facebook::DEMO_ACCESS_TOKEN,
            HEADER_SECRET,
        ] {
            assert!(!body.windows(secret.len()).any(|w| w == secret.as_bytes()), "`{secret}` was exported");
        }
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut services = Vec::new();
    for (_, body) in received.bodies.iter().filter(|(path, _)| path == "/v1/traces") {
        let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("an OTLP trace export");
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            services.push(resource.get("service.name").cloned());
            spans.extend(resource_spans.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    assert!(!services.is_empty() && services.iter().all(|s| s.as_deref() == Some("kpipe")), "{services:?}");

    let runs: Vec<&Span> = spans.iter().filter(|s| s.name == "kpipe.run").collect();
    assert_eq!(runs.len(), 1, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let run = runs[0];
    let run_attributes = attributes(&run.attributes);
    assert_eq!(
        run_attributes.get("run_id").map(String::as_str),
        summary["run_id"].as_str(),
        "{run_attributes:?}"
    );
    assert_eq!(run_attributes.get("status").map(String::as_str), summary["status"].as_str());
    assert_eq!(
        run_attributes.get("window").map(String::as_str),
        Some("2026-10-01..=2026-10-02"),
        "{run_attributes:?}"
    );

    let sources = summary["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 4);
    for source in sources {
        let name = source["name"].as_str().expect("name");
        let span = spans
            .iter()
            .find(|s| {
                s.name == "kpipe.source"
                    && attributes(&s.attributes).get("source").map(String::as_str) == Some(name)
            })
            .unwrap_or_else(|| panic!("no span for source {name}"));
        assert_eq!(span.trace_id, run.trace_id, "{name}: in the run's trace");
        assert_eq!(span.parent_span_id, run.span_id, "{name}: a child of the run's span");
        let a = attributes(&span.attributes);
        assert_eq!(a.get("kind").map(String::as_str), source["type"].as_str(), "{a:?}");
        assert_eq!(a.get("status").map(String::as_str), source["status"].as_str(), "{a:?}");
        assert_eq!(a.get("rows_written"), Some(&json_number(&source["rows_written"])), "{a:?}");
        assert_eq!(a.get("requests"), Some(&json_number(&source["http"]["requests"])), "{a:?}");
    }
    if let Some(kpis) = summary["kpis"].as_object() {
        let stage = spans.iter().find(|s| s.name == "kpipe.kpis").expect("the KPI stage's span");
        assert_eq!((&stage.trace_id, &stage.parent_span_id), (&run.trace_id, &run.span_id));
        let a = attributes(&stage.attributes);
        assert_eq!(a.get("status").map(String::as_str), kpis["status"].as_str(), "{a:?}");
        assert_eq!(a.get("rows_written"), Some(&json_number(&kpis["rows_written"])), "{a:?}");
    }

    // The run's counters, per source.
    let mut rows_written: BTreeMap<String, u64> = BTreeMap::new();
    for (_, body) in received.bodies.iter().filter(|(path, _)| path == "/v1/metrics") {
        let request = ExportMetricsServiceRequest::decode(body.as_ref()).expect("an OTLP metrics export");
        let metrics =
            request.resource_metrics.into_iter().flat_map(|r| r.scope_metrics).flat_map(|s| s.metrics);
        for metric in metrics.filter(|m| m.name == "kpipe.rows_written") {
            let Some(metric::Data::Sum(sum)) = metric.data else { panic!("a sum: {metric:?}") };
            for point in sum.data_points {
                let source = attributes(&point.attributes).get("source").cloned().expect("a source");
                let Some(number_data_point::Value::AsInt(n)) = point.value else {
                    panic!("a count: {point:?}")
                };
                rows_written.insert(source, u64::try_from(n).expect("a count"));
            }
        }
    }
    for source in sources {
        let name = source["name"].as_str().expect("name");
        assert_eq!(
            rows_written.get(name).copied(),
            source["rows_written"].as_u64(),
            "{name}: {rows_written:?}"
        );
    }
    apis.shutdown().await;
}
