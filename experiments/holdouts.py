"""Holdouts that hold: shipping inside a holdout's scope, and ending a holdout.

Shipping an experiment makes its variation the flag's default. When the experiment is in the
scope of an active holdout, the flag also gets a force rule for that holdout (last in its rule
list, so that a held-out unit meets every rule it met before), which serves the value the flag
had before: the holdout's units keep the experience from before the experiments in its scope,
everyone else gets the shipped one. A flag keeps one such rule per holdout, written by the
first shipped experiment, so later ships on the same flag leave the held-out units where they
were before any of them.

Ending a holdout deletes those rules (each deletion audited on its flag) and records the end on
the holdout, audited: its units then get the shipped experiences like everyone else. It is
refused while an experiment rule still keeps the holdout's units out (a running experiment).
Ending changes what the environments holding its force rules serve, so it passes the review
gate there (`base.reviews`): in an environment that requires review it becomes a change request,
applied once approved.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.types import Actor
from base.environments import environments_bump_all
from base.reviews import reviewable
from base.writes import audited
from config.errors import Conflict
from experiments.models import Experiment
from experiments.reviews import holdout_target, of_holdout_rules
from flags import services as flag_services
from flags.models import FlagState, Rule
from traffic.documents import holdout_document
from traffic.models import Holdout

__all__ = ["hold_rule_description", "holdout_end", "holdout_keep_before_ship", "holdout_rules"]


def hold_rule_description(holdout_key: str) -> str:
    return f"Holdout {holdout_key}: its units keep the value from before the experiments it holds out"


def holdout_keep_before_ship(*, actor: Actor, experiment: Experiment, variation: str) -> Rule | None:
    """Called by the ship, before the flag's default changes: when the experiment is in an
    active holdout's scope and the shipped variation differs from the flag's current default,
    make sure the flag has the holdout's force rule serving the current default. Returns the
    rule written, or None when none was needed (or the flag already has one)."""
    holdout = experiment.holdout
    if holdout is None or holdout.ended_at is not None or holdout.share <= 0:
        return None
    state = FlagState.objects.get(flag=experiment.flag, environment=experiment.environment)
    if state.default_variant == variation:
        return None
    if state.rules.filter(kind=Rule.Kind.FORCE, holdout=holdout.key).exists():
        return None
    return flag_services.flag_rule_create(
        actor=actor, flag=experiment.flag, environment=experiment.environment, kind=Rule.Kind.FORCE,
        variant=state.default_variant, holdout=holdout.key, description=hold_rule_description(holdout.key),
    )


def holdout_rules(holdout: Holdout) -> list[str]:
    """Where the holdout keeps its units on the earlier value: `flag@environment` names."""
    rows = Rule.objects.filter(kind=Rule.Kind.FORCE, holdout=holdout.key).values_list(
        "state__flag__key", "state__environment__key")
    return sorted(f"{flag}@{env}" for flag, env in rows)


def _blocking(holdout: Holdout) -> dict[str, list[str]]:
    """Running experiments and experiment rules that still keep the holdout's units out."""
    rules = list(Rule.objects.filter(kind=Rule.Kind.EXPERIMENT, holdout=holdout.key).values_list(
        "uid", "experiment_key", "state__flag__key", "state__environment__key"))
    running = Experiment.objects.filter(holdout=holdout, status=Experiment.Status.RUNNING).values_list("key", flat=True)
    found: dict[str, list[str]] = {}
    experiments = sorted({key for _, key, _, _ in rules if key} | set(running))
    if experiments:
        found["experiments"] = experiments
    loose = sorted(f"{flag}@{env}:{uid}" for uid, key, flag, env in rules if not key)
    if loose:
        found["rules"] = loose
    return found


@reviewable("holdout.end", label="End holdout", target=holdout_target, refs={"holdout": "holdout"},
            environments=of_holdout_rules)
@transaction.atomic
def holdout_end(*, actor: Actor, holdout: Holdout) -> Holdout:
    """End an active holdout: its units get the shipped experiences from now on (audited as
    `holdout.end`, with the flags released). Refused while running experiments use it."""
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    if holdout.ended_at is not None:
        raise Conflict(f"Holdout '{holdout.key}' has already ended.", code="holdout_ended")
    blocking = _blocking(holdout)
    if blocking:
        raise Conflict(
            f"Holdout '{holdout.key}' still keeps units out of running experiments; stop them (or take the "
            "holdout off them) first.", code="holdout_in_use", details=blocking)

    def document() -> dict[str, Any]:
        return {**holdout_document(holdout), "held_flags": holdout_rules(holdout)}

    with audited(actor=actor, action="holdout.end", object_type="holdout", object_key=holdout.key,
                 document=document):
        for rule in Rule.objects.filter(kind=Rule.Kind.FORCE, holdout=holdout.key):
            flag_services.flag_rule_delete(actor=actor, rule=rule)
        holdout.ended_at = timezone.now()
        holdout.save(update_fields=["ended_at"])
        environments_bump_all()
    return holdout
