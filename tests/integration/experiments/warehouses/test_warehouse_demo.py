"""The demo's warehouse-backed experiment: `seed_warehouse` writes a DuckDB file, adds it as a
data source and an experiment whose data live only there; a real Celery worker reads it out."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from django.core.management import call_command

from experiments.models import DataSource, Event, Experiment, Exposure, ResultSnapshot

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_seed_warehouse__worker_reads_the_experiment_out_in_duckdb(
    celery_worker: subprocess.Popen[bytes], tmp_path: Path,
) -> None:
    path = tmp_path / "demo" / "warehouse.duckdb"
    out = io.StringIO()
    call_command("seed_warehouse", "--path", str(path), "--users", "600", stdout=out)

    with duckdb.connect(str(path), read_only=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT variant) FROM analytics.exposures").fetchone()
        assert row == (600, 2)
    experiment = Experiment.objects.get(key="warehouse-pricing")
    assert experiment.data_source == DataSource.objects.get(key="demo-warehouse")
    assert experiment.status == Experiment.Status.RUNNING
    # Nothing of it is in the service's own tables.
    assert not Exposure.objects.filter(experiment=experiment).exists()
    assert not Event.objects.exists()

    deadline = time.monotonic() + 120
    snapshot = None
    while time.monotonic() < deadline:
        snapshot = ResultSnapshot.objects.filter(experiment=experiment).order_by("-pk").first()
        if snapshot is not None and snapshot.status not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.rollup_mode == "warehouse"
    assert snapshot.units == 600

    # A second run finds it all in place.
    again = io.StringIO()
    call_command("seed_warehouse", "--path", str(path), stdout=again)
    assert "nothing to do" in again.getvalue()
