//! Every metric kpipe exposes, in the order it writes them. Labels: `source` (the configured
//! name), `kind` (the connector type), `stream`, `reason` (a retry's, such as `throttled`),
//! `status` and `outcome` (enumerations), `account` and `quota` (what a platform says is left).
//! No label ever holds a secret, a URL or the text of an error.

use super::exposition::Family;

/// `kpipe_build_info`.
pub static BUILD_INFO: Family = Family::gauge(
    "kpipe_build_info",
    "Always 1; the version of kpipe that wrote these metrics is its label.",
);
/// `kpipe_up`.
pub static UP: Family = Family::gauge("kpipe_up", "1 while kpipe schedule is serving its metrics.");

/// `kpipe_runs_total`.
pub static RUNS: Family = Family::counter(
    "kpipe_runs_total",
    "Runs completed, by overall status (succeeded, partial, failed, skipped).",
);
/// `kpipe_run_overall_status`.
pub static RUN_OVERALL_STATUS: Family =
    Family::gauge("kpipe_run_overall_status", "1 for the overall status of the last run, 0 for the others.");
/// `kpipe_run_started_timestamp_seconds`.
pub static RUN_STARTED: Family =
    Family::gauge("kpipe_run_started_timestamp_seconds", "When the last run started, in Unix time.");
/// `kpipe_run_finished_timestamp_seconds`.
pub static RUN_FINISHED: Family = Family::gauge(
    "kpipe_run_finished_timestamp_seconds",
    "When the last run finished pulling (before its KPI stage), in Unix time.",
);
/// `kpipe_run_duration_seconds`.
pub static RUN_DURATION: Family = Family::gauge(
    "kpipe_run_duration_seconds",
    "Wall time of the last run's pull, all sources together (the KPI stage is apart).",
);

/// `kpipe_run_status`.
pub static SOURCE_STATUS: Family = Family::gauge(
    "kpipe_run_status",
    "1 for how the source's part of the last run ended (succeeded, partial, failed, skipped), 0 for the others.",
);
/// `kpipe_run_last_success_timestamp_seconds`.
pub static LAST_SUCCESS: Family = Family::gauge(
    "kpipe_run_last_success_timestamp_seconds",
    "When the source last published data (its newest commit in the output's ledger), in Unix time.",
);
/// `kpipe_source_runs_total`.
pub static SOURCE_RUNS: Family =
    Family::counter("kpipe_source_runs_total", "Runs of the source, by how its part ended.");
/// `kpipe_source_duration_seconds`.
pub static SOURCE_DURATION: Family =
    Family::gauge("kpipe_source_duration_seconds", "Wall time of the source's part of the last run.");
/// `kpipe_source_quota_exhausted`.
pub static QUOTA_EXHAUSTED: Family = Family::gauge(
    "kpipe_source_quota_exhausted",
    "1 when the platform's quota stopped the source's pull in the last run.",
);

/// `kpipe_rows_written_total`.
pub static ROWS_WRITTEN: Family = Family::counter("kpipe_rows_written_total", "Metric rows written.");
/// `kpipe_period_rows_written_total`.
pub static PERIOD_ROWS_WRITTEN: Family = Family::counter(
    "kpipe_period_rows_written_total",
    "Rows of unique metrics over whole weeks and months written.",
);
/// `kpipe_quarantined_total`.
pub static QUARANTINED: Family =
    Family::counter("kpipe_quarantined_total", "Records quarantined (bad lines, invalid values).");
/// `kpipe_days_pulled_total`.
pub static DAYS_PULLED: Family = Family::counter("kpipe_days_pulled_total", "Days pulled and published.");
/// `kpipe_requests_total`.
pub static REQUESTS: Family =
    Family::counter("kpipe_requests_total", "HTTP requests sent to the platform, retries included.");
/// `kpipe_retries_total`.
pub static RETRIES: Family = Family::counter("kpipe_retries_total", "HTTP requests retried, by reason.");
/// `kpipe_throttle_waits_total`.
pub static THROTTLE_WAITS: Family =
    Family::counter("kpipe_throttle_waits_total", "HTTP requests that waited for the rate limiter.");
/// `kpipe_throttle_wait_seconds_total`.
pub static THROTTLE_WAIT_SECONDS: Family =
    Family::counter("kpipe_throttle_wait_seconds_total", "Time spent waiting for the rate limiter.");
/// `kpipe_token_refreshes_total`.
pub static TOKEN_REFRESHES: Family =
    Family::counter("kpipe_token_refreshes_total", "Access tokens obtained from the platform.");
/// `kpipe_received_bytes_total`.
pub static RECEIVED_BYTES: Family =
    Family::counter("kpipe_received_bytes_total", "HTTP response body bytes received.");

/// `kpipe_stream_rows_written_total`.
pub static STREAM_ROWS_WRITTEN: Family =
    Family::counter("kpipe_stream_rows_written_total", "Metric rows written, per stream.");
/// `kpipe_stream_quarantined_total`.
pub static STREAM_QUARANTINED: Family =
    Family::counter("kpipe_stream_quarantined_total", "Records quarantined, per stream.");
/// `kpipe_stream_requests_total`.
pub static STREAM_REQUESTS: Family = Family::counter(
    "kpipe_stream_requests_total",
    "HTTP requests sent for one stream (requests serving several streams count for the source only).",
);
/// `kpipe_stream_retries_total`.
pub static STREAM_RETRIES: Family =
    Family::counter("kpipe_stream_retries_total", "HTTP requests retried for one stream, by reason.");
