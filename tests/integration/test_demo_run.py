"""`make demo` for real: the command the Makefile runs, with an embedded PostgreSQL in a
temporary directory, stopped as a terminal's Ctrl-C (SIGINT to the whole process group) or
`kill` (SIGTERM to the leader) stops it.

Both tests share one data directory, so the second start is a restart: it reuses the
database and must print the login and token of the first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STOP_LINE = "Stopped the server, the streaming process, the worker and the database."
START_SECONDS = 300
# Settings the demo must choose itself (or that would point it at the test database).
CLEARED = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "CELERY_BROKER_URL", "CELERY_BROKER_DIR",
           "DEMO_DIR", "DEMO_PORT")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _gone(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return True
    return status == str(psutil.STATUS_ZOMBIE)


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    output: Path
    port: int
    home: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def postgres_log(self) -> Path:
        return self.home / "pgdata" / "log"

    def postmaster_pid(self) -> int:
        return int((self.home / "pgdata" / "postmaster.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Not under pytest's temporary directory: run as root, the embedded server runs as a user
    # of its own, which needs to traverse the path, and pytest keeps its base directory 0700.
    path = Path(tempfile.mkdtemp(prefix="splitbase-demo-run-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(home: Path) -> Demo:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    env.update(DEMO_DIR=str(home / "demo"), DEMO_PORT=str(port), DEMO_STREAM_PORT=str(_free_port()),
               PYTHONUNBUFFERED="1",
               # A broker and serving files of its own, shared with no other process.
               CELERY_BROKER_URL="filesystem://", SNAPSHOT_DIR=str(home / "snapshots"))
    output = home / f"output-{port}.txt"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.demo", "--data", str(home / "pgdata")],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    demo = Demo(process=process, output=output, port=port, home=home)
    deadline = time.monotonic() + START_SECONDS
    while "Press Ctrl-C to stop." not in demo.text() or _get(f"{demo.base}/healthz") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                # The demo's children run in process groups of their own: end them too, or a
                # seeding step and the database outlive the test.
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
                os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the demo did not start (status {process.poll()}):\n{demo.text()[-5000:]}")
        time.sleep(1)
    return demo


def _stopped_cleanly(demo: Demo, send: str) -> None:
    """Send the stop signal and check the exit: status 0, one stop line, no traceback, nothing
    left running, and the database stopped only after the server and the worker."""
    credentials = demo.home / "demo" / "credentials.json"
    token_shown = re.search(r"Management token\s+(\S+)", demo.text())
    assert token_shown is not None
    token = token_shown.group(1)
    # A server process now holds a database session, as it does while anyone uses the demo.
    assert _get(f"{demo.base}/api/v1/flags", token) == 200
    stored = json.loads(credentials.read_text())
    assert stored["management_token"] == token
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    children = [p.pid for p in psutil.Process(demo.process.pid).children(recursive=True)]
    postmaster = demo.postmaster_pid()
    log_offset = demo.postgres_log.stat().st_size
    assert len(children) >= 2

    if send == "ctrl-c":
        os.killpg(demo.process.pid, signal.SIGINT)
    else:
        demo.process.send_signal(signal.SIGTERM)
    try:
        status = demo.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(demo.process.pid, signal.SIGKILL)
        raise
    text = demo.text()
    assert status == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert text.count(STOP_LINE) == 1 and text.rstrip().endswith(STOP_LINE), text[-3000:]
    assert not _port_open(demo.port)
    assert [pid for pid in children if not _gone(pid)] == []
    assert _gone(postmaster)
    with demo.postgres_log.open("rb") as log:
        log.seek(log_offset)
        stopped_log = log.read().decode(errors="replace")
    # A database stopped under live sessions ends them; here none was left to end.
    assert "terminating connection due to administrator command" not in stopped_log, stopped_log


def test_demo__ctrl_c__server_and_worker_then_the_database_stopped(home: Path) -> None:
    _stopped_cleanly(_start(home), "ctrl-c")


def test_demo__sigterm__server_and_worker_then_the_database_stopped(home: Path) -> None:
    credentials = home / "demo" / "credentials.json"
    before = json.loads(credentials.read_text()) if credentials.exists() else None
    demo = _start(home)
    if before is not None:
        # A restart prints the login and token of the first start, and they still work.
        assert f"login admin / {before['admin']['password']}" in demo.text()
        assert f"Management token  {before['management_token']}" in demo.text()
    _stopped_cleanly(demo, "sigterm")
