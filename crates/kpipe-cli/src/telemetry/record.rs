//! The spans of a run (`kpipe.run`, one `kpipe.source` per source pulled, `kpipe.kpis`) and the
//! OpenTelemetry metrics recorded at their end. Attributes are names, enumerations, counts and
//! dates: never an error's text, a URL or anything read from a secret.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use opentelemetry::KeyValue;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::summary::{KpiStageStatus, KpiStageSummary, RunSummary, SourceStatus, SourceSummary};

/// The OpenTelemetry context of the last run's span, by run id: the KPI stage that follows the
/// run (after `runner::run_locked` returned) is made its child.
static LAST_RUN: Mutex<Option<(String, opentelemetry::Context)>> = Mutex::new(None);

/// A status as the summaries name it.
pub fn status_name(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Succeeded => "succeeded",
        SourceStatus::Partial => "partial",
        SourceStatus::Failed => "failed",
        SourceStatus::Skipped => "skipped",
    }
}

/// The KPI stage's status as the summaries name it.
pub fn kpi_status_name(status: KpiStageStatus) -> &'static str {
    match status {
        KpiStageStatus::Succeeded => "succeeded",
        KpiStageStatus::Failed => "failed",
    }
}

fn otel_status(status: SourceStatus) -> &'static str {
    if status == SourceStatus::Failed { "error" } else { "ok" }
}

/// A name from the configuration, with any registered secret taken out (none is expected).
fn clean(text: &str) -> String {
    kpipe_core::scrub(text).into_owned()
}

/// The span of a whole run; its attributes are filled in as the run goes.
pub fn run_span() -> tracing::Span {
    tracing::info_span!(
        "kpipe.run",
        run_id = Empty,
        window = Empty,
        shard = Empty,
        status = Empty,
        sources = Empty,
        rows_written = Empty,
        quarantined = Empty,
        "otel.status_code" = Empty,
    )
}

/// Records what a run is about once it has started.
pub fn run_started(
    span: &tracing::Span,
    run_id: &str,
    window: kpipe_core::DateWindow,
    shard: kpipe_core::Shard,
) {
    span.record("run_id", run_id);
    span.record("window", tracing::field::display(window));
    span.record("shard", tracing::field::display(shard));
}

/// Records how a run ended on its span, remembers the span for the KPI stage, and adds the
/// run to the OpenTelemetry metrics.
pub fn run_finished(span: &tracing::Span, summary: &RunSummary) {
    span.record("status", status_name(summary.status));
    span.record("sources", summary.sources.len() as u64);
    span.record("rows_written", summary.sources.iter().map(|s| s.rows_written).sum::<u64>());
    span.record("quarantined", summary.sources.iter().map(|s| s.quarantined).sum::<u64>());
    span.record("otel.status_code", otel_status(summary.status));
    if let Ok(mut last) = LAST_RUN.lock() {
        *last = Some((summary.run_id.clone(), span.context()));
    }
    record_run_metrics(summary);
}

/// Records that a run could not start (the output locked, a bad window).
pub fn run_not_started(span: &tracing::Span) {
    span.record("status", "not_started");
    span.record("otel.status_code", "error");
}

/// The span of one source's pull, a child of the run's.
pub fn source_span(name: &str, kind: &str) -> tracing::Span {
    tracing::info_span!(
        "kpipe.source",
        source = clean(name),
        kind = clean(kind),
        status = Empty,
        window = Empty,
        rows_written = Empty,
        quarantined = Empty,
        days_pulled = Empty,
        requests = Empty,
        retries = Empty,
        throttle_waits = Empty,
        "otel.status_code" = Empty,
    )
}

/// Records how a source's pull ended on its span.
pub fn source_finished(span: &tracing::Span, summary: &SourceSummary) {
    span.record("status", status_name(summary.status));
    if let Some(window) = summary.window {
        span.record("window", tracing::field::display(window));
    }
    span.record("rows_written", summary.rows_written);
    span.record("quarantined", summary.quarantined);
    span.record("days_pulled", summary.days_pulled);
    if let Some(http) = &summary.http {
        span.record("requests", http.requests);
        span.record("retries", http.retries.values().sum::<u64>());
        span.record("throttle_waits", http.throttle_waits);
    }
    span.record("otel.status_code", otel_status(summary.status));
}

