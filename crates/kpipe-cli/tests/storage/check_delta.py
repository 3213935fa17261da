#!/usr/bin/env python3
"""Reads the Delta tables kpipe writes (`[pipeline] format = "delta"`) with the Delta readers
analysts use, and checks the transaction log kpipe left behind.

    python3 check_delta.py EXPECTED_JSON --root ROOT [--s3] [--commits COMMITS_JSON] [--metrics-only]

ROOT is kpipe's output: a directory, or s3://BUCKET/PREFIX with --s3 (credentials and endpoint
from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP).
The tables are ROOT/delta/metrics, ROOT/delta/metrics_period (only if a source wrote period
rows) and ROOT/delta/kpis. EXPECTED_JSON is check_readers.py's: kpipe's row counts and exact
sums of `value` per `metric` (per `kpi`), nulls left out:

    {"metrics": {"rows": 1234, "sums": {"clicks": "5678", "spend": "12.340000000000000000"}},
     "kpis": {"rows": 567, "sums": {"ctr": "0.012000000000000000"}}}

Readers of metrics and kpis: deltalake `DeltaTable.to_pyarrow_table()`, deltalake `QueryBuilder`
(delta-rs's own DataFusion SQL), Polars `read_delta` and DuckDB `delta_scan`, the last only when
the `duckdb-extension-delta` package is installed (DuckDB cannot download it here). Each must see
the columns with their types, kpipe's rows and sums to the last decimal, and no key twice.
Of every table's log: each WRITE commit names its `kpipe.run_id` and `kpipe.writer`, no writer
commits twice in one run, and with COMMITS_JSON ({"metrics": {"linkedin_ads": 3}, "kpis":
{"kpis": 3}}) the WRITE commits per writer are counted; every `*.parquet` in the table folder
is named by the log. --metrics-only checks delta/metrics alone (an output without KPIs).
What is not run is said, never silent. Exits 1 on any mismatch, 2 on a usage error.
"""

import argparse
import collections
import decimal
import json
import os
import re
import sys
import urllib.parse

# The columns, their kinds and how each reader's types map to them are check_readers.py's: the
# Delta tables hold the same files.
from check_readers import GROUP_BY, KPI_COLUMNS, METRIC_COLUMNS, arrow_kind, polars_kind

# Enough digits for a sum of DECIMAL(38, 18) values to stay exact.
decimal.getcontext().prec = 100

TABLES = {"metrics": METRIC_COLUMNS, "kpis": KPI_COLUMNS}
# What a row says rather than which row it is: a re-pull may change these, never add a row.
NOT_KEY = {
    "metrics": {"value", "pulled_at", "run_id", "entity_name", "unit"},
    "kpis": {"value", "numerator", "denominator", "unit", "stage"},
}
LOGGED_TABLES = ("metrics", "metrics_period", "kpis")
SHOWN_DUPLICATES = 3


class Mismatch(Exception):
    pass


def key_columns(table):
    return [n for n, _ in TABLES[table] if n not in NOT_KEY[table]]


def column_problems(got, table):
    """`got`: [(name, kind)] as the reader reports them, kind one of the names above or the
    reader's own type name for anything else."""
    want = TABLES[table]
    if [n for n, _ in got] != [n for n, _ in want]:
        return [f"columns {[n for n, _ in got]}, expected {[n for n, _ in want]}"]
    wrong = [f"{n}: {g} (expected {w})" for (n, g), (_, w) in zip(got, want) if g != w]
    return ["column types: " + "; ".join(wrong)] if wrong else []


def total_problems(rows, sums, table, expected):
    want = expected[table]
    problems = [] if rows == want["rows"] else [f"{rows} rows, kpipe wrote {want['rows']}"]
    want_sums = {k: decimal.Decimal(v) for k, v in want["sums"].items()}
    got_sums = {k: decimal.Decimal(v) for k, v in sums.items() if v is not None}
    wrong = [
        f"{k}: {got_sums.get(k)} (expected {want_sums.get(k)})"
        for k in sorted(set(got_sums) | set(want_sums), key=str)
        if got_sums.get(k) != want_sums.get(k)
    ]
    return problems + ([f"sums of `value` per `{GROUP_BY[table]}`: " + "; ".join(wrong)] if wrong else [])


