"""Streaming: idle streams one streaming process holds, its memory per stream, and the time from
a flag change to the SDK streams that receive it.

The script prepares a database of its own (``<name>_stream``, from ``DATABASE_URL``, migrated),
seeds one environment with 20 flags, starts the streaming process (``python -m serving.streams``,
production settings) and opens GrowthBook streams (``/sub/{clientKey}``) to it from this process
(asyncio with uvloop, one socket per stream, each reading every event). Steps, in one run:

1. **baseline**: the process's resident memory after one stream was opened and closed (the
   environment compiled, the code paths warm), and the change latency with one stream;
2. **1,000 streams**: memory, and the latency of ``--changes`` flag changes;
3. **N streams** (``--streams``, 5,000 by default): memory, and the latency again.

A change is a real flag change (``flag_state_update`` flips a flag's default variant through
the service, which bumps the version and so notifies); its clock starts when the change has
committed (an ``on_commit`` callback), the moment other processes can see it. "last" is the time until the last of the
open streams has the new event id, "all" every stream's time; p50 and p99 are over the changes
("last") and over every stream and change ("all"). Memory per stream is the growth of the
resident set over the baseline, divided by the streams open. The goal it prints: at least
5,000 idle streams under 500 MiB, a change at every stream within 1 s at the 99th percentile.

    python bench/stream.py [--streams 5000] [--changes 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdb import ROOT, configure

GOAL_STREAMS = 5000
GOAL_RSS_MIB = 500.0
GOAL_P99_SECONDS = 1.0
OPEN_BATCH = 250


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- data ----------------------------------------------------------------------------------


def _seed() -> tuple[str, Any, Any, Any]:
    """The `stream-bench` environment with 20 flags; (client key, actor, environment, the flag
    the changes flip)."""
    from audit.types import Actor
    from base.models import Environment
    from flags import services
    from flags.models import Flag

    actor = Actor.system("bench")
    env = Environment.objects.filter(key="stream-bench").first() or services.environment_create(
        actor=actor, key="stream-bench")
    for i in range(20):
        key = f"stream-flag-{i}"
        if not Flag.objects.filter(key=key).exists():
            flag = services.flag_create(actor=actor, key=key, value_type="string", description=f"Flag {i} of the bench",
                                        variants=[{"key": "a", "value": "alpha"}, {"key": "b", "value": "beta"}])
            services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=True)
            services.flag_rule_create(actor=actor, flag=flag, environment=env, kind="rollout", variant="b",
                                      coverage=0.25, condition={"country": {"$in": ["DE", "FR"]}})
    env.refresh_from_db()
    return env.client_key, actor, env, Flag.objects.get(key="stream-flag-0")


# --- the streaming process -----------------------------------------------------------------


class StreamingProcess:
    def __init__(self, database_url: str, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings.base",
               "DJANGO_DEBUG": "false", "STREAM_BIND": f"127.0.0.1:{self.port}", "SNAPSHOT_DIR": str(directory),
               "RATE_LIMIT_PER_SECOND": "0", "STREAM_MAX_PER_KEY": "100000", "STREAM_MAX_CONNECTIONS": "100000",
               "DJANGO_LOG_LEVEL": "WARNING"}
        self.log = directory / "streaming.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "serving.streams"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError), \
                    urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                if json.load(answer).get("listening"):
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise SystemExit(f"the streaming process did not start; see {self.log}")

    @property
    def rss_mib(self) -> float:
        return _rss_mib(self.process.pid)

    def open_streams(self) -> int:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as answer:
            return int(json.load(answer)["open_streams"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- clients -------------------------------------------------------------------------------


@dataclass
class Watch:
    """The change being measured: the event ids known before it, and how many streams have not
    received a new one yet (each stream counts itself once, when its new id arrives)."""

    known: set[str] = field(default_factory=set)
    waiting: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Client:
    """One stream: the time each event id arrived."""

    watch: Watch
    arrived: dict[str, float] = field(default_factory=dict)
    counted: bool = True
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None

    def received(self, ident: str) -> None:
        self.arrived[ident] = time.time()
        if not self.counted and ident not in self.watch.known:
            self.counted = True
            self.watch.waiting -= 1
            if self.watch.waiting == 0:
                self.watch.done.set()


async def _open(port: int, path: str, client: Client, ready: asyncio.Future[None]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * 1024 * 1024)
    client.writer = writer
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    status = await reader.readline()
    if b" 200 " not in status:
        ready.set_exception(RuntimeError(f"stream refused: {status!r}"))
        return
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    while True:
        line = await reader.readline()
        if not line:
            return
        # Chunk-size lines of the chunked encoding carry no "id: " prefix; an SSE id line does.
        if line.startswith(b"id: "):
            client.received(line[4:].strip().decode())
            if not ready.done():
                ready.set_result(None)


async def open_clients(port: int, path: str, count: int, clients: list[Client], watch: Watch) -> None:
    """Open streams until ``count`` are open, ``OPEN_BATCH`` at a time, each one reading its first event."""
    loop = asyncio.get_running_loop()
    while len(clients) < count:
        batch = []
        for _ in range(min(OPEN_BATCH, count - len(clients))):
            client = Client(watch)
            ready: asyncio.Future[None] = loop.create_future()
            client.task = asyncio.ensure_future(_open(port, path, client, ready))
            clients.append(client)
            batch.append(ready)
        await asyncio.wait_for(asyncio.gather(*batch), timeout=120)


async def close_clients(clients: list[Client]) -> None:
    for client in clients:
        if client.writer is not None:
            client.writer.close()
        if client.task is not None:
            client.task.cancel()
    await asyncio.gather(*(c.task for c in clients if c.task is not None), return_exceptions=True)
    clients.clear()


async def measure_changes(clients: list[Client], watch: Watch, changes: int, change: Any, writer: Executor
                          ) -> tuple[list[float], list[float]]:
    """Make ``changes`` flag changes; for each, the delay until the last stream had a new event
    id, and every stream's delay."""
    last: list[float] = []
    every: list[float] = []
    for _ in range(changes):
        watch.known = {ident for c in clients for ident in c.arrived}
        watch.waiting = len(clients)
        watch.done.clear()
        for client in clients:
            client.counted = False
        started = await asyncio.get_running_loop().run_in_executor(writer, change)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.done.wait(), timeout=10)
        delays = [min((t for i, t in c.arrived.items() if i not in watch.known), default=float("inf")) - started
                  for c in clients]
        every.extend(delays)
        last.append(max(delays))
        await asyncio.sleep(0.2)
    return last, every


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Row:
    step: str
    streams: int
    rss_mib: float
    per_stream_kib: float
    last_p50_ms: float
    last_p99_ms: float
    all_p50_ms: float
    all_p99_ms: float


