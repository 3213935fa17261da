#!/usr/bin/env python3
"""Runs deploy/airflow/kpipe_dag.py with Airflow itself against the APIs of `kpipe demo --serve`.

    check_dag.py --kpipe PATH [--shards N] [--dag FILE] [--keep]

1. `kpipe demo --output TMP/demo --serve` runs the demo once (its own, unsharded output is the
   reference) and keeps the simulated LinkedIn, Facebook, HubSpot and GA4 APIs up;
2. the demo's kpipe.toml is pointed at a fresh output directory, `dag-out` beside it;
3. Airflow gets a home and a SQLite metadata database in TMP (`airflow db migrate`), and the
   DAG runs once with `dag.test()` with KPIPE_SHARDS=N and the demo's window;
4. every task instance must have succeeded (N mapped shards among them); the DAG's output must
   hold, all written by shards of N, the (source, day) metric files that the demo's own run
   wrote, and the same KPI files; and the month's KPIs over it (`kpipe kpis --show month`) must
   be those over the demo's output, from as many metric rows;
5. the demo is stopped.

Exit code 0 when all of that holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DAG = HERE.parent / "airflow" / "kpipe_dag.py"
DAG_ID = "kpipe_sharded"

# What `kpipe demo --serve` prints once its own run is over and the APIs stay up, followed by
# the `kpipe run` line with the demo's window.
READY = "The simulated APIs stay up"
WINDOW = re.compile(r"--from (\d{4}-\d{2}-\d{2}) --to (\d{4}-\d{2}-\d{2})")
DEMO_TIMEOUT_S = 300

# `<source>.<YYYY-MM-DD>.parquet`, or `<source>-KofN.<YYYY-MM-DD>.parquet` when shard K of N
# wrote it.
METRIC_FILE = re.compile(r"^([a-z0-9_]+)(-\d+of\d+)?\.(\d{4}-\d{2}-\d{2})\.parquet$")


class CheckFailed(Exception):
    pass


def start_demo(kpipe: Path, demo_dir: Path, log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(kpipe), "demo", "--output", str(demo_dir), "--serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_serving(demo: subprocess.Popen, log_path: Path) -> tuple[str, str]:
    """The demo's window, once it says that its APIs stay up."""
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        at = text.find(READY)
        if at >= 0:
            window = WINDOW.search(text, at)
            if window:
                return window.group(1), window.group(2)
        if demo.poll() is not None:
            raise CheckFailed(f"kpipe demo exited with {demo.returncode} before serving:\n{tail(log_path)}")
        time.sleep(0.5)
    raise CheckFailed(f"kpipe demo did not serve within {DEMO_TIMEOUT_S} s:\n{tail(log_path)}")


def stop_demo(demo: subprocess.Popen) -> None:
    if demo.poll() is None:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def redirect_output(config: Path, output: str, reference: Path) -> list[str]:
    """Points `[pipeline] output` at `output`, keeping the demo's configuration as `reference`;
    returns the enabled sources."""
    original = config.read_text()
    reference.write_text(original)
    text, count = re.subn(r'(?m)^output = ".*"$', f'output = "{output}"', original, count=1)
    if count != 1:
        raise CheckFailed(f'{config} has no `output = "..."` line to redirect')
    config.write_text(text)
    sources = tomllib.loads(text).get("sources", {})
    return sorted(name for name, table in sources.items() if table.get("enabled", True))