/// The span of the KPI stage after run `run_id`, a child of that run's span.
pub fn kpi_span(run_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "kpipe.kpis",
        run_id = clean(run_id),
        status = Empty,
        window = Empty,
        metric_rows_read = Empty,
        rows_written = Empty,
        periods_written = Empty,
        "otel.status_code" = Empty,
    );
    let parent = LAST_RUN
        .lock()
        .ok()
        .and_then(|last| last.as_ref().filter(|(id, _)| id == run_id).map(|(_, context)| context.clone()));
    if let Some(parent) = parent {
        // Fails only when no OpenTelemetry layer is installed, and then there is nothing to link.
        let _ = span.set_parent(parent);
    }
    span
}

/// Records how the KPI stage ended on its span and in the OpenTelemetry metrics.
pub fn kpis_finished(span: &tracing::Span, stage: Option<&KpiStageSummary>) {
    let Some(stage) = stage else { return };
    let status = kpi_status_name(stage.status);
    span.record("status", status);
    span.record("window", tracing::field::display(stage.window));
    span.record("metric_rows_read", stage.metric_rows_read);
    span.record("rows_written", stage.rows_written);
    span.record("periods_written", stage.periods_written as u64);
    span.record("otel.status_code", if stage.status == KpiStageStatus::Failed { "error" } else { "ok" });
    if !super::METRICS_ON.load(Ordering::Relaxed) {
        return;
    }
    let meter = opentelemetry::global::meter("kpipe");
    let attributes = [KeyValue::new("status", status)];
    meter
        .u64_counter("kpipe.kpi.runs")
        .with_description("KPI stages run, by status")
        .build()
        .add(1, &attributes);
    meter
        .u64_counter("kpipe.kpi.rows_written")
        .with_description("KPI rows written")
        .build()
        .add(stage.rows_written, &[]);
    meter
        .f64_gauge("kpipe.kpi.duration")
        .with_unit("s")
        .with_description("Wall time of the last KPI stage")
        .build()
        .record(stage.duration_ms as f64 / 1000.0, &[]);
}

/// The run's counters and levels, with the names of the Prometheus metrics less their
/// `kpipe_` prefix and unit suffixes.
fn record_run_metrics(summary: &RunSummary) {
    if !super::METRICS_ON.load(Ordering::Relaxed) {
        return;
    }
    let meter = opentelemetry::global::meter("kpipe");
    let counter = |name: &'static str, description: &'static str| {
        meter.u64_counter(name).with_description(description).build()
    };
    counter("kpipe.runs", "Runs completed, by overall status")
        .add(1, &[KeyValue::new("status", status_name(summary.status))]);
    meter
        .f64_gauge("kpipe.run.duration")
        .with_unit("s")
        .with_description("Wall time of the last run's pull")
        .build()
        .record(summary.duration_ms as f64 / 1000.0, &[]);
    let source_runs = counter("kpipe.source.runs", "Runs of a source, by how its part ended");
    let rows = counter("kpipe.rows_written", "Metric rows written");
    let quarantined = counter("kpipe.quarantined", "Records quarantined");
    let requests = counter("kpipe.requests", "HTTP requests sent, retries included");
    let retries = counter("kpipe.retries", "HTTP requests retried, by reason");
    let waits = counter("kpipe.throttle.waits", "HTTP requests that waited for the rate limiter");
    let waited = meter
        .f64_counter("kpipe.throttle.wait_time")
        .with_unit("s")
        .with_description("Time spent waiting for the rate limiter")
        .build();
    let duration = meter
        .f64_gauge("kpipe.source.duration")
        .with_unit("s")
        .with_description("Wall time of a source's part of the last run")
        .build();
    let quota = meter
        .u64_gauge("kpipe.quota.left")
        .with_description("What the platform said is left of a quota during the last run")
        .build();
    for source in &summary.sources {
        let labels =
            [KeyValue::new("source", clean(&source.name)), KeyValue::new("kind", clean(&source.kind))];
        let with = |key: &'static str, value: String| {
            let mut all = labels.to_vec();
            all.push(KeyValue::new(key, value));
            all
        };
        source_runs.add(1, &with("status", status_name(source.status).to_owned()));
        rows.add(source.rows_written, &labels);
        quarantined.add(source.quarantined, &labels);
        duration.record(source.duration_ms as f64 / 1000.0, &labels);
        if let Some(http) = &source.http {
            requests.add(http.requests, &labels);
            for (reason, n) in &http.retries {
                retries.add(*n, &with("reason", clean(reason)));
            }
            waits.add(http.throttle_waits, &labels);
            waited.add(http.throttle_wait_ms as f64 / 1000.0, &labels);
        }
        for (account, left) in &source.quota_left {
            for (name, value) in crate::run_metrics::quota_levels(left) {
                let mut all = with("account", clean(account));
                all.push(KeyValue::new("quota", name));
                quota.record(value, &all);
            }
        }
    }
}
