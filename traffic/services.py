"""Creating and changing layers and holdouts: validated, in one transaction, audited.

Experiments compile their layer range and the holdouts in scope into each environment's
snapshot, so every write here bumps the config version of all environments. Deleting one
checks who uses it (experiments, flag rules): that lives in `experiments.traffic`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import audit_record
from audit.types import Actor
from base.environments import environments_bump_all
from base.keys import Errors, check_key
from base.writes import audited, reject_unknown
from config.errors import Conflict, ValidationFailed
from traffic.documents import holdout_document, layer_document
from traffic.models import Holdout, Layer

LAYER_FIELDS = ("name", "description")
HOLDOUT_FIELDS = ("name", "description", "share", "hash_attribute", "seed")
KEY_MAX_LENGTH = 64
MAX_HOLDOUT_SHARE = 0.5


def _check_key(key: object) -> Errors:
    errors = check_key(key)
    if not errors and isinstance(key, str) and len(key) > KEY_MAX_LENGTH:
        errors["key"] = [f"Use at most {KEY_MAX_LENGTH} characters."]
    return errors


def _check_text(data: Mapping[str, Any], errors: Errors) -> None:
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        errors["name"] = ["Give a name of at most 200 characters."]
    if not isinstance(data.get("description", ""), str):
        errors["description"] = ["The description must be text."]


def _check_holdout(data: Mapping[str, Any]) -> Errors:
    errors: Errors = {}
    _check_text(data, errors)
    share = data.get("share")
    if (
        not isinstance(share, (int, float))
        or isinstance(share, bool)
        or not math.isfinite(share)
        or not 0.0 <= share <= MAX_HOLDOUT_SHARE
    ):
        errors["share"] = [f"The held-out share must be a number between 0 and {MAX_HOLDOUT_SHARE}."]
    attribute = data.get("hash_attribute")
    if not isinstance(attribute, str) or not attribute.strip() or len(attribute) > 100:
        errors["hash_attribute"] = ["Name the attribute units are hashed by (for example 'id')."]
    seed = data.get("seed")
    if not isinstance(seed, str) or not seed.strip() or len(seed) > 100:
        errors["seed"] = ["Give a seed of 1-100 characters."]
    return errors


@transaction.atomic
def layer_create(*, actor: Actor, key: str, name: str = "", description: str = "") -> Layer:
    data = {"name": name or key, "description": description}
    errors = _check_key(key)
    _check_text(data, errors)
    if errors:
        raise ValidationFailed("The layer is not valid.", details=errors)
    if Layer.objects.filter(key=key).exists():
        raise Conflict(f"Layer '{key}' already exists.", code="duplicate_key")
    try:
        with transaction.atomic():
            layer = Layer.objects.create(key=key, **data)
    except IntegrityError as exc:
        raise Conflict(f"Layer '{key}' already exists.", code="duplicate_key") from exc
    environments_bump_all()
    audit_record(actor=actor, action="layer.create", object_type="layer", object_key=key,
                 after=layer_document(layer))
    return layer


@transaction.atomic
def layer_update(*, actor: Actor, layer: Layer, **changes: Any) -> Layer:
    reject_unknown(changes, LAYER_FIELDS, what="layer")
    layer = Layer.objects.select_for_update().get(pk=layer.pk)
    errors: Errors = {}
    _check_text({**layer_document(layer), **changes}, errors)
    if "name" in changes and not changes["name"]:
        errors["name"] = ["A layer needs a name."]
    if errors:
        raise ValidationFailed("The layer is not valid.", details=errors)
    with audited(actor=actor, action="layer.update", object_type="layer", object_key=layer.key,
                 document=lambda: layer_document(layer)):
        for field, value in changes.items():
            setattr(layer, field, value)
        layer.save()
        environments_bump_all()
    return layer


@transaction.atomic
def holdout_create(
    *,
    actor: Actor,
    key: str,
    share: float,
    name: str = "",
    description: str = "",
    hash_attribute: str = "id",
    seed: str = "",
) -> Holdout:
    """Keep `share` (0-0.5) of units out of every experiment in scope; the seed defaults to the key."""
    data = {
        "name": name or key, "description": description, "share": share,
        "hash_attribute": hash_attribute, "seed": seed or key,
    }
    errors = _check_key(key)
    errors.update(_check_holdout(data))
    if errors:
        raise ValidationFailed("The holdout is not valid.", details=errors)
    if Holdout.objects.filter(key=key).exists():
        raise Conflict(f"Holdout '{key}' already exists.", code="duplicate_key")
    try:
        with transaction.atomic():
            holdout = Holdout.objects.create(key=key, **data)
    except IntegrityError as exc:
        raise Conflict(f"Holdout '{key}' already exists.", code="duplicate_key") from exc
    environments_bump_all()
    audit_record(actor=actor, action="holdout.create", object_type="holdout", object_key=key,
                 after=holdout_document(holdout))
    return holdout


@transaction.atomic
def holdout_update(*, actor: Actor, holdout: Holdout, **changes: Any) -> Holdout:
    reject_unknown(changes, HOLDOUT_FIELDS, what="holdout")
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    errors = _check_holdout({**holdout_document(holdout), **changes})
    if "name" in changes and not changes["name"]:
        errors["name"] = ["A holdout needs a name."]
    if errors:
        raise ValidationFailed("The holdout is not valid.", details=errors)
    with audited(actor=actor, action="holdout.update", object_type="holdout", object_key=holdout.key,
                 document=lambda: holdout_document(holdout)):
        for field, value in changes.items():
            setattr(holdout, field, value)
        holdout.save()
        environments_bump_all()
    return holdout


