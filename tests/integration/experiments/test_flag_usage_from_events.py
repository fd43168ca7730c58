"""Exposures sent to `POST /api/v1/events` count as evaluations of the experiment's flag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from base.models import Environment
from experiments.models import Experiment
from flags.models import FlagUsage
from serving.usage import recorder as usage
from tests.integration.experiments.conftest import post_events, sdk_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_flush_thread(settings: Any) -> Any:
    settings.EVALUATION_FLUSH_INTERVAL = 0.0
    usage.reset()
    yield
    usage.reset()


def test_events__exposures__flag_last_evaluated_at_latest_exposure(
    experiment: Experiment, production: Environment
) -> None:
    now = timezone.now()
    items = [
        {"type": "exposure", "id": f"x{i}", "unit_id": f"u{i}", "timestamp": (now - timedelta(hours=i)).isoformat(),
         "experiment": experiment.key, "variation": "control"}
        for i in (1, 5, 3)
    ]
    items.append({"type": "event", "id": "e1", "unit_id": "u1", "timestamp": now.isoformat(), "name": "purchase"})
    response = post_events(sdk_client(production), items)
    assert response.status_code in (200, 202), response.content
    assert not FlagUsage.objects.exists()
    assert usage.flush()
    row = FlagUsage.objects.get()
    assert row.flag_id == experiment.flag_id and row.environment_id == production.pk
    assert abs((row.last_evaluated_at - (now - timedelta(hours=1))).total_seconds()) < 0.01
