"""Per-process background work of the serving path: a flush thread and connection hygiene.

Requests only touch memory; what they leave behind (exposures, evaluation times) is written
by a daemon thread per process, so a slow or unreachable database never holds up an answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

from django.db import Error as DatabaseError
from django.db import close_old_connections

__all__ = ["FlushThread", "discard_connection"]

logger = logging.getLogger(__name__)


class FlushThread:
    """Calls ``work`` every ``interval()`` seconds on a daemon thread of its own, started
    once per process (again after a fork). An interval of 0 or less starts nothing: the
    owner then flushes explicitly (tests do). With ``close_after`` the thread's database
    connection is closed after each run (for work done once a minute or so, rather than
    holding a connection idle in between)."""

    def __init__(
        self, name: str, interval: Callable[[], float], work: Callable[[], object], *, close_after: bool = False
    ) -> None:
        self._name = name
        self._close_after = close_after
        self._interval = interval
        self._work = work
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wakeup = threading.Event()

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._thread is not None and self._thread.is_alive():
            return
        if self._interval() <= 0:
            return
        with self._lock:
            if self._pid == pid and self._thread is not None and self._thread.is_alive():
                return
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run the work now rather than at the end of the interval."""
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(max(self._interval(), 0.05))
            self._wakeup.clear()
            try:
                close_old_connections()
                self._work()
            except Exception:
                logger.exception("Background flush %s failed.", self._name)
            if self._close_after:
                _close_connection()


def _close_connection() -> None:
    from django.db import connection

    with contextlib.suppress(DatabaseError):
        connection.close()


def discard_connection() -> None:
    """Drop this thread's connection after a failure so that the next attempt reconnects."""
    from django.db import connection

    try:
        if not connection.in_atomic_block:
            connection.close()
    except DatabaseError:
        pass
