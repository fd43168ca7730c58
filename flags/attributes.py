"""Writes of attribute definitions: create, change, delete; validated first, in one
transaction, with an audit entry.

Definitions guide the people writing conditions (the condition builder offers them) and never
change what is served, so no environment's config version moves. Deleting a definition that
conditions still test is allowed: those conditions keep working, and the builder shows the
attribute as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import audit_record
from audit.types import Actor
from base.checks import raise_if
from base.writes import audited, reject_unknown
from config.errors import Conflict
from flags.documents import attribute_document
from flags.engine.attributes import check_attribute
from flags.models import AttributeDefinition

__all__ = ["ATTRIBUTE_FIELDS", "attribute_create", "attribute_delete", "attribute_update"]

# The fields a write may set besides the name, which never changes once created.
ATTRIBUTE_FIELDS = ("type", "allowed_values", "description")


def _check(values: Mapping[str, Any]) -> None:
    raise_if(check_attribute(**values), "The attribute is not valid.")


@transaction.atomic
def attribute_create(
    *,
    actor: Actor,
    name: str,
    type: str = AttributeDefinition.Type.STRING,
    allowed_values: Sequence[Any] = (),
    description: str = "",
) -> AttributeDefinition:
    values = {"name": name, "type": type, "allowed_values": allowed_values, "description": description}
    _check(values)
    if AttributeDefinition.objects.filter(name=name).exists():
        raise Conflict(f"Attribute '{name}' is already defined.", code="duplicate_key")
    try:
        with transaction.atomic():
            attribute = AttributeDefinition.objects.create(
                name=name, type=type, allowed_values=list(allowed_values), description=description
            )
    except IntegrityError as exc:
        raise Conflict(f"Attribute '{name}' is already defined.", code="duplicate_key") from exc
    audit_record(actor=actor, action="attribute.create", object_type="attribute", object_key=name,
                 after=attribute_document(attribute))
    return attribute


@transaction.atomic
def attribute_update(*, actor: Actor, attribute: AttributeDefinition, **changes: Any) -> AttributeDefinition:
    """Change the type, allowed values or description; checked together with what is kept."""
    attribute = AttributeDefinition.objects.select_for_update().get(pk=attribute.pk)
    reject_unknown(changes, ATTRIBUTE_FIELDS, what="attribute")
    _check({**attribute_document(attribute), **changes})
    with audited(actor=actor, action="attribute.update", object_type="attribute", object_key=attribute.name,
                 document=lambda: attribute_document(attribute)):
        for field, value in changes.items():
            setattr(attribute, field, list(value) if field == "allowed_values" else value)
        attribute.save()
    return attribute


@transaction.atomic
def attribute_delete(*, actor: Actor, attribute: AttributeDefinition) -> None:
    attribute = AttributeDefinition.objects.select_for_update().get(pk=attribute.pk)
    with audited(actor=actor, action="attribute.delete", object_type="attribute", object_key=attribute.name,
                 document=lambda: attribute_document(attribute), deleting=True):
        attribute.delete()
