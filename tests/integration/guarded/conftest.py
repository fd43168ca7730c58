"""Fixtures of the guarded rollout tests: a flag whose production rollout rule serves `treatment`
to 0% (the default is `control`), and a purchase metric to guard."""

from __future__ import annotations

from typing import Any

import pytest

from audit.types import Actor
from base.models import Environment
from experiments import services as experiment_services
from experiments.models import Metric
from flags import services as flag_services
from flags.models import Flag, Rule


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


@pytest.fixture
def checkout(environments: dict[str, Environment], actor: Actor) -> Flag:
    flag = flag_services.flag_create(
        actor=actor, key="checkout", value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"}],
    )
    for env in environments.values():
        flag_services.flag_state_update(actor=actor, flag=flag, environment=env, enabled=True)
    return flag


@pytest.fixture
def rollout_rule(checkout: Flag, production: Environment, actor: Actor) -> Rule:
    flag_services.flag_rule_create(actor=actor, flag=checkout, environment=production, kind="force",
                                   variant="control", condition={"plan": "internal"})
    return flag_services.flag_rule_create(actor=actor, flag=checkout, environment=production, kind="rollout",
                                          variant="treatment", coverage=0.0)


@pytest.fixture
def purchase(db: Any, actor: Actor) -> Metric:
    return experiment_services.metric_create(actor=actor, key="purchase", kind="conversion", event_name="purchase",
                                             window_hours=72)


def start_body(rule: Rule, **extra: Any) -> dict[str, Any]:
    return {
        "rule_id": rule.uid,
        "steps": [{"percent": 10, "min_duration_seconds": 1}, {"percent": 50, "min_duration_seconds": 1},
                  {"percent": 100}],
        "guardrails": [{"metric": "purchase", "direction": "higher"}],
        "min_units": 100,
        **extra,
    }
