from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from audit.diff import json_diff
from audit.models import AuditEntry
from audit.types import Actor


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_key: str,
    before: Any = None,
    after: Any = None,
    environment: str = "",
) -> AuditEntry:
    """Write one audit entry; call inside the transaction of the write it describes."""
    entry = AuditEntry.objects.create(
        actor_id=actor.user_id,
        actor_label=actor.label,
        via=actor.via,
        action=action,
        object_type=object_type,
        object_key=object_key,
        environment=environment,
        before=before,
        after=after,
        diff=json_diff(before, after),
    )
    collected = _collected.get()
    if collected is not None:
        collected.append(entry)
    return entry


_collected: ContextVar[list[AuditEntry] | None] = ContextVar("audit_collected", default=None)


@contextmanager
def audit_collect() -> Iterator[list[AuditEntry]]:
    """The entries `audit_record` writes inside the block, in order (what a write changed)."""
    entries: list[AuditEntry] = []
    token = _collected.set(entries)
    try:
        yield entries
    finally:
        _collected.reset(token)
