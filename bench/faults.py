"""Fault drill: what the service does when PostgreSQL, Redis, a Celery worker or a gunicorn
worker fails under SDK traffic, measured, for docs/operations.md.

The whole service runs as in production: gunicorn (3 sync workers, production settings) and a
Celery worker, reaching PostgreSQL and Redis through TCP relays (`devtools/relay.py`) that the
drill turns off (refused connections), silent (a partition: connections open, nothing passes)
or restarts. Meanwhile client threads send OFREP and `/api/v1/evaluate` requests (which record
exposures) and event batches with the retry the SDK guide recommends (429/503/network errors:
back off and send the same batch again). After each scenario the drill waits for the service
to drain and counts, per scenario:

- SDK answers by status, the slowest answer and the 99th percentile;
- exposures: units that `/api/v1/evaluate` placed in the experiment vs units stored;
- events: ids the client sent vs ids stored (an id stored once however often it was re-sent);
- readouts: the time from a requested readout to its successful snapshot.

Usage (needs PostgreSQL and Redis; takes about 6 minutes):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/splitbase python bench/faults.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import benchdb
import requests

from devtools.relay import Relay, free_port

ROOT = benchdb.ROOT
WORKERS = 3
OUTAGE = 20.0  # seconds each fault lasts


# --- the service under test ------------------------------------------------------------------


@dataclass
class Service:
    database_url: str  # through the PostgreSQL relay
    broker_url: str  # through the Redis relay
    workdir: Path
    port: int = field(default_factory=free_port)
    gunicorn: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_SECRET_KEY": "fault-drill-secret-key-" + "x" * 40,
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "RATE_LIMIT_REDIS_URL": self.broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": f"faults-{os.getpid()}",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(WORKERS),
            "GUNICORN_TIMEOUT": "15",
            "SNAPSHOT_DIR": str(self.workdir / "serving"),
            "RATE_LIMIT_PER_SECOND": "100000",
            "RATE_LIMIT_BURST": "100000",
        }

    def start(self) -> None:
        log = open(self.workdir / "gunicorn.log", "ab")  # noqa: SIM115 - kept open for the process
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.gunicorn = subprocess.Popen([str(gunicorn), "-c", "config/gunicorn.py", "config.wsgi:application"],
                                         cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.start_worker()
        _wait(lambda: _status(f"{self.url}/healthz") == 200, 60, "gunicorn did not start")

    def start_worker(self) -> None:
        log = open(self.workdir / "worker.log", "ab")  # noqa: SIM115
        queue = self.env()["CELERY_TASK_DEFAULT_QUEUE"]
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--queues", queue,
             "--hostname", f"faults-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )

    def gunicorn_workers(self) -> list[int]:
        assert self.gunicorn is not None
        out = subprocess.run(["pgrep", "-P", str(self.gunicorn.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        for process in (self.gunicorn, self.worker):
            if process is not None and process.poll() is None:
                benchdb.stop(process)


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def _wait(condition: Callable[[], bool], seconds: float, message: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise SystemExit(message)
        time.sleep(0.2)
    return time.monotonic() - start


# --- data ------------------------------------------------------------------------------------


@dataclass
class Data:
    client_key: str
    experiment_id: int
    experiment_key: str


def prepare() -> Data:
    from audit.types import Actor
    from experiments import services as experiment_services
    from experiments.models import Experiment, Metric
    from flags import services as flag_services

    actor = Actor.system("fault drill")
    _, env, flag = benchdb.bench_flag("drill-flag")
    flag_services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=True)
    if not Metric.objects.filter(key="drill-purchase").exists():
        experiment_services.metric_create(actor=actor, key="drill-purchase", kind="conversion",
                                          event_name="purchase")
    experiment = Experiment.objects.filter(key="drill-experiment").first()
    if experiment is None:
        experiment = experiment_services.experiment_create(
            actor=actor, key="drill-experiment", flag=flag, environment=env,
            variations=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
            metrics=[{"metric": "drill-purchase", "role": "primary"}],
        )
    if experiment.status != Experiment.Status.RUNNING:
        experiment = experiment_services.experiment_start(actor=actor, experiment=experiment)
    env.refresh_from_db()
    return Data(env.client_key, experiment.pk, experiment.key)


def stored_exposures(data: Data, units: set[str]) -> set[str]:
    from django.db import close_old_connections

    from experiments.models import Exposure

    close_old_connections()
    return set(Exposure.objects.filter(experiment_id=data.experiment_id, unit__key__in=list(units))
               .values_list("unit__key", flat=True))


def stored_events(ids: set[str]) -> set[str]:
    from django.db import close_old_connections

    from experiments.models import Event

    close_old_connections()
    found: set[str] = set()
    chunk = list(ids)
    for i in range(0, len(chunk), 5000):
        found |= set(Event.objects.filter(client_id__in=chunk[i:i + 5000]).values_list("client_id", flat=True))
    return found


# --- traffic -------------------------------------------------------------------------------------


@dataclass
class Traffic:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    exposed_units: set[str] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)
    event_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, status: int | str, seconds: float) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            self.latencies.append(seconds)


def _sdk_client(service: Service, data: Data, traffic: Traffic, stop: threading.Event, tag: str) -> None:
    session = requests.Session()
    headers = {"X-API-Key": data.client_key}
    n = 0
    while not stop.is_set():
        n += 1
        unit = f"{tag}-{n}"
        kind, url = (("evaluate", f"{service.url}/api/v1/evaluate") if n % 2 else
                     ("ofrep", f"{service.url}/ofrep/v1/evaluate/flags/drill-flag"))
        start = time.monotonic()
        try:
            response = session.post(url, json={"context": {"targetingKey": unit}}, headers=headers, timeout=10)
            status: int | str = response.status_code
            if kind == "evaluate" and response.status_code == 200:
                experiment = response.json()["flags"]["drill-flag"].get("experiment") or {}
                if experiment.get("inExperiment"):
                    with traffic.lock:
                        traffic.exposed_units.add(unit)
        except requests.RequestException as exc:
            status = type(exc).__name__
        traffic.note(kind, status, time.monotonic() - start)
        time.sleep(0.01)


def _event_client(service: Service, data: Data, traffic: Traffic, stop: threading.Event, tag: str) -> None:
    """Batches of 50 events, re-sent until accepted as the SDK guide's flush loop does."""
    session = requests.Session()
    headers = {"X-API-Key": data.client_key}
    batch_number = 0
    while not stop.is_set():
        batch_number += 1
        now = datetime.now(tz=UTC).isoformat()
        items = [{"id": f"{tag}-{batch_number}-{i}", "type": "event", "unit_id": f"{tag}-u{i}", "name": "purchase",
                  "timestamp": now} for i in range(50)]
        with traffic.lock:
            traffic.event_ids.update(item["id"] for item in items)
        delay = 0.5
        while True:
            start = time.monotonic()
            try:
                response = session.post(f"{service.url}/api/v1/events", json={"events": items}, headers=headers,
                                        timeout=10)
                status: int | str = response.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            traffic.note("events", status, time.monotonic() - start)
            if status == 202:
                break
            if status not in (429, 503) and isinstance(status, int):
                break  # a client error is not retried
            with traffic.lock:
                traffic.event_retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        time.sleep(0.2)