def duplicate_problems(duplicates, table):
    """`duplicates`: [(key as a dict, count)] of the keys held by more than one row."""
    if not duplicates:
        return []
    shown = "; ".join(
        f"{n}x {{{', '.join(f'{c}={v}' for c, v in key.items() if v is not None)}}}"
        for key, n in sorted(duplicates, key=repr)[:SHOWN_DUPLICATES]
    )
    return [f"{len(duplicates)} keys of {table} held by several rows, e.g. {shown}"]


# ------------------------------------------------------------------------------ the readers


def read_pyarrow(out, table):
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    data = DeltaTable(out.uri(table), storage_options=out.options).to_pyarrow_table()
    columns = [(f.name, arrow_kind(f.type)) for f in data.schema]
    grouped = data.group_by(GROUP_BY[table]).aggregate([("value", "sum")])
    sums = dict(zip(grouped[GROUP_BY[table]].to_pylist(), grouped["value_sum"].to_pylist()))
    keys = key_columns(table)
    counted = data.group_by(keys).aggregate([([], "count_all")])
    counted = counted.filter(pc.greater(counted["count_all"], 1)).to_pylist()
    return columns, data.num_rows, sums, [({k: r[k] for k in keys}, r["count_all"]) for r in counted]


def read_sql(query, source, columns, table):
    """Rows, sums and duplicate keys counted by the reader's own SQL engine; `query(sql)`
    returns the result's rows as tuples."""
    group, keys = GROUP_BY[table], key_columns(table)
    listed = ", ".join(f'"{k}"' for k in keys)
    rows = query(f"SELECT count(*) FROM {source}")[0][0]
    sums = dict(query(f'SELECT "{group}", sum(value) FROM {source} GROUP BY "{group}"'))
    counted = query(f"SELECT {listed}, count(*) FROM {source} GROUP BY {listed} HAVING count(*) > 1")
    return columns, rows, sums, [(dict(zip(keys, r[:-1])), r[-1]) for r in counted]


def read_datafusion(out, table):
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    builder = QueryBuilder().register("t", DeltaTable(out.uri(table), storage_options=out.options))
    result = lambda sql: pa.table(builder.execute(sql).read_all())  # noqa: E731
    columns = [(f.name, arrow_kind(f.type)) for f in result("SELECT * FROM t LIMIT 0").schema]
    query = lambda sql: list(zip(*(c.to_pylist() for c in result(sql).columns)))  # noqa: E731
    return read_sql(query, "t", columns, table)


def read_polars(out, table):
    import polars as pl

    df = pl.read_delta(out.uri(table), storage_options=out.options)
    columns = [(name, polars_kind(t)) for name, t in df.schema.items()]
    grouped = df.group_by(GROUP_BY[table]).agg(pl.col("value").sum(), pl.col("value").count().alias("n"))
    sums = {key: (total if n else None) for key, total, n in grouped.iter_rows()}
    keys = key_columns(table)
    counted = df.group_by(keys).len().filter(pl.col("len") > 1).iter_rows(named=True)
    return columns, df.height, sums, [({k: r[k] for k in keys}, r["len"]) for r in counted]


def duckdb_unavailable():
    try:
        import duckdb_extension_delta  # noqa: F401
    except ImportError:
        return (
            "DuckDB downloads its delta extension from extensions.duckdb.org, which this machine cannot "
            "reach, and the `duckdb-extension-delta` package that carries it is not installed"
        )
    return None


def read_duckdb(out, table):
    import duckdb

    con = duckdb.connect()
    # Loaded from the packages that carry them, as DuckDB would download them.
    for package in ["duckdb_extension_delta"] + (["duckdb_extension_httpfs"] if out.s3 else []):
        folder = os.path.join(os.path.dirname(__import__(package).__file__), "extensions")
        ext = next(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs if f.endswith(".duckdb_extension"))
        con.execute(f"LOAD '{ext}'")
    if out.s3:
        o = out.options
        con.execute(
            "CREATE SECRET s3 (TYPE s3, KEY_ID '{}', SECRET '{}', REGION '{}', ENDPOINT '{}', URL_STYLE 'path', "
            "USE_SSL {})".format(o["AWS_ACCESS_KEY_ID"], o["AWS_SECRET_ACCESS_KEY"], o["AWS_REGION"],
                                 out.endpoint_host, str(out.endpoint_scheme == "https").lower())
        )  # fmt: skip
    source = "delta_scan('{}')".format(out.uri(table).replace("'", "''"))
    kinds = {"VARCHAR": "string", "DATE": "date", "DECIMAL(38,18)": "decimal", "TIMESTAMP WITH TIME ZONE": "timestamp"}
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    columns = [(name, kinds.get(str(t).upper(), str(t))) for name, t, *_ in described]
    try:
        return read_sql(lambda sql: con.execute(sql).fetchall(), source, columns, table)
    finally:
        con.close()


