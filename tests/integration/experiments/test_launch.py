"""Launching an experiment in one step (`experiments.launch.experiment_launch`), called directly:
a new flag when asked, the experiment with its metrics, its start; all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed
from experiments.launch import experiment_launch
from experiments.models import Experiment, Metric
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import Flag, FlagState, Rule

pytestmark = pytest.mark.django_db

PM = Actor(label="pm", via="admin")
ON_OFF = [{"key": "off", "name": "off", "weight": 0.5}, {"key": "on", "name": "on", "weight": 0.5}]
LINKS = [{"metric": "purchase", "role": "primary"}, {"metric": "revenue", "role": "secondary"},
         {"metric": "errors", "role": "guardrail"}]


def _launch(environment: Environment, **overrides: Any) -> Experiment:
    arguments: dict[str, Any] = {
        "key": "green-button", "new_flag_key": "green-button-flag", "variations": ON_OFF, "metrics": LINKS,
        "hypothesis": "A green button lifts purchases.", "owner": "pm-ana", "coverage": 1.0,
        **overrides,
    }
    return experiment_launch(actor=PM, environment=environment, **arguments)


def test_launch__new_flag_and_start__flag_on_in_its_environment_and_traffic_split(
    production: Environment, metrics: dict[str, Metric]
) -> None:
    experiment = _launch(production, start=True, sequential_tuning=5000.0)

    assert experiment.status == Experiment.Status.RUNNING and experiment.sequential_tuning == 5000.0
    flag = Flag.objects.get(key="green-button-flag")
    assert (flag.owner, flag.description) == ("pm-ana", "Created for the experiment green-button.")
    assert [v.key for v in flag.variants.all()] == ["off", "on"]
    states = {s.environment.key: s.enabled for s in FlagState.objects.filter(flag=flag).select_related("environment")}
    assert states == {"production": True, "staging": False}
    roles = {link.metric.key: link.role for link in experiment.experiment_metrics.select_related("metric")}
    assert roles == {"purchase": "primary", "revenue": "secondary", "errors": "guardrail"}
    actions = list(AuditEntry.objects.filter(actor_label="pm").order_by("id").values_list("action", flat=True))
    assert actions == ["flag.create", "flag.toggle", "experiment.create", "flag.rule_create", "experiment.start"]
    snapshot = environment_snapshot(environment=production)
    assert {evaluate(snapshot, flag.key, {"id": f"u{i}"}).variant for i in range(200)} == {"off", "on"}


def test_launch__existing_flag_as_a_draft__no_flag_written_and_nothing_served(
    production: Environment, checkout_flag: Flag, metrics: dict[str, Metric]
) -> None:
    variations = [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]

    experiment = _launch(production, flag=checkout_flag, new_flag_key="", variations=variations)

    assert experiment.status == Experiment.Status.DRAFT and experiment.flag == checkout_flag
    assert not Rule.objects.exists()
    actions = set(AuditEntry.objects.filter(actor_label="pm").values_list("action", flat=True))
    assert actions == {"experiment.create"}


def test_launch__experiment_refused__the_new_flag_is_not_written_either(
    production: Environment, metrics: dict[str, Metric]
) -> None:
    links = [{"metric": "purchase", "role": "primary"}, {"metric": "nope", "role": "secondary"}]

    with pytest.raises(ValidationFailed) as caught:
        _launch(production, metrics=links, start=True)

    assert caught.value.details == {"metrics[1].metric": ["Unknown metric 'nope'."]}
    assert not Flag.objects.filter(key="green-button-flag").exists()
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.filter(actor_label="pm").exists()


def test_launch__start_refused__the_draft_and_the_new_flag_are_not_written(
    production: Environment, metrics: dict[str, Metric]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _launch(production, metrics=[{"metric": "revenue", "role": "secondary"}], start=True)

    assert caught.value.details == {"metrics": ["Pick a primary metric."]}
    assert not Experiment.objects.exists() and not Flag.objects.filter(key="green-button-flag").exists()


@pytest.mark.parametrize("both", [True, False], ids=["flag-and-new-flag", "neither"])
def test_launch__not_exactly_one_flag__refused(
    production: Environment, checkout_flag: Flag, metrics: dict[str, Metric], both: bool
) -> None:
    with pytest.raises(ValidationFailed, match="Pick an existing flag or give the key of a new one"):
        _launch(production, flag=checkout_flag if both else None, new_flag_key="other-flag" if both else "")

    assert not Experiment.objects.exists() and not Flag.objects.filter(key="other-flag").exists()
