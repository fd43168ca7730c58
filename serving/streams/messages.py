"""What the streams send, encoded once per change and shared by every stream of an environment.

An environment's configuration at one moment is a ``State``. Its id, the SSE event id, is
``<config version>-<digest of the GrowthBook payload>``: it changes with every write and when a
scheduled rule starts or ends. A client that reconnects with ``Last-Event-ID`` equal to the
current id is up to date and is sent nothing; any other client is sent the current state
(every message carries the whole state, so nothing older needs replaying).

- GrowthBook (``/sub/{clientKey}``): ``event: features`` with the SDK payload as ``data``
  (as client keys receive it: hashed or encrypted by the environment's setting), which the SDKs
  apply as they would a fetched payload; for an environment that serves client keys by remote
  evaluation only, ``event: features-updated`` with an empty object, on which the SDKs evaluate
  remotely again.
- OFREP (``/ofrep/v1/event-stream``): ``event: message`` with
  ``{"type": "refetchEvaluation", "etag": <id>, "lastModified": <epoch seconds>}``; the
  provider then fetches the bulk evaluation again, naming the id as ``flagConfigEtag``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import orjson

from flags.engine.gbformat import payload_date_updated
from serving.snapshots import CompiledEnvironment

__all__ = ["GROWTHBOOK", "HEARTBEAT", "OFREP", "State", "opening", "state_of"]

GROWTHBOOK, OFREP = "growthbook", "ofrep"
# A comment line: every SSE client ignores it; it keeps proxies and the client's read timeout
# from closing an idle stream, and finds dead connections.
HEARTBEAT = b": keep-alive\n\n"


@dataclass(frozen=True, slots=True)
class State:
    environment_id: int
    version: int
    id: str
    made_at: float
    growthbook: bytes
    ofrep: bytes
    # Client keys of the environment evaluate remotely: the GrowthBook message only says
    # "features-updated", and the SDKs then ask a web process, which must have read the change.
    remote_only: bool = False

    def message(self, protocol: str) -> bytes:
        return self.growthbook if protocol == GROWTHBOOK else self.ofrep

    def newer_than(self, other: State) -> bool:
        return self.id != other.id and (self.version, self.made_at) > (other.version, other.made_at)


def state_of(compiled: CompiledEnvironment, now: float | None = None) -> State:
    """The state an environment's snapshot serves at ``now`` (epoch seconds)."""
    now = time.time() if now is None else now
    body, etag, _ = compiled.payload(now)
    ident = etag.strip('"')
    head = b"id: " + ident.encode() + b"\n"
    modified = _epoch(payload_date_updated(compiled.snapshot, now), now)
    notice = {"type": "refetchEvaluation", "etag": ident, "lastModified": modified}
    return State(
        environment_id=compiled.environment_id,
        version=compiled.version,
        id=ident,
        made_at=now,
        growthbook=head + (b"event: features-updated\ndata: {}" if body is None else b"event: features\ndata: " + body)
        + b"\n\n",
        ofrep=head + b"event: message\ndata: " + orjson.dumps(notice) + b"\n\n",
        remote_only=body is None,
    )


def opening(retry_ms: int) -> bytes:
    """The first line of every stream: how long the client waits before reconnecting."""
    return b"retry: %d\n\n" % retry_ms


def _epoch(date_updated: str | None, now: float) -> int:
    if date_updated:
        try:
            return int(datetime.fromisoformat(date_updated.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(now)
