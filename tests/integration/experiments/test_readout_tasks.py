"""Readout tasks and their edges: the per-experiment lock, retries on database errors, idempotency,
the scheduled refresh, many metrics (several rollup parts) and the demo seed command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit.types import Actor
from base.models import Environment
from experiments import queue, readout_sql, services, tasks
from experiments.management.commands.seed_experiments import DEMOS
from experiments.models import Experiment, Metric, ResultSnapshot
from experiments.readout_jobs import LOCK_CLASS, ReadoutBusy
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import expected_statistics, simulate
from tests.integration.experiments.test_readout_correctness import LOOKBACK, _assert_statistics, _ingest

pytestmark = pytest.mark.django_db


def _queued(experiment: Experiment) -> ResultSnapshot:
    with transaction.atomic():
        return services.experiment_refresh(experiment=experiment, trigger="api")


def _other_session() -> psycopg.Connection[Any]:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                           password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True)


def test_readout_run__lock_held_by_another_readout__readout_busy(experiment: Experiment) -> None:
    snapshot = _queued(experiment)
    with _other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, experiment.pk))
        with pytest.raises(ReadoutBusy):
            services.readout_run(experiment_id=experiment.pk, snapshot_id=snapshot.pk)


def test_readout_task__lock_held_throughout__retried_then_marked_skipped(experiment: Experiment) -> None:
    snapshot = _queued(experiment)
    with _other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, experiment.pk))
        tasks.experiment_readout_task.apply(args=(experiment.pk, snapshot.pk))
    snapshot.refresh_from_db()
    assert snapshot.status == ResultSnapshot.Status.SKIPPED
    assert snapshot.error_code == "readout_busy"
    assert snapshot.attempts == tasks.MAX_RETRIES + 1


def test_readout_task__database_errors__retried_with_backoff_then_failed_and_visible(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = _queued(experiment)
    calls: list[int] = []

    def broken(**kwargs: Any) -> None:
        calls.append(1)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "readout_run", broken)
    tasks.experiment_readout_task.apply(args=(experiment.pk, snapshot.pk))
    snapshot.refresh_from_db()
    assert len(calls) == tasks.MAX_RETRIES + 1
    assert snapshot.status == ResultSnapshot.Status.FAILED
    assert snapshot.error_code == "database_error"
    assert "server closed" in snapshot.error
    assert [tasks._backoff(r) for r in range(5)] == [5, 10, 20, 40, 80]


def test_readout_task__snapshot_already_finished__nothing_recomputed(experiment: Experiment) -> None:
    snapshot = _queued(experiment)
    assert tasks.experiment_readout_task.apply(args=(experiment.pk, snapshot.pk)).get() == "success"
    snapshot.refresh_from_db()
    finished = snapshot.finished_at
    assert tasks.experiment_readout_task.apply(args=(experiment.pk, snapshot.pk)).get() == "done"
    snapshot.refresh_from_db()
    assert snapshot.finished_at == finished and snapshot.attempts == 1


def test_experiments_refresh_running__twice__one_queued_readout_per_running_experiment(
    experiment: Experiment, actor: Actor, checkout_flag: Flag, production: Environment
) -> None:
    create_experiment(actor, checkout_flag, production, ["purchase"], key="draft-only", start=False)
    assert services.experiments_refresh_running() == 1
    assert services.experiments_refresh_running() == 1
    assert ResultSnapshot.objects.filter(status="queued").count() == 1
    assert ResultSnapshot.objects.get().trigger == "schedule"


def test_experiments_refresh_running__one_cannot_be_queued__the_others_are(
    experiment: Experiment, actor: Actor, checkout_flag: Flag, production: Environment
) -> None:
    other = create_experiment(actor, checkout_flag, production, ["purchase"], key="queued-anyway")
    with connection.cursor() as cur:
        # The database refuses a readout of the first experiment only.
        cur.execute(
            "CREATE FUNCTION refuse_readout() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$"
        )
        cur.execute(
            "CREATE TRIGGER refuse_readout BEFORE INSERT ON experiments_resultsnapshot FOR EACH ROW "
            f"WHEN (NEW.experiment_id = {int(experiment.pk)}) EXECUTE FUNCTION refuse_readout()"
        )
    assert services.experiments_refresh_running() == 1
    assert list(ResultSnapshot.objects.values_list("experiment_id", flat=True)) == [other.pk]


def test_readout__more_metrics_than_one_rollup_row_holds__every_part_correct(
    actor: Actor, checkout_flag: Flag, production: Environment
) -> None:
    keys = [f"ctr-{i}" for i in range(17)]  # 17 ratio metrics with CUPED: 68 columns, two parts
    for key in keys:
        services.metric_create(actor=actor, key=key, **METRICS["ctr"])
    services.metric_create(actor=actor, key="purchase", **METRICS["purchase"])
    experiment = create_experiment(actor, checkout_flag, production, ["purchase", *keys])
    spec_parts = {s.part for s in readout_sql.layout(
        readout_sql.ReadoutSpec(phase_id=0, metrics=tuple(readout_sql.MetricSpec(k, "ratio") for k in keys),
                                lookback_hours=1))}
    assert spec_parts == {0, 1}
    sim = simulate(n_units=300, now=datetime.now(tz=UTC), seed=5)
    _ingest(production, sim.items)
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == "success", snapshot and snapshot.error
    assert snapshot.analysis_end is not None
    expected, _ = expected_statistics(sim, "ctr", lookback=LOOKBACK, analysis_end=snapshot.analysis_end)
    for key in keys:
        _assert_statistics(snapshot.inputs["metrics"][key]["overall"], expected, key)


def test_seed_experiments__run_twice__demo_with_results_then_left_alone(db: Any) -> None:
    out = StringIO()
    call_command("seed_experiments", "--users", "400", stdout=out)
    experiment = Experiment.objects.get(key="checkout-redesign")
    # One readout per simulated day, dated at the end of that day, with a growing sample.
    history = list(ResultSnapshot.objects.filter(experiment=experiment).order_by("created_at"))
    assert len(history) == 14 and all(s.status == "success" for s in history)
    units = [s.units or 0 for s in history]
    assert units == sorted(units) and units[0] < units[-1] == 400
    assert history[0].created_at < history[-1].created_at - timedelta(days=12)
    snapshot = history[-1]
    assert {m["key"] for m in snapshot.metrics} == {"checkout-conversion", "revenue-per-user", "page-views",
                                                    "checkout-errors"}
    # The other demo experiments, each with its outcome on the latest readout.
    latest = {
        key: ResultSnapshot.objects.filter(experiment__key=key).order_by("-created_at").first()
        for key in ("semantic-search", "recommendations-carousel", "onboarding-checklist", "free-shipping-threshold")
    }
    assert all(s is not None and s.status == "success" for s in latest.values())
    assert [ResultSnapshot.objects.filter(experiment__key=key).count() for key in latest] == [5, 10, 8, 9]
    # The Bayesian demo: its readouts hold the posterior, the chance to win and the risk of each side.
    bayesian = latest["free-shipping-threshold"]
    assert bayesian is not None and bayesian.settings["engine"] == "bayesian"
    primary = next(m for m in bayesian.metrics if m["key"] == "checkout-conversion")
    assert primary["headline"] == "bayesian"
    [headline] = [c for c in primary["comparisons"] if c["difference_type"] == "relative"]
    assert 0 <= headline["chance_to_win"] <= 1 and len(headline["risk"]) == 2
    metrics, snapshots = Metric.objects.count(), ResultSnapshot.objects.count()
    call_command("seed_experiments", stdout=out)
    assert out.getvalue().count("exists already") == len(DEMOS)
    assert (ResultSnapshot.objects.count(), Metric.objects.count()) == (snapshots, metrics)


def test_experiment_refresh__broker_down__snapshot_stays_queued_and_is_resent_later(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def down(*args: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(queue, "readout_send", down)
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.experiment_refresh(experiment=experiment, trigger="api")
    assert ResultSnapshot.objects.get(pk=snapshot.pk).status == "queued"

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(queue, "readout_send", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.experiment_refresh(experiment=experiment).pk == snapshot.pk
    assert sent == []  # just queued: not sent twice
    ResultSnapshot.objects.filter(pk=snapshot.pk).update(created_at=snapshot.created_at - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.experiment_refresh(experiment=experiment).pk == snapshot.pk
    assert sent == [(experiment.pk, snapshot.pk)]
