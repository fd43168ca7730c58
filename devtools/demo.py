"""`make demo`: the whole service with demo data, and a clean stop on Ctrl-C.

    python -m devtools.demo [--data DIR]

Without DATABASE_URL it starts an embedded PostgreSQL (data in `--data`, by default
`DEMO_DIR/pgdata`); then it migrates, seeds the demo data and runs the web server (gunicorn on
127.0.0.1:`DEMO_PORT`, 8000 by default), the streaming process that holds the SDKs' change
streams (`python -m serving.streams` on 127.0.0.1:`DEMO_STREAM_PORT`, `DEMO_PORT` + 1 by
default; the web server points SDKs to it) and a Celery worker with beat. Its files (secret key,
admin login and token, beat schedule, file broker) are under `DEMO_DIR` (`.demo/`).

Ctrl-C, SIGTERM or SIGHUP stop everything in order: the server, the streaming process and the
worker first, since they may still be writing or listening, then the database; one line says
what was stopped and the exit status is 0. The children run in process groups of their own (`devtools.processes`), so a
terminal's Ctrl-C reaches only this process and the order is kept.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.embedded_db import EmbeddedPostgres, stop_signals_held
from devtools.processes import Child, StopRequest, stop_children

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Seconds the server and the worker get to finish what they are doing (gunicorn's own
# graceful timeout is 20 s).
GRACE_SECONDS = 25.0
# Seconds to wait for the server's first answer before printing the banner anyway.
STARTUP_SECONDS = 60.0


def demo_dir() -> Path:
    return Path(os.environ.get("DEMO_DIR") or ROOT / ".demo").resolve()


def demo_port(name: str = "DEMO_PORT", default: int = 8000) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a port number, not {raw!r}.")
    return int(raw)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As gunicorn binds: a connection of an earlier run still closing does not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _environment(directory: Path) -> dict[str, str]:
    env = dict(os.environ)
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    env["DEMO_DIR"] = str(directory)
    env.setdefault("DJANGO_SECRET_KEY", key_file.read_text().strip())
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if "CELERY_BROKER_URL" not in env:
        env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0" if _redis_reachable() else "filesystem://"
    return env


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _banner(seed: dict[str, Any], base: str, credentials: Path, streaming: str) -> str:
    envs = seed["environments"]
    admin = seed["admin"]
    client_key = envs.get("production", {}).get("client_key", "")
    token = seed["management_token"]
    lines = [
        "",
        "Splitbase demo is running",
        f"  Admin UI        {base}/admin/   (login {admin['username']} / {admin['password']})",
        f"  Results pages   {base}/experiments/   (the demo experiment: {base}/experiments/checkout-redesign/)",
        f"  Warehouse       {base}/experiments/warehouse-pricing/   (read out in the DuckDB file "
        f"{_shown(credentials.parent / 'warehouse.duckdb')})",
        f"  Flag pages      {base}/flags/   (usage, ramps, kill switch, stale flags: {base}/flags/?stale=1)",
        f"  API docs        {base}/api/docs/",
        f"  Streaming       {streaming}   (SDK change streams; the server sends SDKs there)",
        "  SDK keys:",
    ]
    for key, keys in envs.items():
        lines.append(f"    {key:<11} client {keys['client_key']}   server {keys['server_key']}")
    lines += [
        f"  Management token  {token}",
        f"  (login and token are kept in {_shown(credentials)} and stay the same on every start;",
        "   delete that file before a start for new ones)",
        "",
        "Try:",
        f"  curl -s -X POST {base}/ofrep/v1/evaluate/flags/new-checkout \\",
        f"       -H 'Authorization: Bearer {client_key}' -H 'Content-Type: application/json' \\",
        '       -d \'{"context": {"targetingKey": "user-42", "country": "DE"}}\'',
        f"  curl -s {base}/api/features/{client_key}",
        f"  curl -sN -L {base}/sub/{client_key}      (the change stream; change a flag in the admin)",
        f"  curl -s {base}/api/v1/flags -H 'Authorization: Bearer {token}'",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def stopped_line(names: list[str]) -> str:
    """"Stopped the server, the worker and the database." for the names given."""
    if not names:
        return "Stopped."
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"Stopped {listed}."


@dataclass
class Demo:
    env: dict[str, str]
    stop: StopRequest
    directory: Path
    port: int
    stream_port: int
    services: list[Child] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def streaming(self) -> str:
        return f"http://{HOST}:{self.stream_port}"

    def _manage(self, *args: str, stdout: Any = None) -> int | None:
        """Run a management command to its end: its exit status, or None when stopped first."""
        if self.stop.requested:
            return None
        step = Child("the setup", [sys.executable, "manage.py", *args], env=self.env, stdout=stdout)
        status = step.run(self.stop)
        if status is None:
            stop_children([step], stop=self.stop, grace=GRACE_SECONDS)
            self.interrupted.append(step.name)
        elif status != 0:
            print(f"`manage.py {' '.join(args)}` failed with status {status}.", file=sys.stderr)
        return status

    def _seed(self) -> dict[str, Any] | int | None:
        """Migrate and seed: the demo keys and login, or the failed step's status (None: stopped)."""
        for args in (("migrate", "--noinput"), ("collectstatic", "--noinput", "--verbosity", "0")):
            status = self._manage(*args)
            if status != 0:
                return status
        with tempfile.TemporaryFile("w+") as out:
            status = self._manage("seed_demo", "--json", stdout=out)
            if status != 0:
                return status
            out.seek(0)
            seed: dict[str, Any] = json.load(out)
        # Four demo experiments with simulated traffic, so the result pages have data at once.
        status = self._manage("seed_experiments")
        if status != 0:
            return status
        # One more whose exposures and events live only in a DuckDB file: the worker reads it out there.
        status = self._manage("seed_warehouse", "--path", str(self.directory / "warehouse.duckdb"))
        if status != 0:
            return status
        # A holdout over two shipped experiments and a running one, and the north star: the
        # holdout's result page and the growth page.
        status = self._manage("seed_growth")
        return seed if status == 0 else status

    def _start_services(self) -> None:
        self.services.append(Child("the server", [
            sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py",
            "--bind", f"{HOST}:{self.port}",
        ], env={**self.env, "STREAMING_URL": self.streaming}))
        self.services.append(Child("the streaming process", [sys.executable, "-m", "serving.streams"],
                                   env={**self.env, "STREAM_BIND": f"{HOST}:{self.stream_port}"}))
        self.services.append(Child("the worker", [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "--loglevel", "INFO",
            "--concurrency", "1", "--schedule", str(self.directory / "celerybeat-schedule"),
        ], env=self.env))

    def _ended(self) -> Child | None:
        return next((child for child in self.services if child.exited()), None)

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and not self.stop.requested and self._ended() is None:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1):  # noqa: S310 - our own URL
                    return
            except (OSError, http.client.HTTPException):
                self.stop.sleep(0.3)

    def run(self) -> int:
        """Seed, serve until stopped; 0 when stopped by a signal."""
        seeded = self._seed()
        if not isinstance(seeded, dict):
            return 0 if seeded is None else seeded
        self._start_services()
        self._wait_until_serving()
        ended = self._ended()
        if ended is None and not self.stop.requested:
            print(_banner(seeded, self.base, self.directory / "credentials.json", self.streaming), flush=True)
        while ended is None and not self.stop.sleep(0.5):
            ended = self._ended()
        if ended is None:
            return 0
        self.services.remove(ended)
        print(f"{ended.name.capitalize()} ended by itself with status {ended.finish()}.", file=sys.stderr)
        return 1

    def shut_down(self) -> list[str]:
        """Stop the server and the worker; the names of what was stopped."""
        stop_children(self.services, stop=self.stop, grace=GRACE_SECONDS)
        return [*self.interrupted, *(child.name for child in self.services)]