def month_kpis(kpipe: Path, config: Path, first: str, last: str) -> tuple[str, str]:
    """How many metric rows `kpipe kpis` read over the window, and its table of the month."""
    command = [str(kpipe), "kpis", "-c", str(config), "--from", first, "--to", last, "--show", "month"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    rows = re.search(r"from (\d+) metric rows", result.stdout)
    table = result.stdout.find("\nkpi ")
    if not rows or table < 0:
        raise CheckFailed(f"{' '.join(command)} printed no row count or table:\n{result.stdout}")
    return rows.group(1), result.stdout[table:]


def check_same_kpis(kpipe: Path, reference: Path, config: Path, first: str, last: str) -> list[str]:
    expected_rows, expected = month_kpis(kpipe, reference, first, last)
    rows, got = month_kpis(kpipe, config, first, last)
    problems = []
    if rows != expected_rows:
        problems.append(
            f"kpipe kpis read {rows} metric rows of the DAG's output, {expected_rows} of the demo's"
        )
    if got != expected:
        diff = difflib.unified_diff(expected.splitlines(), got.splitlines(), "demo", "DAG", lineterm="")
        problems.append("the month's KPIs differ from the demo's:\n" + "\n".join(diff))
    return problems


def metric_files(output: Path) -> list[tuple[str, str | None, str]]:
    """(source, shard tag or None, day) of each metric file."""
    files = []
    for file in (output / "metrics").glob("*.parquet"):
        match = METRIC_FILE.match(file.name)
        if match:
            files.append((match.group(1), match.group(2), match.group(3)))
    return files


def metric_days(output: Path) -> dict[str, set[str]]:
    days: dict[str, set[str]] = {}
    for source, _, day in metric_files(output):
        days.setdefault(source, set()).add(day)
    return days


def kpi_files(output: Path) -> set[str]:
    return {f.name for f in (output / "kpis").glob("*.parquet")}


def run_dag(dag_file: Path, airflow_home: Path) -> list[tuple[str, int, str]]:
    """Runs the DAG once with dag.test(); returns (task, map index, state) of every instance."""
    dags = airflow_home / "dags"
    dags.mkdir(parents=True)
    # A copy, so that parsing it leaves no __pycache__ in the repository.
    local_dag = dags / dag_file.name
    shutil.copy(dag_file, local_dag)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    print(f"$ airflow db migrate   (AIRFLOW_HOME={airflow_home})", flush=True)
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    if migrate.returncode != 0:
        raise CheckFailed(f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}")

    # Airflow reads its configuration when first imported: only now, with the environment set.
    spec = importlib.util.spec_from_file_location("kpipe_dag", local_dag)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    if dag.dag_id != DAG_ID:
        raise CheckFailed(f"{dag_file} defines DAG {dag.dag_id!r}, expected {DAG_ID!r}")
    for t in dag.tasks:
        if t.retries < 1:
            raise CheckFailed(f"task {t.task_id} has no retries")
        # A failure fails the check at once instead of waiting out the backoff.
        t.retries = 0

    print(f"$ dag.test()   ({DAG_ID})", flush=True)
    dag_run = dag.test()
    return sorted((ti.task_id, ti.map_index, str(ti.state)) for ti in dag_run.get_task_instances())


def task_name(task: str, map_index: int) -> str:
    return f"{task}[{map_index}]" if map_index >= 0 else task


def check_task_states(states: list[tuple[str, int, str]], shards: int) -> list[str]:
    problems = [
        f"task {task_name(task, index)} is {state}" for task, index, state in states if state != "success"
    ]
    mapped = [s for s in states if s[1] >= 0]
    if len(mapped) != shards:
        problems.append(f"{len(mapped)} mapped task instance(s), expected one per shard ({shards})")
    if not any(task == "kpis" for task, _, _ in states):
        problems.append("no kpis task instance")
    return problems


def check_output(reference: Path, output: Path, sources: list[str], shards: int) -> list[str]:
    problems = []
    # Every file is a shard's: another name would mean that a task ran the whole configuration,
    # or a shard of another N.
    tags = {tag for _, tag, _ in metric_files(output)}
    expected_tags = {f"-{k}of{shards}" for k in range(shards)}
    if tags - expected_tags:
        names = sorted(t or "(none)" for t in tags - expected_tags)
        problems.append(f"metric files not written by a shard of {shards}: shard tags {names}")
    expected, got = metric_days(reference), metric_days(output)
    for source in sources:
        if not got.get(source):
            problems.append(f"no metric file of source {source} in {output / 'metrics'}")
        elif got[source] != expected.get(source, set()):
            missing = sorted(expected.get(source, set()) - got[source])
            extra = sorted(got[source] - expected.get(source, set()))
            problems.append(f"{source}: days missing {missing}, unexpected {extra}")
    expected_kpis, got_kpis = kpi_files(reference), kpi_files(output)
    if not got_kpis:
        problems.append(f"no KPI file in {output / 'kpis'}")
    elif got_kpis != expected_kpis:
        missing, extra = sorted(expected_kpis - got_kpis), sorted(got_kpis - expected_kpis)
        problems.append(f"KPI files missing {missing}, unexpected {extra}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kpipe", default=os.environ.get("KPIPE_BIN"), help="the kpipe binary (default: $KPIPE_BIN)"
    )
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--dag", type=Path, default=DEFAULT_DAG, help="the DAG file (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and say where")
    args = parser.parse_args()
    if not args.kpipe:
        parser.error("give --kpipe PATH or set KPIPE_BIN")
    kpipe = Path(args.kpipe).resolve()
    if not os.access(kpipe, os.X_OK):
        parser.error(f"{kpipe} is not an executable")

    work = Path(tempfile.mkdtemp(prefix="kpipe-dag-check-"))
    demo_dir, log_path = work / "demo", work / "demo.log"
    started = time.monotonic()
    demo = start_demo(kpipe, demo_dir, log_path)
    problems: list[str] = []
    states: list[tuple[str, int, str]] = []
    try:
        first, last = wait_until_serving(demo, log_path)
        print(f"kpipe demo serves its APIs ({time.monotonic() - started:.0f} s); window {first} .. {last}")
        config, reference = demo_dir / "kpipe.toml", demo_dir / "reference.toml"
        sources = redirect_output(config, "dag-out", reference)
        os.environ.update(
            {
                "KPIPE_BIN": str(kpipe),
                "KPIPE_CONFIG": str(config),
                "KPIPE_SHARDS": str(args.shards),
                "KPIPE_FROM": first,
                "KPIPE_TO": last,
            }
        )
        dag_started = time.monotonic()
        states = run_dag(args.dag.resolve(), work / "airflow")
        dag_seconds = time.monotonic() - dag_started
        problems += check_task_states(states, args.shards)
        problems += check_output(demo_dir, demo_dir / "dag-out", sources, args.shards)
        if not problems:
            problems += check_same_kpis(kpipe, reference, config, first, last)
    except CheckFailed as e:
        problems.append(str(e))
    finally:
        stop_demo(demo)

    print(f"\ncheck_dag: {DAG_ID} with {args.shards} shard(s) against kpipe demo ({kpipe})")
    for task, index, state in states:
        print(f"  {task_name(task, index):<16} {state}")
    if not problems:
        output = demo_dir / "dag-out"
        days = metric_days(output)
        writers = {(source, tag) for source, tag, _ in metric_files(output)}
        print(f"  metrics: {', '.join(f'{s} {len(d)} day(s)' for s, d in sorted(days.items()))}")
        print(f"  {len(writers)} (source, shard) writer(s) of metric files")
        print(f"  kpis: {len(kpi_files(output))} file(s); DAG run {dag_seconds:.0f} s")
    for problem in problems:
        print(f"  FAILED: {problem}")
    if args.keep or problems:
        print(f"  files kept in {work} (demo log: {log_path})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("check_dag: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
