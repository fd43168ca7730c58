"""Ramping a running experiment: raise its coverage now or on a schedule, or change its split.

A coverage raise keeps every unit already in the experiment in its variation (the bucketing
only grows each variation's range), so it continues the current phase; a new split, or a
lower coverage, starts a new phase (`experiments.phases`). `ramp_preview` says which before a
change is confirmed; `experiment_ramp` applies it through `lifecycle.experiment_update`, the
path the admin's coverage field takes too, so the admin, the pages and the API behave alike.

A schedule is a list of `RampStep` rows; Celery beat runs `ramp_steps_apply_due` every minute,
which applies each due step as `experiment_ramp` would (audited as `experiment.ramp`, by the
scheduler on behalf of whoever planned it). A step that no longer raises the coverage when it is
due, or whose experiment stopped, is skipped with the reason; one step failing never holds up
another.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import raise_if
from base.keys import Errors
from base.reviews import reviewable
from config.errors import ApplicationError, ValidationFailed
from experiments.checks import check_ramp, check_ramp_steps
from experiments.documents import ramp_step_document
from experiments.lifecycle import assignment_after, assignment_of, experiment_update
from experiments.models import Experiment, RampStep
from experiments.phases import PhaseChange, phase_change
from experiments.reviews import experiment_target, of_experiment, ramp_schedule_steps

__all__ = ["RampRun", "experiment_ramp", "experiment_ramp_cancel", "experiment_ramp_schedule", "ramp_preview",
           "ramp_schedule_check", "ramp_steps_apply_due"]

logger = logging.getLogger(__name__)


def _variations(experiment: Experiment, weights: Sequence[float] | None) -> list[dict[str, Any]] | None:
    if weights is None:
        return None
    return [{"key": v.key, "name": v.name, "weight": float(w)}
            for v, w in zip(experiment.variations.all(), weights, strict=True)]


def ramp_preview(*, experiment: Experiment, coverage: float | None = None,
                 weights: Sequence[float] | None = None) -> PhaseChange:
    """What a change now would do to the phase (validated as `experiment_ramp` validates it)."""
    errors: Errors = {}
    check_ramp(experiment, coverage, weights, errors)
    raise_if(errors, "The ramp is not valid.")
    changes: dict[str, Any] = {"variations": _variations(experiment, weights)}
    if coverage is not None:
        changes["coverage"] = float(coverage)
    change = phase_change(assignment_of(experiment), assignment_after(experiment, changes))
    if not change.changed:
        raise ValidationFailed("Nothing to change: the coverage and the split are already these.",
                               code="ramp_unchanged",
                               details={"coverage": ["Nothing to change: give a coverage or a split different "
                                                     "from today's."]})
    return change


@reviewable("experiment.ramp", label="Ramp experiment", target=experiment_target,
            refs={"experiment": "experiment"}, environments=of_experiment)
@transaction.atomic
def experiment_ramp(*, actor: Actor, experiment: Experiment, coverage: float | None = None,
                    weights: Sequence[float] | None = None) -> tuple[Experiment, PhaseChange]:
    """Apply a coverage and/or split change now; returns the experiment and what it did."""
    experiment = Experiment.objects.select_for_update(of=("self",)).get(pk=experiment.pk)
    change = ramp_preview(experiment=experiment, coverage=coverage, weights=weights)
    changes: dict[str, Any] = {}
    if coverage is not None:
        changes["coverage"] = float(coverage)
    if weights is not None:
        changes["variations"] = _variations(experiment, weights)
    experiment = experiment_update(actor=actor, experiment=experiment, audit_action="experiment.ramp", **changes)
    return experiment, change


def _planned(experiment: Experiment) -> list[dict[str, Any]]:
    return [ramp_step_document(s) for s in experiment.ramp_steps.filter(status=RampStep.Status.PLANNED)]


def _cancel_planned(experiment: Experiment, note: str) -> int:
    return experiment.ramp_steps.filter(status=RampStep.Status.PLANNED).update(
        status=RampStep.Status.CANCELLED, note=note)


def ramp_schedule_check(*, experiment: Experiment, steps: Sequence[tuple[float, datetime]]) -> None:
    """Refuse a schedule `experiment_ramp_schedule` would refuse (a preview writes nothing)."""
    errors: Errors = {}
    check_ramp_steps(experiment, list(steps), timezone.now(), errors)
    raise_if(errors, "The ramp schedule is not valid.")


@reviewable("experiment.ramp_schedule", label="Schedule the ramp of experiment", target=experiment_target,
            refs={"experiment": "experiment"}, environments=of_experiment, decoders={"steps": ramp_schedule_steps})
@transaction.atomic
def experiment_ramp_schedule(*, actor: Actor, experiment: Experiment,
                             steps: Sequence[tuple[float, datetime]]) -> list[RampStep]:
    """Plan coverage raises `(coverage, apply_at)`; they replace the steps planned before."""
    experiment = Experiment.objects.select_for_update(of=("self",)).select_related("environment").get(
        pk=experiment.pk)
    ramp_schedule_check(experiment=experiment, steps=steps)
    before = _planned(experiment)
    _cancel_planned(experiment, "Replaced by a new schedule.")
    created = RampStep.objects.bulk_create(
        RampStep(experiment=experiment, coverage=float(coverage), apply_at=at, requested_by=actor.label)
        for coverage, at in steps
    )
    audit_record(actor=actor, action="experiment.ramp_schedule", object_type="experiment",
                 object_key=experiment.key, before={"ramp_steps": before}, after={"ramp_steps": _planned(experiment)},
                 environment=experiment.environment.key)
    return created


@transaction.atomic
def experiment_ramp_cancel(*, actor: Actor, experiment: Experiment) -> int:
    """Cancel the planned steps (the coverage stays where it is); returns how many."""
    experiment = Experiment.objects.select_for_update(of=("self",)).select_related("environment").get(
        pk=experiment.pk)
    before = _planned(experiment)
    count = _cancel_planned(experiment, f"Cancelled by {actor.label}.")
    if count:
        audit_record(actor=actor, action="experiment.ramp_cancel", object_type="experiment",
                     object_key=experiment.key, before={"ramp_steps": before}, after={"ramp_steps": []},
                     environment=experiment.environment.key)
    return count


@dataclass(frozen=True, slots=True)
class RampRun:
    applied: int = 0
    skipped: int = 0


def _apply_one(step_id: int, now: datetime) -> str:
    """Apply or skip one due step in its own transaction; returns its new status."""
    with transaction.atomic():
        step = (RampStep.objects.select_for_update(skip_locked=True).select_related("experiment")
                .filter(pk=step_id, status=RampStep.Status.PLANNED).first())
        if step is None:
            return ""  # taken by another worker, or cancelled meanwhile
        experiment = step.experiment
        skip = ""
        if experiment.status != Experiment.Status.RUNNING:
            skip = f"The experiment is {experiment.status}."
        elif step.coverage <= experiment.coverage:
            skip = f"Coverage is already {experiment.coverage * 100:.4g}%."
        if not skip:
            actor = Actor(label=f"ramp schedule ({step.requested_by or 'unknown'})", via="system")
            try:
                with transaction.atomic():
                    experiment, _ = experiment_ramp(actor=actor, experiment=experiment, coverage=step.coverage)
            except ApplicationError as exc:
                skip = exc.message
        if skip:
            step.status, step.note = RampStep.Status.SKIPPED, skip[:300]
        else:
            phase = experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
            step.status, step.phase_number = RampStep.Status.APPLIED, phase.number if phase else None
        step.applied_at = now
        step.save(update_fields=["status", "note", "applied_at", "phase_number"])
        return str(step.status)


def ramp_steps_apply_due(*, now: datetime | None = None) -> RampRun:
    """Apply every planned step whose time has come, oldest first (Celery beat, every minute)."""
    moment = now or timezone.now()
    due = list(RampStep.objects.filter(status=RampStep.Status.PLANNED, apply_at__lte=moment)
               .order_by("apply_at", "id").values_list("pk", flat=True))
    applied = skipped = 0
    for step_id in due:
        try:
            status = _apply_one(step_id, moment)
        except DatabaseError:  # one step failing (say, a lost connection) leaves the others to run
            logger.exception("Ramp step %s could not be applied; it stays planned.", step_id)
            continue
        applied += status == RampStep.Status.APPLIED
        skipped += status == RampStep.Status.SKIPPED
    return RampRun(applied=applied, skipped=skipped)
