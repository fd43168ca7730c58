"""The server records which side of a guarded rollout each unit fell on: units in the rollout
are served its variant, units not yet in it are served what the next rules give them, and both
get an exposure row under their side (the passthrough variation for the latter)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.types import Actor
from base.models import Environment
from experiments import ingestion
from experiments.models import Exposure, Metric
from experiments.services import serving_exposures_record
from flags import services as flag_services
from flags.models import Flag, Rule
from guarded import services
from serving.exposures import buffer as exposure_buffer
from tests.integration.serving.conftest import sdk_post, serving_state  # noqa: F401 - a fixture

UNITS = 200


def test_evaluate__both_sides_recorded__the_rest_served_by_the_next_rules(
    client: Client, actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposure_buffer, "recorder", serving_exposures_record)
    ingestion._routes_cache.clear()
    # A rule after the guarded one: units not yet in the rollout must still reach it.
    flag_services.flag_rule_create(actor=actor, flag=checkout, environment=production, kind="force",
                                   variant="control", condition={"plan": "pro"})
    rollout = services.guarded_rollout_start(
        actor=actor, flag=checkout, environment=production, rule_id=rollout_rule.uid,
        steps=[{"percent": 30, "min_duration_seconds": 60}, {"percent": 100}], guardrails=[{"metric": "purchase"}])
    served: dict[str, Any] = {}
    for i in range(UNITS):
        body = {"context": {"targetingKey": f"u-{i}", "plan": "pro"}, "flags": ["checkout"]}
        response = sdk_post(client, "/api/v1/evaluate", body, production.client_key)
        assert response.status_code == 200, response.content
        served[f"u-{i}"] = response.json()["flags"]["checkout"]
    assert exposure_buffer.flush()
    rows = list(Exposure.objects.filter(experiment_id=rollout.experiment_id).select_related("unit"))
    assert len(rows) == UNITS
    sides = {row.unit.key: row.variation for row in rows}  # 0: not yet in the rollout, 1: in it
    assert 0.2 * UNITS < sum(sides.values()) < 0.4 * UNITS
    for unit, flag in served.items():
        assert flag["variant"] == ("treatment" if sides[unit] == 1 else "control"), (unit, flag)
        if sides[unit] == 0:
            assert flag["reason"] != "SPLIT"  # served by the next rule, not by the comparison


def test_growthbook_payload__the_rest_is_a_passthrough_variation(
    client: Client, actor: Actor, checkout: Flag, production: Environment, rollout_rule: Rule, purchase: Metric,
) -> None:
    rollout = services.guarded_rollout_start(
        actor=actor, flag=checkout, environment=production, rule_id=rollout_rule.uid,
        steps=[{"percent": 30, "min_duration_seconds": 60}, {"percent": 100}], guardrails=[{"metric": "purchase"}])
    response = client.get(f"/api/features/{production.client_key}")
    assert response.status_code == 200
    rules = response.json()["features"]["checkout"]["rules"]
    [guard] = [r for r in rules if r.get("key") == rollout.experiment.key]
    assert [m.get("passthrough", False) for m in guard["meta"]] == [True, False]
    assert guard["weights"] == [0.7, 0.3]
