"""A warehouse-backed readout runs its warehouse statements outside any PostgreSQL transaction:
a long statement in the warehouse must not hold a transaction of the service's database open
(it would keep a snapshot alive, hold back vacuum and hit idle-in-transaction limits)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg.pq
import pytest
from django.db import connection
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from experiments import readout_jobs, services, warehouse_readout
from experiments.models import Metric, Phase, ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import simulate
from tests.integration.experiments.warehouses.loaders import duckdb_source, rows_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_readout_run__warehouse_source__statements_outside_a_postgres_transaction(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, list(METRICS))
    Phase.objects.filter(experiment=experiment).update(ended_at=timezone.now())
    sim = simulate(n_units=200, now=datetime.now(tz=UTC), seed=7)
    seen: list[tuple[bool, Any]] = []
    real = warehouse_readout.warehouse_sums

    def watched(**kwargs: Any) -> Any:
        connection.ensure_connection()
        raw = connection.connection
        seen.append((connection.in_atomic_block, raw.info.transaction_status if raw is not None else None))
        return real(**kwargs)

    monkeypatch.setattr(readout_jobs, "warehouse_sums", watched)
    with duckdb_source(rows_of(sim.items), tmp_path) as loaded:
        source = services.data_source_create(
            actor=actor, key="dw", engine=loaded.engine, connection=loaded.connection,
            exposure_query=loaded.exposure_query, event_query=loaded.event_query)
        services.experiment_update(actor=actor, experiment=experiment, data_source=source.key)
        snapshot = services.readout_run(experiment_id=experiment.pk)

    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.rollup_mode == "warehouse"
    assert seen == [(False, psycopg.pq.TransactionStatus.IDLE)]
