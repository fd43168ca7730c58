"""Management API tokens: created (the raw value shown once) and revoked, audited."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.keys import TOKEN_PREFIX, new_management_token, token_digest
from base.models import ApiToken, Environment
from config.errors import Conflict, NotFound, ValidationFailed

# Tokens are shown (admin, audit log, command output) by their first characters only.
PREFIX_LENGTH = 10
NAME_MAX_LENGTH = 120


@transaction.atomic
def api_token_create(
    *, actor: Actor, user: User, name: str, scope: str = ApiToken.Scope.READ,
    environments: Sequence[Environment] = (),
) -> tuple[ApiToken, str]:
    """Create a management token; the raw value is returned once and never stored. With
    `environments` the token acts only in those (its owner's rights there)."""
    if scope not in ApiToken.Scope.values:
        raise ValidationFailed("Unknown scope.", details={"scope": [f"Use one of {ApiToken.Scope.values}."]})
    if not name.strip() or len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed("The token needs a name.",
                               details={"name": [f"Give a name of 1 to {NAME_MAX_LENGTH} characters."]})
    if not user.is_active:
        raise ValidationFailed("The user is inactive.", details={"user": [f"'{user.get_username()}' cannot log in."]})
    raw = new_management_token()
    token = ApiToken.objects.create(
        name=name, user=user, scope=scope, prefix=raw[:PREFIX_LENGTH], token_hash=token_digest(raw)
    )
    token.environments.set(environments)
    audit_record(
        actor=actor,
        action="token.create",
        object_type="token",
        object_key=token.prefix,
        after={"name": name, "scope": scope, "user": user.get_username(),
               **({"environments": sorted(env.key for env in environments)} if environments else {})},
    )
    return token, raw


def api_token_by_prefix(*, prefix: str) -> ApiToken:
    """The one token whose shown prefix (`sbm_` and six characters) starts `prefix`, or that
    `prefix` starts with (a whole token may be given)."""
    text = prefix.strip()
    if len(text) < len(TOKEN_PREFIX) + 4:
        raise ValidationFailed("Give at least the token's first 8 characters (sbm_ and 4 more).",
                               code="prefix_too_short")
    shown = text[:PREFIX_LENGTH]
    found = list(ApiToken.objects.filter(prefix__startswith=shown).select_related("user")[:10])
    if not found:
        raise NotFound(f"No token starts with '{shown}'.", code="token_not_found")
    if len(found) > 1:
        raise Conflict(f"Several tokens start with '{shown}'; give more characters.", code="ambiguous_prefix",
                       details={"tokens": [f"{t.prefix} ({t.name}, {t.user.get_username()})" for t in found]})
    return found[0]


@transaction.atomic
def api_token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="token.revoke", object_type="token", object_key=token.prefix)
    return token
