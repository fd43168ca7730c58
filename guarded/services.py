"""Guarded rollouts: start, the worker's check, and the hand controls (pause, resume, roll back).

How it is served. Starting a guarded rollout of a flag's rollout rule in an environment creates
an experiment on the flag (tagged `guarded-rollout`) with two variations: the flag's default
variant, as *passthrough* (units not yet in the rollout are counted under it and then fall
through to the next rules, so they are served exactly what they were served before), and the
rollout's variant, weighted by the step's share. Its experiment rule takes the rollout rule's
place (position, targeting, hash attribute, prerequisites) and the rollout rule is disabled
meanwhile. The SDK edge and GrowthBook SDKs record an exposure for both sides, so each unit's
side is known. A step is a new split, hence a new phase of the experiment: each step is read
out on its own, by the ordinary readout job. At 100% the experiment stops and the rollout rule,
enabled again, serves 100%; rolled back, it serves 0%.

The check (`guarded_rollouts_check`, Celery beat every GUARDED_CHECK_SECONDS) judges each new
readout of the current step once: a guardrail harmed (`stats.guarded.guardrail_harmed` on the
always-valid interval) or a sample-ratio mismatch (`stats.guarded.share_mismatch`) rolls back or
pauses at once, with audit entries `rollout.guardrail_harmed` and `rollout.rollback` /
`rollout.pause` (the webhooks' events). A step advances when its minimum duration has passed and
a readout taken after that found no harm. It queues a readout when the last is older than
GUARDED_READOUT_SECONDS.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import raise_if
from base.keys import Errors
from base.models import Environment
from base.reviews import reviewable
from config.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from experiments.lifecycle import experiment_create, experiment_start, experiment_stop
from experiments.models import Experiment, ResultSnapshot
from experiments.ramp import experiment_ramp
from experiments.readout import readout_from_json
from experiments.readout_jobs import experiment_refresh
from flags import services as flag_services
from flags.models import Flag, FlagState, Rule
from flags.reviews import flag_target, in_environment
from guarded.checks import Guardrail, Step, check_guardrails, check_settings, check_steps
from guarded.documents import rollout_document
from guarded.models import GuardDecision, GuardedRollout
from guarded.reviews import of_rollout, rollout_target
from stats.guarded import compared_steps, guardrail_harmed, rollout_alphas, share_mismatch

__all__ = [
    "CheckRun",
    "guarded_rollout_pause",
    "guarded_rollout_resume",
    "guarded_rollout_rollback",
    "guarded_rollout_start",
    "guarded_rollouts_check",
]

logger = logging.getLogger(__name__)

TAG = "guarded-rollout"
GUARD_ACTOR_LABEL = "guarded rollout"


def _audit(actor: Actor, action: str, rollout: GuardedRollout, before: Any = None, **extra: Any) -> None:
    after = {**rollout_document(rollout), **extra}
    audit_record(actor=actor, action=action, object_type="flag", object_key=rollout.flag.key, before=before,
                 after=after, environment=rollout.environment.key)


def _decide(rollout: GuardedRollout, action: str, *, actor: str, reason: str = "", at: datetime | None = None,
            snapshot: ResultSnapshot | None = None, details: Mapping[str, Any] | None = None) -> GuardDecision:
    return GuardDecision.objects.create(
        rollout=rollout, at=at or timezone.now(), action=action, step=rollout.step, percent=rollout.percent,
        actor=actor[:150], reason=reason[:500], snapshot=snapshot, details=dict(details or {}),
    )


def _weights(percent: float) -> list[float]:
    share = percent / 100.0
    return [round(1.0 - share, 12), round(share, 12)]


# Start ---------------------------------------------------------------------------------------


@reviewable("rollout.start", label="Start a guarded rollout of flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment)
@transaction.atomic
def guarded_rollout_start(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    rule_id: str,
    steps: Any,
    guardrails: Any,
    on_harm: Any = GuardedRollout.OnHarm.ROLLBACK,
    alpha: Any = 0.05,
    min_units: Any = 500,
) -> GuardedRollout:
    """Guard the rollout rule `rule_id` of `flag` in `environment`; its first step starts now."""
    state = FlagState.objects.select_for_update().filter(flag=flag, environment=environment).first()
    rule = Rule.objects.filter(uid=rule_id, state=state).first() if state is not None else None
    if state is None or rule is None:
        raise NotFound(f"The flag '{flag.key}' has no rule '{rule_id}' in {environment.key}.", code="rule_not_found")
    errors: Errors = {}
    step_list = check_steps(steps, errors)
    guardrail_list = check_guardrails(guardrails, errors)
    check_settings(on_harm=on_harm, alpha=alpha, min_units=min_units, steps=step_list, guardrails=guardrail_list,
                   errors=errors)
    if rule.kind != Rule.Kind.ROLLOUT:
        errors.setdefault("rule_id", []).append("Only a percentage rollout rule can be guarded.")
    elif rule.variant == state.default_variant:
        errors.setdefault("rule_id", []).append(
            f"The rule serves the flag's default variant '{rule.variant}' in {environment.key}: "
            "there is nothing to compare it with.")
    if flag.archived_at is not None:
        errors.setdefault("flag", []).append(f"The flag '{flag.key}' is archived.")
    raise_if(errors, "The guarded rollout is not valid.")
    if GuardedRollout.objects.filter(rule_uid=rule.uid, status__in=["running", "paused"]).exists():
        raise Conflict("This rule already has a guarded rollout under way.", code="rollout_guarded")
    per_test = rollout_alphas(float(alpha), steps=compared_steps([s.percent for s in step_list]),
                              guardrails=len(guardrail_list))
    experiment = _experiment(actor, flag, environment, state, rule, step_list, guardrail_list,
                             alpha=per_test.guardrail, min_units=int(min_units))
    guard_rule = Rule.objects.get(uid=experiment.rule_uid)
    flag_services.flag_rule_update(actor=actor, rule=guard_rule, passthrough=[state.default_variant],
                                   prerequisites=list(rule.prerequisites or []),
                                   description=f"Guarded rollout of rule {rule.uid}: {rule.variant}")
    order = [r.uid for r in state.rules.order_by("position", "id") if r.uid != guard_rule.uid]
    order.insert(order.index(rule.uid), guard_rule.uid)
    flag_services.flag_rule_reorder(actor=actor, flag=flag, environment=environment, rule_ids=order)
    flag_services.flag_rule_update(actor=actor, rule=rule, enabled=False)
    try:
        rollout = GuardedRollout.objects.create(
            flag=flag, environment=environment, rule_uid=rule.uid, variant=rule.variant,
            control_variant=state.default_variant, experiment=experiment,
            steps=[s.document() for s in step_list], guardrails=[g.document() for g in guardrail_list],
            on_harm=str(on_harm), alpha=float(alpha), min_units=int(min_units), step=0,
            step_started_at=timezone.now(), created_by=actor.label[:150],
        )
    except IntegrityError as exc:
        raise Conflict("This rule already has a guarded rollout under way.", code="rollout_guarded") from exc
    _decide(rollout, GuardDecision.Action.STARTED, actor=actor.label,
            reason=f"Started at {step_list[0].percent:g}%.")
    _audit(actor, "rollout.start", rollout)
    return rollout


def _experiment(actor: Actor, flag: Flag, environment: Environment, state: FlagState, rule: Rule,
                steps: Sequence[Step], guardrails: Sequence[Guardrail], *, alpha: float, min_units: int) -> Experiment:
    key = f"guard-{flag.key[:60]}-{environment.key[:24]}-{uuid.uuid4().hex[:6]}"
    weights = _weights(steps[0].percent)
    experiment = experiment_create(
        actor=actor, key=key, flag=flag, environment=environment,
        name=f"Guarded rollout of {flag.key} ({rule.variant}) in {environment.key}",
        description=("Units served the rollout (treatment) against units it has not reached yet (control), "
                     "split by the same hash. Managed by the guarded rollout; do not change it by hand."),
        variations=[{"key": state.default_variant, "name": "Not yet in the rollout", "weight": weights[0]},
                    {"key": rule.variant, "name": "In the rollout", "weight": weights[1]}],
        metrics=[{"metric": g.metric, "role": "primary" if i == 0 else "guardrail"} for i, g in enumerate(guardrails)],
        hash_attribute=rule.hash_attribute or "id", seed=key, condition=dict(rule.condition or {}),
        segments=list(rule.segments or []), alpha=alpha, sequential=True, cuped=False, min_sample_per_arm=min_units,
        tags=[TAG],
    )
    return experiment_start(actor=actor, experiment=experiment)


# Ending: complete, roll back, pause, resume ----------------------------------------------------


def _locked(rollout: GuardedRollout) -> GuardedRollout:
    return GuardedRollout.objects.select_for_update(of=("self",)).select_related(
        "flag", "environment", "experiment").get(pk=rollout.pk)


def _finish_experiment(actor: Actor, rollout: GuardedRollout, note: str) -> None:
    experiment = Experiment.objects.get(pk=rollout.experiment_id)
    if experiment.status == Experiment.Status.RUNNING:
        # "rollback" for the experiment: its rule goes and the flag serves what it served before,
        # which is the rollout rule set below.
        experiment_stop(actor=actor, experiment=experiment, decision=Experiment.Decision.ROLLBACK, note=note[:500])


def _restore_rule(actor: Actor, rollout: GuardedRollout, coverage: float) -> None:
    rule = Rule.objects.filter(uid=rollout.rule_uid).first()
    if rule is not None:
        flag_services.flag_rule_update(actor=actor, rule=rule, enabled=True, coverage=coverage)


def _roll_back(actor: Actor, rollout: GuardedRollout, reason: str, snapshot: ResultSnapshot | None = None) -> None:
    before = rollout_document(rollout)
    _finish_experiment(actor, rollout, f"Guarded rollout rolled back: {reason}")
    _restore_rule(actor, rollout, 0.0)
    rollout.status, rollout.reason = GuardedRollout.Status.ROLLED_BACK, reason[:500]
    rollout.finished_at = timezone.now()
    rollout.save(update_fields=["status", "reason", "finished_at"])
    _decide(rollout, GuardDecision.Action.ROLLED_BACK, actor=actor.label, reason=reason, snapshot=snapshot)
    _audit(actor, "rollout.rollback", rollout, before, reason=reason)


def _pause(actor: Actor, rollout: GuardedRollout, reason: str, snapshot: ResultSnapshot | None = None) -> None:
    before = rollout_document(rollout)
    rollout.status, rollout.reason = GuardedRollout.Status.PAUSED, reason[:500]
    rollout.save(update_fields=["status", "reason"])
    _decide(rollout, GuardDecision.Action.PAUSED, actor=actor.label, reason=reason, snapshot=snapshot)
    _audit(actor, "rollout.pause", rollout, before, reason=reason)


def _complete(actor: Actor, rollout: GuardedRollout) -> None:
    _finish_experiment(actor, rollout, "Guarded rollout completed: the rollout rule serves 100%.")
    _restore_rule(actor, rollout, 1.0)
    rollout.status, rollout.finished_at = GuardedRollout.Status.COMPLETED, timezone.now()
    rollout.reason = "Reached 100% with no guardrail harmed."
    rollout.save(update_fields=["status", "finished_at", "reason"])
    _decide(rollout, GuardDecision.Action.COMPLETED, actor=actor.label, reason=rollout.reason)


def _advance(actor: Actor, rollout: GuardedRollout, now: datetime) -> None:
    before = rollout_document(rollout)
    rollout.step += 1
    rollout.step_started_at = timezone.now()
    rollout.save(update_fields=["step", "step_started_at"])
    percent = rollout.percent
    if percent >= 100.0:
        _complete(actor, rollout)
        _audit(actor, "rollout.complete", rollout, before)
        return
    experiment_ramp(actor=actor, experiment=rollout.experiment, weights=_weights(percent))
    _decide(rollout, GuardDecision.Action.ADVANCED, actor=actor.label, at=now,
            reason=f"Step {rollout.step} lasted its minimum with no guardrail harmed; now {percent:g}%.")
    _audit(actor, "rollout.advance", rollout, before)


def _active(rollout: GuardedRollout) -> GuardedRollout:
    rollout = _locked(rollout)
    if not rollout.active:
        raise Conflict(f"The guarded rollout is {rollout.get_status_display().lower()}.", code="rollout_finished")
    return rollout


@reviewable("rollout.rollback", label="Roll back the guarded rollout of flag", target=rollout_target,
            refs={"rollout": "guarded_rollout"}, environments=of_rollout, kill_switch=lambda kw: True)
@transaction.atomic
def guarded_rollout_rollback(*, actor: Actor, rollout: GuardedRollout, reason: str = "") -> GuardedRollout:
    """Roll back by hand: the rollout rule serves 0% and the comparison stops."""
    rollout = _active(rollout)
    _roll_back(actor, rollout, (reason or "").strip()[:500] or f"Rolled back by {actor.label}.")
    return rollout


@reviewable("rollout.pause", label="Pause the guarded rollout of flag", target=rollout_target,
            refs={"rollout": "guarded_rollout"}, environments=of_rollout, kill_switch=lambda kw: True)
@transaction.atomic
def guarded_rollout_pause(*, actor: Actor, rollout: GuardedRollout, reason: str = "") -> GuardedRollout:
    """Hold the current step: units keep what they are served, readouts go on, no step advances."""
    rollout = _active(rollout)
    if rollout.status == GuardedRollout.Status.PAUSED:
        raise Conflict("The guarded rollout is already paused.", code="rollout_paused")
    _pause(actor, rollout, (reason or "").strip()[:500] or f"Paused by {actor.label}.")
    return rollout


@reviewable("rollout.resume", label="Resume the guarded rollout of flag", target=rollout_target,
            refs={"rollout": "guarded_rollout"}, environments=of_rollout)
@transaction.atomic
def guarded_rollout_resume(*, actor: Actor, rollout: GuardedRollout) -> GuardedRollout:
    """Let a paused rollout advance again (the check pauses or rolls back again if harm persists)."""
    rollout = _active(rollout)
    if rollout.status != GuardedRollout.Status.PAUSED:
        raise Conflict("Only a paused guarded rollout can resume.", code="rollout_not_paused")
    before = rollout_document(rollout)
    rollout.status, rollout.reason = GuardedRollout.Status.RUNNING, ""
    rollout.save(update_fields=["status", "reason"])
    _decide(rollout, GuardDecision.Action.RESUMED, actor=actor.label, reason=f"Resumed by {actor.label}.")
    _audit(actor, "rollout.resume", rollout, before)
    return rollout


# The check --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judgement:
    units: tuple[int, int]
    srm: bool
    guardrails: tuple[dict[str, Any], ...]

    @property
    def harmed(self) -> list[str]:
        return [g["metric"] for g in self.guardrails if g["harmed"]]

    def details(self) -> dict[str, Any]:
        return {"units": list(self.units), "srm": self.srm, "guardrails": list(self.guardrails)}


def judge(rollout: GuardedRollout, snapshot: ResultSnapshot) -> Judgement:
    """Each guardrail's always-valid interval in this readout, and whether it or the split says harm."""
    readout = readout_from_json({"variations": snapshot.variations, "metrics": snapshot.metrics})
    units_by_key = {v.key: v.units for v in readout.variations}
    control, treatment = units_by_key.get(rollout.control_variant, 0), units_by_key.get(rollout.variant, 0)
    alphas = rollout_alphas(rollout.alpha, steps=compared_steps([float(s["percent"]) for s in rollout.steps]),
                            guardrails=len(rollout.guardrails))
    enough = min(control, treatment) >= rollout.min_units
    found = []
    for guardrail in rollout.guardrails:
        metric = readout.metric(guardrail["metric"])
        comparison = None
        if metric is not None:
            comparison = next((c for c in metric.sequential if c.variation == rollout.variant
                               and c.difference_type == "relative"), None)
        low = comparison.ci_low if comparison is not None else None
        high = comparison.ci_high if comparison is not None else None
        harmed = bool(enough and low is not None and high is not None and guardrail_harmed(
            low, high, direction=guardrail["direction"], threshold=float(guardrail.get("threshold") or 0.0)))
        found.append({"metric": guardrail["metric"], "estimate": comparison.estimate if comparison else None,
                      "ci_low": low, "ci_high": high, "harmed": harmed})
    srm = share_mismatch(control, treatment, rollout.percent / 100.0, alpha=alphas.srm,
                         tuning=float(rollout.experiment.sequential_tuning))
    return Judgement(units=(control, treatment), srm=srm, guardrails=tuple(found))


