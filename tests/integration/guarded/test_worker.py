"""Guarded rollouts on a real Celery worker: the worker's check queues readouts, judges them and
acts by itself. With harm on the guardrail the rollout rolls back and a local webhook receiver
gets the signed alert; without harm it reaches 100% step by step, no step before its minimum."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from alerts import services as alert_services
from alerts.events import sign
from alerts.tasks import webhooks_deliver_task
from audit.types import Actor
from base.models import Environment
from experiments.models import Metric
from flags.models import Flag, Rule
from guarded import services
from guarded.models import GuardedRollout
from guarded.tasks import guarded_rollouts_check_task
from tests.integration.alerts.receiver import Receiver, receiver  # noqa: F401 - fixture
from tests.integration.experiments.conftest import Workers, celery_workers  # noqa: F401 - fixture
from tests.integration.guarded.traffic import send_traffic

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# The worker queues a readout of a guarded rollout at most this often (seconds).
WORKER_ENV = {"GUARDED_READOUT_SECONDS": "1"}


def _tick_until(done: Callable[[], bool], *, seconds: float = 120.0) -> None:
    """Send the beat's tasks to the worker (as Celery beat would) until `done()`."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the worker did not get there in time"
        guarded_rollouts_check_task.delay()
        webhooks_deliver_task.delay()
        time.sleep(1.0)


def _start(actor: Actor, flag: Flag, env: Environment, rule: Rule, steps: list[dict[str, Any]]) -> GuardedRollout:
    return services.guarded_rollout_start(actor=actor, flag=flag, environment=env, rule_id=rule.uid, steps=steps,
                                          guardrails=[{"metric": "purchase", "direction": "higher"}], min_units=100)


def test_harm__rolled_back_by_the_worker__signed_alert_received(
    celery_workers: Workers, receiver: Receiver, actor: Actor, checkout: Flag,  # noqa: F811
    production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    celery_workers.start(**WORKER_ENV)
    alert_services.webhooks_dispatch()
    _, secret = alert_services.webhook_create(actor=actor, name="ops", url=receiver.url,
                                              events=["rollout.guardrail_harmed", "rollout.rolled_back"])
    rollout = _start(actor, checkout, production, rollout_rule, [{"percent": 50, "min_duration_seconds": 3600},
                                                                  {"percent": 100}])
    send_traffic(production, units=2000, prefix="h", rates=(0.5, 0.1), seed=21)

    def alerted() -> bool:
        return {json.loads(body)["event"] for _, body in receiver.received} >= {"rollout.guardrail_harmed",
                                                                              "rollout.rolled_back"}

    _tick_until(alerted)
    rollout.refresh_from_db()
    assert rollout.status == "rolled_back" and "purchase harmed" in rollout.reason
    assert Rule.objects.get(uid=rollout_rule.uid).coverage == 0.0
    for headers, body in receiver.received:
        assert headers["x-splitbase-signature"] == sign(secret, body)
        payload = json.loads(body)
        assert (payload["object"], payload["environment"]) == ({"type": "flag", "key": "checkout"}, "production")
        assert payload["actor"] == "guarded rollout"
    rolled = next(json.loads(b) for _, b in receiver.received if json.loads(b)["event"] == "rollout.rolled_back")
    assert rolled["action"] == "rollout.rollback"
    assert "purchase harmed" in rolled["changes"]["reason"]["after"]


def test_no_harm__reaches_100_on_schedule(
    celery_workers: Workers, actor: Actor, checkout: Flag, production: Environment,  # noqa: F811
    rollout_rule: Rule, purchase: Metric,
) -> None:
    celery_workers.start(**WORKER_ENV)
    steps = [{"percent": 10, "min_duration_seconds": 3}, {"percent": 50, "min_duration_seconds": 3},
             {"percent": 100}]
    rollout = _start(actor, checkout, production, rollout_rule, steps)
    send_traffic(production, units=1500, prefix="n", rates=(0.2, 0.2), seed=22)
    _tick_until(lambda: GuardedRollout.objects.get(pk=rollout.pk).status == "completed")
    rule = Rule.objects.get(uid=rollout_rule.uid)
    assert (rule.enabled, rule.coverage) == (True, 1.0)
    moves = list(rollout.decisions.filter(action__in=["started", "advanced", "completed"]).order_by("at", "id"))
    assert [(d.action, d.percent) for d in moves] == [("started", 10.0), ("advanced", 50.0), ("completed", 100.0)]
    for before, after in pairwise(moves):
        assert after.at - before.at >= timedelta(seconds=3)
    assert rollout.decisions.filter(action="checked").count() >= 2
