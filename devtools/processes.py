"""Child processes that a terminal's Ctrl-C does not reach, stopped in the order their parent chooses.

A terminal sends Ctrl-C to its whole foreground process group, so every process in it starts
shutting down at once, in no particular order. Here each child runs in a session (and process
group) of its own, and a stop signal to the parent only notes the request (`StopRequest`); the
parent then stops the children itself: a SIGTERM to each group's leader, a wait while the
leader shuts down what it started, and SIGKILL for whatever is left in its group after the
grace time (or at once after a second Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from devtools.embedded_db import STOP_SIGNALS

__all__ = ["Child", "StopRequest", "stop_children"]


class StopRequest:
    """The stop signals received; the handler only notes them, so no exception interrupts
    the parent in the middle of starting or stopping something."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._note)

    def _note(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    @property
    def insisted(self) -> bool:
        """A second signal: stop waiting for graceful shutdowns."""
        return len(self.signals) > 1

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less once a stop is requested; whether one was."""
        deadline = time.monotonic() + seconds
        while not self.signals and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return self.requested


class Child:
    """A process started in a session of its own, named for messages ("the server")."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], stdout: IO[Any] | None = None
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(list(argv), env=dict(env), stdout=stdout, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        """Whether the leader has ended. It is not reaped here: until it is, its pid cannot be
        reused, so signalling its group cannot reach an unrelated process."""
        if self.process.returncode is not None:
            return True
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def run(self, stop: StopRequest) -> int | None:
        """Wait for the child to end: its exit status, or None when a stop was requested first."""
        while not self.exited():
            if stop.sleep(0.2):
                return None
        return self.finish()

    def terminate(self) -> None:
        if not self.exited():
            self.process.send_signal(signal.SIGTERM)

    def finish(self) -> int:
        """Kill what is left of the group (nothing, after a clean shutdown), reap the leader
        and return its exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.process.wait()


def stop_children(children: Iterable[Child], *, stop: StopRequest, grace: float) -> None:
    """SIGTERM to every child at once, up to `grace` seconds for all of them to finish, then
    SIGKILL for the rest."""
    running = [child for child in children if child.process.returncode is None]
    for child in running:
        child.terminate()
    deadline = time.monotonic() + grace
    while any(not child.exited() for child in running) and time.monotonic() < deadline and not stop.insisted:
        time.sleep(0.1)
    for child in running:
        child.finish()
