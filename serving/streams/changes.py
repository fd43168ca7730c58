"""Keeping the hub's states current.

- **Notifications.** One PostgreSQL connection of the process ``LISTEN``s on the environments'
  change channel (``base.environments.CHANGE_CHANNEL``; a trigger sends ``<id>:<version>`` when
  a change commits, whichever process or replica made it). Notifications that arrive while a
  compilation runs are merged, so a burst of changes costs one compilation per environment.
  The connection is checked every ``LISTEN_PING_SECONDS`` and opened again after a failure.
- **Fallback.** Every ``SNAPSHOT_CHECK_INTERVAL`` the states are compared with the snapshots
  the process's refresher keeps (one version query per interval, as in every web process), so
  a notification lost while the listening connection was down costs at most a few seconds,
  and a scheduled rule start or end reaches the streams although no write happened.
- **Heartbeats** every ``STREAM_HEARTBEAT_INTERVAL`` seconds.

Database work runs on one thread of its own, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection

from base.environments import CHANGE_CHANNEL
from serving.snapshots import SnapshotUnavailable, store
from serving.streams.hub import Hub
from serving.streams.messages import State, state_of

__all__ = ["Changes", "parse_notification"]

logger = logging.getLogger(__name__)

LISTEN_PING_SECONDS = 10.0
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
# Beyond SNAPSHOT_CHECK_INTERVAL: time for a web process to compile a change it has just seen.
REMOTE_EVAL_MARGIN = 0.25
T = TypeVar("T")


def parse_notification(payload: str) -> tuple[int, int] | None:
    """``"<id>:<version>"`` as numbers; None for anything else."""
    head, _, tail = payload.partition(":")
    if not (head.isdigit() and tail.isdigit()):
        return None
    return int(head), int(tail)


class Changes:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.listening = False
        self._dirty: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-database")
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for work in (self._listen(), self._apply(), self._poll(), self._heartbeats()):
            self._tasks.append(asyncio.ensure_future(work))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._database.shutdown(wait=False, cancel_futures=True)

    async def on_database(self, work: Any, *args: Any) -> Any:
        """Run ``work(*args)`` on the database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._database, _with_fresh_connection, work, *args)

    # --- notifications -----------------------------------------------------------------

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**_listen_parameters(), autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANGE_CHANNEL}")
                    if attempt:
                        logger.warning("Listening for configuration changes again.")
                    self.listening, attempt = True, 0
                    for env_id in self.hub.environments():  # what changed while nobody listened
                        self._note(env_id, 0)
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_PING_SECONDS):
                            parsed = parse_notification(note.payload)
                            if parsed is not None:
                                self._note(*parsed)
                        await asyncio.wait_for(conn.execute("SELECT 1"), timeout=LISTEN_PING_SECONDS)
            except asyncio.CancelledError:
                self.listening = False
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self.listening or not attempt:
                    logger.error("Not listening for configuration changes (%s); streams are updated by the "
                                 "once-a-second check until the database answers again.", type(exc).__name__)
                self.listening = False
                await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
                attempt += 1

    def _note(self, environment_id: int, version: int) -> None:
        # version 0: deleted, or "check it"; catch_up reads the versions again either way.
        known = self._dirty.get(environment_id)
        if known is not None:
            version = 0 if 0 in (known, version) else max(known, version)
        self._dirty[environment_id] = version
        self._wake.set()

    async def _apply(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            watched = {env_id: version for env_id, version in dirty.items() if env_id in self.hub.environments()}
            if not watched:
                continue
            try:
                states = await self.on_database(_caught_up, watched)
            except Exception:
                logger.exception("Could not compile the changed environments %s; the next check retries.",
                                 sorted(watched))
                continue
            self._publish(states)

    # --- fallback, schedules, heartbeats -------------------------------------------------

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(max(float(settings.SNAPSHOT_CHECK_INTERVAL), 0.2))
            environments = self.hub.environments()
            if not environments:
                continue
            try:
                states = await self.on_database(_current, environments)
            except Exception:
                logger.exception("The streams' periodic check failed.")
                continue
            self._publish(states)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(max(float(settings.STREAM_HEARTBEAT_INTERVAL), 0.05))
            self.hub.heartbeat()

    def _publish(self, states: dict[int, State | None]) -> None:
        for env_id, state in states.items():
            # A rotated key or a deleted environment ends its streams first.
            if state is None:
                self.hub.finish_where(env_id, lambda stream: True)
                continue
            self.hub.finish_where(env_id, lambda stream: store.known_key(stream.digest) is None)
            if state.remote_only:
                # SDKs told of the change evaluate again at once, on a web process that reads
                # versions every SNAPSHOT_CHECK_INTERVAL: tell them once every process has it.
                delay = float(settings.SNAPSHOT_CHECK_INTERVAL) + REMOTE_EVAL_MARGIN
                asyncio.get_running_loop().call_later(delay, self.hub.offer, state)
                continue
            self.hub.offer(state)


def _with_fresh_connection(work: Any, *args: Any) -> Any:
    close_old_connections()
    return work(*args)


def _caught_up(versions: dict[int, int]) -> dict[int, State | None]:
    now = time.time()
    out: dict[int, State | None] = {}
    for env_id, version in versions.items():
        try:
            compiled = store.catch_up(env_id, version)
        except (DatabaseError, SnapshotUnavailable) as exc:
            logger.warning("Environment %s could not be compiled after its change: %s", env_id, exc)
            continue
        out[env_id] = state_of(compiled, now) if compiled is not None else None
    return out


def _current(environments: list[int]) -> dict[int, State | None]:
    store.refresh()
    now = time.time()
    out: dict[int, State | None] = {}
    for env_id in environments:
        compiled = store.current(env_id)
        if compiled is not None:
            out[env_id] = state_of(compiled, now)
    return out


def _listen_parameters() -> dict[str, Any]:
    """Django's connection parameters that psycopg's own connect takes."""
    params = connection.get_connection_params()
    return {name: value for name, value in params.items()
            if isinstance(value, (str, int)) and name != "client_encoding"}
