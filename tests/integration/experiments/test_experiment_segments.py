"""Experiments target saved segments as flag rules do: the segments are checked, written onto the
experiment's rule when it starts, and a change of them starts a new phase."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import services as experiment_services
from experiments.models import Experiment, Metric
from flags import services as flag_services
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import Flag, Rule
from tests.integration.experiments.conftest import create_experiment, post_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def segments(actor: Actor, environments: Any) -> None:
    flag_services.segment_create(actor=actor, key="eu-customers", condition={"country": {"$in": ["DE", "FR"]}})
    flag_services.segment_create(actor=actor, key="beta", kind="ids", attribute="id", ids=["u1", "u2", "u3"])


def _variants(environment: Environment, context: dict[str, Any]) -> set[str]:
    snapshot = environment_snapshot(environment=environment)
    return {str(evaluate(snapshot, "checkout", {**context, "id": f"{context.get('id', 'u')}-{i}"}).variant)
            for i in range(100)}


def test_start__segments__written_onto_the_rule_and_only_their_units_enter(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], segments: None
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"], segments=["eu-customers"])

    rule = Rule.objects.get(uid=experiment.rule_uid)
    assert rule.segments == ["eu-customers"]
    assert experiment.phases.get().segments == ["eu-customers"]
    assert _variants(production, {"country": "DE"}) == {"control", "treatment"}
    assert _variants(production, {"country": "US"}) == {"control"}  # the flag's default


def test_running__segments_changed__new_phase_and_the_rule_follows(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], segments: None
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"], segments=["eu-customers"])

    experiment = experiment_services.experiment_update(actor=actor, experiment=experiment, segments=[])

    assert [p.segments for p in experiment.phases.order_by("number")] == [["eu-customers"], []]
    assert Rule.objects.get(uid=experiment.rule_uid).segments == []
    same = experiment_services.experiment_update(actor=actor, experiment=experiment, segments=[])
    assert same.phases.count() == 2


def test_api__segments_in_and_out__unknown_or_repeated_refused_and_nothing_written(
    write_client: APIClient, checkout_flag: Flag, metrics: dict[str, Metric], segments: None
) -> None:
    created = post_experiment(write_client, segments=["eu-customers", "beta"])
    assert created.status_code == 201, created.json()
    assert created.json()["segments"] == ["eu-customers", "beta"]

    for bad, message in ((["nope"], "Unknown segment 'nope'."), (["beta", "beta"], "A segment is listed twice."),
                         ("beta", "Expected a list of items")):
        before = Experiment.objects.count()
        response = post_experiment(write_client, key="other", segments=bad)
        assert response.status_code == 400, response.json()
        assert any(message in m for m in response.json()["details"]["segments"]), response.json()
        assert Experiment.objects.count() == before
    changed = write_client.patch("/api/v1/experiments/checkout-test", {"segments": ["beta"]}, format="json")
    assert changed.status_code == 200 and changed.json()["segments"] == ["beta"]
