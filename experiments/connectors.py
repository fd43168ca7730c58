"""Each warehouse engine's own driver behind one small interface: connect, run a statement
with a timeout, name the engine's version.

Drivers are optional extras (`pip install splitbase[duckdb]`, `[clickhouse]`, `[spark]`,
`[snowflake]`; PostgreSQL's driver is always there) and imported only when a data source of
theirs is used. Every statement goes through `statement_run`, which stops it at the timeout
and logs the engine, the data source, what the statement was for, its duration and its row
count; connection settings and secrets never reach the log or an error message. Secrets come
from the environment variables the connection names (`password_env`). An engine whose driver
needs more than a few lines has a module of its own (`experiments.connector_snowflake`,
`experiments.connector_spark`), loaded by its factory below. Every driver is built on
`experiments.connector_base` (the protocols, `ConnectorError`, `driver`, `secret`, `deadline`,
`timed_out`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from experiments.connector_base import (
    Connection,
    ConnectorError,
    Writer,
    csv_write,
    deadline,
    driver,
    secret,
    timed_out,
)

__all__ = ["Connection", "ConnectorError", "StatementResult", "Writer", "chdb_release", "connect", "connect_writer",
           "register", "rows_append", "statement_run", "timed_out"]

logger = logging.getLogger("splitbase.warehouse")


@dataclass(frozen=True, slots=True)
class StatementResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    seconds: float


@dataclass(slots=True)
class _Logged:
    rows: int = 0
    seconds: float = 0.0


@contextmanager
def _logged(engine: str, source: str, purpose: str) -> Iterator[_Logged]:
    """Time what runs inside and log it on `splitbase.warehouse`: engine, data source, purpose,
    duration, rows and outcome (a ConnectorError's message, which never holds settings)."""
    log = _Logged()
    started = time.monotonic()
    outcome = "ok"
    try:
        yield log
    except ConnectorError as exc:
        outcome = f"error: {exc}"
        raise
    finally:
        log.seconds = time.monotonic() - started
        _statement_log(engine, source, purpose, log.seconds, log.rows, outcome)


# DuckDB ----------------------------------------------------------------------------------------


class DuckDBConnection:
    engine = "duckdb"

    def __init__(self, connection: Mapping[str, Any]):
        duckdb = driver("duckdb", "duckdb")
        path = str(connection["path"])
        if not os.path.exists(path):
            raise ConnectorError(f"No DuckDB database file at {path}.")
        try:
            self.conn = duckdb.connect(path, read_only=True)
            self.conn.execute("SET TimeZone = 'UTC'")
            # Checked when stored (`experiments.warehouse.engines`): a size, a whole number.
            if "memory_limit" in connection:
                self.conn.execute("SET memory_limit = ?", [str(connection["memory_limit"])])
            if "threads" in connection:
                self.conn.execute(f"SET threads = {int(connection['threads'])}")
        except duckdb.Error as exc:
            raise ConnectorError(f"DuckDB could not open the database: {exc}") from exc
        self.errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        with deadline(timeout, self.conn.interrupt) as fired:
            try:
                cursor = self.conn.execute(sql)
                rows = cursor.fetchall()
            except self.errors as exc:
                if fired.is_set():
                    raise timed_out(timeout) from exc
                raise ConnectorError(f"DuckDB: {exc}") from exc
        return tuple(d[0] for d in cursor.description or ()), rows

    def version(self) -> str:
        row = self.conn.execute("SELECT version()").fetchone()
        return f"DuckDB {row[0] if row else '?'}"

    def close(self) -> None:
        self.conn.close()


class DuckDBWriter:
    """The database file opened for writing (one writing process at a time: DuckDB's file lock)."""

    engine = "duckdb"

    def __init__(self, connection: Mapping[str, Any]):
        duckdb = driver("duckdb", "duckdb")
        path = str(connection["path"])
        if not os.path.exists(path):
            raise ConnectorError(f"No DuckDB database file at {path}.")
        try:
            self.conn = duckdb.connect(path)
            self.conn.execute("SET TimeZone = 'UTC'")
            self.conn.execute("BEGIN TRANSACTION")
        except duckdb.Error as exc:
            raise ConnectorError(f"DuckDB could not open the database for writing: {exc}") from exc
        self.errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def run(self, sql: str, timeout: float) -> int:
        with deadline(timeout, self.conn.interrupt) as fired:
            try:
                row = self.conn.execute(sql).fetchone()
            except self.errors as exc:
                if fired.is_set():
                    raise timed_out(timeout) from exc
                raise ConnectorError(f"DuckDB: {exc}") from exc
        # DuckDB answers an INSERT with the number of rows it wrote.
        return int(row[0]) if row and isinstance(row[0], int) else 0

    def load(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], timeout: float) -> None:
        """Through a CSV file and COPY: DuckDB inserts parameter rows one by one, far slower."""
        with tempfile.TemporaryDirectory(prefix="splitbase-load-") as scratch:
            path = os.path.join(scratch, "rows.csv")
            csv_write(path, rows)
            with deadline(timeout, self.conn.interrupt):
                try:
                    self.conn.execute(f"COPY \"{table}\" FROM '{path}' (FORMAT csv, HEADER false)")
                except self.errors as exc:
                    raise ConnectorError(f"DuckDB: {exc}") from exc

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# PostgreSQL -------------------------------------------------------------------------------------


