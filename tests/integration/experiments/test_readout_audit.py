"""Readouts that fail, or that find a sample-ratio mismatch, write an audit entry (which the
webhooks turn into `readout.failed` and `experiment.srm_detected`): a mismatch once, not at every
readout that still shows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from audit.models import AuditEntry
from base.models import Environment
from experiments import services
from experiments.models import Experiment, ResultSnapshot
from experiments.readout_jobs import readout_mark


def _exposures(counts: dict[str, int]) -> list[dict[str, Any]]:
    when = (timezone.now() - timedelta(days=1)).isoformat()
    return [{"id": f"{variation}-{i}-x", "type": "exposure", "unit_id": f"{variation}-{i}",
             "experiment": "checkout-test", "variation": variation, "timestamp": when}
            for variation, n in counts.items() for i in range(n)]


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action, object_key="checkout-test").order_by("pk"))


def test_readout__sample_ratio_mismatch__audited_once(experiment: Experiment, production: Environment) -> None:
    result = services.events_ingest(environment=production, items=_exposures({"control": 400, "treatment": 200}))
    assert not result.rejected
    first = services.readout_run(experiment_id=experiment.pk)
    assert first is not None and first.srm_warning
    second = services.readout_run(experiment_id=experiment.pk)
    assert second is not None and second.srm_warning
    entries = _entries("experiment.srm_detected")
    assert len(entries) == 1
    assert entries[0].environment == "production"
    assert entries[0].after == {"snapshot": first.pk, "phase": 1, "srm_p_value": first.srm_p_value}


def test_readout__balanced_split__no_mismatch_entry(experiment: Experiment, production: Environment) -> None:
    services.events_ingest(environment=production, items=_exposures({"control": 300, "treatment": 300}))
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and not snapshot.srm_warning
    assert _entries("experiment.srm_detected") == []


def test_readout__failed__audited_with_the_error(experiment: Experiment) -> None:
    snapshot = ResultSnapshot.objects.create(experiment=experiment, status=ResultSnapshot.Status.RUNNING)
    readout_mark(snapshot_id=snapshot.pk, status=ResultSnapshot.Status.FAILED, error="boom", error_code="worker_lost")
    readout_mark(snapshot_id=snapshot.pk, status=ResultSnapshot.Status.SKIPPED, error_code="superseded")
    [entry] = _entries("experiment.readout_failed")
    assert entry.after == {"snapshot": snapshot.pk, "error_code": "worker_lost", "error": "boom"}