def _latest_readout(rollout: GuardedRollout) -> ResultSnapshot | None:
    phase = rollout.experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
    if phase is None:
        return None
    return (ResultSnapshot.objects.filter(experiment_id=rollout.experiment_id, phase=phase,
                                          status=ResultSnapshot.Status.SUCCESS, finished_at__isnull=False)
            .order_by("-finished_at", "-pk").first())


def _harm_reason(judgement: Judgement) -> str:
    parts = []
    for g in judgement.guardrails:
        if g["harmed"]:
            parts.append(f"guardrail {g['metric']} harmed (relative change between {g['ci_low']:+.2%} and "
                         f"{g['ci_high']:+.2%})")
    if judgement.srm:
        parts.append(f"sample-ratio mismatch ({judgement.units[0]} units not in the rollout, "
                     f"{judgement.units[1]} in it)")
    return "; ".join(parts).capitalize() + "."


def _check_one(rollout_id: int, now: datetime) -> str:
    actor = Actor.system(GUARD_ACTOR_LABEL)
    rollout = GuardedRollout.objects.select_for_update(of=("self",)).select_related(
        "flag", "environment", "experiment").get(pk=rollout_id)
    if not rollout.active:
        return "finished"
    if rollout.experiment.status != Experiment.Status.RUNNING:
        # The comparison was stopped by hand: without it nothing is watched, so nothing is served.
        _roll_back(actor, rollout, "The comparison's experiment was stopped outside the guarded rollout.")
        return "rolled_back"
    snapshot = _latest_readout(rollout)
    judged: Judgement | None = None
    if snapshot is not None and snapshot.pk != rollout.checked_snapshot_id:
        judged = judge(rollout, snapshot)
        rollout.checked_snapshot = snapshot
        rollout.save(update_fields=["checked_snapshot"])
        _decide(rollout, GuardDecision.Action.CHECKED, actor=actor.label, snapshot=snapshot, at=now,
                details=judged.details())
        if rollout.status == GuardedRollout.Status.RUNNING and (judged.harmed or judged.srm):
            reason = _harm_reason(judged)
            if judged.harmed:
                _decide(rollout, GuardDecision.Action.HARMED, actor=actor.label, reason=reason, snapshot=snapshot,
                        details=judged.details())
                _audit(actor, "rollout.guardrail_harmed", rollout, None, reason=reason, guardrails=judged.harmed)
            if rollout.on_harm == GuardedRollout.OnHarm.PAUSE:
                _pause(actor, rollout, reason, snapshot)
                return "paused"
            _roll_back(actor, rollout, reason, snapshot)
            return "rolled_back"
    if rollout.status != GuardedRollout.Status.RUNNING:
        return "paused"
    due = rollout.step_started_at + timedelta(seconds=int(rollout.steps[rollout.step]["min_duration_seconds"]))
    if (snapshot is not None and snapshot.analysis_end is not None and now >= due
            and snapshot.analysis_end >= due and not _harmful(rollout, snapshot, judged)):
        _advance(actor, rollout, now)
        return "advanced" if rollout.active else "completed"
    _request_readout(rollout, now)
    return "waiting"


