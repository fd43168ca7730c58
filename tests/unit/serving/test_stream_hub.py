"""The hub of the streaming process on its own event loop: what a stream is sent and when, with
`send` standing for the server's ASGI send (one that can be made to wait, as uvicorn's does
while a client's socket buffer is full)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from serving.errors import Rejected
from serving.streams.hub import Hub, Stream
from serving.streams.messages import GROWTHBOOK, HEARTBEAT, OFREP, State


class Client:
    """Receives what the hub sends; while `blocked` is clear, a write waits, as for a client
    that stopped reading."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.blocked = asyncio.Event()
        self.blocked.set()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        await self.blocked.wait()
        if message.get("more_body", False):
            self.bodies.append(message["body"])
        else:
            self.ended = True


def state(version: int, made_at: float = 0.0) -> State:
    ident = f"{version}-d{version}"
    return State(environment_id=1, version=version, id=ident, made_at=made_at,
                 growthbook=f"id: {ident}\nevent: features\n\n".encode(),
                 ofrep=f"id: {ident}\nevent: message\n\n".encode())


def attach(hub: Hub, client: Client, current: State, last: str | None = None, protocol: str = GROWTHBOOK) -> Stream:
    hub.reserve("key")
    stream = Stream(client.send, digest="key", environment_id=1, protocol=protocol)
    hub.attach(stream, current, last)
    return stream


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_first_message__retry_then_the_state_unless_the_client_has_it() -> None:
    async def scenario() -> None:
        hub = Hub(max_per_key=10, max_total=10, retry_ms=3000)
        fresh, resumed, ofrep = Client(), Client(), Client()
        attach(hub, fresh, state(4))
        attach(hub, resumed, state(4), last="4-d4")
        attach(hub, ofrep, state(4), protocol=OFREP)
        await settle()
        assert fresh.bodies == [b"retry: 3000\n\n" + state(4).growthbook]
        assert resumed.bodies == [b"retry: 3000\n\n"]
        assert ofrep.bodies == [b"retry: 3000\n\n" + state(4).ofrep]

    asyncio.run(scenario())


def test_a_slow_client__holds_up_nobody_and_gets_only_the_newest_state() -> None:
    async def scenario() -> None:
        hub = Hub(max_per_key=10, max_total=10, retry_ms=3000)
        slow, quick = Client(), Client()
        attach(hub, slow, state(1))
        attach(hub, quick, state(1))
        await settle()
        slow.blocked.clear()
        for version in (2, 3, 4):
            hub.offer(state(version, made_at=version))
            hub.heartbeat()
        await settle()
        assert [b for b in quick.bodies[1:] if b != HEARTBEAT] == [state(v, v).growthbook for v in (2, 3, 4)]
        assert len(slow.bodies) == 1  # still waiting on the write of version 2
        slow.blocked.set()
        await settle()
        # Version 2 (already under way), then the newest; version 3 and the heartbeats skipped.
        assert slow.bodies[1:] == [state(2, 2).growthbook, state(4, 4).growthbook]

    asyncio.run(scenario())


def test_older_or_same_states_are_not_sent_again() -> None:
    async def scenario() -> None:
        hub = Hub(max_per_key=10, max_total=10, retry_ms=3000)
        client = Client()
        attach(hub, client, state(5, made_at=5))
        assert hub.offer(state(5, made_at=9)) == 0
        assert hub.offer(state(4, made_at=10)) == 0
        assert hub.offer(state(6, made_at=1)) == 1

    asyncio.run(scenario())


def test_limits__per_key_then_per_process__and_released_on_detach() -> None:
    async def scenario() -> None:
        hub = Hub(max_per_key=2, max_total=3, retry_ms=3000)
        streams = [attach(hub, Client(), state(1)) for _ in range(2)]
        with pytest.raises(Rejected) as per_key:
            hub.reserve("key")
        assert per_key.value.status == 429 and per_key.value.headers["Retry-After"]
        hub.reserve("other")
        with pytest.raises(Rejected) as per_process:
            hub.reserve("third")
        assert per_process.value.status == 503
        hub.detach(streams[0])
        hub.release("key")
        hub.reserve("key")

    asyncio.run(scenario())


def test_finish_and_close_all__end_the_streams() -> None:
    async def scenario() -> None:
        hub = Hub(max_per_key=10, max_total=10, retry_ms=3000)
        revoked, kept = Client(), Client()
        gone = attach(hub, revoked, state(1))
        attach(hub, kept, state(1))
        assert hub.finish_where(1, lambda stream: stream is gone) == 1
        await settle()
        assert revoked.ended and not kept.ended
        hub.close_all()
        await settle()
        assert kept.ended
        with pytest.raises(Rejected) as closing:
            hub.reserve("key")
        assert closing.value.status == 503

    asyncio.run(scenario())