def main(argv: list[str] | None = None) -> int:
    directory = demo_dir()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=directory / "pgdata",
                        help="data directory of the embedded PostgreSQL (without DATABASE_URL)")
    args = parser.parse_args(argv)
    data = args.data.resolve()  # before the change of directory below
    port = demo_port()
    stream_port = demo_port("DEMO_STREAM_PORT", port + 1 if port < 65535 else port - 1)
    if stream_port == port:
        print("DEMO_STREAM_PORT must differ from DEMO_PORT.", file=sys.stderr)
        return 1
    for name, number in (("DEMO_PORT", port), ("DEMO_STREAM_PORT", stream_port)):
        if not _port_free(number):
            print(f"Port {number} on {HOST} is in use, perhaps by another demo. Stop that, or choose another port: "
                  f"{name}={number + 2} make demo", file=sys.stderr)
            return 1
    stop = StopRequest()
    stop.install()
    env = _environment(directory)
    os.chdir(ROOT)
    database = None
    if not env.get("DATABASE_URL"):
        with stop_signals_held():
            database = EmbeddedPostgres.start(data)
        env["DATABASE_URL"] = database.url
    demo = Demo(env=env, stop=stop, directory=directory, port=port, stream_port=stream_port)
    status = 1
    try:
        status = demo.run()
    finally:
        stopped = demo.shut_down()
        if database is not None and database.stop():
            stopped.append("the database")
        print(stopped_line(stopped), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
