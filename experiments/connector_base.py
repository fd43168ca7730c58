"""What every warehouse driver is built on: the connection protocols, the error whose message
is safe to show, and the helpers the drivers share (their optional driver imported, a secret
read from the environment, a statement cancelled at its deadline, the timeout's message, rows
written as CSV for a bulk load).

The drivers themselves are in `experiments.connectors` (DuckDB, PostgreSQL, chDB, and the
registry that connects and runs statements), `experiments.connector_snowflake` and
`experiments.connector_spark`; each imports from here, and this module imports none of them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["Connection", "ConnectorError", "Writer", "csv_write", "deadline", "driver", "secret", "timed_out"]


class ConnectorError(Exception):
    """A warehouse could not be reached or a statement failed; the message is safe to show."""


class Connection(Protocol):
    engine: str

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]: ...

    def version(self) -> str: ...

    def close(self) -> None: ...


class Writer(Protocol):
    """A connection that may write: statements run in one transaction, rows loaded in bulk."""

    engine: str

    def run(self, sql: str, timeout: float) -> int: ...

    def load(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], timeout: float) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def csv_write(path: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows as CSV for a bulk load (timestamps in ISO form; None as an empty, NULL field)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(
            tuple(v.isoformat(sep=" ") if hasattr(v, "isoformat") else v for v in row) for row in rows)


def secret(connection: Mapping[str, Any], field: str) -> str | None:
    """The value of the environment variable that the connection's `field` names (None without one)."""
    name = connection.get(field)
    if name is None:
        return None
    value = os.environ.get(str(name))
    if value is None:
        raise ConnectorError(f"The environment variable {name} (named by '{field}') is not set on this worker.")
    return value


def driver(module: str, extra: str) -> Any:
    """An engine's driver module, imported when first used; its extra named when it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConnectorError(f"The driver for this engine is not installed: pip install 'splitbase[{extra}]'.") \
            from exc


@contextmanager
def deadline(timeout: float, cancel: Callable[[], None]) -> Iterator[threading.Event]:
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


def timed_out(timeout: float) -> ConnectorError:
    """The error of a statement stopped at its timeout (the same words for every engine)."""
    return ConnectorError(f"The statement ran past its timeout of {timeout:g} s.")
