#!/usr/bin/env python3
"""Reads kpipe's metric and KPI trees with the readers warehouses and analysts use, each with its
default options, and checks that every one of them gets back exactly what kpipe wrote.

    python3 check_readers.py EXPECTED_JSON --local OUTPUT_DIR [--s3 s3://BUCKET/PREFIX]
                             [--require-spark]

EXPECTED_JSON (a file) holds kpipe's own totals of the output:

    {"metrics": {"rows": 1234, "sums": {"clicks": "5678", "spend": "12.340000000000000000"}},
     "kpis": {"rows": 567, "sums": {"ctr": "0.012000000000000000"}}}

`sums` are the exact sums of `value` per `metric` (per `kpi` for the KPI tree), nulls left out.
Each reader must see exactly the columns of the files with their types (no partition column
inferred from a folder name, no dictionary or string in place of a date, DECIMAL(38, 18) for
values), the same number of rows and the same sums, to the last decimal.

Readers of a local output: pandas (`read_parquet`), pyarrow (`parquet.read_table`, `dataset`
with its default and with `partitioning="hive"`), Polars (`scan_parquet`), DuckDB (`read_parquet`
of `dir/*.parquet` with `hive_partitioning` left to its default, on and off) and Spark
(`spark.read.parquet(dir)`). From S3 (credentials and endpoint from the standard AWS_*
variables) the same readers but Spark, whose S3 file system (hadoop-aws) is not part of pyspark;
DuckDB there needs its httpfs extension, which the `duckdb-extension-httpfs` package carries.
What is not run is said, never silent. Exits 1 on any mismatch, with a line per reader and tree.
"""

import argparse
import datetime
import decimal
import json
import os
import shutil
import sys
import traceback

# Enough digits for a sum of DECIMAL(38, 18) values to stay exact.
decimal.getcontext().prec = 100

METRIC_COLUMNS = [
    ("platform", "string"),
    ("source", "string"),
    ("account_id", "string"),
    ("level", "string"),
    ("entity_id", "string"),
    ("entity_name", "string"),
    ("date", "date"),
    ("country", "string"),
    ("region", "string"),
    ("device", "string"),
    ("channel", "string"),
    ("source_medium", "string"),
    ("publisher_platform", "string"),
    ("age", "string"),
    ("gender", "string"),
    ("metric", "string"),
    ("value", "decimal"),
    ("unit", "string"),
    ("currency", "string"),
    ("pulled_at", "timestamp"),
    ("run_id", "string"),
]

KPI_COLUMNS = [
    ("kpi", "string"),
    ("grain", "string"),
    ("period_start", "date"),
    ("period_end", "date"),
    ("scope", "string"),
    ("platform", "string"),
    ("source", "string"),
    ("account_id", "string"),
    ("level", "string"),
    ("entity_id", "string"),
    ("value", "decimal"),
    ("numerator", "decimal"),
    ("denominator", "decimal"),
    ("unit", "string"),
    ("currency", "string"),
    ("stage", "string"),
]

TREES = {"metrics": METRIC_COLUMNS, "kpis": KPI_COLUMNS}


GROUP_BY = {"metrics": "metric", "kpis": "kpi"}


class Mismatch(Exception):
    pass


def check_columns(got, tree):
    """`got`: [(name, kind)] as the reader reports them, kind one of the names above or the
    reader's own type name for anything else."""
    want = TREES[tree]
    if [n for n, _ in got] != [n for n, _ in want]:
        raise Mismatch(f"columns {[n for n, _ in got]}, expected {[n for n, _ in want]}")
    wrong = [f"{n}: {g} (expected {w})" for (n, g), (_, w) in zip(got, want) if g != w]
    if wrong:
        raise Mismatch("column types: " + "; ".join(wrong))


def check_totals(rows, sums, tree, expected):
    want = expected[tree]
    if rows != want["rows"]:
        raise Mismatch(f"{rows} rows, kpipe wrote {want['rows']}")
    want_sums = {k: decimal.Decimal(v) for k, v in want["sums"].items()}
    got_sums = {k: decimal.Decimal(v) for k, v in sums.items() if v is not None}
    if got_sums != want_sums:
        lines = [
            f"{k}: {got_sums.get(k)} (expected {want_sums.get(k)})"
            for k in sorted(set(got_sums) | set(want_sums))
            if got_sums.get(k) != want_sums.get(k)
        ]
        raise Mismatch(f"sums of `value` per `{GROUP_BY[tree]}`: " + "; ".join(lines))


# ---------------------------------------------------------------------------------- pyarrow