def _harmful(rollout: GuardedRollout, snapshot: ResultSnapshot, judged: Judgement | None) -> bool:
    """Whether the readout's check found harm (a readout never checked counts as harmful)."""
    if judged is not None:
        return bool(judged.harmed or judged.srm)
    check = rollout.decisions.filter(action=GuardDecision.Action.CHECKED, snapshot=snapshot).last()
    if check is None:
        return True
    return bool(check.details.get("srm") or any(g.get("harmed") for g in check.details.get("guardrails", [])))


def _request_readout(rollout: GuardedRollout, now: datetime) -> None:
    last = ResultSnapshot.objects.filter(experiment_id=rollout.experiment_id).order_by("-created_at", "-pk").first()
    interval = timedelta(seconds=float(settings.GUARDED_READOUT_SECONDS))
    if last is not None and last.status in (ResultSnapshot.Status.QUEUED, ResultSnapshot.Status.RUNNING):
        return
    if last is not None and last.created_at > now - interval:
        return
    experiment_refresh(experiment=rollout.experiment, trigger=ResultSnapshot.Trigger.SCHEDULE,
                       requested_by=GUARD_ACTOR_LABEL)


@dataclass(frozen=True, slots=True)
class CheckRun:
    outcomes: dict[int, str]


def guarded_rollouts_check(*, now: datetime | None = None) -> CheckRun:
    """Check every running or paused guarded rollout, each in its own transaction: one failing
    never holds up another."""
    outcomes: dict[int, str] = {}
    ids = list(GuardedRollout.objects.filter(status__in=["running", "paused"]).values_list("pk", flat=True))
    for rollout_id in ids:
        try:
            with transaction.atomic():
                outcomes[rollout_id] = _check_one(rollout_id, now or timezone.now())
        except (ApplicationError, DatabaseError, ValidationFailed) as exc:
            logger.warning("Guarded rollout %s could not be checked: %s", rollout_id, exc)
            outcomes[rollout_id] = f"error: {exc}"
    return CheckRun(outcomes=outcomes)