/// `kpipe_stream_throttle_waits_total`.
pub static STREAM_THROTTLE_WAITS: Family = Family::counter(
    "kpipe_stream_throttle_waits_total",
    "HTTP requests of one stream that waited for the rate limiter.",
);
/// `kpipe_stream_throttle_wait_seconds_total`.
pub static STREAM_THROTTLE_WAIT_SECONDS: Family = Family::counter(
    "kpipe_stream_throttle_wait_seconds_total",
    "Time one stream's requests spent waiting for the rate limiter.",
);

/// `kpipe_ledger_days`.
pub static LEDGER_DAYS: Family = Family::gauge(
    "kpipe_ledger_days",
    "Days of the source the output's ledger holds, by status (final, provisional), after the last run.",
);
/// `kpipe_quota_left`.
pub static QUOTA_LEFT: Family = Family::gauge(
    "kpipe_quota_left",
    "What the platform said is left of a quota during the last run (the lowest seen), per account.",
);
/// `kpipe_quota_limit`.
pub static QUOTA_LIMIT: Family =
    Family::gauge("kpipe_quota_limit", "The size of a quota, as the platform said during the last run.");
/// `kpipe_quota_used_ratio`.
pub static QUOTA_USED_RATIO: Family = Family::gauge(
    "kpipe_quota_used_ratio",
    "The highest share of a usage budget in use during the last run (throttling starts at 1).",
);
/// `kpipe_refresh_token_expiry_timestamp_seconds`.
pub static TOKEN_EXPIRY: Family = Family::gauge(
    "kpipe_refresh_token_expiry_timestamp_seconds",
    "When the source's refresh token stops working, as `kpipe auth` recorded it, in Unix time.",
);

/// `kpipe_kpi_status`.
pub static KPI_STATUS: Family = Family::gauge(
    "kpipe_kpi_status",
    "1 for how the last run's KPI stage ended (succeeded, failed), 0 for the other.",
);
/// `kpipe_kpi_rows_written_total`.
pub static KPI_ROWS_WRITTEN: Family =
    Family::counter("kpipe_kpi_rows_written_total", "KPI rows written by the KPI stages after runs.");
/// `kpipe_kpi_metric_rows_read_total`.
pub static KPI_METRIC_ROWS_READ: Family =
    Family::counter("kpipe_kpi_metric_rows_read_total", "Metric rows read by the KPI stages after runs.");
/// `kpipe_kpi_duration_seconds`.
pub static KPI_DURATION: Family =
    Family::gauge("kpipe_kpi_duration_seconds", "Wall time of the last run's KPI stage.");

/// `kpipe_schedule_ticks_total`.
pub static SCHEDULE_TICKS: Family = Family::counter(
    "kpipe_schedule_ticks_total",
    "Fire times of kpipe schedule, by outcome: ran, skipped (the output was locked), failed (no run could \
     start), missed (passed during a run).",
);
/// `kpipe_schedule_run_in_progress`.
pub static SCHEDULE_IN_PROGRESS: Family =
    Family::gauge("kpipe_schedule_run_in_progress", "1 while kpipe schedule is running the pipeline.");
/// `kpipe_schedule_run_started_timestamp_seconds`.
pub static SCHEDULE_RUN_STARTED: Family = Family::gauge(
    "kpipe_schedule_run_started_timestamp_seconds",
    "When the run in progress started, in Unix time (absent between runs).",
);
/// `kpipe_schedule_next_run_timestamp_seconds`.
pub static SCHEDULE_NEXT_RUN: Family = Family::gauge(
    "kpipe_schedule_next_run_timestamp_seconds",
    "The next fire time of kpipe schedule, in Unix time.",
);

/// Every family, in the order written.
pub static ALL: &[&Family] = &[
    &BUILD_INFO,
    &UP,
    &RUNS,
    &RUN_OVERALL_STATUS,
    &RUN_STARTED,
    &RUN_FINISHED,
    &RUN_DURATION,
    &SOURCE_STATUS,
    &LAST_SUCCESS,
    &SOURCE_RUNS,
    &SOURCE_DURATION,
    &QUOTA_EXHAUSTED,
    &ROWS_WRITTEN,
    &PERIOD_ROWS_WRITTEN,
    &QUARANTINED,
    &DAYS_PULLED,
    &REQUESTS,
    &RETRIES,
    &THROTTLE_WAITS,
    &THROTTLE_WAIT_SECONDS,
    &TOKEN_REFRESHES,
    &RECEIVED_BYTES,
    &STREAM_ROWS_WRITTEN,
    &STREAM_QUARANTINED,
    &STREAM_REQUESTS,
    &STREAM_RETRIES,
    &STREAM_THROTTLE_WAITS,
    &STREAM_THROTTLE_WAIT_SECONDS,
    &LEDGER_DAYS,
    &QUOTA_LEFT,
    &QUOTA_LIMIT,
    &QUOTA_USED_RATIO,
    &TOKEN_EXPIRY,
    &KPI_STATUS,
    &KPI_ROWS_WRITTEN,
    &KPI_METRIC_ROWS_READ,
    &KPI_DURATION,
    &SCHEDULE_TICKS,
    &SCHEDULE_IN_PROGRESS,
    &SCHEDULE_RUN_STARTED,
    &SCHEDULE_NEXT_RUN,
];
