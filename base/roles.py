"""Roles per environment: granted, changed and revoked, audited. What each role may do is
`base.permissions.ROLE_ACTIONS`."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import audit_record
from audit.types import Actor
from base.models import Environment, EnvironmentRole
from config.errors import ValidationFailed


@transaction.atomic
def environment_role_grant(*, actor: Actor, environment: Environment, user: Any, role: str) -> EnvironmentRole:
    """Give `user` `role` in `environment` (replacing the role they held there)."""
    if role not in EnvironmentRole.Role.values:
        choices = ", ".join(EnvironmentRole.Role.values)
        raise ValidationFailed("Unknown role.", details={"role": [f"Use one of {choices}."]})
    if not user.is_active or not user.is_staff:
        raise ValidationFailed("Roles are for active staff members.",
                               details={"user": [f"'{user.get_username()}' is not an active staff member."]})
    current = EnvironmentRole.objects.select_for_update().filter(environment=environment, user=user).first()
    before = {"user": user.get_username(), "role": current.role} if current is not None else None
    grant, _ = EnvironmentRole.objects.update_or_create(environment=environment, user=user, defaults={"role": role})
    audit_record(actor=actor, action="environment.role_grant", object_type="environment", object_key=environment.key,
                 before=before, after={"user": user.get_username(), "role": role}, environment=environment.key)
    return grant


@transaction.atomic
def environment_role_revoke(*, actor: Actor, grant: EnvironmentRole) -> None:
    """Take the role away: the user's general rights apply in that environment again."""
    environment = grant.environment
    audit_record(actor=actor, action="environment.role_revoke", object_type="environment", object_key=environment.key,
                 before={"user": grant.user.get_username(), "role": grant.role}, after=None,
                 environment=environment.key)
    grant.delete()
