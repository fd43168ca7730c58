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
    return AuditEntry.objects.create(
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
