"""A readout asked for by a person (`experiments.lifecycle.experiment_readout_request`), called
directly: queued for the current or a given phase, refused before the experiment starts."""

from __future__ import annotations

import pytest

from audit.types import Actor
from base.models import Environment
from config.errors import NotFound, ValidationFailed
from experiments import services
from experiments.models import Experiment, Metric, Phase, ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment

pytestmark = pytest.mark.django_db

PM = Actor(label="pm", via="admin")


def test_readout_request__running__queued_for_the_current_phase_by_whom_asked(experiment: Experiment) -> None:
    snapshot = services.experiment_readout_request(actor=PM, experiment=experiment,
                                                   trigger=ResultSnapshot.Trigger.ADMIN)

    assert snapshot.status == ResultSnapshot.Status.QUEUED
    assert (snapshot.trigger, snapshot.requested_by) == (ResultSnapshot.Trigger.ADMIN, "pm")
    assert snapshot.phase == Phase.objects.get(experiment=experiment, number=1)
    again = services.experiment_readout_request(actor=PM, experiment=experiment)
    assert again.pk == snapshot.pk  # one queued readout per phase


def test_readout_request__given_phase__that_phase_or_not_found(experiment: Experiment, actor: Actor) -> None:
    services.experiment_update(actor=actor, experiment=experiment, coverage=0.5)  # starts phase 2

    first = services.experiment_readout_request(actor=PM, experiment=experiment, phase_number=1)

    assert first.phase is not None and first.phase.number == 1
    with pytest.raises(NotFound):
        services.experiment_readout_request(actor=PM, experiment=experiment, phase_number=7)


def test_readout_request__draft__refused_and_nothing_queued(
    checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], actor: Actor
) -> None:
    draft = create_experiment(actor, checkout_flag, production, list(metrics), start=False)

    with pytest.raises(ValidationFailed) as caught:
        services.experiment_readout_request(actor=PM, experiment=draft)

    assert caught.value.code == "experiment_not_started"
    assert caught.value.message == "The experiment has not started: there is nothing to read out yet."
    assert not ResultSnapshot.objects.exists()
