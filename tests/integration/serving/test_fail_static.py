"""Fail static, for real: gunicorn (production settings) reaches PostgreSQL through a TCP relay
that the test cuts mid-run. Answers must continue from the last snapshot, /readyz must report
the degraded state, a restarted server must answer from the snapshot on disk, and exposures
seen during the outage must reach the database after it comes back."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from audit.types import Actor
from base.models import Environment
from experiments import services as experiment_services
from experiments.models import Experiment
from experiments.models import Exposure as ExposureRow
from flags import services
from tests.conftest import IN_CI, require_service

pytestmark = [pytest.mark.slow]

ACTOR = Actor(label="tester", via="system")
PROJECT = Path(__file__).resolve().parents[3]


class Relay:
    """A TCP relay to PostgreSQL that can be cut (every connection closed, new ones refused)
    and restored on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """gunicorn with the project's configuration, one worker, production settings."""

    def __init__(self, database_url: str, snapshot_dir: Path, log: Path) -> None:
        self.port = _free_port()
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
        _wait(lambda: _get(f"{self.url}/healthz") == 200, 30, f"gunicorn did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def _wait(condition: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


@pytest.fixture
def setup(transactional_db: Any, tmp_path: Path) -> Iterator[tuple[Relay, Server, Environment, Experiment]]:
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
        relay.cut()


def _evaluate(server: Server, key: str, unit: str) -> dict[str, Any]:
    response = requests.post(f"{server.url}/api/v1/evaluate", json={"context": {"targetingKey": unit}},
                             headers={"X-API-Key": key}, timeout=5)
    assert response.status_code == 200, response.text
    flags: dict[str, Any] = response.json()["flags"]
    return flags


def _exposed(experiment: Experiment) -> set[str]:
    return set(ExposureRow.objects.filter(experiment_id=experiment.pk).values_list("unit__key", flat=True))


def test_fail_static__database_cut_mid_run__answers_continue_and_exposures_arrive_later(
    setup: tuple[Relay, Server, Environment, Experiment],
) -> None:
    relay, server, env, experiment = setup
    server.start()
    before = {f"a-{i}": _evaluate(server, env.client_key, f"a-{i}") for i in range(10)}
    _wait(lambda: _exposed(experiment) >= set(before), 10, "exposures were not written while the database was up")
    assert requests.get(f"{server.url}/readyz", timeout=5).json()["evaluation"]["state"] == "ok"

    relay.cut()
    time.sleep(0.5)  # past the version check interval: the next request finds the database gone
    for unit, flags in before.items():
        assert _evaluate(server, env.client_key, unit) == flags
    outage = {f"b-{i}": _evaluate(server, env.client_key, f"b-{i}") for i in range(10)}
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["evaluation"]["state"] == "degraded", ready.json()
    payload = requests.get(f"{server.url}/api/features/{env.client_key}", timeout=5)
    assert payload.status_code == 200 and "button-color" in payload.json()["features"]
    spool = server.env["SNAPSHOT_DIR"] + "/exposures"
    _wait(lambda: any(Path(spool).glob("spool-*.jsonl")), 10, "exposures were not spooled during the outage")

    # A restarted server, with the database still down, answers from the snapshot on disk.
    server.stop()
    server.start()
    for unit, flags in before.items():
        assert _evaluate(server, env.client_key, unit) == flags
    restarted = {f"c-{i}": _evaluate(server, env.client_key, f"c-{i}") for i in range(10)}
    assert requests.get(f"{server.url}/readyz", timeout=10).json()["evaluation"]["state"] == "degraded"
    unknown = requests.post(f"{server.url}/api/v1/evaluate", json={"context": {}},
                            headers={"X-API-Key": "sdk-client-unknown"}, timeout=5)
    assert unknown.status_code == 401
    assert _exposed(experiment) == set(before)

    relay.start()
    expected = set(before) | set(outage) | set(restarted)
    _wait(lambda: _exposed(experiment) == expected, 15, "buffered exposures did not arrive after recovery")
    _wait(lambda: requests.get(f"{server.url}/readyz", timeout=5).json()["evaluation"]["state"] == "ok", 10,
          "the server did not leave the degraded state")
    assert not any(Path(spool).glob("*.jsonl"))
    variations = dict(ExposureRow.objects.filter(experiment_id=experiment.pk).values_list("unit__key", "variation"))
    keys = ["blue", "green"]
    answers = {**before, **outage, **restarted}
    served = {unit: flags["button-color"]["variant"] for unit, flags in answers.items()}
    assert {unit: keys[v] for unit, v in variations.items()} == served
