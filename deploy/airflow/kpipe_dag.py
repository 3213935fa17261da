"""kpipe's nightly pull as an Airflow DAG: the (source, account) units split into shards that run
as mapped tasks in parallel, then one KPI task over the whole output once every shard is done.

    window, shards ──> run_shard[0..N-1] (kpipe run --shard i/N --no-kpis) ──> kpis (kpipe kpis)

For Airflow 3, which `cargo xtask deploy-check` runs it with, and Airflow 2.9+ (@task.bash).

Settings, read when a run starts (not when the file is parsed, so a change needs no redeploy).
Each is the Airflow Variable `kpipe_<name>` if set (`AIRFLOW_VAR_KPIPE_<NAME>` in the
environment sets it too), else the environment variable `KPIPE_<NAME>` of the worker:

    kpipe_bin      the kpipe binary (default: `kpipe` on the PATH)
    kpipe_config   the configuration file, an absolute path (tasks run in a temporary directory)
    kpipe_shards   how many shards (default: 8); `kpipe plan -c CONFIG --shards N` shows the split
    kpipe_from     first day (YYYY-MM-DD); default: the configuration's lookback_days before the
                   last day
    kpipe_to       last day (YYYY-MM-DD); default: the day before the run's scheduled time (UTC)

The secrets the configuration names as `${NAME}` come from the workers' environment: the tasks
inherit it. To take them from Airflow connections instead, give the tasks
`env={"LINKEDIN_CLIENT_SECRET": "{{ conn.linkedin.password }}", ...}` with `append_env=True`.
"""

from __future__ import annotations

import os
import shlex
from datetime import date, datetime, timedelta, timezone

try:
    from airflow.sdk import DAG, Variable, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import Variable

DEFAULT_SHARDS = 8

# kpipe's exit code 3: every source ran and published, but some records were quarantined or a
# daily quota stopped a source after the days it completed. A retry would not change that, and
# the data is there for the KPIs: the shard is marked skipped (a person looks at the
# quarantine) and the KPI task still runs.
EXIT_PUBLISHED_WITH_WARNINGS = 3


def _setting(name: str, default: str | None = None) -> str | None:
    value = Variable.get(f"kpipe_{name}", None)
    if value is None or value == "":
        value = os.environ.get(f"KPIPE_{name.upper()}", "")
    return value or default


def _day(name: str, text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"kpipe_{name} = {text!r} is not a date (YYYY-MM-DD)") from None


def _command(subcommand: str, *args: str) -> str:
    kpipe = _setting("bin", "kpipe")
    config = _setting("config")
    if not config:
        raise ValueError("set the Airflow Variable kpipe_config or KPIPE_CONFIG to the kpipe.toml to run")
    return shlex.join([kpipe, subcommand, "-c", config, *args])


with DAG(
    dag_id="kpipe_sharded",
    description="kpipe run in parallel shards, then the KPIs over the whole output",
    # A few hours after midnight UTC: "yesterday" is complete and platforms have settled most of
    # it; the lookback window re-pulls the days they revise later.
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    # kpipe's lookback window re-pulls the recent days on every run; a long range is a
    # `kpipe backfill` by hand, not Airflow catching up day by day.
    catchup=False,
    # A second run's shards would find the first's holding their locks (exit code 2).
    max_active_runs=1,
    # Airflow 3 has no `sla`: a run that takes too long is failed by this deadline and each
    # task by its execution_timeout (Airflow 3.1+ can also notify through a DeadlineAlert).
    dagrun_timeout=timedelta(hours=6),
    default_args={
        # A failed shard is retried alone; its window is replaced, never appended to, so a
        # retry writes nothing twice. Exit code 1 (a source failed: network, 5xx, an expired
        # access token) is what retries are for; 2 also covers a lock held by another run.
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=1),
    },
    tags=["kpipe"],
) as dag:
    # The window and the split are decided once per run, so that every shard and the KPI task
    # agree, even when one is retried after midnight or the settings change meanwhile.
    @task
    def window(**context) -> list[str]:
        last = _setting("to")
        if last:
            last = _day("to", last)
        else:
            scheduled = context.get("data_interval_end") or context.get("logical_date")
            run_day = scheduled.date() if scheduled else datetime.now(timezone.utc).date()
            last = (run_day - timedelta(days=1)).isoformat()
        first = _setting("from")
        return (["--from", _day("from", first)] if first else []) + ["--to", last]

    @task
    def shards() -> list[str]:
        count = int(_setting("shards", str(DEFAULT_SHARDS)))
        if count < 1:
            raise ValueError(f"kpipe_shards = {count}: at least 1")
        return [f"{i}/{count}" for i in range(count)]

    @task.bash(
        skip_on_exit_code=EXIT_PUBLISHED_WITH_WARNINGS,
        execution_timeout=timedelta(hours=3),
    )
    def run_shard(shard: str, window_args: list[str]) -> str:
        # --no-kpis: a shard sees only its own units; the KPIs need all of them (task `kpis`).
        return _command("run", *window_args, "--shard", shard, "--no-kpis")

    @task.bash(
        # Shards skipped for exit code 3 published their data: the KPIs are computed over it.
        trigger_rule="none_failed",
        execution_timeout=timedelta(hours=1),
    )
    def kpis(window_args: list[str]) -> str:
        return _command("kpis", *window_args)

    days = window()
    run_shard.partial(window_args=days).expand(shard=shards()) >> kpis(days)