class PostgresConnection:
    engine = "postgres"

    def __init__(self, connection: Mapping[str, Any], connect_timeout: float, *, writable: bool = False):
        import psycopg

        params: dict[str, Any] = {k: connection[k] for k in ("host", "port", "dbname", "user", "sslmode")
                                  if k in connection}
        password = secret(connection, "password_env")
        if password is not None:
            params["password"] = password
        try:
            self.conn = psycopg.connect(
                **params, connect_timeout=max(1, int(connect_timeout)), autocommit=not writable,
                options="-c TimeZone=UTC" + ("" if writable else " -c default_transaction_read_only=on"))
        except psycopg.Error as exc:
            # The driver's message names host and database, never the password.
            raise ConnectorError(f"PostgreSQL: could not connect ({str(exc).strip().splitlines()[0]})") from None
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                # A readout's statements aggregate whole tables: a nested loop is never the right
                # join there, and a planner without statistics of fresh tables (or of CTEs)
                # would pick one and run for minutes.
                cur.execute("SET enable_nestloop = off")
                cur.execute(sql.encode())
                rows = cur.fetchall()
                return tuple(d.name for d in cur.description or ()), rows
        except psycopg.errors.QueryCanceled as exc:
            raise timed_out(timeout) from exc
        except psycopg.Error as exc:
            raise ConnectorError(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc

    def version(self) -> str:
        with self.conn.cursor() as cur:
            cur.execute("SHOW server_version")
            row = cur.fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    def close(self) -> None:
        self.conn.close()


class PostgresWriter(PostgresConnection):
    """A read-write session; its statements run in one transaction, committed by `commit`."""

    def __init__(self, connection: Mapping[str, Any], connect_timeout: float):
        super().__init__(connection, connect_timeout, writable=True)

    def run(self, sql: str, timeout: float) -> int:
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                cur.execute(sql.encode())
                return max(0, cur.rowcount)
        except psycopg.errors.QueryCanceled as exc:
            raise timed_out(timeout) from exc
        except psycopg.Error as exc:
            raise ConnectorError(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc

    def load(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], timeout: float) -> None:
        import psycopg

        names = ", ".join(f'"{c}"' for c in columns)
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                with cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            raise ConnectorError(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc

    def commit(self) -> None:
        self.conn.commit()


# ClickHouse (chDB) ----------------------------------------------------------------------------

# chDB runs one embedded engine per process: its session is kept and shared, one statement at a time.
_chdb_lock = threading.Lock()
_chdb_sessions: dict[str, Any] = {}


def _plain(value: Any) -> Any:
    """A value of a DataFrame cell as plain Python (missing values as None)."""
    if value is None:
        return None
    try:
        import pandas

        if pandas.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


class ChdbConnection:
    engine = "clickhouse"

    def __init__(self, connection: Mapping[str, Any]):
        self.session_module = driver("chdb.session", "clickhouse")
        self.path = str(connection["path"])
        if not os.path.isdir(self.path):
            raise ConnectorError(f"No chDB data directory at {self.path}.")

    def _session(self) -> Any:
        session = _chdb_sessions.get(self.path)
        if session is None:
            for other in list(_chdb_sessions.values()):
                other.close()
            _chdb_sessions.clear()
            session = _chdb_sessions[self.path] = self.session_module.Session(self.path)
        return session

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        settings = (f" SETTINGS max_execution_time = {max(1, int(timeout))}, join_use_nulls = 1, "
                    "session_timezone = 'UTC'")
        with _chdb_lock:
            try:
                frame = self._session().query(sql + settings, "DataFrame")
            except Exception as exc:  # chDB raises its own RuntimeError subclasses
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if "TIMEOUT_EXCEEDED" in str(exc) or "Timeout exceeded" in str(exc):
                    raise timed_out(timeout) from exc
                raise ConnectorError(f"ClickHouse: {message[:500]}") from exc
        columns = tuple(str(c) for c in frame.columns)
        rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]
        return columns, rows

    def version(self) -> str:
        _, rows = self.execute("SELECT version()", 30)
        return f"ClickHouse {rows[0][0] if rows else '?'} (chDB)"

    def close(self) -> None:
        """The session stays open for the next statement (chDB keeps one per process)."""


def chdb_release(path: str) -> None:
    """Close the process's chDB session on `path` (so that another writer may open the directory)."""
    with _chdb_lock:
        session = _chdb_sessions.pop(path, None)
        if session is not None:
            session.close()


# Connecting and running ------------------------------------------------------------------------

def _snowflake(connection: Mapping[str, Any], timeout: float) -> Connection:
    from experiments.connector_snowflake import SnowflakeConnection

    return SnowflakeConnection(connection, timeout)


def _spark(connection: Mapping[str, Any]) -> Connection:
    from experiments.connector_spark import SparkConnection

    return SparkConnection(connection)


Factory = Callable[[Mapping[str, Any], float], Connection]
_FACTORIES: dict[str, Factory] = {
    "duckdb": lambda c, t: DuckDBConnection(c),
    "postgres": lambda c, t: PostgresConnection(c, t),
    "clickhouse": lambda c, t: ChdbConnection(c),
    "snowflake": _snowflake,
    "spark": lambda c, t: _spark(c),
}


def register(engine: str, factory: Factory) -> None:
    _FACTORIES[engine] = factory


def connect(engine: str, connection: Mapping[str, Any], *, timeout: float = 30.0) -> Connection:
    factory = _FACTORIES.get(engine)
    if factory is None:
        raise ConnectorError(f"No connector for engine '{engine}'.")
    return factory(connection, timeout)


_WRITERS: dict[str, Callable[[Mapping[str, Any], float], Writer]] = {
    "duckdb": lambda c, t: DuckDBWriter(c),
    "postgres": lambda c, t: PostgresWriter(c, t),
}


def connect_writer(engine: str, connection: Mapping[str, Any], *, timeout: float = 30.0) -> Writer:
    """A connection that may write (exporting exposures); only DuckDB and PostgreSQL have one."""
    factory = _WRITERS.get(engine)
    if factory is None:
        raise ConnectorError(f"Engine '{engine}' is read only here: exposures are exported to DuckDB and "
                             "PostgreSQL sources.")
    return factory(connection, timeout)


def _statement_log(engine: str, source: str, purpose: str, seconds: float, rows: int, outcome: str) -> None:
    """One line per statement (or export) on `splitbase.warehouse`: never its SQL or the connection."""
    logger.info(
        "warehouse statement engine=%s source=%s purpose=%s duration_ms=%d rows=%d outcome=%s",
        engine, source, purpose, int(seconds * 1000), rows, outcome[:300],
        extra={"engine": engine, "data_source": source, "purpose": purpose, "duration_ms": int(seconds * 1000),
               "rows": rows},
    )


def rows_append(writer: Writer, *, statements: Any, rows: list[tuple[Any, ...]], timeout: float, source: str) -> int:
    """Stage `rows` and append those the table lacks (`experiments.warehouse.export`), in one
    transaction; the number appended. Logged as every statement is."""
    from experiments.warehouse.export import STAGING

    with _logged(writer.engine, source, "exposure export") as log:
        writer.run(statements.create, timeout)
        writer.run(statements.staging, timeout)
        writer.run(statements.clear, timeout)
        writer.load(STAGING, statements.columns, rows, timeout)
        log.rows = writer.run(statements.append, timeout)
        writer.run(statements.clear, timeout)
        writer.commit()
    return log.rows


def statement_run(conn: Connection, sql: str, *, timeout: float, source: str, purpose: str) -> StatementResult:
    """Run one statement, stopped at `timeout` seconds, and log what it cost."""
    with _logged(conn.engine, source, purpose) as log:
        columns, rows = conn.execute(sql, timeout)
        log.rows = len(rows)
    return StatementResult(columns=columns, rows=rows, seconds=log.seconds)
