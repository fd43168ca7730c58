"""Writes to layers and holdouts: validated, in one transaction, audited.

Experiments compile their layer range and the holdouts in scope into each environment's
snapshot, so every write here bumps the config version of all environments. A layer or
holdout cannot be deleted while an experiment that is not archived, or a flag rule, uses it;
archived experiments let go of it (their results stay readable).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import audit_record
from audit.types import Actor
from config.errors import Conflict, ValidationFailed
from flags import validation
from flags.models import Environment, Rule
from flags.services import environments_bump
from flags.writes import audited, reject_unknown
from traffic.models import Holdout, Layer

LAYER_FIELDS = ("name", "description")
HOLDOUT_FIELDS = ("name", "description", "share", "hash_attribute", "seed")
KEY_MAX_LENGTH = 64
MAX_HOLDOUT_SHARE = 0.5


def layer_document(layer: Layer) -> dict[str, Any]:
    return {"key": layer.key, "name": layer.name, "description": layer.description}


def holdout_document(holdout: Holdout) -> dict[str, Any]:
    return {
        "key": holdout.key,
        "name": holdout.name,
        "description": holdout.description,
        "share": holdout.share,
        "hash_attribute": holdout.hash_attribute,
        "seed": holdout.seed,
    }


def _check_key(key: object) -> validation.Errors:
    errors = validation.check_key(key)
    if not errors and isinstance(key, str) and len(key) > KEY_MAX_LENGTH:
        errors["key"] = [f"Use at most {KEY_MAX_LENGTH} characters."]
    return errors


def _check_text(data: Mapping[str, Any], errors: validation.Errors) -> None:
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        errors["name"] = ["Give a name of at most 200 characters."]
    if not isinstance(data.get("description", ""), str):
        errors["description"] = ["The description must be text."]


def _check_holdout(data: Mapping[str, Any]) -> validation.Errors:
    errors: validation.Errors = {}
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


def _bump_all() -> None:
    environments_bump(environment_ids=Environment.objects.values_list("id", flat=True))


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
    _bump_all()
    audit_record(actor=actor, action="layer.create", object_type="layer", object_key=key,
                 after=layer_document(layer))
    return layer


@transaction.atomic
def layer_update(*, actor: Actor, layer: Layer, **changes: Any) -> Layer:
    reject_unknown(changes, LAYER_FIELDS, what="layer")
    layer = Layer.objects.select_for_update().get(pk=layer.pk)
    errors: validation.Errors = {}
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
        _bump_all()
    return layer


def _users(experiments: Any, rules: list[str]) -> dict[str, list[str]]:
    """Who still uses a layer or holdout: experiments not archived, and flag rules."""
    active = sorted(experiments.exclude(status="archived").values_list("key", flat=True))
    used: dict[str, list[str]] = {}
    if active:
        used["experiments"] = active
    if rules:
        used["rules"] = sorted(rules)
    return used


def _rule_names(rules: Any) -> list[str]:
    rows = rules.values_list("uid", "state__flag__key", "state__environment__key")
    return [f"{flag}@{env}:{uid}" for uid, flag, env in rows]


@transaction.atomic
def layer_delete(*, actor: Actor, layer: Layer) -> None:
    """Delete a layer no experiment (other than archived ones) and no rule uses."""
    layer = Layer.objects.select_for_update().get(pk=layer.pk)
    rules = [name for name, ns in _namespaced_rules() if ns == layer.key]
    _delete_unless_used(actor=actor, kind="layer", obj=layer, rules=rules, document=lambda: layer_document(layer))


def _namespaced_rules() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    rules = Rule.objects.filter(namespace__isnull=False).values_list(
        "uid", "state__flag__key", "state__environment__key", "namespace"
    )
    for uid, flag, env, ns in rules:
        if isinstance(ns, list) and ns:
            out.append((f"{flag}@{env}:{uid}", str(ns[0])))
    return out


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
    _bump_all()
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
        _bump_all()
    return holdout


@transaction.atomic
def holdout_delete(*, actor: Actor, holdout: Holdout) -> None:
    """Delete a holdout no experiment (other than archived ones) and no rule uses."""
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    rules = _rule_names(Rule.objects.filter(holdout=holdout.key))
    _delete_unless_used(actor=actor, kind="holdout", obj=holdout, rules=rules,
                        document=lambda: holdout_document(holdout))


def _delete_unless_used(*, actor: Actor, kind: str, obj: Layer | Holdout, rules: list[str],
                        document: Callable[[], dict[str, Any]]) -> None:
    """Refuse while experiments (archived ones aside) or rules use `obj`; else detach the
    archived experiments, delete it, audited, and recompile every environment."""
    used = _users(obj.experiments.all(), rules)
    if used:
        raise Conflict(f"{kind.capitalize()} '{obj.key}' is in use; stop and archive its experiments first.",
                       code=f"{kind}_in_use", details=used)
    archived = sorted(obj.experiments.values_list("key", flat=True))
    with audited(actor=actor, action=f"{kind}.delete", object_type=kind, object_key=obj.key,
                 document=lambda: {**document(), "archived_experiments": archived}, deleting=True):
        obj.experiments.update(**{kind: None})
        obj.delete()
        _bump_all()
