"""Serving throughput and latency: the SDK endpoints under gunicorn against a bare Django view.

The script prepares a database (``<name>_bench``, derived from ``DATABASE_URL``; dropped and
created again on every run), seeds one environment with 50 flags of mixed rule types and a
running experiment, starts gunicorn with ``config/gunicorn.py`` and production settings, and
drives it with ``wrk`` from the same machine. The baseline is a minimal Django view returning a
fixed JSON object, served by the same gunicorn, the same settings and middleware, in the same
run (its path is added to the URLconf of the benchmarked process only). The runs alternate:
each round runs the baseline and then every scenario, and a scenario's ratio to the baseline is
the median over rounds of its rate over the same round's baseline rate, which keeps a busy
neighbour on the machine from favouring one side.

Scenarios: OFREP single flag; OFREP bulk (50 flags); ``/api/v1/evaluate`` (50 flags, exposure
tracking on, a new unit on every request); the GrowthBook payload with a warm ETag (304).

    python bench/serve.py [--rounds 5] [--duration 4] [--connections 8,64] [--workers N] [--worker-class sync]
                          [--threads N] [--only 1,2] [--compare VAR=VALUE,...]

Requires ``wrk`` (Debian: ``apt-get install wrk``); the script installs nothing. gunicorn's
other settings come from the environment as ``config/gunicorn.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
BASELINE_PATH = "/bench/baseline"
BASELINE_BODY = {"key": "bench", "value": True, "variant": "on", "reason": "STATIC"}
UNITS = 1_000_000


# --- the WSGI application gunicorn serves ------------------------------------------------


def build_application() -> Any:
    """The project's WSGI application plus the baseline view (gunicorn factory); the baseline
    goes through every middleware of ``MIDDLEWARE``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    from django.http import HttpRequest, JsonResponse
    from django.urls import clear_url_caches, path

    import config.urls

    def baseline(request: HttpRequest) -> JsonResponse:
        return JsonResponse(BASELINE_BODY)

    config.urls.urlpatterns.insert(0, path(BASELINE_PATH.lstrip("/"), baseline))
    clear_url_caches()
    from config.edge import edge_application

    # As config.wsgi serves it: the SDK routes take the SDK edge's path, the baseline Django's.
    return edge_application()


# --- database and data -------------------------------------------------------------------


def _bench_database_url(url: str) -> str:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "splitbase"
    return urlunsplit(parts._replace(path=f"/{name}_bench"))


