"""The same simulated exposures and events loaded into each engine, as a data source reads them.

Each loader takes the rows and a scratch directory and yields the data source's engine,
connection and queries (written in that engine's dialect); it removes what it created."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection


@dataclass(frozen=True)
class Rows:
    exposures: list[tuple[str, datetime, str, str, str | None, str | None]]  # unit, ts, experiment, variation, …
    events: list[tuple[str, datetime, str, float]]  # unit, ts, name, value


@dataclass(frozen=True)
class Source:
    engine: str
    connection: dict[str, Any]
    exposure_query: str
    event_query: str


def _ts(value: Any) -> datetime:
    """A timestamp of the events API as naive UTC."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC).replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).astimezone(UTC).replace(tzinfo=None)


def rows_of(items: list[dict[str, Any]]) -> Rows:
    exposures, events = [], []
    for item in items:
        if item["type"] == "exposure":
            attrs = item.get("attributes") or {}
            exposures.append((item["unit_id"], _ts(item["timestamp"]), item["experiment"], item["variation"],
                              attrs.get("country"), attrs.get("platform")))
        else:
            events.append((item["unit_id"], _ts(item["timestamp"]), item["name"], float(item.get("value", 1.0))))
    return Rows(exposures, events)


EXPOSURES = ("SELECT user_id AS unit_id, exposed_at AS timestamp, experiment_key AS experiment, arm AS variation, "
             "country, platform FROM {table}")
EVENTS = "SELECT user_id AS unit_id, event_time AS timestamp, event AS name, amount AS value FROM {table}"


@contextmanager
def duckdb_source(rows: Rows, scratch: Path) -> Iterator[Source]:
    import duckdb

    path = scratch / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE exposures (user_id VARCHAR, exposed_at TIMESTAMP, experiment_key VARCHAR, "
                     "arm VARCHAR, country VARCHAR, platform VARCHAR)")
        conn.execute("CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP, event VARCHAR, amount DOUBLE)")
        conn.executemany("INSERT INTO exposures VALUES (?, ?, ?, ?, ?, ?)", rows.exposures)
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows.events)
    yield Source("duckdb", {"path": str(path)}, EXPOSURES.format(table="exposures"),
                 EVENTS.format(table="events"))


@contextmanager
def postgres_source(rows: Rows, scratch: Path) -> Iterator[Source]:
    """A database of its own on the test server: a warehouse other than the service's database."""
    settings = connection.settings_dict
    params: dict[str, Any] = {"host": settings["HOST"] or "127.0.0.1", "port": int(settings["PORT"] or 5432),
              "user": settings["USER"] or "postgres"}
    if settings.get("PASSWORD"):
        params["password"] = settings["PASSWORD"]
    name = f"splitbase_dw_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(**params, dbname=name) as conn:
            conn.execute("CREATE TABLE exposures (user_id text, exposed_at timestamptz, experiment_key text, "
                         "arm text, country text, platform text)")
            conn.execute("CREATE TABLE events (user_id text, event_time timestamptz, event text, amount float8)")
            with conn.cursor() as cur:
                cur.execute("SET TimeZone = 'UTC'")
                cur.executemany("INSERT INTO exposures VALUES (%s, %s, %s, %s, %s, %s)", rows.exposures)
                cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s)", rows.events)
        source_connection: dict[str, Any] = {"host": params["host"], "port": params["port"], "dbname": name,
                                             "user": params["user"]}
        if "password" in params:
            os.environ["SPLITBASE_TEST_DW_PASSWORD"] = params["password"]
            source_connection["password_env"] = "SPLITBASE_TEST_DW_PASSWORD"
        yield Source("postgres", source_connection, EXPOSURES.format(table="exposures"),
                     EVENTS.format(table="events"))
    finally:
        with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def clickhouse_source(rows: Rows, scratch: Path) -> Iterator[Source]:
    """A chDB data directory with MergeTree tables, loaded through the connector's own session."""
    from experiments import connectors

    path = scratch / "chdb"
    path.mkdir()
    conn = connectors.connect("clickhouse", {"path": str(path)})
    session = conn._session()  # type: ignore[attr-defined]
    session.query("CREATE DATABASE IF NOT EXISTS dw")
    session.query("CREATE TABLE dw.exposures (user_id String, exposed_at DateTime64(6, 'UTC'), experiment_key "
                  "String, arm String, country Nullable(String), platform Nullable(String)) "
                  "ENGINE = MergeTree ORDER BY user_id")
    session.query("CREATE TABLE dw.events (user_id String, event_time DateTime64(6, 'UTC'), event String, "
                  "amount Float64) ENGINE = MergeTree ORDER BY (user_id, event_time)")

    def literal(value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, datetime):
            return f"'{value.isoformat(sep=' ', timespec='microseconds')}'"
        if isinstance(value, float):
            return repr(value)
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    for table, batch in (("exposures", rows.exposures), ("events", rows.events)):
        for start in range(0, len(batch), 5000):
            values = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in batch[start:start + 5000])
            session.query(f"INSERT INTO dw.{table} VALUES {values}")
    try:
        yield Source("clickhouse", {"path": str(path)}, EXPOSURES.format(table="dw.exposures"),
                     EVENTS.format(table="dw.events"))
    finally:
        connectors.chdb_release(str(path))


