"""A real gunicorn (production settings) that reaches PostgreSQL through a TCP relay the test can
turn off (refused connections) or silent (a partition), for the fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from audit.types import Actor
from base.models import Environment
from devtools.relay import Relay, free_port
from experiments import services as experiment_services
from experiments.models import Experiment
from flags import services
from tests.conftest import IN_CI, require_service

ACTOR = Actor(label="tester", via="system")
PROJECT = Path(__file__).resolve().parents[3]
RelayedServer = tuple[Relay, "Server", Environment, Experiment]


class Server:
    """gunicorn with the project's configuration, one worker, production settings."""

    def __init__(self, database_url: str, snapshot_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_SECRET_KEY": "fail-static-test-secret",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": database_url,
            "DATABASE_CONNECT_TIMEOUT": "1",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "1",
            "SNAPSHOT_DIR": str(snapshot_dir),
            "SNAPSHOT_CHECK_INTERVAL": "0.2",
            "SNAPSHOT_RETRY_INTERVAL": "0.3",
            "EXPOSURE_FLUSH_INTERVAL": "0.2",
            "RATE_LIMIT_PER_SECOND": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "config/gunicorn.py", "config.wsgi:application"],
                cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(lambda: status_of(f"{self.url}/healthz") == 200, 90, f"gunicorn did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def status_of(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def wait_until(condition: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


@pytest.fixture
def relayed_server(transactional_db: Any, tmp_path: Path) -> Iterator[RelayedServer]:
    settings = connection.settings_dict
    if str(settings["HOST"] or "").startswith("/"):
        # The relay cuts a TCP connection; the embedded server of `make test` has a Unix socket only.
        if IN_CI:
            pytest.fail("The fail-static test needs PostgreSQL over TCP (set DATABASE_URL).")
        pytest.skip("needs PostgreSQL over TCP; the embedded server listens on a Unix socket only "
                    "(set DATABASE_URL to run it)")
    require_service(settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432), "PostgreSQL")
    env = services.environment_create(actor=ACTOR, key="production")
    switch = services.flag_create(actor=ACTOR, key="kill-switch")
    services.flag_state_update(actor=ACTOR, flag=switch, environment=env, enabled=True, default_variant="on")
    flag = services.flag_create(actor=ACTOR, key="button-color", value_type="string",
                                variants=[{"key": "blue", "value": "blue"}, {"key": "green", "value": "green"}])
    services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    experiment_services.metric_create(actor=ACTOR, key="purchase", kind="conversion", event_name="purchase")
    experiment = experiment_services.experiment_start(
        actor=ACTOR,
        experiment=experiment_services.experiment_create(
            actor=ACTOR, key="button-test", flag=flag, environment=env,
            variations=[{"key": "blue", "weight": 0.5}, {"key": "green", "weight": 0.5}],
            metrics=[{"metric": "purchase", "role": "primary"}],
        ),
    )
    env.refresh_from_db()

    relay = Relay((settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)))
    relay.start()
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    url = f"postgres://{user}{password}@127.0.0.1:{relay.port}/{settings['NAME']}"
    server = Server(url, tmp_path / "serving", tmp_path / "gunicorn.log")
    try:
        yield relay, server, env, experiment
    finally:
        server.stop()
        relay.refuse()