@contextmanager
def traffic(service: Service, data: Data, tag: str) -> Iterator[Traffic]:
    state, stop = Traffic(), threading.Event()
    threads = [threading.Thread(target=_sdk_client, args=(service, data, state, stop, f"{tag}-s{i}"), daemon=True)
               for i in range(4)]
    threads += [threading.Thread(target=_event_client, args=(service, data, state, stop, f"{tag}-e{i}"), daemon=True)
                for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


# --- scenarios -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    what: str
    statuses: Counter[str]
    p99_ms: float
    max_ms: float
    exposures_lost: int
    exposures_served: int
    events_lost: int
    events_sent: int
    event_retries: int
    readout_seconds: float | None = None
    note: str = ""


def _settle(service: Service, data: Data, state: Traffic, seconds: float = 90.0) -> tuple[int, int]:
    """Wait until exposures and events have drained (or `seconds` pass); return what is missing."""
    deadline = time.monotonic() + seconds
    missing_exposures = missing_events = 0
    while time.monotonic() < deadline:
        missing_exposures = len(state.exposed_units - stored_exposures(data, state.exposed_units))
        missing_events = len(state.event_ids - stored_events(state.event_ids))
        if not missing_exposures and not missing_events:
            break
        time.sleep(1.0)
    return missing_exposures, missing_events


def _outcome(name: str, what: str, service: Service, data: Data, state: Traffic, **extra: Any) -> Outcome:
    lost_exposures, lost_events = _settle(service, data, state)
    latencies = sorted(state.latencies) or [0.0]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Outcome(name, what, state.statuses, p99 * 1000, latencies[-1] * 1000, lost_exposures,
                   len(state.exposed_units), lost_events, len(state.event_ids), state.event_retries, **extra)


def _readout(service: Service, data: Data, token: str) -> float:
    """Request a readout through the API; seconds until it succeeded."""
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.post(f"{service.url}/api/v1/experiments/{data.experiment_key}/refresh", headers=headers,
                             timeout=10)
    snapshot = response.json()["snapshot"]

    def done() -> bool:
        body = requests.get(f"{service.url}/api/v1/experiments/{data.experiment_key}/results", headers=headers,
                            timeout=10).json()
        latest = body.get("latest") or {}
        return bool(latest.get("id") == snapshot and latest.get("status") == "success")

    _wait(done, 600, "the readout did not finish")
    return time.monotonic() - start


def scenario_baseline(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "base") as state:
        time.sleep(OUTAGE)
    return _outcome("baseline", "no fault, 20 s of traffic", service, data, state)


def scenario_postgres_down(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "pgdown") as state:
        time.sleep(3)
        relays["postgres"].refuse()
        time.sleep(OUTAGE)
        relays["postgres"].start()
        time.sleep(5)
    return _outcome("postgres-refused", "PostgreSQL refuses connections for 20 s", service, data, state)


def scenario_postgres_partition(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "pgsilent") as state:
        time.sleep(3)
        relays["postgres"].blackhole()
        time.sleep(OUTAGE)
        relays["postgres"].start()
        time.sleep(5)
    return _outcome("postgres-partition", "PostgreSQL silently partitioned for 20 s (nothing answers)", service,
                    data, state)


def scenario_postgres_restart(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "pgrestart") as state:
        time.sleep(3)
        relays["postgres"].refuse()  # every connection dropped, as by a restart
        time.sleep(2)
        relays["postgres"].start()
        time.sleep(10)
    return _outcome("postgres-restart", "PostgreSQL restarts (connections dropped, back after 2 s)", service,
                    data, state)


def scenario_redis_down(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "redis") as state:
        time.sleep(3)
        relays["redis"].refuse()
        start = time.monotonic()
        requested = threading.Thread(target=_readout, args=(service, data, token))
        requested.start()
        ready = requests.get(f"{service.url}/readyz", timeout=10)
        time.sleep(OUTAGE)
        relays["redis"].start()
        requested.join(timeout=600)
        waited = time.monotonic() - start
    note = f"/readyz during the outage: {ready.status_code} {json.dumps(ready.json().get('checks', {}))}"
    return _outcome("redis-down", "Redis (broker, rate limits) refuses connections for 20 s; a readout is "
                    "requested during the outage", service, data, state, readout_seconds=waited, note=note)


def scenario_worker_killed(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "worker") as state:
        start = time.monotonic()
        requested = threading.Thread(target=_readout, args=(service, data, token))
        requested.start()
        time.sleep(0.5)
        assert service.worker is not None
        service.worker.send_signal(signal.SIGKILL)  # mid-readout (or before it started)
        service.worker.wait()
        service.start_worker()
        requested.join(timeout=900)
        waited = time.monotonic() - start
    return _outcome("celery-worker-killed", "the Celery worker is killed (SIGKILL) during a readout and "
                    "restarted", service, data, state, readout_seconds=waited)


def scenario_gunicorn_killed(service: Service, data: Data, relays: dict[str, Relay], token: str) -> Outcome:
    with traffic(service, data, "gkill") as state:
        time.sleep(5)
        for pid in service.gunicorn_workers()[:1]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(10)
    return _outcome("gunicorn-worker-killed", "one of three gunicorn workers is killed (SIGKILL) under load",
                    service, data, state)


SCENARIOS = {
    "baseline": scenario_baseline,
    "postgres-refused": scenario_postgres_down,
    "postgres-partition": scenario_postgres_partition,
    "postgres-restart": scenario_postgres_restart,
    "redis-down": scenario_redis_down,
    "celery-worker-killed": scenario_worker_killed,
    "gunicorn-worker-killed": scenario_gunicorn_killed,
}


def _table(outcomes: list[Outcome]) -> str:
    lines = [
        "| scenario | SDK answers | p99 ms | slowest ms | exposures lost / served | events lost / sent "
        "(re-sends) | readout s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(o.statuses.items()))
        readout = f"{o.readout_seconds:.1f}" if o.readout_seconds is not None else "—"
        lines.append(f"| {o.name} | {answers} | {o.p99_ms:.0f} | {o.max_ms:.0f} | {o.exposures_lost} / "
                     f"{o.exposures_served} | {o.events_lost} / {o.events_sent} ({o.event_retries}) | {readout} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    args = parser.parse_args()
    url = benchdb.configure("faults")
    data = prepare()
    from django.contrib.auth.models import User

    from audit.types import Actor
    from base.tokens import api_token_create

    user = User.objects.filter(username="drill").first() or User.objects.create_superuser("drill", "", None)
    _, token = api_token_create(actor=Actor.system("fault drill"), user=user, name="drill", scope="write")

    parts = urlsplit(url)
    pg = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    redis_parts = urlsplit(os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
    redis = Relay((redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379))
    pg.start()
    redis.start()
    relays = {"postgres": pg, "redis": redis}
    relayed_db = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}"
                                                  f"{':' + parts.password if parts.password else ''}"
                                                  f"@127.0.0.1:{pg.port}"))
    relayed_redis = urlunsplit(redis_parts._replace(netloc=f"127.0.0.1:{redis.port}"))
    workdir = Path(tempfile.mkdtemp(prefix="faults-"))
    service = Service(relayed_db, relayed_redis, workdir)
    print(f"# fault drill, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC; {benchdb.machine(postgres=True)}")
    print(f"# gunicorn {WORKERS} sync workers, a Celery worker; logs in {workdir}")
    outcomes: list[Outcome] = []
    service.start()
    try:
        for name in args.only or list(SCENARIOS):
            print(f"running {name} ...", flush=True)
            outcomes.append(SCENARIOS[name](service, data, relays, token))
            print(_table(outcomes[-1:]).splitlines()[-1], flush=True)
    finally:
        service.stop()
        pg.stop()
        redis.stop()
    print()
    print(_table(outcomes))
    for o in outcomes:
        print(f"- {o.name}: {o.what}.{' ' + o.note if o.note else ''}")
    print(json.dumps([{**o.__dict__, "statuses": dict(o.statuses)} for o in outcomes]))


if __name__ == "__main__":
    main()
