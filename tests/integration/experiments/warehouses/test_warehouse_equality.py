"""One readout, many engines: the same simulated experiment read out from each engine's data
source equals the built-in PostgreSQL readout (every metric kind, windows, percentile and
absolute caps, CUPED, slices, multiple exposures) to 1e-9, down to the stored snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Metric, Phase, ResultSnapshot
from experiments.readout import READOUT_FIELDS
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import simulate
from tests.integration.experiments.test_readout_correctness import _assert_close, _ingest
from tests.integration.experiments.warehouses.loaders import LOADERS, rows_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N_UNITS = 800


def _readout(snapshot: ResultSnapshot) -> dict[str, Any]:
    document = {name: getattr(snapshot, name) for name in READOUT_FIELDS}
    inputs = dict(document["inputs"])
    inputs.pop("rollup", None)  # how the sums were brought up to date: the one thing that differs
    document["inputs"] = inputs
    return document


@pytest.mark.parametrize("engine", sorted(LOADERS))
def test_readout__same_data_in_the_engine__equals_the_built_in_readout(
    engine: str, actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric],
    tmp_path: Path,
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, list(METRICS), cuped_lookback_days=14)
    sim = simulate(n_units=N_UNITS, now=datetime.now(tz=UTC), seed=20240612)
    _ingest(production, sim.items)
    # A closed phase: both readouts cut the data at the same moment.
    Phase.objects.filter(experiment=experiment).update(ended_at=timezone.now())
    built_in = services.readout_run(experiment_id=experiment.pk)
    assert built_in is not None and built_in.status == ResultSnapshot.Status.SUCCESS, built_in and built_in.error

    with LOADERS[engine](rows_of(sim.items), tmp_path) as loaded:
        source = services.data_source_create(
            actor=actor, key=f"dw-{engine}", engine=loaded.engine, connection=loaded.connection,
            exposure_query=loaded.exposure_query, event_query=loaded.event_query, timeout_seconds=600)
        services.experiment_update(actor=actor, experiment=experiment, data_source=source.key)
        warehouse = services.readout_run(experiment_id=experiment.pk)
    assert warehouse is not None and warehouse.status == ResultSnapshot.Status.SUCCESS, warehouse and warehouse.error
    assert warehouse.rollup_mode == "warehouse"
    assert warehouse.analysis_end == built_in.analysis_end
    assert warehouse.multiple_exposure_units == built_in.multiple_exposure_units
    assert (built_in.multiple_exposure_units or 0) > 0
    assert built_in.inputs["caps"]["revenue"] is not None
    _assert_close(_readout(warehouse), _readout(built_in))
    assert Experiment.objects.get(pk=experiment.pk).data_source_id == source.pk