def _recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _seed() -> dict[str, Any]:
    """50 flags: static, targeted, rollouts, segments, prerequisites, JSON and experiments."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from audit.types import Actor
    from experiments import services as experiment_services
    from flags import services

    call_command("migrate", verbosity=0, interactive=False)
    actor = Actor(label="bench", via="command")
    env = services.environment_create(actor=actor, key="production")
    services.segment_create(actor=actor, key="beta", kind="ids", attribute="id",
                            ids=[f"user-{i}" for i in range(0, UNITS, 997)])
    services.segment_create(actor=actor, key="eu", kind="condition",
                            condition={"country": {"$in": ["DE", "FR", "NL", "IT", "ES"]}})
    experiment_services.metric_create(actor=actor, key="purchase", kind="conversion", event_name="purchase")

    def create(key: str, **kwargs: Any) -> Any:
        flag = services.flag_create(actor=actor, key=key, **kwargs)
        services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=True)
        return flag

    def rule(flag: Any, **kwargs: Any) -> None:
        services.flag_rule_create(actor=actor, flag=flag, environment=env, **kwargs)

    for i in range(10):
        create(f"static-{i}")
    for i in range(10):
        flag = create(f"targeted-{i}")
        rule(flag, kind="force", variant="on", condition={"plan": {"$in": ["pro", "business"]}, "age": {"$gte": 18}})
        rule(flag, kind="force", variant="on", segments=["eu"])
    for i in range(10):
        flag = create(f"rollout-{i}")
        rule(flag, kind="force", variant="on", segments=["beta"])
        rule(flag, kind="rollout", variant="on", coverage=0.1 * (i + 1))
    for i in range(10):
        flag = create(f"limit-{i}", value_type="number",
                      variants=[{"key": "low", "value": 10}, {"key": "high", "value": 100}])
        rule(flag, kind="force", variant="high", condition={"plan": "business"})
        rule(flag, kind="rollout", variant="high", coverage=0.5, hash_attribute="company", fallback_attribute="id")
    for i in range(5):
        create(f"child-{i}", prerequisites=[{"flag": f"rollout-{i}", "condition": {"value": True}}])
    for i in range(5):
        flag = create(f"layout-{i}", value_type="json", variants=[
            {"key": "classic", "value": {"layout": "classic", "columns": 3}},
            {"key": "compact", "value": {"layout": "compact", "columns": 2, "dense": True}},
        ])
        experiment = experiment_services.experiment_create(
            actor=actor, key=f"layout-test-{i}", flag=flag, environment=env,
            variations=[{"key": "classic", "weight": 0.5}, {"key": "compact", "weight": 0.5}],
            metrics=[{"metric": "purchase", "role": "primary"}],
        )
        experiment_services.experiment_start(actor=actor, experiment=experiment)
    env.refresh_from_db()
    keys = {"client_key": env.client_key, "server_key": env.server_key}
    connections.close_all()
    return keys


# --- load generation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    body: str  # a Lua format string with one %d (the unit number), or ""
    headers: dict[str, str]
    expect: int


@dataclass(frozen=True)
class Result:
    scenario: str
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_LUA = """
local method, path, template = {method}, {path}, {body}
{headers}
init = function(args) math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000) % 1000) end
request = function()
  local body = nil
  if template ~= "" then body = string.format(template, math.random(1, {units})) end
  return wrk.format(method, path, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua(scenario: Scenario, directory: Path) -> Path:
    # JSON string literals are valid Lua string literals for these values.
    headers = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in scenario.headers.items())
    script = _LUA.format(method=json.dumps(scenario.method), path=json.dumps(scenario.path),
                         body=json.dumps(scenario.body), headers=headers, units=UNITS)
    path = directory / f"{scenario.name.replace(' ', '_').replace('/', '_')}.lua"
    path.write_text(script)
    return path


def _wrk(base: str, scenario: Scenario, connections: int, seconds: float, directory: Path) -> Result:
    script = _lua(scenario, directory)
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
         "-s", str(script), base + scenario.path],
        check=True, capture_output=True, text=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    requests, duration_us, errors, p50, p99 = (int(x) for x in line.split()[1:])
    return Result(scenario.name, connections, requests, duration_us / 1e6, errors, p50 / 1000, p99 / 1000)