READERS = [
    ("deltalake to_pyarrow_table()", read_pyarrow),
    ("deltalake QueryBuilder (DataFusion SQL)", read_datafusion),
    ("polars read_delta()", read_polars),
    ("duckdb delta_scan()", read_duckdb),
]

# --------------------------------------------------------------------------- log and files


class Output:
    """kpipe's output: a URI per table for the Delta readers, and a pyarrow file system to read
    the log's files with and to list what is stored, whatever the log says."""

    def __init__(self, root, s3):
        import pyarrow.fs as pafs

        self.s3, self.options = s3, None
        if not s3:
            self.root = self.base = os.path.abspath(root)
            self.fs = pafs.LocalFileSystem()
            return
        self.root, self.base = root.rstrip("/"), root[len("s3://") :].strip("/")
        env = os.environ
        endpoint, region = env["AWS_ENDPOINT_URL"], env.get("AWS_REGION", "us-east-1")
        self.endpoint_scheme, _, host = endpoint.partition("://")
        self.endpoint_host = host.rstrip("/")
        # Spelled out rather than left to each library's own lookup of the environment.
        self.options = {
            "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
            "AWS_REGION": region, "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": env.get("AWS_ALLOW_HTTP", str(self.endpoint_scheme == "http").lower()),
        }  # fmt: skip
        self.fs = pafs.S3FileSystem(
            access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"], region=region,
            endpoint_override=self.endpoint_host, scheme=self.endpoint_scheme,
        )  # fmt: skip

    def uri(self, table):
        return f"{self.root}/delta/{table}"

    def exists(self, table):
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(table), storage_options=self.options)


def check_history(out, table, commits):
    from deltalake import DeltaTable

    history = DeltaTable(out.uri(table), storage_options=out.options).history()
    problems, versions, per_writer = [], collections.defaultdict(list), collections.Counter()
    for entry in sorted(history, key=lambda h: h["version"]):
        version, operation = entry["version"], entry.get("operation")
        if version == 0 and operation != "CREATE TABLE":
            problems.append(f"version 0 is {operation}, not CREATE TABLE")
        if operation != "WRITE":
            continue
        run, writer = entry.get("kpipe.run_id"), entry.get("kpipe.writer")
        if not run or not writer:
            problems.append(f"version {version}: a WRITE without kpipe.run_id or kpipe.writer")
            continue
        versions[(run, writer)].append(version)
        per_writer[writer] += 1
    twice = [(r, w, v) for (r, w), v in versions.items() if len(v) > 1]
    problems += [f"{w} committed {len(v)} times in run {r} (versions {v})" for r, w, v in twice]
    for writer, count in sorted((commits or {}).items()):
        if per_writer[writer] != count:
            problems.append(f"{per_writer[writer]} WRITE commits by {writer}, expected {count}")
    if problems:
        raise Mismatch("; ".join(problems))
    by = ", ".join(f"{w} x{n}" for w, n in sorted(per_writer.items()))
    return f"{sum(per_writer.values())} WRITE commits ({by or 'none'}), runs: {len({r for r, _ in versions})}"


def check_files(out, table):
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    folder = f"{out.base}/delta/{table}"
    stored = out.fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    stored = [i.path[len(folder) + 1 :] for i in stored if i.type == pafs.FileType.File]
    named = set()
    for path in stored:
        name = path[len("_delta_log/") :] if path.startswith("_delta_log/") else ""
        # Only the versions count: a temporary or stray file there names nothing.
        if re.fullmatch(r"\d{20}\.json", name):
            with out.fs.open_input_stream(f"{folder}/{path}") as f:
                actions = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
            named.update(urllib.parse.unquote(a["add"]["path"]) for a in actions if "add" in a)
        elif re.fullmatch(r"\d{20}\.checkpoint\..*parquet", name):
            # A checkpoint: the commits before it may be cleaned up, and the files they added
            # and later ones removed (kept until vacuum) live on there as `remove` tombstones.
            checkpoint = pq.read_table(f"{folder}/{path}", filesystem=out.fs)
            for kind in {"add", "remove"} & set(checkpoint.column_names):
                named.update(urllib.parse.unquote(a["path"]) for a in checkpoint[kind].to_pylist() if a)
    data = [p for p in stored if p.endswith(".parquet") and not p.startswith("_delta_log/")]
    # The log's paths are URIs: the stored key is the decoded path (`a%20b` for `a%2520b`).
    orphans = sorted(p for p in data if p not in named)
    if orphans:
        raise Mismatch(f"{len(orphans)} of {len(data)} data files added by no commit: {', '.join(orphans)}")
    return f"{len(data)} data files, every one added by a commit"


