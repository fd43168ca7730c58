"""What every configuration write does around its change: refuse fields it does not know, and
audit the object as it was before and after (flags, rules, segments, layers, holdouts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from audit.services import audit_record
from audit.types import Actor
from config.errors import ValidationFailed

__all__ = ["audited", "reject_unknown"]


def reject_unknown(data: Mapping[str, Any], allowed: Iterable[str], *, what: str) -> None:
    """ValidationFailed naming every field of ``data`` that a ``what`` does not have."""
    unknown = set(data) - set(allowed)
    if unknown:
        article = "An" if what[:1].lower() in "aeiou" else "A"
        raise ValidationFailed(
            "Unknown fields.",
            details={f: [f"{article} {what} has no field '{f}' that can be set."] for f in sorted(unknown)},
        )


@contextmanager
def audited(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_key: str,
    document: Callable[[], Any],
    environment: str = "",
    deleting: bool = False,
) -> Iterator[None]:
    """Record ``document()`` before the block and after it (nothing after a delete) as one
    audit entry. Use inside the write's transaction: a block that raises records nothing."""
    before = document()
    yield
    after = None if deleting else document()
    audit_record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_key=object_key,
        before=before,
        after=after,
        environment=environment,
    )
