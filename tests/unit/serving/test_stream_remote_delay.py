"""A change of an environment whose client keys evaluate remotely reaches the streams only once
every web process has read it (SNAPSHOT_CHECK_INTERVAL plus a margin): the SDKs evaluate again
as soon as they are told, and must not get the previous values. Other changes go out at once."""

from __future__ import annotations

import asyncio
from typing import Any

from serving.streams.changes import REMOTE_EVAL_MARGIN, Changes
from serving.streams.messages import State


class RecordingHub:
    def __init__(self) -> None:
        self.offered: list[tuple[float, State]] = []

    def finish_where(self, environment_id: int, ends: Any) -> int:
        return 0

    def offer(self, state: State) -> int:
        self.offered.append((asyncio.get_running_loop().time(), state))
        return 1


def _state(environment_id: int, remote_only: bool) -> State:
    return State(environment_id, 2, f"2-{environment_id}", 0.0, b"gb", b"ofrep", remote_only=remote_only)


def test_publish__remote_only_environment__offered_after_the_web_processes_read_it(settings: Any) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 0.1
    hub = RecordingHub()

    async def run() -> float:
        changes = Changes(hub)  # type: ignore[arg-type]
        started = asyncio.get_running_loop().time()
        changes._publish({1: _state(1, remote_only=False), 2: _state(2, remote_only=True)})
        assert [s.environment_id for _, s in hub.offered] == [1]
        await asyncio.sleep(0.1 + REMOTE_EVAL_MARGIN + 0.1)
        return started

    started = asyncio.run(run())
    assert [s.environment_id for _, s in hub.offered] == [1, 2]
    assert hub.offered[1][0] - started >= 0.1 + REMOTE_EVAL_MARGIN - 0.01
