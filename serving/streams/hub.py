"""The open streams of the process, by environment: limits, fan-out, heartbeats, closing.

Everything here runs on the event loop and never blocks. A write goes to the server's ``send``
in a task of its own, so a client that reads slowly (its socket buffer full) holds up nobody:
while its write is pending, later heartbeats for it are dropped and later states replace one
another, so it is sent the newest state once it reads again, and nothing piles up in memory.
A stream is one small object; the message bytes are shared by all streams of an environment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping
from typing import Any

from config.metrics import OPEN_STREAMS, STREAM_FANOUT_SECONDS, STREAM_MESSAGES
from serving.errors import Rejected
from serving.streams.messages import HEARTBEAT, State, opening

__all__ = ["Hub", "Stream"]

logger = logging.getLogger(__name__)

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Stream:
    """One client's open stream."""

    __slots__ = ("busy", "closed", "digest", "environment_id", "finishing", "last_id", "pending", "protocol", "send")

    def __init__(self, send: Send, *, digest: str, environment_id: int, protocol: str) -> None:
        self.send = send
        self.digest = digest
        self.environment_id = environment_id
        self.protocol = protocol
        self.last_id = ""
        self.busy = False
        self.closed = False
        self.finishing = False
        self.pending: bytes | None = None


class Hub:
    def __init__(self, *, max_per_key: int, max_total: int, retry_ms: int) -> None:
        self.max_per_key = max_per_key
        self.max_total = max_total
        self._opening = opening(retry_ms)
        self._streams: dict[int, set[Stream]] = {}
        self._per_key: dict[str, int] = {}
        self._total = 0
        self._states: dict[int, State] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self.closing = False

    # --- connections -------------------------------------------------------------------

    def reserve(self, digest: str) -> None:
        """Count a new stream of a key, or refuse it: 429 over the key's limit, 503 over the
        process's (another replica, or a retry a little later, can take it)."""
        if self.closing:
            raise Rejected(503, "unavailable", "The streaming process is shutting down; reconnect.",
                           {"Retry-After": "1"})
        if self._total >= self.max_total:
            raise Rejected(503, "unavailable", "This streaming process holds as many streams as it may; retry later.",
                           {"Retry-After": "5"})
        held = self._per_key.get(digest, 0)
        if held >= self.max_per_key:
            raise Rejected(429, "too_many_streams",
                           f"This key has {held} open streams on this process, its limit; close some or retry later.",
                           {"Retry-After": "30"})
        self._per_key[digest] = held + 1
        self._total += 1

    def release(self, digest: str) -> None:
        held = self._per_key.get(digest, 0) - 1
        if held > 0:
            self._per_key[digest] = held
        else:
            self._per_key.pop(digest, None)
        self._total -= 1

    def attach(self, stream: Stream, state: State, last_event_id: str | None) -> None:
        """Start sending to a reserved stream: the reconnection delay, and the current state
        unless the client's ``Last-Event-ID`` says it has it."""
        self.offer(state)
        current = self._states[stream.environment_id]
        self._streams.setdefault(stream.environment_id, set()).add(stream)
        OPEN_STREAMS.inc()
        first = self._opening
        if last_event_id != current.id:
            first += current.message(stream.protocol)
            STREAM_MESSAGES.labels(stream.protocol).inc()
        stream.last_id = current.id
        self._write(stream, first)

    def detach(self, stream: Stream) -> None:
        stream.closed = True
        streams = self._streams.get(stream.environment_id)
        if streams is not None and stream in streams:
            streams.discard(stream)
            OPEN_STREAMS.dec()
            if not streams:
                del self._streams[stream.environment_id]
                self._states.pop(stream.environment_id, None)

    # --- fan-out -----------------------------------------------------------------------

    def environments(self) -> list[int]:
        """Environments with open streams."""
        return list(self._streams)

    def state(self, environment_id: int) -> State | None:
        return self._states.get(environment_id)

    def offer(self, state: State) -> int:
        """Make ``state`` current if it is newer, and send it to every stream of its environment
        that has not got it; the number of streams written to."""
        current = self._states.get(state.environment_id)
        if current is not None and not state.newer_than(current):
            return 0
        started = time.perf_counter()
        self._states[state.environment_id] = state
        sent = 0
        for stream in self._streams.get(state.environment_id, ()):
            if stream.last_id != state.id:
                stream.last_id = state.id
                self._write(stream, state.message(stream.protocol))
                STREAM_MESSAGES.labels(stream.protocol).inc()
                sent += 1
        if sent:
            STREAM_FANOUT_SECONDS.observe(time.perf_counter() - started)
        return sent

    def finish_where(self, environment_id: int, ends: Callable[[Stream], bool]) -> int:
        """End the environment's streams for which ``ends`` holds (a revoked key, a deleted
        environment); their clients reconnect and are refused or served anew."""
        ended = [stream for stream in self._streams.get(environment_id, ()) if ends(stream)]
        for stream in ended:
            self._finish(stream)
        return len(ended)

    def heartbeat(self) -> None:
        for stream in self._all():
            if not stream.busy:
                self._write(stream, HEARTBEAT)

    def close_all(self) -> None:
        """End every stream (the process is stopping): clients reconnect, to another replica
        or to this one once restarted, and resume with ``Last-Event-ID``."""
        self.closing = True
        for stream in list(self._all()):
            self._finish(stream)

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    def _all(self) -> Iterator[Stream]:
        for streams in self._streams.values():
            yield from streams

    # --- writing -----------------------------------------------------------------------

    def _write(self, stream: Stream, data: bytes) -> None:
        if stream.closed or stream.finishing:
            return
        if stream.busy:
            if data is not HEARTBEAT:
                stream.pending = data
            return
        self._start(stream, data)

    def _finish(self, stream: Stream) -> None:
        if stream.closed or stream.finishing:
            return
        stream.finishing = True
        if not stream.busy:
            self._start(stream, None)

    def _start(self, stream: Stream, data: bytes | None) -> None:
        """Write now. The server's ``send`` only waits when the client's socket buffer is full;
        until it does, it runs to its end right here, so the usual write costs no task. A write
        that has to wait goes on in a task of its own."""
        stream.busy = True
        writing = self._drain(stream, data)
        try:
            waiting = writing.send(None)
        except StopIteration:
            return
        task = asyncio.ensure_future(_resume(writing, waiting))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _drain(self, stream: Stream, data: bytes | None) -> None:
        try:
            while data is not None and not stream.closed:
                await stream.send({"type": "http.response.body", "body": data, "more_body": True})
                data, stream.pending = stream.pending, None
            if stream.finishing and not stream.closed:
                stream.closed = True
                await stream.send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:  # the connection went away under the write
            logger.debug("A stream write failed: %s", exc)
            stream.closed = True
        finally:
            stream.busy = False


async def _resume(writing: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Go on with a write that began outside any task and stopped on ``waiting`` (what it
    awaits: a future, or None for a bare yield to the loop)."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                # The write reads the future's outcome itself when it goes on.
                await asyncio.wait((waiting,))
            try:
                waiting = writing.send(None)
            except StopIteration:
                return
    except BaseException:
        writing.close()
        raise
