"""The worker reads out warehouse-backed experiments: a real Celery worker process, a DuckDB
file as the data source. The scheduled refresh of every running experiment gives the
warehouse-backed one the snapshot the built-in PostgreSQL path gives on the same data, and a
data source that cannot be read fails its own experiment's readout only, with a clear error."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Metric, Phase, ResultSnapshot
from experiments.readout_jobs import experiments_refresh_running
from flags import services as flag_services
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import simulate
from tests.integration.experiments.test_readout_correctness import _assert_close, _ingest
from tests.integration.experiments.warehouses.loaders import duckdb_source, rows_of
from tests.integration.experiments.warehouses.test_warehouse_equality import _readout

pytestmark = [pytest.mark.worker, pytest.mark.slow]

N_UNITS = 600


def _finished(experiment: Experiment, after: int, timeout: float = 180.0) -> ResultSnapshot:
    """The first readout of `experiment` queued after snapshot `after`, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = (ResultSnapshot.objects.filter(experiment=experiment, pk__gt=after)
                    .exclude(status__in=[ResultSnapshot.Status.QUEUED, ResultSnapshot.Status.RUNNING])
                    .order_by("pk").first())
        if snapshot is not None:
            return snapshot
        time.sleep(0.3)
    pytest.fail(f"No finished readout of {experiment.key} within {timeout} s.")


def test_worker__warehouse_backed_experiment__snapshot_equals_built_in_and_a_broken_source_fails_alone(
    celery_worker: subprocess.Popen[bytes], actor: Actor, checkout_flag: Flag, production: Environment,
    metrics: dict[str, Metric], tmp_path: Path,
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, list(METRICS), cuped_lookback_days=14)
    sim = simulate(n_units=N_UNITS, now=datetime.now(tz=UTC), seed=20240613)
    _ingest(production, sim.items)
    Phase.objects.filter(experiment=experiment).update(ended_at=timezone.now())
    built_in = services.readout_run(experiment_id=experiment.pk)
    assert built_in is not None and built_in.status == ResultSnapshot.Status.SUCCESS, built_in and built_in.error

    # A second running experiment whose data source's file is gone.
    other_flag = flag_services.flag_create(
        actor=actor, key="search", value_type="string",
        variants=[{"key": "control", "value": "a"}, {"key": "treatment", "value": "b"}])
    flag_services.flag_state_update(actor=actor, flag=other_flag, environment=production, enabled=True)
    broken = create_experiment(actor, other_flag, production, ["purchase"], key="search-test")
    services.data_source_create(
        actor=actor, key="dw-gone", engine="duckdb", connection={"path": str(tmp_path / "gone.duckdb")},
        exposure_query="SELECT u AS unit_id, t AS timestamp, e AS experiment, v AS variation FROM x",
        event_query="SELECT u AS unit_id, t AS timestamp, n AS name, v AS value FROM y")
    services.experiment_update(actor=actor, experiment=broken, data_source="dw-gone")

    with duckdb_source(rows_of(sim.items), tmp_path) as loaded:
        source = services.data_source_create(
            actor=actor, key="dw", engine=loaded.engine, connection=loaded.connection,
            exposure_query=loaded.exposure_query, event_query=loaded.event_query, timeout_seconds=600)
        services.experiment_update(actor=actor, experiment=experiment, data_source=source.key)
        # What Celery beat runs: a readout of every running experiment, queued for the worker.
        assert experiments_refresh_running() == 2
        warehouse = _finished(experiment, after=built_in.pk)
        failed = _finished(broken, after=built_in.pk)

    assert warehouse.status == ResultSnapshot.Status.SUCCESS, warehouse.error
    assert warehouse.rollup_mode == "warehouse"
    assert warehouse.analysis_end == built_in.analysis_end
    assert warehouse.multiple_exposure_units == built_in.multiple_exposure_units
    _assert_close(_readout(warehouse), _readout(built_in))

    assert failed.status == ResultSnapshot.Status.FAILED
    assert failed.error_code == "data_source_error"
    assert failed.error.startswith("The data source 'dw-gone' (duckdb) could not be read: No DuckDB database file")

    # The worker logged each statement it ran in the warehouse: what for, how long, how many rows.
    log = (tmp_path / "worker-0.log").read_text()
    assert "warehouse statement engine=duckdb source=dw purpose=readout aggregate duration_ms=" in log
    assert "outcome=ok" in log
