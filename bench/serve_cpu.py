"""Serving CPU per request, in process: the WSGI application of ``bench/serve.py`` called directly.

Same database and 50 flags as ``bench/serve.py`` (``<name>_bench``, recreated), production
settings, every request prepared beforehand (a new random unit each), no network and no
gunicorn. Rounds alternate the baseline (the bare Django JSON view with every middleware) with
each scenario; a scenario's figure is the median over rounds of its CPU time per request (the
calling thread's, ``time.thread_time``), and its ratio the median of its cost over the same
round's baseline cost. The exposure writer's thread runs as in a worker, on its own thread; its
CPU over the tracked runs is reported on its own line.

    python bench/serve_cpu.py [--rounds 5] [--requests 1000] [--profile NAME] [--no-seed]

``--profile N`` runs cProfile over the requests of scenario N (1-4, 0 the baseline) and prints
the top functions by own and cumulative time instead of the table.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.serve import BASELINE_PATH, UNITS, _bench_database_url, _recreate_database, _seed  # noqa: E402


def _environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario and round")
    parser.add_argument("--profile", type=int, default=None, help="cProfile scenario N (0 = baseline)")
    parser.add_argument("--no-seed", action="store_true", help="reuse the database of the last run")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    database_url = _bench_database_url(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/splitbase"))
    os.environ.update({
        "DATABASE_URL": database_url, "DJANGO_SECRET_KEY": "bench-" + "x" * 50, "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_PER_SECOND": "1000000000", "RATE_LIMIT_BURST": "1000000000",
        "SNAPSHOT_DIR": tempfile.mkdtemp(prefix="splitbase-bench-cpu-"),
    })
    if not args.no_seed:
        print(f"preparing {urlsplit(database_url).path.lstrip('/')} ...", flush=True)
        _recreate_database(database_url)
        keys = _seed()
    else:
        import django

        django.setup()
        from base.models import Environment

        env = Environment.objects.get(key="production")
        keys = {"client_key": env.client_key}
    from bench.serve import build_application

    app = build_application()
    sdk = {"Content-Type": "application/json", "X-API-Key": keys["client_key"]}
    rng = random.Random(1)

    def context() -> bytes:
        return (f'{{"context": {{"targetingKey": "user-{rng.randint(1, UNITS)}", "country": "DE", '
                f'"plan": "pro", "age": 31, "company": "acme"}}}}').encode()

    scenarios: list[tuple[str, Callable[[], dict[str, Any]], int]] = [
        ("baseline (bare Django JSON view)", lambda: _environ("GET", BASELINE_PATH, b"", {}), 200),
        ("OFREP single flag", lambda: _environ("POST", "/ofrep/v1/evaluate/flags/rollout-3", context(), sdk), 200),
        ("OFREP bulk (50 flags)", lambda: _environ("POST", "/ofrep/v1/evaluate/flags", context(), sdk), 200),
        ("SDK payload (200)", lambda: _environ("GET", f"/api/features/{keys['client_key']}", b"", {}), 200),
        ("/api/v1/evaluate (50 flags, tracking on)", lambda: _environ("POST", "/api/v1/evaluate", context(), sdk),
         200),
    ]

    def call(environ: dict[str, Any], expect: int) -> None:
        status: list[str] = []
        chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not status[0].startswith(str(expect)):
            raise SystemExit(f"{environ['PATH_INFO']}: {status[0]}")

    for _, make, expect in scenarios:  # warm up: snapshots, URL resolvers, connections
        for _ in range(50):
            call(make(), expect)

    if args.profile is not None:
        import cProfile
        import pstats

        name, make, expect = scenarios[args.profile]
        prepared = [make() for _ in range(args.requests)]
        profiler = cProfile.Profile()
        profiler.enable()
        for environ in prepared:
            call(environ, expect)
        profiler.disable()
        print(f"profile of {name}, {args.requests} requests")
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        return

    writers = [t for t in threading.enumerate() if t is not threading.current_thread()]
    costs: dict[str, list[float]] = {name: [] for name, _, _ in scenarios}
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in scenarios}
    for _ in range(args.rounds):
        base = 0.0
        for name, make, expect in scenarios:
            prepared = [make() for _ in range(args.requests)]
            start = time.thread_time()
            for environ in prepared:
                call(environ, expect)
            cost = (time.thread_time() - start) / args.requests * 1e6
            if name.startswith("baseline"):
                base = cost
            costs[name].append(cost)
            ratios[name].append(cost / base)
    print()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {os.cpu_count()} cores, {platform.machine()}; "
          f"Python {platform.python_version()}; load average before: {load_before:.1f}, after: "
          f"{os.getloadavg()[0]:.1f}; {args.rounds} rounds x {args.requests} requests per scenario; "
          f"other threads: {', '.join(t.name for t in writers) or 'none'}")
    print()
    print("| request | CPU per request (median) | min | vs baseline (median) |")
    print("|---|---:|---:|---:|")
    for name, values in costs.items():
        print(f"| {name} | {statistics.median(values):,.0f} µs | {min(values):,.0f} µs | "
              f"{statistics.median(ratios[name]):.2f}x |")


if __name__ == "__main__":
    main()
