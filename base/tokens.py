"""Management API tokens: created (the raw value shown once) and revoked, audited."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.keys import new_management_token, token_digest
from base.models import ApiToken
from config.errors import ValidationFailed


@transaction.atomic
def api_token_create(
    *, actor: Actor, user: User, name: str, scope: str = ApiToken.Scope.READ
) -> tuple[ApiToken, str]:
    """Create a management token; the raw value is returned once and never stored."""
    if scope not in ApiToken.Scope.values:
        raise ValidationFailed("Unknown scope.", details={"scope": [f"Use one of {ApiToken.Scope.values}."]})
    raw = new_management_token()
    token = ApiToken.objects.create(name=name, user=user, scope=scope, prefix=raw[:10], token_hash=token_digest(raw))
    audit_record(
        actor=actor,
        action="token.create",
        object_type="token",
        object_key=token.prefix,
        after={"name": name, "scope": scope, "user": user.get_username()},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="token.revoke", object_type="token", object_key=token.prefix)
    return token