def prepare() -> tuple[str, str, Any]:
    """The database URL, the client key and the change to make (Django runs outside the event loop)."""
    url = configure("stream")
    from django.db import connections, transaction

    from flags import services
    from flags.models import FlagState

    client_key, actor, env, flag = _seed()
    flips = iter(range(10**9))

    def change() -> float:
        """Flip the flag's default variant; the moment the change committed."""
        committed: list[float] = []
        state = FlagState.objects.get(flag=flag, environment=env)
        variant = "b" if next(flips) % 2 == 0 else "a"
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(time.time()))
            services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=state.enabled,
                                       default_variant=variant)
        return committed[0]

    connections.close_all()
    return url, client_key, change


async def run(args: argparse.Namespace, url: str, client_key: str, change: Any) -> list[Row]:
    writer = ThreadPoolExecutor(max_workers=1)  # one thread, one database connection, for the changes
    directory = Path(tempfile.mkdtemp(prefix="splitbase-stream-bench-"))
    server = StreamingProcess(url, directory)
    path = f"/sub/{client_key}"
    clients: list[Client] = []
    watch = Watch()
    rows: list[Row] = []
    try:
        await open_clients(server.port, path, 1, clients, watch)
        await close_clients(clients)
        await asyncio.sleep(1.0)
        baseline = server.rss_mib
        await open_clients(server.port, path, 1, clients, watch)
        last, every = await measure_changes(clients, watch, args.changes, change, writer)
        rows.append(Row("baseline (1 stream)", 1, baseline, float("nan"), *_ms(last, every)))
        for target in sorted({min(1000, args.streams), args.streams}):
            await open_clients(server.port, path, target, clients, watch)
            await asyncio.sleep(2.0)
            rss = server.rss_mib
            held = server.open_streams()
            last, every = await measure_changes(clients, watch, args.changes, change, writer)
            rows.append(Row(f"{target:,} streams", held, rss, (rss - baseline) * 1024 / held, *_ms(last, every)))
        await close_clients(clients)
    finally:
        server.stop()
    return rows


def _ms(last: list[float], every: list[float]) -> tuple[float, float, float, float]:
    return (_pct(last, 50) * 1000, _pct(last, 99) * 1000, _pct(every, 50) * 1000, _pct(every, 99) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=GOAL_STREAMS)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.streams + 100 > hard:
        raise SystemExit(f"{args.streams} streams need more than the {hard} open files this system allows.")
    import uvloop

    rows = uvloop.run(run(args, *prepare()))
    print(f"\nStreaming, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.changes} changes per step, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| step | open streams | RSS MiB | KiB per stream (over baseline) | change -> last stream p50 / p99 ms "
          "| change -> each stream p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        per = "" if row.per_stream_kib != row.per_stream_kib else f"{row.per_stream_kib:.1f}"
        print(f"| {row.step} | {row.streams:,} | {row.rss_mib:.1f} | {per} | {row.last_p50_ms:.0f} / "
              f"{row.last_p99_ms:.0f} | {row.all_p50_ms:.0f} / {row.all_p99_ms:.0f} |")
    big = rows[-1]
    thousand = next((r for r in rows if r.streams >= 1000), big)
    print(f"\ngoal: >= {GOAL_STREAMS:,} streams under {GOAL_RSS_MIB:.0f} MiB: "
          f"{'met' if big.streams >= GOAL_STREAMS and big.rss_mib < GOAL_RSS_MIB else 'NOT met'} "
          f"({big.streams:,} streams, {big.rss_mib:.0f} MiB); p99 change -> last of 1,000 streams <= 1 s: "
          f"{'met' if thousand.last_p99_ms <= GOAL_P99_SECONDS * 1000 else 'NOT met'} ({thousand.last_p99_ms:.0f} ms)")
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))


if __name__ == "__main__":
    main()
