"""Fixtures of the experiments tests: a flag with two variants, the metric catalog, experiment
factories, SDK calls, and a real Celery worker process bound to the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base.environments import environments_bump
from base.models import Environment
from experiments import ingestion
from experiments import services as experiment_services
from experiments.models import Experiment, Metric, Phase
from flags import services as flag_services
from flags.models import Flag
from tests.conftest import database_url, require_service

ROOT = Path(__file__).resolve().parents[3]
# A Redis database of its own, so that no other worker on the machine takes these tasks.
WORKER_REDIS_DB = int(os.environ.get("EXPERIMENTS_TEST_REDIS_DB", "11"))

METRICS: dict[str, dict[str, Any]] = {
    "purchase": {"kind": "conversion", "event_name": "purchase", "window_hours": 72},
    "revenue": {"kind": "mean", "event_name": "purchase", "capping": "percentile", "capping_value": 0.95},
    "ctr": {"kind": "ratio", "event_name": "click", "denominator_event": "impression", "window_hours": 336},
    "retention-d7": {"kind": "retention", "event_name": "page_view", "retention_day": 7},
    "checkout-funnel": {"kind": "funnel", "funnel_steps": ["view_item", "add_to_cart", "checkout"],
                        "window_hours": 72},
    "clicks": {"kind": "count", "event_name": "click", "capping": "absolute", "capping_value": 5,
               "window_hours": 336, "direction": "higher"},
    "errors": {"kind": "count", "event_name": "error", "direction": "lower", "window_hours": 336},
    # Revenue per user by day 7, capped at the 90th percentile of the mature units' values.
    "ltv-d7": {"kind": "ltv", "event_name": "purchase", "ltv_day": 7, "capping": "percentile",
               "capping_value": 0.9},
}
ROLES = {"purchase": "primary", "revenue": "secondary", "errors": "guardrail"}


@pytest.fixture(autouse=True)
def fresh_routes() -> Iterator[None]:
    """Ingestion caches experiments per environment version; tests start without that cache."""
    ingestion._routes_cache.clear()
    yield
    ingestion._routes_cache.clear()


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


@pytest.fixture
def checkout_flag(environments: dict[str, Environment], actor: Actor) -> Flag:
    flag = flag_services.flag_create(
        actor=actor, key="checkout", value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"}],
    )
    for env in environments.values():
        flag_services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=True)
    return flag


def create_metrics(actor: Actor, keys: Sequence[str] | None = None) -> dict[str, Metric]:
    return {
        key: experiment_services.metric_create(actor=actor, key=key, **dict(METRICS[key]))
        for key in (keys or METRICS)
    }


@pytest.fixture
def metrics(db: Any, actor: Actor) -> dict[str, Metric]:
    return create_metrics(actor)


def create_experiment(
    actor: Actor, flag: Flag, environment: Environment, metric_keys: Sequence[str], *, key: str = "checkout-test",
    start: bool = True, started_days_ago: float = 30.0, **fields: Any,
) -> Experiment:
    fields.setdefault("variations", [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}])
    fields.setdefault("slice_attributes", ["country", "platform"])
    experiment = experiment_services.experiment_create(
        actor=actor, key=key, flag=flag, environment=environment,
        metrics=[{"metric": k, "role": ROLES.get(k, "secondary")} for k in metric_keys], **fields,
    )
    if start:
        experiment = experiment_services.experiment_start(actor=actor, experiment=experiment)
        backdate(experiment, days=started_days_ago)
    return experiment


def backdate(experiment: Experiment, *, days: float) -> None:
    """Move the experiment's start into the past, so that traffic of the last weeks belongs to it."""
    started = timezone.now() - timedelta(days=days)
    Phase.objects.filter(experiment=experiment, number=1).update(started_at=started)
    Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
    environments_bump(environment_ids=[experiment.environment_id])


@pytest.fixture
def experiment(actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]) -> Experiment:
    return create_experiment(actor, checkout_flag, production, list(metrics))


def sdk_client(environment: Environment) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=environment.client_key)
    return client


def post_experiment(client: APIClient, key: str = "checkout-test", **body: Any) -> Any:
    """`POST /api/v1/experiments` of a 50/50 checkout experiment on `purchase`, with `body` on top."""
    payload = {
        "key": key, "flag": "checkout", "environment": "production",
        "variations": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": [{"metric": "purchase", "role": "primary"}],
        **body,
    }
    return client.post("/api/v1/experiments", payload, format="json")


@pytest.fixture
def api_ready(checkout_flag: Flag, metrics: dict[str, Metric]) -> None:
    """The flag and the metrics an experiment created over the API refers to."""
    return None


def post_events(client: APIClient, items: Any) -> Any:
    return client.post("/api/v1/events", {"events": items}, format="json")


# A real worker ---------------------------------------------------------------------------------


def point_app_at(app: Any, broker: str) -> None:
    app.conf.broker_url = broker
    # The producer pool is created on first use with the broker of that moment; start afresh.
    app._pool = None
    app.amqp._producer_pool = None


class Workers:
    """Starts `celery -A config worker` processes on the test database and this run's own queue."""

    def __init__(self, tmp_path: Path, env: dict[str, str], queue: str) -> None:
        self.tmp_path, self.env, self.queue = tmp_path, env, queue
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        """One more worker (a solo pool: the task runs in the worker process itself), with `env`
        on top of the test's environment; returns once it is ready."""
        number = len(self.started)
        path = self.tmp_path / f"worker-{number}.log"
        log = path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--queues", self.queue,
             "--hostname", f"experiments-test-{os.getpid()}-{number}@%h"],
            cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        self.started.append(proc)
        deadline = time.monotonic() + 90  # a loaded machine takes its time importing the app
        while b"ready." not in path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("The Celery worker did not start:\n" + path.read_text()[-3000:])
            time.sleep(0.2)
        return proc

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def celery_workers(transactional_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    """Celery workers on the test database and a private broker queue, started by the test.

    Skipped when Redis is not running locally; a failure under CI.
    """
    require_service("127.0.0.1", 6379, "Redis")
    import redis

    from config.celery import app

    broker = f"redis://127.0.0.1:6379/{WORKER_REDIS_DB}"
    # Isolation is by a queue of this run's own: the test process and the worker (which queues
    # readouts itself) both use it as their default queue, and only its keys are deleted after.
    queue = f"splitbase-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    previous = app.conf.broker_url
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    # Celery reads the broker from the CELERY_BROKER_URL environment variable before its
    # configuration, so both point at the private database.
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CELERY_BROKER_READ_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", broker)
    point_app_at(app, broker)
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DATABASE_CONN_MAX_AGE": "0",
    })
    workers = Workers(tmp_path, env, queue)
    try:
        yield workers
    finally:
        workers.stop()
        app.conf.task_default_queue = previous_queue
        point_app_at(app, previous)
        _delete_queue(redis.Redis.from_url(broker), queue)


@pytest.fixture
def celery_worker(celery_workers: Workers) -> subprocess.Popen[bytes]:
    """One Celery worker process, started before the test."""
    return celery_workers.start()


def _delete_queue(client: Any, queue: str) -> None:
    """Remove this run's queue and its exchange binding, and nothing else of the database."""
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for binding in client.scan_iter(match="_kombu.binding.*", _type="set"):
        for member in client.smembers(binding):
            if queue.encode() in member:
                client.srem(binding, member)