def arrow_kind(t):
    import pyarrow as pa

    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_decimal(t) and (t.precision, t.scale) == (38, 18):
        return "decimal"
    if pa.types.is_timestamp(t) and t.unit == "us" and t.tz in ("UTC", "+00:00"):
        return "timestamp"
    return str(t)


def read_pyarrow(path, tree, how):
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if how == "read_table":
        table = pq.read_table(path)
    elif how == "dataset":
        table = ds.dataset(path, format="parquet").to_table()
    else:
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    columns = [(f.name, arrow_kind(f.type)) for f in table.schema]
    grouped = table.group_by(GROUP_BY[tree]).aggregate([("value", "sum")])
    sums = dict(zip(grouped[GROUP_BY[tree]].to_pylist(), grouped["value_sum"].to_pylist()))
    return columns, table.num_rows, sums


# ----------------------------------------------------------------------------------- pandas


def read_pandas(path, tree):
    import pandas as pd

    df = pd.read_parquet(path)
    columns = []
    for name in df.columns:
        series = df[name]
        dtype = series.dtype
        present = series.dropna()
        sample = present.iloc[0] if len(present) else None
        if isinstance(dtype, pd.DatetimeTZDtype):
            kind = "timestamp" if str(dtype.tz) == "UTC" else str(dtype)
        elif isinstance(dtype, pd.CategoricalDtype):
            kind = f"category<{dtype.categories.dtype}>"
        elif isinstance(dtype, pd.StringDtype) or (dtype == object and isinstance(sample, str)):
            kind = "string"
        elif dtype == object and isinstance(sample, datetime.date) and not isinstance(sample, datetime.datetime):
            kind = "date"
        elif dtype == object and isinstance(sample, decimal.Decimal):
            kind = "decimal"
        elif dtype == object and sample is None:
            # An all-null column: its type is the file's, which pyarrow checks.
            kind = dict(TREES[tree]).get(name, "null")
        else:
            kind = str(dtype)
        columns.append((str(name), kind))
    sums = {}
    for key, values in df.groupby(GROUP_BY[tree], sort=True)["value"]:
        present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        # Every value must be a Decimal with the file's 18 decimals: no float on the way.
        if any(not isinstance(v, decimal.Decimal) for v in present):
            raise Mismatch(f"`value` holds {type(present[0]).__name__}, not Decimal")
        sums[key] = sum(present, decimal.Decimal(0)) if present else None
    return columns, len(df), sums


# ----------------------------------------------------------------------------------- Polars


def polars_kind(t):
    import polars as pl

    if t == pl.String:
        return "string"
    if t == pl.Date:
        return "date"
    if isinstance(t, pl.Decimal) and (t.precision, t.scale) == (38, 18):
        return "decimal"
    if isinstance(t, pl.Datetime) and t.time_unit == "us" and t.time_zone == "UTC":
        return "timestamp"
    return str(t)


def read_polars(path, tree):
    import polars as pl

    # A cloud path is a folder when it ends with `/` (Polars cannot list to find out).
    frame = pl.scan_parquet(path + "/" if "://" in path else path)
    schema = frame.collect_schema()
    columns = [(name, polars_kind(t)) for name, t in schema.items()]
    rows = frame.select(pl.len()).collect().item()
    grouped = frame.group_by(GROUP_BY[tree]).agg(pl.col("value").sum(), pl.col("value").count().alias("n"))
    sums = {key: (total if n else None) for key, total, n in grouped.collect().iter_rows()}
    return columns, rows, sums


# ----------------------------------------------------------------------------------- DuckDB


def duckdb_kind(t):
    t = str(t).upper()
    return {
        "VARCHAR": "string",
        "DATE": "date",
        "DECIMAL(38,18)": "decimal",
        "TIMESTAMP WITH TIME ZONE": "timestamp",
    }.get(t, t)


def duckdb_connect(s3):
    import duckdb

    con = duckdb.connect()
    if s3:
        import duckdb_extension_httpfs

        folder = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions")
        ext = next(
            os.path.join(root, f) for root, _, files in os.walk(folder) for f in files if f.endswith(".duckdb_extension")
        )
        con.execute(f"LOAD '{ext}'")
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        con.execute(
            "CREATE SECRET s3 (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)".replace(
                "?", "'{}'"
            ).format(
                os.environ["AWS_ACCESS_KEY_ID"],
                os.environ["AWS_SECRET_ACCESS_KEY"],
                os.environ.get("AWS_REGION", "us-east-1"),
                endpoint.split("://", 1)[-1],
                "true" if endpoint.startswith("https://") else "false",
            )
        )
    return con


