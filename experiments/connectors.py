"""Each warehouse engine's own driver behind one small interface: connect, run a statement
with a timeout, name the engine's version.

Drivers are optional extras (`pip install splitbase[duckdb]`, `[clickhouse]`, `[spark]`,
`[snowflake]`; PostgreSQL's driver is always there) and imported only when a data source of
theirs is used. Every statement goes through `statement_run`, which stops it at the timeout
and logs the engine, the data source, what the statement was for, its duration and its row
count; connection settings and secrets never reach the log or an error message. Secrets come
from the environment variables the connection names (`password_env`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Connection", "ConnectorError", "StatementResult", "chdb_release", "connect", "statement_run"]

logger = logging.getLogger("splitbase.warehouse")


class ConnectorError(Exception):
    """A warehouse could not be reached or a statement failed; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class StatementResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    seconds: float


class Connection(Protocol):
    engine: str

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]: ...

    def version(self) -> str: ...

    def close(self) -> None: ...


def _secret(connection: Mapping[str, Any], field: str) -> str | None:
    name = connection.get(field)
    if name is None:
        return None
    value = os.environ.get(str(name))
    if value is None:
        raise ConnectorError(f"The environment variable {name} (named by '{field}') is not set on this worker.")
    return value


def _driver(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConnectorError(f"The driver for this engine is not installed: pip install 'splitbase[{extra}]'.") \
            from exc


@contextmanager
def _deadline(timeout: float, cancel: Callable[[], None]) -> Iterator[threading.Event]:
    """Call `cancel` from another thread when the statement runs past `timeout` seconds."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        cancel()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


# DuckDB ----------------------------------------------------------------------------------------


class DuckDBConnection:
    engine = "duckdb"

    def __init__(self, connection: Mapping[str, Any]):
        duckdb = _driver("duckdb", "duckdb")
        path = str(connection["path"])
        if not os.path.exists(path):
            raise ConnectorError(f"No DuckDB database file at {path}.")
        try:
            self.conn = duckdb.connect(path, read_only=True)
            self.conn.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise ConnectorError(f"DuckDB could not open the database: {exc}") from exc
        self.errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        with _deadline(timeout, self.conn.interrupt) as fired:
            try:
                cursor = self.conn.execute(sql)
                rows = cursor.fetchall()
            except self.errors as exc:
                if fired.is_set():
                    raise ConnectorError(f"The statement ran past its timeout of {timeout:g} s.") from exc
                raise ConnectorError(f"DuckDB: {exc}") from exc
        return tuple(d[0] for d in cursor.description or ()), rows

    def version(self) -> str:
        row = self.conn.execute("SELECT version()").fetchone()
        return f"DuckDB {row[0] if row else '?'}"

    def close(self) -> None:
        self.conn.close()


# PostgreSQL -------------------------------------------------------------------------------------


class PostgresConnection:
    engine = "postgres"

    def __init__(self, connection: Mapping[str, Any], connect_timeout: float):
        import psycopg

        params: dict[str, Any] = {k: connection[k] for k in ("host", "port", "dbname", "user", "sslmode")
                                  if k in connection}
        password = _secret(connection, "password_env")
        if password is not None:
            params["password"] = password
        try:
            self.conn = psycopg.connect(**params, connect_timeout=max(1, int(connect_timeout)), autocommit=True,
                                        options="-c TimeZone=UTC -c default_transaction_read_only=on")
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
            raise ConnectorError(f"The statement ran past its timeout of {timeout:g} s.") from exc
        except psycopg.Error as exc:
            raise ConnectorError(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc

    def version(self) -> str:
        with self.conn.cursor() as cur:
            cur.execute("SHOW server_version")
            row = cur.fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    def close(self) -> None:
        self.conn.close()


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
        self.session_module = _driver("chdb.session", "clickhouse")
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
                    raise ConnectorError(f"The statement ran past its timeout of {timeout:g} s.") from exc
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

Factory = Callable[[Mapping[str, Any], float], Connection]
_FACTORIES: dict[str, Factory] = {
    "duckdb": lambda c, t: DuckDBConnection(c),
    "postgres": lambda c, t: PostgresConnection(c, t),
    "clickhouse": lambda c, t: ChdbConnection(c),
}


def register(engine: str, factory: Factory) -> None:
    _FACTORIES[engine] = factory


def connect(engine: str, connection: Mapping[str, Any], *, timeout: float = 30.0) -> Connection:
    factory = _FACTORIES.get(engine)
    if factory is None:
        raise ConnectorError(f"No connector for engine '{engine}'.")
    return factory(connection, timeout)


def statement_run(conn: Connection, sql: str, *, timeout: float, source: str, purpose: str) -> StatementResult:
    """Run one statement, stopped at `timeout` seconds, and log what it cost."""
    started = time.monotonic()
    outcome = "ok"
    rows: list[tuple[Any, ...]] = []
    try:
        columns, rows = conn.execute(sql, timeout)
    except ConnectorError as exc:
        outcome = f"error: {exc}"
        raise
    finally:
        seconds = time.monotonic() - started
        logger.info(
            "warehouse statement engine=%s source=%s purpose=%s duration_ms=%d rows=%d outcome=%s",
            conn.engine, source, purpose, int(seconds * 1000), len(rows), outcome[:300],
            extra={"engine": conn.engine, "data_source": source, "purpose": purpose,
                   "duration_ms": int(seconds * 1000), "rows": len(rows)},
        )
    return StatementResult(columns=columns, rows=rows, seconds=seconds)
