"""Starting an experiment with a holdout puts the holdout on the flag's experiment rule."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.types import Actor
from base.models import Environment
from experiments.models import Metric
from flags.models import Flag, Rule
from tests.integration.experiments.conftest import create_experiment
from traffic import services as traffic_services

pytestmark = pytest.mark.django_db


def test_experiment_start__holdout__rule_filters_held_out_units(
    client: Client, actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    traffic_services.holdout_create(actor=actor, key="q3-holdout", share=0.1, seed="q3")
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"], holdout="q3-holdout")
    rule = Rule.objects.get(uid=experiment.rule_uid)
    assert rule.holdout == "q3-holdout"
    production.refresh_from_db()
    features = client.get(f"/api/features/{production.client_key}").json()["features"]
    tracking, split = features["checkout"]["rules"]
    # The holdout's tracking rule comes first: both arms pass through to the experiment rule.
    assert tracking["key"] == "holdout:q3-holdout" and tracking["seed"] == "q3"
    assert [m["passthrough"] for m in tracking["meta"]] == [True, True]
    assert split["filters"] == [{"seed": "q3", "ranges": [[0.1, 1.0]], "attribute": "id"}]


def test_experiment_update__running_holdout_change__new_phase_and_rule_follows(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    from experiments import services

    holdout = traffic_services.holdout_create(actor=actor, key="q4-holdout", share=0.05, seed="q4")
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"])
    assert Rule.objects.get(uid=experiment.rule_uid).holdout == ""
    experiment = services.experiment_update(actor=actor, experiment=experiment, holdout="q4-holdout")
    assert experiment.holdout == holdout
    assert [p.number for p in experiment.phases.order_by("number")] == [1, 2]
    assert Rule.objects.get(uid=experiment.rule_uid).holdout == "q4-holdout"
    # The same holdout again changes nothing.
    services.experiment_update(actor=actor, experiment=experiment, holdout="q4-holdout")
    assert experiment.phases.count() == 2
