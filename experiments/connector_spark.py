"""Spark SQL through pyspark: one Spark session per process, each statement a job group that is
cancelled at the timeout.

The session is started with the data source's `master` (`local[2]` by default: Spark inside
this process's own Java runtime, no cluster), its `warehouse_dir` (`spark.sql.warehouse.dir`)
and its further `conf` settings, always with the session time zone UTC, the web UI off and
few shuffle partitions (the readout's aggregates are small). Spark allows one session per
process and fixes most settings when it starts: a data source with other settings stops the
running session and starts its own. Every directory of Parquet files directly under
`warehouse_dir` is readable as a table of its name (a temporary view, registered afresh at
each connection, so new files are seen); other tables come from the catalog `conf`
configures, or by path (`parquet.\\`/data/events\\``).

Needs `pip install 'splitbase[spark]'` and a Java runtime (`make install-dev` installs
Debian's when `java` is missing). Databricks SQL warehouses are not supported yet (see
docs/warehouse.md).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from experiments.connector_base import ConnectorError, deadline, driver, timed_out

__all__ = ["SESSION_DEFAULTS", "SparkConnection", "spark_session", "spark_stop"]

DEFAULT_MASTER = "local[2]"
# Settings every session starts with; a data source's `conf` may change all but the time zone.
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
}

# Spark allows one session per process; it is shared by every statement and replaced only when
# a data source needs other settings. A statement holds the lock while it runs.
_lock = threading.RLock()
_session: Any = None
_settings: tuple[tuple[str, str], ...] | None = None
_views: set[str] = set()  # the warehouse directory's tables registered as views of the session


def _wanted(connection: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    master = str(connection.get("master") or DEFAULT_MASTER)
    conf = dict(SESSION_DEFAULTS)
    conf.update({str(k): str(v) for k, v in (connection.get("conf") or {}).items()})
    if connection.get("warehouse_dir"):
        conf["spark.sql.warehouse.dir"] = os.path.abspath(str(connection["warehouse_dir"]))
    # Timestamps without a zone are read and written as UTC, as every other engine's session.
    conf["spark.sql.session.timeZone"] = "UTC"
    return master, tuple(sorted(conf.items()))


def spark_session(connection: Mapping[str, Any]) -> Any:
    """The process's Spark session for this connection's settings (started or replaced as needed)."""
    global _session, _settings
    sql = driver("pyspark.sql", "spark")
    master, conf = _wanted(connection)
    settings = (("master", master), *conf)
    with _lock:
        if _session is not None and _settings == settings:
            return _session
        spark_stop()
        builder = sql.SparkSession.builder.master(master).appName("splitbase")
        for key, value in conf:
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j and the launcher raise plain exceptions (no Java, a bad master)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConnectorError(f"Spark could not start a session: {reason[:300]}") from exc
        session.sparkContext.setLogLevel("ERROR")
        # pyspark logs every failing query with its Java stack; the statement log reports it.
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        logging.getLogger("py4j").setLevel(logging.WARNING)
        _session, _settings = session, settings
        return session


def spark_stop() -> None:
    """Stop the process's Spark session, if one runs."""
    global _session, _settings
    with _lock:
        if _session is not None:
            _session.stop()
        _session, _settings = None, None
        _views.clear()


def _plain(value: Any) -> Any:
    """A value of a Spark row as plain Python: timestamps as naive UTC (pyspark gives them in
    the process's local time), decimals as they are."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, (str, int, float, bool, decimal.Decimal, dt.date)) or value is None:
        return value
    return str(value)


def _message(exc: BaseException) -> str:
    """The first line of Spark's error, without the Java stack or the query plan."""
    text = getattr(exc, "getMessage", lambda: None)() if hasattr(exc, "getMessage") else None
    text = (text or str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


class SparkConnection:
    engine = "spark"

    def __init__(self, connection: Mapping[str, Any]):
        self.session = spark_session(connection)
        errors = driver("pyspark.errors", "spark")
        py4j = driver("py4j.protocol", "spark")
        self.errors: tuple[type[BaseException], ...] = (errors.PySparkException, py4j.Py4JError)
        warehouse = connection.get("warehouse_dir")
        if warehouse:
            self._tables(os.path.abspath(str(warehouse)))

    def _tables(self, warehouse: str) -> None:
        """Each Parquet directory directly under the warehouse directory as a view of its name."""
        if not os.path.isdir(warehouse):
            raise ConnectorError(f"No Spark warehouse directory at {warehouse}.")
        with _lock:
            found = set()
            for name in sorted(os.listdir(warehouse)):
                path = os.path.join(warehouse, name)
                if os.path.isdir(path) and name.isidentifier() and any(
                        f.endswith(".parquet") for f in os.listdir(path)):
                    found.add(name)
                    try:
                        self.session.read.parquet(path).createOrReplaceTempView(name)
                    except self.errors as exc:
                        raise ConnectorError(f"Spark could not read the table {name}: {_message(exc)}") from exc
            for gone in _views - found:
                self.session.catalog.dropTempView(gone)
            _views.clear()
            _views.update(found)

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        context = self.session.sparkContext
        group = f"splitbase-{uuid.uuid4().hex}"
        with _lock, deadline(timeout, lambda: context.cancelJobGroup(group)) as fired:
            context.setJobGroup(group, "splitbase warehouse statement", interruptOnCancel=True)
            try:
                frame = self.session.sql(sql)
                rows = frame.collect()
            except self.errors as exc:
                if fired.is_set():
                    raise timed_out(timeout) from exc
                raise ConnectorError(f"Spark: {_message(exc)}") from exc
            finally:
                context.setLocalProperty("spark.jobGroup.id", None)
        return tuple(frame.columns), [tuple(_plain(v) for v in row) for row in rows]

    def version(self) -> str:
        return f"Spark {self.session.version} ({self.session.sparkContext.master})"

    def close(self) -> None:
        """The session stays for the next statement (one per process)."""
