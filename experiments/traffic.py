"""Deleting layers and holdouts: refused while an experiment that is not archived, or a flag
rule, uses one; archived experiments let go of it (their results stay readable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from audit.types import Actor
from base.environments import environments_bump_all
from base.writes import audited
from config.errors import Conflict
from flags.models import Rule
from traffic.documents import holdout_document, layer_document
from traffic.models import Holdout, Layer


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
        environments_bump_all()