@contextmanager
def snowflake_source(rows: Rows, scratch: Path) -> Iterator[Source]:
    """A database of its own in the Snowflake emulator, loaded through the real driver."""
    from tests.integration.experiments.warehouses import snowflake_emulator

    with snowflake_emulator.database() as (fields, conn):
        conn.cursor().execute("CREATE TABLE exposures (user_id VARCHAR, exposed_at TIMESTAMP_NTZ, experiment_key "
                              "VARCHAR, arm VARCHAR, country VARCHAR, platform VARCHAR)")
        conn.cursor().execute("CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP_NTZ, event VARCHAR, "
                              "amount DOUBLE)")
        snowflake_emulator.load(conn, "exposures", rows.exposures, scratch)
        snowflake_emulator.load(conn, "events", rows.events, scratch)
        yield Source("snowflake", fields, EXPOSURES.format(table="analytics.exposures"),
                     EVENTS.format(table="analytics.events"))


_spark_warehouse: list[Path] = []


def spark_warehouse() -> Path:
    """The test process's Spark warehouse directory: one for the process, so that every Spark
    data source of the tests has the same settings and shares the one Spark session."""
    if not _spark_warehouse:
        path = Path(tempfile.mkdtemp(prefix="splitbase-spark-"))
        atexit.register(shutil.rmtree, path, True)
        _spark_warehouse.append(path)
    return _spark_warehouse[0]


def spark_tables(rows: Rows) -> tuple[dict[str, Any], str, str]:
    """The rows as two Parquet tables of the process's Spark warehouse (names of their own):
    the connection and the two tables' names."""
    from pyspark.sql import types as T

    from experiments.connector_spark import spark_session

    warehouse = spark_warehouse()
    connection: dict[str, Any] = {"master": "local[2]", "warehouse_dir": str(warehouse)}
    session = spark_session(connection)
    text, stamp = T.StringType(), T.TimestampType()
    suffix = uuid.uuid4().hex[:8]
    tables = (
        (f"exposures_{suffix}", rows.exposures, T.StructType([
            T.StructField("user_id", text), T.StructField("exposed_at", stamp), T.StructField("experiment_key", text),
            T.StructField("arm", text), T.StructField("country", text), T.StructField("platform", text)])),
        (f"events_{suffix}", rows.events, T.StructType([
            T.StructField("user_id", text), T.StructField("event_time", stamp), T.StructField("event", text),
            T.StructField("amount", T.DoubleType())])),
    )
    for name, batch, schema in tables:
        # Aware timestamps: pyspark reads naive ones in the process's local time zone.
        aware = [tuple(v.replace(tzinfo=UTC) if isinstance(v, datetime) else v for v in row) for row in batch]
        session.createDataFrame(aware, schema).coalesce(1).write.parquet(str(warehouse / name))
    return connection, tables[0][0], tables[1][0]


@contextmanager
def spark_source(rows: Rows, scratch: Path) -> Iterator[Source]:
    """Parquet tables in the Spark warehouse directory, read by a local Spark session."""
    connection, exposures, events = spark_tables(rows)
    try:
        yield Source("spark", connection, EXPOSURES.format(table=exposures), EVENTS.format(table=events))
    finally:
        for name in (exposures, events):
            shutil.rmtree(Path(connection["warehouse_dir"]) / name, ignore_errors=True)


Loader = Callable[[Rows, Path], AbstractContextManager[Source]]
# The engines the equality test runs on (each one's driver is installed by `make install-dev`).
LOADERS: dict[str, Loader] = {
    "duckdb": duckdb_source,
    "postgres": postgres_source,
    "clickhouse": clickhouse_source,
    "snowflake": snowflake_source,
    "spark": spark_source,
}