def read_duckdb(path, tree, hive, s3):
    con = duckdb_connect(s3)
    glob = (path.rstrip("/") + "/*.parquet").replace("'", "''")
    option = "" if hive is None else f", hive_partitioning = {str(hive).lower()}"
    source = f"read_parquet('{glob}'{option})"
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    columns = [(name, duckdb_kind(t)) for name, t, *_ in described]
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    key = GROUP_BY[tree]
    sums = dict(con.execute(f"SELECT {key}, sum(value) FROM {source} GROUP BY {key}").fetchall())
    con.close()
    return columns, rows, sums


# ------------------------------------------------------------------------------------ Spark

_spark = None


def spark_unavailable():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java runtime (java on PATH or JAVA_HOME)"
    return None


def spark_session():
    global _spark
    if _spark is None:
        from pyspark.sql import SparkSession

        _spark = (
            SparkSession.builder.master("local[1]")
            .appName("kpipe-check-readers")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


def spark_kind(t):
    from pyspark.sql import types as T

    if isinstance(t, T.StringType):
        return "string"
    if isinstance(t, T.DateType):
        return "date"
    if isinstance(t, T.DecimalType) and (t.precision, t.scale) == (38, 18):
        return "decimal"
    if isinstance(t, T.TimestampType):
        return "timestamp"
    return t.simpleString()


def read_spark(path, tree):
    from pyspark.sql import functions as F

    df = spark_session().read.parquet(path)
    columns = [(f.name, spark_kind(f.dataType)) for f in df.schema.fields]
    rows = df.count()
    key = GROUP_BY[tree]
    sums = {r[key]: r["total"] for r in df.groupBy(key).agg(F.sum("value").alias("total")).collect()}
    return columns, rows, sums


# ------------------------------------------------------------------------------------- main


def readers(s3):
    found = [
        ("pandas read_parquet(dir)", read_pandas),
        ("pyarrow parquet.read_table(dir)", lambda p, t: read_pyarrow(p, t, "read_table")),
        ("pyarrow dataset(dir)", lambda p, t: read_pyarrow(p, t, "dataset")),
        ("pyarrow dataset(dir, partitioning='hive')", lambda p, t: read_pyarrow(p, t, "hive")),
        ("polars scan_parquet(dir)", read_polars),
        ("duckdb read_parquet('dir/*.parquet')", lambda p, t: read_duckdb(p, t, None, s3)),
        ("duckdb read_parquet(..., hive_partitioning = true)", lambda p, t: read_duckdb(p, t, True, s3)),
        ("duckdb read_parquet(..., hive_partitioning = false)", lambda p, t: read_duckdb(p, t, False, s3)),
    ]
    if not s3:
        found.append(("spark read.parquet(dir)", read_spark))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expected", help="JSON file of kpipe's totals")
    parser.add_argument("--local", help="kpipe's output directory (holding metrics/ and kpis/)")
    parser.add_argument("--s3", help="the same output written to s3://BUCKET/PREFIX")
    parser.add_argument("--require-spark", action="store_true", help="fail instead of skipping Spark")
    args = parser.parse_args()
    with open(args.expected) as f:
        expected = json.load(f)

    locations = [(args.local, False)] if args.local else []
    if args.s3:
        locations.append((args.s3.rstrip("/"), True))
    skip_spark = spark_unavailable()
    failures, skipped, passed = [], [], 0
    if skip_spark and args.require_spark:
        failures.append(f"spark: {skip_spark}")
    for base, s3 in locations:
        where = "s3" if s3 else "local"
        for name, read in readers(s3):
            if name.startswith("spark") and skip_spark:
                skipped.append(f"{name}: {skip_spark}")
                continue
            for tree in ("metrics", "kpis"):
                path = f"{base}/{tree}" if s3 else os.path.join(base, tree)
                label = f"{where}: {name} on {tree}/"
                try:
                    columns, rows, sums = read(path, tree)
                    check_columns(columns, tree)
                    check_totals(rows, sums, tree, expected)
                except Mismatch as e:
                    failures.append(f"{label}: {e}")
                    print(f"FAIL {label}: {e}", flush=True)
                    continue
                except Exception as e:  # a reader that cannot read the tree at all
                    detail = traceback.format_exception_only(type(e), e)[-1].strip()
                    failures.append(f"{label}: cannot read: {detail}")
                    print(f"FAIL {label}: cannot read: {detail}", flush=True)
                    continue
                passed += 1
                print(f"ok   {label}: {rows} rows, {len(columns)} columns, {len(sums)} sums", flush=True)
        if s3:
            skipped.append("s3: spark read.parquet: reading s3a:// needs hadoop-aws, which pyspark does not carry")
    for s in skipped:
        print(f"skipped {s}")
    if _spark is not None:
        _spark.stop()
    print(f"{passed} passed, {len(failures)} failed, {len(skipped)} skipped")
    if failures:
        print("\n".join(["mismatches:"] + failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
