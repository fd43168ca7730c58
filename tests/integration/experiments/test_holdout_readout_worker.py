"""Holdout readouts end to end with a real Celery worker and PostgreSQL: the holdout's exposures
(reported under "holdout:<key>") and metric events go through the events API, the readout runs
in the worker on request and on the beat schedule, and the stored readout holds the held-out
units against everyone else with the fixed, CUPED and sequential analyses."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from audit.types import Actor
from base.models import Environment
from config.errors import Conflict, ValidationFailed
from experiments.holdout_analyses import holdout_analysis_create
from experiments.holdout_readout import holdout_refresh, holdout_snapshot_readout
from experiments.models import HoldoutAnalysis, HoldoutSnapshot
from experiments.tasks import holdout_refresh_active_task
from tests.integration.experiments.conftest import create_metrics, post_events, sdk_client
from traffic import services as traffic_services
from traffic.assignment.hashing import hash_v2

pytestmark = [pytest.mark.worker, pytest.mark.slow]
SHARE = 0.2
SEED = "growth-seed"
UNITS = 1000


def _wait(predicate: Any, timeout: float = 120.0) -> HoldoutSnapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found is not None:
            return found  # type: ignore[no-any-return]
        time.sleep(0.3)
    pytest.fail(f"No holdout readout within {timeout} s.")


def _traffic(environment: Environment) -> tuple[dict[str, int], dict[str, int]]:
    """Exposures of every unit in its arm, a purchase for some (more often when released)
    and a page view before the exposure (the CUPED covariate); returns units and buyers per arm."""
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    units = {"held-out": 0, "released": 0}
    buyers = {"held-out": 0, "released": 0}
    for i in range(UNITS):
        unit = f"u{i}"
        arm = "held-out" if hash_v2(SEED, unit) < SHARE else "released"
        units[arm] += 1
        seen = now - timedelta(days=3, hours=i % 48)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": unit, "experiment": "holdout:growth",
                      "variation": arm, "timestamp": seen.isoformat()})
        items.append({"id": f"v{i}", "type": "event", "unit_id": unit, "name": "purchase", "value": 5,
                      "timestamp": (seen - timedelta(days=2)).isoformat()} if i % 2 else
                     {"id": f"v{i}", "type": "event", "unit_id": unit, "name": "page_view", "value": 1,
                      "timestamp": (seen - timedelta(days=2)).isoformat()})
        if i % (3 if arm == "released" else 5) == 0:
            buyers[arm] += 1
            items.append({"id": f"p{i}", "type": "event", "unit_id": unit, "name": "purchase", "value": 20,
                          "timestamp": (seen + timedelta(hours=2)).isoformat()})
    client = sdk_client(environment)
    for start in range(0, len(items), 1000):
        response = post_events(client, items[start:start + 1000])
        assert response.status_code == 202 and response.json()["rejected"] == [], response.json()
    return units, buyers


def test_holdout_readout__real_worker__held_out_against_released_on_request_and_schedule(
    celery_worker: subprocess.Popen[bytes], production: Environment, actor: Actor,
) -> None:
    create_metrics(actor, ["purchase", "revenue"])
    holdout = traffic_services.holdout_create(actor=actor, key="growth", share=SHARE, seed=SEED)
    analysis = holdout_analysis_create(
        actor=actor, holdout=holdout, environment=production, started_at=datetime.now(tz=UTC) - timedelta(days=10),
        metrics=[{"metric": "purchase", "role": "primary"}, {"metric": "revenue", "role": "secondary"}],
    )
    units, buyers = _traffic(production)
    with transaction.atomic():
        requested = holdout_refresh(analysis=analysis, requested_by="tester")
    snapshot = _wait(lambda: HoldoutSnapshot.objects.filter(
        pk=requested.pk, status__in=["success", "failed"]).first())
    assert snapshot.status == "success", snapshot.error
    assert snapshot.units == UNITS
    readout = holdout_snapshot_readout(snapshot)
    assert [v.key for v in readout.variations] == ["held-out", "released"]
    assert [v.units for v in readout.variations] == [units["held-out"], units["released"]]
    purchase = next(m for m in readout.metrics if m.key == "purchase")
    held_rate = buyers["held-out"] / units["held-out"]
    released_rate = buyers["released"] / units["released"]
    assert purchase.variations[0].mean == pytest.approx(held_rate)
    assert purchase.variations[1].mean == pytest.approx(released_rate)
    assert purchase.fixed[0].estimate == pytest.approx(released_rate / held_rate - 1)
    assert purchase.cuped and purchase.sequential
    assert purchase.fixed[0].ci_low is not None and purchase.fixed[0].ci_low > 0
    # The split is the holdout's share: no sample ratio mismatch.
    assert readout.srm_p_value is not None and readout.srm_p_value > 0.01

    # The beat task queues a readout of every holdout that still holds; the worker runs it.
    holdout_refresh_active_task.delay()
    scheduled = _wait(lambda: HoldoutSnapshot.objects.filter(
        analysis=analysis, trigger="schedule", status="success").first())
    assert holdout_snapshot_readout(scheduled).metrics[0].fixed[0].estimate == pytest.approx(
        purchase.fixed[0].estimate)


def test_holdout_analysis__bad_input_refused_and_nothing_written(
    production: Environment, actor: Actor, transactional_db: Any,
) -> None:
    create_metrics(actor, ["purchase"])
    holdout = traffic_services.holdout_create(actor=actor, key="growth", share=SHARE)
    with pytest.raises(ValidationFailed) as bad:
        holdout_analysis_create(actor=actor, holdout=holdout, environment=production,
                                metrics=[{"metric": "nope"}], alpha=2.0)
    assert {"metrics[0].metric", "alpha"} <= set(bad.value.details)
    with pytest.raises(ValidationFailed) as old:
        holdout_analysis_create(actor=actor, holdout=holdout, environment=production, metrics=[{"metric": "purchase"}],
                                started_at=datetime.now(tz=UTC) - timedelta(days=120))
    assert "started_at" in old.value.details
    assert not HoldoutAnalysis.objects.exists()
    holdout_analysis_create(actor=actor, holdout=holdout, environment=production, metrics=[{"metric": "purchase"}])
    with pytest.raises(Conflict):
        holdout_analysis_create(actor=actor, holdout=holdout, environment=production,
                                metrics=[{"metric": "purchase"}])
