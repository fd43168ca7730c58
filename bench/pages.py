"""Result-page latency against a real server: gunicorn with ``config/gunicorn.py``.

The script prepares a database (``<name>_pages_bench``, derived from ``DATABASE_URL``; kept
between runs with ``--reuse``), seeds it with 500 running experiments (two metrics, a short
history of readouts each) and one large experiment (20 metrics x 3 variations x 50 slice
values, 60 readouts of history), starts gunicorn with production settings on a free port,
logs a staff user in and times sequential requests from the same machine over one keep-alive
connection. The baseline, in the same run and the same server, is ``/healthz`` (routing and
middleware, no page), and for the large experiment the JSON results API of the same snapshot.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/splitbase python bench/pages.py [--requests 40] [--reuse]

Times are wall time per request seen by the client on localhost: server time plus well under
a millisecond of loopback. Goal: p50 < 300 ms for the list of 500 and for the large results page.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import benchdb

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

LIST_SIZE = 500
LARGE = "big-readout"


def _configure(reuse: bool) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/splitbase")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/') or 'splitbase'}_pages_bench"
    url = urlunsplit(parts._replace(path=f"/{name}"))
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not reuse:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not reuse:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def _seed() -> None:
    from experiments.models import Experiment
    from tests.integration.pages import factories

    if Experiment.objects.filter(key=LARGE).exists():
        print(f"reusing {Experiment.objects.count()} experiments", flush=True)
        return
    started = time.monotonic()
    factories.environment()
    for i in range(LIST_SIZE):
        kind = i % 3
        if kind == 0:
            plan = factories.winner_plan(f"list-{i:03d}", history=2, slices={}, owner=f"owner-{i % 7}",
                                         tags=(f"team-{i % 5}",))
            plan.metrics = plan.metrics[:2]
        elif kind == 1:
            plan = factories.flat_plan(f"list-{i:03d}", history=2, slices={}, owner=f"owner-{i % 7}",
                                       tags=(f"team-{i % 5}",))
        else:
            plan = factories.srm_plan(f"list-{i:03d}")
            plan.history, plan.slices = 2, {}
        factories.seed(plan)
        if i % 50 == 49:
            print(f"  {i + 1} experiments seeded ({time.monotonic() - started:.0f} s)", flush=True)
    factories.seed(factories.large_plan(LARGE))
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def _login_cookie() -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", secrets.token_urlsafe(16)
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def _api_token() -> str:
    from django.contrib.auth.models import User

    from audit.types import Actor
    from base import tokens

    user = User.objects.get(username="bench")
    _, raw = tokens.api_token_create(actor=Actor.system(), user=user, name="pages bench", scope="read")
    return raw


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers),
               DJANGO_SETTINGS_MODULE="config.settings.base")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(PROJECT / "config" / "gunicorn.py"), "config.wsgi:application"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "gunicorn exited") from None
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not start within 30 s")


@dataclass
class Timing:
    label: str
    path: str
    times: list[float]
    size: int

    def p(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(port: int, label: str, path: str, headers: dict[str, str], count: int, warmup: int = 3) -> Timing:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times: list[float] = []
    size = 0
    for i in range(warmup + count):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {body[:300]!r}")
        if i >= warmup:
            times.append(elapsed)
            size = len(body)
    conn.close()
    return Timing(label, path, times, size)


def _machine() -> str:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        row = cur.fetchone()
    return f"{benchdb.machine()}, PostgreSQL {row[0] if row else '?'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (after 3 warm-ups)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (requests are sequential)")
    parser.add_argument("--reuse", action="store_true", help="keep the database seeded by an earlier run")
    args = parser.parse_args()

    _configure(args.reuse)
    _seed()
    from django.db import connection

    from experiments.models import Experiment, ResultSnapshot

    cookie = {"Cookie": f"sessionid={_login_cookie()}"}
    token = {"Authorization": f"Bearer {_api_token()}"}
    large = Experiment.objects.get(key=LARGE)
    latest = ResultSnapshot.objects.filter(experiment=large, status="success").order_by("-created_at").first()
    assert latest is not None
    shape = (len(latest.metrics), len(latest.variations), len(latest.slices))
    with connection.cursor() as cur:
        cur.execute("SELECT pg_column_size(metrics), pg_column_size(slices), octet_length(metrics::text), "
                    "octet_length(slices::text) FROM experiments_resultsnapshot WHERE id = %s", [latest.pk])
        row = cur.fetchone() or (0, 0, 0, 0)
    stored_kib = (row[0] + row[1]) / 1024
    text_kib = (row[2] + row[3]) / 1024
    connection.close()

    port = _free_port()
    server = _start_server(port, args.workers)
    try:
        n = args.requests
        timings = [
            _measure(port, "baseline: /healthz", "/healthz", {}, n),
            _measure(port, f"experiment list ({Experiment.objects.count()} experiments)", "/experiments/", cookie, n),
            _measure(port, "results page, large experiment", f"/experiments/{LARGE}/", cookie, n),
            _measure(port, "results page, large, CUPED off + segment slices",
                     f"/experiments/{LARGE}/?cuped=off&slice=segment&slice_metric=metric-07", cookie, n),
            _measure(port, "results page, large, fixed horizon, absolute, CUPED off",
                     f"/experiments/{LARGE}/?analysis=fixed&diff=absolute&cuped=off", cookie, n),
            _measure(port, "experiment list filtered by tag", "/experiments/?tag=team-3", cookie, max(5, n // 4)),
            _measure(port, "results page, small experiment", "/experiments/list-000/", cookie, n),
            _measure(port, "reference: results API (JSON, latest + 100 history)",
                     f"/api/v1/experiments/{LARGE}/results", token, max(5, n // 4)),
            _measure(port, "CSV export, large experiment", f"/experiments/{LARGE}/export.csv", cookie, max(5, n // 4)),
            _measure(port, f"flag list ({LIST_SIZE + 1} flags, stale check)", "/flags/", cookie, max(5, n // 4)),
        ]
    finally:
        benchdb.stop(server)

    print()
    print(f"Machine: {_machine()}")
    print(f"Server: gunicorn, config/gunicorn.py, {args.workers} sync workers, production settings (DEBUG off)")
    print(f"Large experiment: {shape[0]} metrics, {shape[1]} variations, {shape[2]} slice values, "
          f"{ResultSnapshot.objects.filter(experiment=large).count()} readouts; latest stored metrics+slices "
          f"{stored_kib:.0f} KiB compressed ({row[0] / 1024:.0f} + {row[1] / 1024:.0f}), "
          f"{text_kib:.0f} KiB as JSON text ({row[2] / 1024:.0f} + {row[3] / 1024:.0f})")
    print()
    print("| page | requests | p50 ms | p90 ms | min ms | max ms | body KiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in timings:
        print(f"| {t.label} | {len(t.times)} | {statistics.median(t.times):.1f} | {t.p(0.9):.1f} | "
              f"{min(t.times):.1f} | {max(t.times):.1f} | {t.size / 1024:.0f} |")
    goals = {timings[1].label: timings[1], timings[2].label: timings[2]}
    print()
    ok = True
    for label, t in goals.items():
        p50 = statistics.median(t.times)
        verdict = "meets" if p50 < 300 else "MISSES"
        ok = ok and p50 < 300
        print(f"{label}: p50 {p50:.0f} ms {verdict} the 300 ms goal")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
