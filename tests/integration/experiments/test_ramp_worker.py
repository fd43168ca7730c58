"""A planned coverage raise applied by a real Celery worker running the beat task."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Phase, RampStep
from experiments.tasks import experiment_ramp_steps_task
from flags.models import Flag, Rule
from tests.integration.experiments.conftest import create_experiment, create_metrics

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_ramp_step__due__applied_by_the_worker_in_the_same_phase(
    celery_worker: subprocess.Popen[bytes], checkout_flag: Flag, production: Environment, actor: Any,
) -> None:
    create_metrics(actor, ["purchase"])
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"], coverage=0.1)
    services.experiment_ramp_schedule(actor=actor, experiment=experiment,
                                      steps=[(0.5, timezone.now() + timedelta(hours=1))])
    RampStep.objects.filter(experiment=experiment).update(apply_at=timezone.now() - timedelta(seconds=1))
    experiment_ramp_steps_task.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and RampStep.objects.filter(status="planned").exists():
        time.sleep(0.3)
    step = RampStep.objects.get(experiment=experiment)
    assert (step.status, step.phase_number) == ("applied", 1)
    assert Experiment.objects.get(pk=experiment.pk).coverage == 0.5
    assert Rule.objects.get(experiment_key=experiment.key).coverage == 0.5
    assert list(Phase.objects.filter(experiment=experiment).values_list("number", flat=True)) == [1]
    assert AuditEntry.objects.filter(action="experiment.ramp", actor_label="ramp schedule (tester)").count() == 1
