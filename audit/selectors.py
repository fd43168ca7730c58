from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_list(
    *, object_type: str | None = None, object_key: str | None = None, action: str | None = None
) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all()
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_key:
        qs = qs.filter(object_key=object_key)
    if action:
        qs = qs.filter(action=action)
    return qs
