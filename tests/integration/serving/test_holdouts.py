"""Holdouts when serving: held-out units never enter an experiment and fall through to the next
rule; the others split exactly as without the holdout; a GrowthBook SDK fed the payload agrees."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client, RequestFactory
from django.urls import resolve
from growthbook import GrowthBook

from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed
from flags import services
from flags.models import Flag
from tests.integration.serving.conftest import sdk_post
from traffic import services as traffic_services
from traffic.assignment.bucketing import choose_variation, get_bucket_ranges, in_namespace
from traffic.assignment.hashing import hash_v2
from traffic.models import Holdout

pytestmark = pytest.mark.django_db
A = Actor(label="tester", via="system")
UNITS = 3000
SHARE = 0.2


@pytest.fixture
def production(db: Any) -> Environment:
    return services.environment_create(actor=A, key="production")


def _flag(key: str, env: Environment, **experiment: Any) -> Flag:
    flag = services.flag_create(
        actor=A, key=key, value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"},
                  {"key": "fallback", "value": "fallback"}],
        default_variant="control",
    )
    services.flag_state_update(actor=A, flag=flag, environment=env, enabled=True)
    services.flag_rule_create(actor=A, flag=flag, environment=env, kind="experiment",
                              variations=["control", "treatment"], weights=[0.5, 0.5], **experiment)
    # Held-out units (and units outside the experiment) reach this rule.
    services.flag_rule_create(actor=A, flag=flag, environment=env, kind="force", variant="fallback")
    return flag


@pytest.fixture
def setup(production: Environment) -> Environment:
    traffic_services.holdout_create(actor=A, key="global-holdout", share=SHARE, seed="gh-seed")
    traffic_services.layer_create(actor=A, key="checkout-layer")
    _flag("plain", production, experiment_key="exp-plain")
    _flag("held", production, experiment_key="exp-held", holdout="global-holdout")
    _flag("layered", production, experiment_key="exp-layered", holdout="global-holdout",
          namespace=["checkout-layer", 0.0, 0.6])
    production.refresh_from_db()
    return production


def _ours(view: Any, key: str, unit: str) -> dict[str, Any]:
    body = orjson.dumps({"context": {"targetingKey": unit}, "track": False})
    request = RequestFactory().post("/api/v1/evaluate", body, content_type="application/json", HTTP_X_API_KEY=key)
    return dict(orjson.loads(view(request).content)["flags"])


def test_holdout__held_out_units_fall_through_others_split_as_before_and_sdk_agrees(
    client: Client, setup: Environment, settings: Any
) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 60.0
    env = setup
    view = resolve("/api/v1/evaluate").func
    payload = client.get(f"/api/features/{env.client_key}").json()
    # Each flag in the holdout's scope starts with the holdout's tracking rule (both arms passthrough).
    tracking, held_rule = payload["features"]["held"]["rules"][:2]
    assert tracking["key"] == "holdout:global-holdout" and tracking["weights"] == [SHARE, 1 - SHARE]
    assert held_rule["filters"] == [{"seed": "gh-seed", "ranges": [[SHARE, 1.0]], "attribute": "id"}]
    layered_rule = payload["features"]["layered"]["rules"][1]
    assert layered_rule["filters"][1] == {
        "seed": "__checkout-layer", "ranges": [[0.0, 0.6]], "attribute": "id", "hashVersion": 1,
    }
    gb = GrowthBook(features=payload["features"])
    ranges = get_bucket_ranges(2, 1.0, [0.5, 0.5])
    held_out = in_layer = 0
    mismatches: list[str] = []
    try:
        for i in range(UNITS):
            unit = f"user-{i}"
            ours = _ours(view, env.client_key, unit)
            if i < 20:
                body = {"context": {"targetingKey": unit}, "track": False}
                through_client = sdk_post(client, "/api/v1/evaluate", body, env.client_key).json()["flags"]
                assert through_client == ours
            in_holdout = hash_v2("gh-seed", unit) < SHARE
            split = ["old", "new"][choose_variation(hash_v2("exp-held", unit), ranges)]
            held_out += in_holdout
            # Without a holdout everybody is split.
            assert ours["plain"]["experiment"]["inExperiment"] is True
            if in_holdout:
                assert ours["held"]["value"] == "fallback" and ours["held"]["experiment"] is None
            else:
                assert ours["held"]["value"] == split and ours["held"]["experiment"]["inExperiment"] is True
            layer_ok = in_namespace(unit, ("checkout-layer", 0.0, 0.6))
            in_layer += layer_ok and not in_holdout
            layered = ours["layered"]
            if in_holdout or not layer_ok:
                assert layered["value"] == "fallback"
            else:
                expected = ["old", "new"][choose_variation(hash_v2("exp-layered", unit), ranges)]
                assert layered["value"] == expected
            gb.set_attributes({"id": unit})
            for key, flag in ours.items():
                theirs = gb.eval_feature(key)
                in_exp = theirs.experimentResult is not None and theirs.experimentResult.inExperiment
                if theirs.value != flag["value"] or in_exp != bool(flag["experiment"] and
                                                                   flag["experiment"]["inExperiment"]):
                    mismatches.append(f"{unit} {key}: ours {flag['value']} sdk {theirs.value}")
    finally:
        gb.destroy()
    assert not mismatches, "\n".join(mismatches[:20])
    assert 0.17 * UNITS < held_out < 0.23 * UNITS
    assert 0.8 * 0.6 * UNITS * 0.9 < in_layer < 0.8 * 0.6 * UNITS * 1.1


def test_holdout__share_change_recompiles_and_zero_share_holds_nobody(
    client: Client, setup: Environment
) -> None:
    env = setup
    holdout = traffic_services.holdout_update(
        actor=A, holdout=Holdout.objects.get(key="global-holdout"), share=0.0
    )
    assert holdout.share == 0.0
    payload = client.get(f"/api/features/{env.client_key}").json()
    # Nobody held out: no tracking rule, no filter.
    assert "filters" not in payload["features"]["held"]["rules"][0]
    # The layer range stays a namespace when nothing is held out.
    assert payload["features"]["layered"]["rules"][0]["namespace"] == ["checkout-layer", 0.0, 0.6]


def test_holdout__rule_validation(setup: Environment) -> None:
    flag = Flag.objects.get(key="plain")
    with pytest.raises(ValidationFailed) as unknown:
        services.flag_rule_create(actor=A, flag=flag, environment=setup, kind="experiment",
                                  variations=["control", "treatment"], weights=[0.5, 0.5], holdout="nope")
    assert "Unknown holdout 'nope'." in unknown.value.details["holdout"]
    with pytest.raises(ValidationFailed) as rollout:
        services.flag_rule_create(actor=A, flag=flag, environment=setup, kind="rollout", variant="treatment",
                                  coverage=0.5, holdout="global-holdout")
    assert "holdout" in rollout.value.details