# ------------------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expected", help="JSON file of kpipe's totals")
    parser.add_argument("--root", required=True, help="kpipe's output (holding delta/), or s3://BUCKET/PREFIX")
    parser.add_argument("--s3", action="store_true", help="ROOT is on S3, reached with the AWS_* variables")
    parser.add_argument("--commits", help="JSON file of WRITE commits per table and writer")
    parser.add_argument("--metrics-only", action="store_true", help="check delta/metrics alone")
    args = parser.parse_args()
    if args.s3 != args.root.startswith("s3://"):
        parser.error("--s3 goes with a ROOT of s3://BUCKET/PREFIX, and only with one")
    needed = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL") if args.s3 else ()
    if [v for v in needed if not os.environ.get(v)]:
        parser.error(f"--s3 needs {', '.join(needed)}")
    try:
        with open(args.expected) as f:
            expected = json.load(f)
        commits = {}
        if args.commits:
            with open(args.commits) as f:
                commits = json.load(f)
    except (OSError, ValueError) as e:
        parser.error(str(e))

    out = Output(args.root, args.s3)
    where = "s3" if args.s3 else "local"
    failures, skipped, passed = [], [], 0
    read_tables, logged_tables = list(TABLES), LOGGED_TABLES
    if args.metrics_only:
        read_tables, logged_tables = ["metrics"], ["metrics"]
        skipped.append(f"{where}: delta/kpis and delta/metrics_period: --metrics-only")

    def attempt(label, check):
        nonlocal passed
        try:
            said = check()
        except Mismatch as e:
            failures.append(f"{label}: {e}")
        except Exception as e:  # a reader that cannot read the table at all
            # delta-rs explains an error over many lines, its cause last (Polars then adds its own
            # context): both ends on one line.
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split("This error occurred with the following context")[0]
            lines = [ln.strip(" ↳\t") for ln in text.splitlines() if ln.strip()]
            detail = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""
            failures.append(f"{label}: cannot read: {type(e).__name__}: {detail}")
        else:
            passed += 1
            print(f"ok   {label}: {said}", flush=True)
            return
        print(f"FAIL {failures[-1]}", flush=True)

    def read_and_check(read, table):
        columns, rows, sums, duplicates = read(out, table)
        problems = column_problems(columns, table) + total_problems(rows, sums, table, expected)
        problems += duplicate_problems(duplicates, table)
        if problems:
            raise Mismatch("; ".join(problems))
        return f"{rows} rows, {len(columns)} columns, {len(sums)} sums, no key twice"

    no_duckdb = duckdb_unavailable()
    for name, read in READERS:
        if read is read_duckdb and no_duckdb:
            skipped.append(f"{where}: {name}: {no_duckdb}")
            continue
        for table in read_tables:
            attempt(f"{where}: {name} on delta/{table}", lambda: read_and_check(read, table))

    for table in logged_tables:
        try:
            missing = table == "metrics_period" and not out.exists(table)
        except Exception:  # the checks below say what is wrong with it
            missing = False
        if missing:
            if any(commits.get(table, {}).values()):
                failures.append(f"{where}: delta/{table}: no such table, but {commits[table]} commits expected")
                print(f"FAIL {failures[-1]}", flush=True)
            else:
                skipped.append(f"{where}: log and files of delta/{table}: no such table (no period rows)")
            continue
        attempt(f"{where}: log of delta/{table}", lambda: check_history(out, table, commits.get(table)))
        attempt(f"{where}: files of delta/{table}", lambda: check_files(out, table))

    for s in skipped:
        print(f"skipped {s}")
    print(f"{passed} passed, {len(failures)} failed, {len(skipped)} skipped")
    if failures:
        print("\n".join(["mismatches:"] + failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