def _check(base: str, scenario: Scenario) -> None:
    body = (scenario.body % 1).encode() if scenario.body else None
    request = urllib.request.Request(base + scenario.path, data=body, method=scenario.method,
                                     headers=scenario.headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status != scenario.expect:
        raise SystemExit(f"{scenario.name}: expected HTTP {scenario.expect}, got {status}")


def _etag(base: str, path: str) -> str:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return str(response.headers["ETag"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "config/gunicorn.py", "bench.serve:build_application()"],
            cwd=PROJECT, env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
    base = f"http://{env['GUNICORN_BIND']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"gunicorn did not start; see {log}")


# --- report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One scenario at one connection count over all rounds."""

    scenario: str
    connections: int
    rps: float  # all requests over all seconds
    p50_ms: float  # medians over the rounds
    p99_ms: float
    errors: int
    ratio: float  # median over rounds of rps / the same round's baseline rps
    p99_ratio: float  # median over rounds of p99 / the same round's baseline p99


def _summarise(runs: dict[str, list[Result]], baseline: str) -> list[Summary]:
    base = runs[baseline]
    out = []
    for name, results in runs.items():
        ratios = [r.rps / b.rps for r, b in zip(results, base, strict=True)]
        p99s = [r.p99_ms / b.p99_ms for r, b in zip(results, base, strict=True)]
        out.append(Summary(
            scenario=name,
            connections=results[0].connections,
            rps=sum(r.requests for r in results) / sum(r.seconds for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
            ratio=statistics.median(ratios),
            p99_ratio=statistics.median(p99s),
        ))
    return out


def _table(summaries: list[Summary]) -> str:
    lines = [
        "| endpoint | connections | req/s | p50 ms | p99 ms | errors | req/s vs baseline | p99 vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(f"| {s.scenario} | {s.connections} | {s.rps:,.0f} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | "
                     f"{s.errors} | {s.ratio:.0%} | {s.p99_ratio:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds alternating all scenarios (default 5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded load before each run")
    parser.add_argument("--connections", default="8,64", help="comma-separated connection counts")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: config/gunicorn.py)")
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class (default: config/gunicorn.py)")
    parser.add_argument("--threads", type=int, default=None, help="threads per gthread worker")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers to run (1-4; default all)")
    parser.add_argument("--compare", default="", help="also run a second server with these environment "
                        "overrides, interleaved (e.g. GUNICORN_WORKER_CLASS=gthread,GUNICORN_THREADS=2)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk).")

    database_url = _bench_database_url(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/splitbase"))
    secret = secrets.token_urlsafe(32)
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SECRET_KEY": secret, "DJANGO_DEBUG": "false",
                       "DJANGO_SETTINGS_MODULE": "config.settings.base"})
    sys.path.insert(0, str(PROJECT))
    print(f"preparing {urlsplit(database_url).path.lstrip('/')} ...", flush=True)
    _recreate_database(database_url)
    keys = _seed()

    workdir = Path(tempfile.mkdtemp(prefix="splitbase-bench-"))
    env = {
        **os.environ,
        # The limiter still runs on every request, with a limit the load cannot reach.
        "RATE_LIMIT_PER_SECOND": "1000000000",
        "RATE_LIMIT_BURST": "1000000000",
    }
    if args.workers:
        env["GUNICORN_WORKERS"] = str(args.workers)
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    variants = [("", env)]
    if args.compare:
        overrides = dict(item.split("=", 1) for item in args.compare.split(","))
        variants.append((f"[{args.compare.replace('GUNICORN_', '')}] ", {**env, **overrides}))
    servers: list[tuple[str, str, Path, subprocess.Popen[bytes]]] = []
    for index, (label, server_env) in enumerate(variants):
        port = _free_port()
        snapshot_dir = workdir / f"serving-{index}"
        server_env = {**server_env, "GUNICORN_BIND": f"127.0.0.1:{port}", "SNAPSHOT_DIR": str(snapshot_dir)}
        process = _start_server(server_env, workdir / f"gunicorn-{index}.log")
        servers.append((label, f"http://127.0.0.1:{port}", snapshot_dir, process))
    base = servers[0][1]
    context = '{"context": {"targetingKey": "user-%d", "country": "DE", "plan": "pro", "age": 31, "company": "acme"}}'
    sdk = {"Content-Type": "application/json", "X-API-Key": keys["client_key"]}
    try:
        payload_path = f"/api/features/{keys['client_key']}"
        scenarios = [
            Scenario("OFREP single flag", "POST", "/ofrep/v1/evaluate/flags/rollout-3", context, sdk, 200),
            Scenario("OFREP bulk (50 flags)", "POST", "/ofrep/v1/evaluate/flags", context, sdk, 200),
            Scenario("SDK payload, warm ETag (304)", "GET", payload_path, "",
                     {"If-None-Match": _etag(base, payload_path)}, 304),
            # Last in each round: the exposures it queues are written after the run, and the
            # next round waits for that, so that their writing does not slow other scenarios.
            Scenario("/api/v1/evaluate (50 flags, tracking on)", "POST", "/api/v1/evaluate", context, sdk, 200),
        ]
        if args.only:
            scenarios = [scenarios[int(i) - 1] for i in args.only.split(",")]
        baseline = Scenario("baseline (bare Django JSON view)", "GET", BASELINE_PATH, "", {}, 200)
        for _, url, _, _ in servers:
            for scenario in [baseline, *scenarios]:
                _check(url, scenario)
        summaries: list[Summary] = []
        drained: list[tuple[int, float]] = []
        for connections in (int(c) for c in args.connections.split(",")):
            for _, url, snapshot_dir, _ in servers:
                for scenario in [baseline, *scenarios]:
                    _wrk(url, scenario, connections, args.warmup, workdir)
                _drain(snapshot_dir)
            # Rounds alternate the baseline with every scenario (and the servers, when two are
            # compared), so that a neighbour's load falls on both sides of each comparison.
            runs: dict[str, dict[str, list[Result]]] = {
                label: {s.name: [] for s in [baseline, *scenarios]} for label, _, _, _ in servers
            }
            for round_number in range(args.rounds):
                for label, url, snapshot_dir, _ in servers:
                    for scenario in [baseline, *scenarios]:
                        before = _count_exposures()
                        runs[label][scenario.name].append(_wrk(url, scenario, connections, args.duration, workdir))
                        if scenario.path == "/api/v1/evaluate":
                            seconds = _drain(snapshot_dir)
                            drained.append((_count_exposures() - before, seconds))
                    line = ", ".join(f"{n.split(' (')[0]} {r[-1].rps:,.0f}" for n, r in runs[label].items())
                    print(f"  {label}{connections} connections, round {round_number + 1}: {line}", flush=True)
            for label, _, _, _ in servers:
                summaries += [replace(s, scenario=label + s.scenario)
                              for s in _summarise(runs[label], baseline.name)]
    finally:
        for _, _, _, process in servers:
            process.send_signal(signal.SIGTERM)
        for _, _, _, process in servers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    exposures = _count_exposures()
    workers = env.get("GUNICORN_WORKERS") or f"{os.cpu_count()} + 1 (default)"
    print()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {os.cpu_count()} cores, {platform.machine()}, "
          f"{platform.processor() or platform.platform()}; Python {platform.python_version()}; "
          f"load average before: {load_before:.1f}")
    print(f"gunicorn: config/gunicorn.py, workers {workers}, class {env.get('GUNICORN_WORKER_CLASS', 'sync')}; "
          f"wrk, 2 threads, {args.rounds} rounds of {args.duration:.0f} s per scenario after a "
          f"{args.warmup:.0f} s warm-up; exposures recorded: {exposures:,}")
    if drained:
        written = sum(n for n, _ in drained)
        busy = len(drained) * args.duration + sum(t for _, t in drained)
        print(f"exposure writing: after each tracked run, {statistics.median(t for _, t in drained):.1f} s "
              f"(median) until every queued exposure was in the database; {written:,} exposures in {busy:.0f} s "
              f"of load plus drain = {written / busy:,.0f} exposures/s sustained")
    print()
    print(_table(summaries))
    print()
    print(json.dumps({"results": [s.__dict__ for s in summaries]}, default=str))
    shutil.rmtree(workdir, ignore_errors=True)


def _drain(snapshot_dir: Path, timeout: float = 180.0) -> float:
    """Wait until the server has written every queued exposure (the count in the database
    stops moving and no spool file is left); returns the seconds it took."""
    start = time.monotonic()
    last, stable_since = _count_exposures(), time.monotonic()
    spool = snapshot_dir / "exposures"
    while time.monotonic() - start < timeout:
        time.sleep(0.25)
        count = _count_exposures()
        if count != last or any(spool.glob("*.jsonl")):
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since >= 1.5:
            break
    return stable_since - start


def _count_exposures() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_exposure")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    main()
