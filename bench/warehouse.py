"""A full readout in a columnar warehouse engine against, in the same run, the built-in
PostgreSQL readout that rebuilds its rollup from all events and a bare PostgreSQL scan.

The data is generated once, in PostgreSQL, by the readout benchmark's generator
(`bench/readout.py`: N exposed units, 1% of them seen in both variations, three slice
attributes, M events around the exposures, five metrics: conversion, revenue with CUPED and a
percentile cap, a click-through ratio, 7-day retention, a 3-step funnel). The same exposures
and events are then copied out (COPY to CSV) into a DuckDB file and a chDB (embedded
ClickHouse) MergeTree table, which become the experiment's data source in turn. Each step,
timed several times (median):

- baseline: a warm `SELECT count(*), sum(value)` over PostgreSQL's events table;
- PostgreSQL: `readout_run(force_full=True)`, the rollup rebuilt from all events;
- DuckDB and ClickHouse (chDB): `readout_run()` of the experiment with that data source: the
  statements compiled for the engine, run there, the statistics, the stored snapshot.

The warehouse readouts must give the built-in snapshot's units and primary estimate; a
mismatch is printed. Peak memory is the process's maximum RSS after each step (the embedded
engines run in this process). Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/splitbase python bench/warehouse.py \\
        [--units 1000000] [--events 10000000] [--repeat 3] [--reuse] [--engines duckdb,clickhouse]

It works in the database `<DATABASE_URL name>_readout_bench` (shared with bench/readout.py;
--reuse keeps data generated earlier) and a scratch directory (--scratch, default a temporary
one, removed at the end).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchdb
import readout as readout_bench

EXPOSURE_QUERY = ("SELECT unit AS unit_id, ts AS timestamp, experiment, variation, country, platform, plan "
                  "FROM {schema}exposures")
EVENT_QUERY = "SELECT unit AS unit_id, ts AS timestamp, name, value FROM {schema}events"


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _export(experiment: Any, scratch: Path) -> tuple[Path, Path]:
    """The experiment's exposures (a second one, in the other variation, for the units seen in
    both) and all events, as CSV files."""
    from django.db import connection

    from experiments.models import Phase

    phase = Phase.objects.get(experiment=experiment, number=1)
    exposures, events = scratch / "exposures.csv", scratch / "events.csv"
    variation = "CASE a.variation WHEN 0 THEN 'control' ELSE 'treatment' END"
    other = "CASE a.variation WHEN 0 THEN 'treatment' ELSE 'control' END"
    columns = ("a.attributes->>'country', a.attributes->>'platform', a.attributes->>'plan' "
               "FROM experiments_assignment a JOIN experiments_unit u ON u.id = a.unit_id "
               f"WHERE a.phase_id = {int(phase.pk)}")
    queries = {
        exposures: f"SELECT u.key, a.first_seen AT TIME ZONE 'UTC', '{experiment.key}', {variation}, {columns} "
                   f"UNION ALL SELECT u.key, a.first_seen AT TIME ZONE 'UTC' + interval '1 hour', "
                   f"'{experiment.key}', {other}, {columns} AND a.multiple",
        events: "SELECT u.key, e.ts AT TIME ZONE 'UTC', e.name, e.value FROM experiments_event e "
                "JOIN experiments_unit u ON u.id = e.unit_id",
    }
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    for path, query in queries.items():
        with raw.cursor() as cur, path.open("wb") as out, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
    return exposures, events


def _duckdb_load(exposures: Path, events: Path, scratch: Path) -> tuple[Path, Path, Path]:
    """A DuckDB file with both tables; the tables also as Parquet (for chDB)."""
    import duckdb

    path = scratch / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(
            f"CREATE TABLE exposures AS SELECT * FROM read_csv('{exposures}', header = false, columns = "
            "{'unit': 'VARCHAR', 'ts': 'TIMESTAMP', 'experiment': 'VARCHAR', 'variation': 'VARCHAR', "
            "'country': 'VARCHAR', 'platform': 'VARCHAR', 'plan': 'VARCHAR'})")
        conn.execute(
            f"CREATE TABLE events AS SELECT * FROM read_csv('{events}', header = false, columns = "
            "{'unit': 'VARCHAR', 'ts': 'TIMESTAMP', 'name': 'VARCHAR', 'value': 'DOUBLE'})")
        conn.execute(f"COPY exposures TO '{scratch / 'exposures.parquet'}' (FORMAT parquet)")
        conn.execute(f"COPY events TO '{scratch / 'events.parquet'}' (FORMAT parquet)")
    return path, scratch / "exposures.parquet", scratch / "events.parquet"


def _chdb_load(exposures: Path, events: Path, scratch: Path) -> Path:
    from experiments import connectors

    path = scratch / "chdb"
    path.mkdir(exist_ok=True)
    session = connectors.connect("clickhouse", {"path": str(path)})._session()  # type: ignore[attr-defined]
    session.query("CREATE DATABASE IF NOT EXISTS dw")
    session.query("DROP TABLE IF EXISTS dw.exposures")
    session.query("DROP TABLE IF EXISTS dw.events")
    session.query("CREATE TABLE dw.exposures (unit String, ts DateTime64(6, 'UTC'), experiment String, "
                  "variation String, country Nullable(String), platform Nullable(String), plan Nullable(String)) "
                  "ENGINE = MergeTree ORDER BY unit")
    session.query("CREATE TABLE dw.events (unit String, ts DateTime64(6, 'UTC'), name LowCardinality(String), "
                  "value Float64) ENGINE = MergeTree ORDER BY (name, unit, ts)")
    session.query(f"INSERT INTO dw.exposures SELECT * FROM file('{exposures}', Parquet)")
    session.query(f"INSERT INTO dw.events SELECT * FROM file('{events}', Parquet)")
    return path


def _primary(snapshot: Any) -> tuple[int, list[float]]:
    metric = next(m for m in snapshot.metrics if m["key"] == "bench-purchase")
    return int(snapshot.units), [float(v["mean"]) for v in metric["variations"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default=None, help="default: <DATABASE_URL name>_readout_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run with the same sizes")
    parser.add_argument("--engines", default="duckdb,clickhouse")
    parser.add_argument("--scratch", default=None, help="where the engines' files go (default: a temporary dir)")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]

    benchdb.configure("readout_bench", args.database, debug=False)
    from audit.types import Actor
    from experiments import connectors, services
    from experiments.models import Assignment, DataSource, Event, Experiment
    from experiments.readout_jobs import readout_run

    experiment = readout_bench._setup_experiment()
    have = (Assignment.objects.filter(experiment=experiment).count(), Event.objects.count())
    if not args.reuse or have[0] != args.units or have[1] < args.events:
        readout_bench._generate(experiment, args.units, args.events)
    Experiment.objects.filter(pk=experiment.pk).update(data_source=None)
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="splitbase-wh-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float, float]] = []
    try:
        readout_bench._baseline()  # warm the cache
        scan, (count, _) = _timed(readout_bench._baseline, args.repeat)
        rows.append((f"PostgreSQL: bare scan, count(*), sum(value) over {count:,} events", scan, _peak_mib()))

        def built_in() -> Any:
            snapshot = readout_run(experiment_id=experiment.pk, force_full=True)
            assert snapshot is not None and snapshot.status == "success", snapshot and snapshot.error
            return snapshot

        seconds, reference = _timed(built_in, max(1, args.repeat - 1))
        rows.append(("PostgreSQL: readout, rollup rebuilt from all events", seconds, _peak_mib()))

        print("copying the data out to the engines ...", flush=True)
        start = time.perf_counter()
        exposures_csv, events_csv = _export(experiment, scratch)
        duck_path, exposures_pq, events_pq = _duckdb_load(exposures_csv, events_csv, scratch)
        sources: dict[str, tuple[dict[str, Any], str]] = {"duckdb": ({"path": str(duck_path)}, "")}
        if "clickhouse" in engines:
            sources["clickhouse"] = ({"path": str(_chdb_load(exposures_pq, events_pq, scratch))}, "dw.")
        print(f"  copied in {time.perf_counter() - start:.0f} s", flush=True)

        actor = Actor.system("bench")
        mismatches = []
        for engine in engines:
            connection, schema = sources[engine]
            key = f"bench-{engine}"
            DataSource.objects.filter(key=key).delete()
            services.data_source_create(
                actor=actor, key=key, engine=engine, connection=connection, timeout_seconds=3600,
                exposure_query=EXPOSURE_QUERY.format(schema=schema), event_query=EVENT_QUERY.format(schema=schema))
            Experiment.objects.filter(pk=experiment.pk).update(data_source=DataSource.objects.get(key=key))

            def warehouse() -> Any:
                snapshot = readout_run(experiment_id=experiment.pk)
                assert snapshot is not None and snapshot.status == "success", snapshot and snapshot.error
                return snapshot

            seconds, snapshot = _timed(warehouse, args.repeat)
            label = {"duckdb": "DuckDB", "clickhouse": "ClickHouse (chDB)"}[engine]
            rows.append((f"{label}: full readout in the engine", seconds, _peak_mib()))
            units, means = _primary(snapshot)
            ref_units, ref_means = _primary(reference)
            if units != ref_units or any(abs(a - b) > 1e-9 * max(1.0, abs(b))
                                         for a, b in zip(means, ref_means, strict=True)):
                mismatches.append(f"{label}: units {units:,} / means {means} vs PostgreSQL {ref_units:,} / {ref_means}")
        Experiment.objects.filter(pk=experiment.pk).update(data_source=None)
    finally:
        if "clickhouse" in engines:
            connectors.chdb_release(str(scratch / "chdb"))
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(f"Warehouse readout benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, {benchdb.machine(postgres=True)}")
    print(f"{args.units:,} exposed units, {count:,} events, 5 metrics (conversion, revenue with CUPED and a "
          "percentile cap, ratio, 7-day retention, 3-step funnel), 3 slice attributes; median of "
          f"{args.repeat} (PostgreSQL rebuild: {max(1, args.repeat - 1)})")
    print()
    print(f"| {'step':<70} | {'seconds':>8} | {'x scan':>7} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 72}|{'-' * 10}|{'-' * 9}|{'-' * 14}|")
    for label, seconds, peak in rows:
        print(f"| {label:<70} | {seconds:>8.2f} | {seconds / scan:>7.2f} | {peak:>12.0f} |")
    print()
    print(f"Snapshot: {reference.units:,} units, {reference.multiple_exposure_units:,} with multiple exposures")
    print("Same units and primary estimate on every engine" if not mismatches else "MISMATCH: " + "; ".join(mismatches))
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
