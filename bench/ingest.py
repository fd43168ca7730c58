"""Event ingestion throughput: `POST /api/v1/events` on a real server against a raw COPY.

In one run, into the same table (with its indexes) of a database of its own:

- raw COPY: the same rows written by one Python process with psycopg's COPY, CSV (text)
  and binary, without HTTP, validation or de-duplication (unit ids resolved beforehand);
- in-process service: `events_ingest` called directly with 1,000-item batches (validation,
  unit upsert, de-duplicating insert), to separate HTTP from the rest;
- HTTP API: gunicorn (`config.gunicorn`, sync workers) started here, batches of 1,000 sent by
  client threads over keep-alive connections; then the same batches again (all duplicates).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/splitbase python bench/ingest.py \\
        [--batches 200] [--workers 3] [--clients 4] [--units 50000]

The database is DATABASE_URL's name + `_ingest_bench` on the same server (created when missing).
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import benchdb
import orjson

ROOT = benchdb.ROOT

NAMES = ["page_view", "impression", "click", "purchase", "add_to_cart", "view_item"]


def _setup() -> Any:
    from experiments import services
    from experiments.models import Experiment, Metric

    actor, env, flag = benchdb.bench_flag("bench-ingest")
    if not Experiment.objects.filter(key="bench-ingest").exists():
        if not Metric.objects.filter(key="bench-conv").exists():
            services.metric_create(actor=actor, key="bench-conv", kind="conversion", event_name="purchase")
        experiment = services.experiment_create(
            actor=actor, key="bench-ingest", flag=flag, environment=env,
            variations=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
            metrics=[{"metric": "bench-conv", "role": "primary"}],
        )
        services.experiment_start(actor=actor, experiment=experiment)
    # Exposures of the last hour must fall in the experiment's phase.
    from experiments.models import Phase

    Phase.objects.filter(experiment__key="bench-ingest").update(started_at=datetime.now(tz=UTC) - timedelta(days=1))
    from base.environments import environments_bump

    environments_bump(environment_ids=[env.pk])
    env.refresh_from_db()
    return env


def _items(batches: int, units: int, exposure_share: float, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    now = datetime.now(tz=UTC)
    out = []
    run = uuid.uuid4().hex[:8]
    for b in range(batches):
        batch = []
        for i in range(1000):
            unit = f"user-{rng.randrange(units)}"
            ts = (now - timedelta(seconds=rng.uniform(0, 3600))).isoformat()
            if rng.random() < exposure_share:
                batch.append({"id": f"{run}-{b}-{i}", "type": "exposure", "unit_id": unit,
                              "experiment": "bench-ingest", "variation": rng.choice(("control", "treatment")),
                              "timestamp": ts,
                              "attributes": {"country": rng.choice(("US", "DE", "FR")), "platform": "web"}})
            else:
                name = rng.choice(NAMES)
                item: dict[str, Any] = {"id": f"{run}-{b}-{i}", "type": "event", "unit_id": unit, "name": name,
                                        "timestamp": ts}
                if name == "purchase":
                    item["value"] = round(rng.uniform(5, 120), 2)
                    item["properties"] = {"currency": "EUR"}
                batch.append(item)
        out.append(batch)
    return out


def _truncate() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE experiments_event, experiments_exposure, experiments_assignment")


def _copy(batches: list[list[dict[str, Any]]], env_id: int, binary: bool) -> float:
    """Raw COPY of the same event rows into experiments_event; returns seconds."""
    import psycopg
    from django.db import connection
    from psycopg.types.json import Jsonb

    from experiments.models import Unit

    keys = {item["unit_id"] for batch in batches for item in batch}
    ids = dict(Unit.objects.filter(environment_id=env_id, key__in=keys).values_list("key", "id"))
    rows = []
    for batch in batches:
        for item in batch:
            if item["type"] != "event":
                continue
            props = item.get("properties")
            rows.append((env_id, "copy-" + item["id"], ids[item["unit_id"]], item["name"], item.get("value", 1.0),
                         datetime.fromisoformat(item["timestamp"]),
                         (Jsonb(props) if binary else orjson.dumps(props).decode()) if props else None))
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    start = time.perf_counter()
    with raw.transaction(), psycopg.Cursor(raw) as cur:
        statement = ("COPY experiments_event (environment_id, client_id, unit_id, name, value, ts, received_at, "
                     "properties) FROM STDIN" + (" (FORMAT BINARY)" if binary else ""))
        received = datetime.now(tz=UTC)
        with cur.copy(statement) as copy:
            if binary:
                copy.set_types(["bigint", "text", "bigint", "text", "float8", "timestamptz", "timestamptz", "jsonb"])
            for r in rows:
                copy.write_row((r[0], r[1], r[2], r[3], r[4], r[5], received, r[6]))
    return time.perf_counter() - start


def _service(batches: list[list[dict[str, Any]]], env: Any) -> float:
    from experiments.ingestion import events_ingest

    start = time.perf_counter()
    for batch in batches:
        events_ingest(environment=env, items=batch)
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=url, GUNICORN_WORKERS=str(workers),
               DJANGO_SETTINGS_MODULE="config.settings.base", EXPOSURE_FLUSH_INTERVAL="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120  # a busy machine takes a while to import Django in each worker
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def _post_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, dict[str, int]]:
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "X-API-Key": key}
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                if response.status != 202:
                    totals["errors"] += 1
                    continue
                data = orjson.loads(payload)
                totals["accepted"] += data["accepted"]
                totals["duplicates"] += data["duplicates"]
                totals["rejected"] += len(data["rejected"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 items (default 200)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--units", type=int, default=50_000, help="distinct unit ids")
    parser.add_argument("--exposure-share", type=float, default=0.0, help="share of exposures among the items")
    parser.add_argument("--database", default=None, help="default: <DATABASE_URL name>_ingest_bench")
    args = parser.parse_args()

    url = benchdb.configure("ingest_bench", args.database)
    env = _setup()
    _truncate()
    print(f"generating {args.batches} batches of 1,000 items ...", flush=True)
    warmup = _items(5, args.units, args.exposure_share, seed=1)
    service_batches = _items(args.batches, args.units, args.exposure_share, seed=2)
    http_batches = _items(args.batches, args.units, args.exposure_share, seed=3)
    copy_batches = _items(args.batches, args.units, 0.0, seed=4)
    bodies = [orjson.dumps({"events": b}) for b in http_batches]
    n_events = 1000 * args.batches

    # Units of the COPY rows must exist (a raw COPY resolves nothing); the service creates them.
    _service(warmup, env)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO experiments_unit (environment_id, key) SELECT %s, 'user-' || g FROM generate_series(0, %s) g "
            "ON CONFLICT DO NOTHING", (env.pk, args.units),
        )
    rows: list[tuple[str, float, float]] = []
    csv_time = _copy(copy_batches, env.pk, binary=False)
    rows.append(("raw COPY, CSV/text (one process, no HTTP)", csv_time, n_events / csv_time))
    bin_batches = [[{**i, "id": "b" + i["id"]} for i in batch] for batch in copy_batches]
    bin_time = _copy(bin_batches, env.pk, binary=True)
    rows.append(("raw COPY, binary (one process, no HTTP)", bin_time, n_events / bin_time))
    service_time = _service(service_batches, env)
    rows.append(("events_ingest in-process, 1,000-item batches", service_time, n_events / service_time))

    proc, port = _start_server(url, args.workers)
    try:
        _post_all(port, env.client_key, [orjson.dumps({"events": b}) for b in warmup], 1)
        api_time, totals = _post_all(port, env.client_key, bodies, args.clients)
        assert totals["accepted"] == n_events and totals["errors"] == 0, totals
        rows.append((f"HTTP API, {args.workers} workers, {args.clients} clients", api_time, n_events / api_time))
        dup_time, dup_totals = _post_all(port, env.client_key, bodies, args.clients)
        assert dup_totals["duplicates"] == n_events, dup_totals
        rows.append(("HTTP API, the same batches again (all duplicates)", dup_time, n_events / dup_time))
    finally:
        benchdb.stop(proc)

    print()
    print(f"Ingestion benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, {benchdb.machine()}")
    print(f"{n_events:,} items per row, {args.units:,} distinct units, exposures {args.exposure_share:.0%}")
    print()
    print(f"| {'path':<52} | {'seconds':>8} | {'items/s':>10} | {'vs CSV COPY':>11} |")
    print(f"|{'-' * 54}|{'-' * 10}|{'-' * 12}|{'-' * 13}|")
    for label, seconds, rate in rows:
        print(f"| {label:<52} | {seconds:>8.2f} | {rate:>10,.0f} | {rate / rows[0][2]:>10.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
