"""Guarded rollouts through the services: the comparison's rule, checks that advance, complete,
roll back or pause, the audit entries, and the hand controls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import Conflict, ValidationFailed
from experiments import services as experiment_services
from experiments.models import Experiment, Metric
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import Flag, Rule
from guarded import services
from guarded.models import GuardDecision, GuardedRollout
from tests.integration.guarded.conftest import start_body
from tests.integration.guarded.traffic import send_traffic


def _start(actor: Actor, flag: Flag, env: Environment, rule: Rule, **extra: Any) -> GuardedRollout:
    body = start_body(rule, **extra)
    return services.guarded_rollout_start(actor=actor, flag=flag, environment=env, rule_id=body.pop("rule_id"),
                                          **body)


def _readout_and_check(rollout: GuardedRollout, *, wait: float = 5.0) -> str:
    """A readout and a check, as if `wait` seconds of the step had passed."""
    GuardedRollout.objects.filter(pk=rollout.pk).update(step_started_at=F("step_started_at") - timedelta(seconds=wait))
    experiment_services.readout_run(experiment_id=rollout.experiment_id)
    return services.guarded_rollouts_check().outcomes[rollout.pk]


def test_start__the_comparison_takes_the_rules_place_and_the_rest_passes_through(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule)
    rules = list(Rule.objects.filter(state__flag=checkout, state__environment=production).order_by("position"))
    assert [r.kind for r in rules] == ["force", "experiment", "rollout"]
    guard = rules[1]
    assert (guard.experiment_key, guard.variations, guard.weights) == (rollout.experiment.key,
                                                                       ["control", "treatment"], [0.9, 0.1])
    assert guard.passthrough == ["control"] and rules[2].enabled is False
    snapshot = environment_snapshot(environment=production)
    sides = [evaluate(snapshot, "checkout", {"id": f"u{i}"}) for i in range(2000)]
    served = [r for r in sides if r.experiment is not None]
    passed = [r for r in sides if r.passthrough]
    assert len(served) + len(passed) == 2000 and 140 < len(served) < 260
    # Units not yet in the rollout get what the next rules give them: the default here.
    assert {r.value for r in passed} == {"old"} and {r.value for r in served} == {"new"}
    internal = evaluate(snapshot, "checkout", {"id": "u1", "plan": "internal"})
    assert internal.value == "old" and not internal.passthrough
    assert AuditEntry.objects.filter(action="rollout.start", object_key="checkout").count() == 1
    assert rollout.experiment.alpha == pytest.approx(0.05 * 0.9 / 2)


def test_no_harm__advances_each_step_then_completes_at_100(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule)
    send_traffic(production, units=1500, prefix="a", rates=(0.2, 0.2), seed=1)
    assert _readout_and_check(rollout) == "advanced"
    rollout.refresh_from_db()
    assert rollout.percent == 50.0
    assert Rule.objects.get(experiment_key=rollout.experiment.key).weights == [0.5, 0.5]
    send_traffic(production, units=1000, prefix="b", rates=(0.2, 0.2), seed=2)
    assert _readout_and_check(rollout) == "completed"
    rollout.refresh_from_db()
    assert rollout.status == "completed"
    rule = Rule.objects.get(uid=rollout_rule.uid)
    assert (rule.enabled, rule.coverage) == (True, 1.0)
    assert not Rule.objects.filter(experiment_key=rollout.experiment.key).exists()
    assert Experiment.objects.get(pk=rollout.experiment_id).status == "stopped"
    actions = list(rollout.decisions.exclude(action="checked").values_list("action", flat=True))
    assert actions == ["started", "advanced", "completed"]


def test_before_the_minimum_duration__no_step_advances(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule,
                     steps=[{"percent": 10, "min_duration_seconds": 3600}, {"percent": 100}])
    send_traffic(production, units=500, prefix="a", rates=(0.2, 0.2), seed=3)
    assert _readout_and_check(rollout) == "waiting"
    rollout.refresh_from_db()
    assert (rollout.status, rollout.percent) == ("running", 10.0)


def test_harm__rolled_back_at_once_with_the_reason_audited(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule,
                     steps=[{"percent": 50, "min_duration_seconds": 3600}, {"percent": 100}])
    send_traffic(production, units=2000, prefix="h", rates=(0.5, 0.1), seed=4)
    assert _readout_and_check(rollout) == "rolled_back"
    rollout.refresh_from_db()
    assert rollout.status == "rolled_back" and "purchase harmed" in rollout.reason
    rule = Rule.objects.get(uid=rollout_rule.uid)
    assert (rule.enabled, rule.coverage) == (True, 0.0)
    assert evaluate(environment_snapshot(environment=production), "checkout", {"id": "h-1"}).value == "old"
    harmed = AuditEntry.objects.get(action="rollout.guardrail_harmed")
    assert harmed.after is not None and harmed.after["guardrails"] == ["purchase"]
    assert harmed.environment == "production"
    assert AuditEntry.objects.filter(action="rollout.rollback", object_key="checkout").count() == 1
    check = rollout.decisions.get(action="checked")
    [guardrail] = check.details["guardrails"]
    assert guardrail["harmed"] and guardrail["ci_high"] < 0


def test_harm_with_pause__holds_the_step_until_resumed_or_rolled_back(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule, on_harm="pause")
    send_traffic(production, units=2000, prefix="p", rates=(0.5, 0.1), seed=5)
    assert _readout_and_check(rollout) == "paused"
    rollout.refresh_from_db()
    assert (rollout.status, rollout.percent) == ("paused", 10.0)
    assert AuditEntry.objects.filter(action="rollout.pause").count() == 1
    assert services.guarded_rollouts_check(now=timezone.now() + timedelta(hours=1)).outcomes[rollout.pk] == "paused"
    services.guarded_rollout_rollback(actor=actor, rollout=rollout, reason="Checked by hand.")
    rollout.refresh_from_db()
    assert (rollout.status, rollout.reason) == ("rolled_back", "Checked by hand.")
    with pytest.raises(Conflict):
        services.guarded_rollout_resume(actor=actor, rollout=rollout)


def test_bad_input__refused_with_every_reason_and_nothing_written(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    before = (Experiment.objects.count(), AuditEntry.objects.count())
    with pytest.raises(ValidationFailed) as caught:
        _start(actor, checkout, production, rollout_rule,
               steps=[{"percent": 50, "min_duration_seconds": 0}, {"percent": 20}],
               guardrails=[{"metric": "nope"}], on_harm="explode", min_units=1)
    details = caught.value.details
    assert set(details) >= {"steps[0].min_duration_seconds", "steps[1].percent", "guardrails[0].metric",
                            "on_harm", "min_units"}
    assert (Experiment.objects.count(), AuditEntry.objects.count()) == before
    _start(actor, checkout, production, rollout_rule)
    with pytest.raises(Conflict):
        _start(actor, checkout, production, rollout_rule)
    assert GuardedRollout.objects.count() == 1
    assert GuardDecision.objects.filter(action="started").count() == 1


def test_comparison_stopped_by_hand__rolled_back_at_the_next_check(
    actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = _start(actor, checkout, production, rollout_rule)
    experiment_services.experiment_stop(actor=actor, experiment=rollout.experiment, decision="rollback")
    assert services.guarded_rollouts_check().outcomes[rollout.pk] == "rolled_back"
    rollout.refresh_from_db()
    assert "stopped outside" in rollout.reason
    assert Rule.objects.get(uid=rollout_rule.uid).coverage == 0.0
