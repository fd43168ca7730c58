"""The Snowflake emulator the Snowflake tests run against: fakesnow's HTTP server, in a process of
its own on a loopback port, which the real `snowflake-connector-python` driver logs in to and
sends its statements to (its query and abort requests), as it would to an account.

fakesnow answers Snowflake's protocol and translates Snowflake SQL to DuckDB, which runs it: the
driver, the dialect's rendering and the statements' logic are exercised for real; Snowflake's
own engine is not (docs/warehouse.md says what that leaves untested). One server serves the
test process; each data source gets a database of its own in it.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from experiments.connector_base import csv_write

PASSWORD_ENV = "SPLITBASE_TEST_SNOWFLAKE_PASSWORD"
_server: dict[str, Any] = {}


def _stop() -> None:
    process = _server.pop("process", None)
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def emulator_port() -> int:
    """The port of the emulator serving this test process, started on first use."""
    process = _server.get("process")
    if process is not None and process.poll() is None:
        return int(_server["port"])
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = open(os.devnull, "wb")  # noqa: SIM115 - the server's access log, held while it runs
    process = subprocess.Popen([sys.executable, "-m", "fakesnow", "--server", "--host", "127.0.0.1", "--port",
                                str(port)], stdout=log, stderr=log)
    _server.update(process=process, port=port)
    atexit.register(_stop)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The Snowflake emulator exited with {process.returncode}.")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.2)
    _stop()
    raise RuntimeError("The Snowflake emulator did not start within 60 s.")


def connection_fields(database: str, schema: str = "ANALYTICS") -> dict[str, Any]:
    """A data source's connection to the emulator (its password, any, from the environment)."""
    os.environ[PASSWORD_ENV] = "emulator"
    return {"account": "splitbase-test", "user": "splitbase", "password_env": PASSWORD_ENV, "host": "127.0.0.1",
            "port": emulator_port(), "protocol": "http", "database": database, "schema": schema,
            "warehouse": "READOUTS"}


@contextmanager
def database() -> Iterator[tuple[dict[str, Any], Any]]:
    """A fresh database in the emulator: its connection fields and a driver connection to it."""
    import snowflake.connector

    name = f"DW_{uuid.uuid4().hex[:10].upper()}"
    fields = connection_fields(name)
    conn = snowflake.connector.connect(
        account=fields["account"], user=fields["user"], password=os.environ[PASSWORD_ENV], host=fields["host"],
        port=fields["port"], protocol="http", database=name, schema=fields["schema"])
    try:
        conn.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {name}.{fields['schema']}")
        yield fields, conn
    finally:
        try:
            # The emulator has no DROP DATABASE: the schema and its tables go, the process at exit.
            conn.cursor().execute(f"DROP SCHEMA IF EXISTS {name}.{fields['schema']} CASCADE")
        finally:
            conn.close()


def load(conn: Any, table: str, rows: list[tuple[Any, ...]], scratch: Path) -> None:
    """Rows into a table as a Snowflake account is loaded: a CSV file PUT to the table's stage,
    then COPY INTO (the emulator runs bound rows one statement each, 200 times slower)."""
    path = scratch / f"{table}.csv"
    csv_write(str(path), rows)
    cursor = conn.cursor()
    cursor.execute(f"PUT 'file://{path}' @%{table}")
    cursor.execute(f"COPY INTO {table} FROM @%{table} FILE_FORMAT = (TYPE = CSV) PURGE = TRUE")
