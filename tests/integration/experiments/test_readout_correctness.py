"""The readout's SQL sufficient statistics against an independent recomputation from the same
simulated rows, for every metric kind (windows, capping, CUPED covariate, multiple exposures),
and the interval against the simulation's true effect."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Metric, ResultSnapshot, UnitRollup
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import TRUE_LIFT, Simulation, expected_statistics, simulate

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

LOOKBACK = timedelta(days=14)
N_UNITS = 3000


def _ingest(environment: Environment, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 1000):
        result = services.events_ingest(environment=environment, items=items[start:start + 1000])
        assert not result.rejected, result.rejected[:3]


def _assert_statistics(actual: list[dict[str, Any]], expected: list[dict[str, float]], label: str) -> None:
    assert len(actual) == len(expected) == 2
    for arm_actual, arm_expected in zip(actual, expected, strict=True):
        for field, value in arm_expected.items():
            got = arm_actual.get(field, 0.0 if field != "users" else arm_actual["users"])
            if field == "users" or (float(value).is_integer() and float(got).is_integer()):
                assert got == value, f"{label} {arm_actual['name']} {field}: {got} != {value}"
            else:
                assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9), f"{label} {field}: {got} != {value}"


def _assert_close(a: Any, b: Any, path: str = "") -> None:
    """Equal structures; floats to 1e-9 (sums in another row order round differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            _assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a} != {b}"


@pytest.fixture
def simulated(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> tuple[Experiment, Simulation]:
    experiment = create_experiment(actor, checkout_flag, production, list(METRICS), cuped_lookback_days=14)
    now = datetime.now(tz=UTC)
    sim = simulate(n_units=N_UNITS, now=now, seed=20240611)
    return experiment, sim


def test_readout__simulated_traffic__sql_statistics_equal_recomputation(
    simulated: tuple[Experiment, Simulation], production: Environment
) -> None:
    experiment, sim = simulated
    _ingest(production, sim.items)
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.rollup_mode == "full"
    assert snapshot.analysis_end is not None
    inputs = snapshot.inputs["metrics"]
    for key in METRICS:
        expected, cap = expected_statistics(sim, key, lookback=LOOKBACK, analysis_end=snapshot.analysis_end)
        _assert_statistics(inputs[key]["overall"], expected, key)
        if METRICS[key].get("capping") == "percentile":
            assert cap is not None and math.isclose(snapshot.inputs["caps"][key], cap, rel_tol=1e-12)
    multiple = sum(u.multiple for u in sim.units)
    assert multiple > 0
    assert snapshot.multiple_exposure_units == multiple
    assert snapshot.units == N_UNITS - multiple
    assert UnitRollup.objects.filter(phase__experiment=experiment).count() == N_UNITS - multiple
    # Slices: the same sums restricted to one country's units.
    for country in ("US", "DE", "FR"):
        expected, _ = expected_statistics(sim, "revenue", lookback=LOOKBACK, analysis_end=snapshot.analysis_end,
                                          keep=lambda u, c=country: u.attributes["country"] == c)
        _assert_statistics(inputs["revenue"]["slices"]["country"][country], expected, f"revenue/{country}")


def test_readout__simulated_effect__intervals_cover_the_true_effects(
    simulated: tuple[Experiment, Simulation], production: Environment
) -> None:
    experiment, sim = simulated
    _ingest(production, sim.items)
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None
    by_key = {m["key"]: m for m in snapshot.metrics}
    purchase = by_key["purchase"]
    for mode in ("fixed", "cuped", "sequential"):
        comparison = purchase[mode][0]
        assert comparison["error"] is None
        assert comparison["ci_low"] < TRUE_LIFT < comparison["ci_high"], (mode, comparison)
    assert purchase["fixed"][0]["ci_low"] > 0  # the effect is large enough to be detected
    assert purchase["cuped"][0]["cuped_applied"] is True
    # Sequential intervals are wider: they hold at every look.
    seq, fixed = purchase["sequential"][0], purchase["fixed"][0]
    assert seq["ci_high"] - seq["ci_low"] > fixed["ci_high"] - fixed["ci_low"]
    # No effect was simulated on the click-through rate.
    ctr = by_key["ctr"]["fixed"][0]
    assert ctr["ci_low"] < 0 < ctr["ci_high"]
    assert snapshot.srm_p_value is not None and snapshot.srm_p_value > 0.001
    assert by_key["errors"]["guardrail"] in ("ok", "warning")
    assert snapshot.guardrail_status in ("ok", "warning")
    assert {s["attribute"] for s in snapshot.slices} == {"country", "platform"}


def test_readout__events_arriving_after_a_readout__incremental_update_equals_full_rebuild(
    simulated: tuple[Experiment, Simulation], production: Environment
) -> None:
    experiment, sim = simulated
    half = len(sim.items) // 2
    _ingest(production, sim.items[:half])
    first = services.readout_run(experiment_id=experiment.pk)
    assert first is not None and first.rollup_mode == "full"
    _ingest(production, sim.items[half:])
    incremental = services.readout_run(experiment_id=experiment.pk)
    assert incremental is not None and incremental.rollup_mode == "incremental", incremental and incremental.error
    full = services.readout_run(experiment_id=experiment.pk, force_full=True)
    assert full is not None and full.rollup_mode == "full"
    _assert_close(incremental.inputs["metrics"], full.inputs["metrics"])
    assert incremental.units == full.units == N_UNITS - sum(u.multiple for u in sim.units)
    assert incremental.analysis_end is not None
    expected, _ = expected_statistics(sim, "ctr", lookback=LOOKBACK, analysis_end=incremental.analysis_end)
    _assert_statistics(incremental.inputs["metrics"]["ctr"]["overall"], expected, "ctr")


def test_readout__metric_definition_changed__rollup_rebuilt(
    simulated: tuple[Experiment, Simulation], production: Environment, actor: Actor, metrics: dict[str, Metric]
) -> None:
    experiment, sim = simulated
    _ingest(production, sim.items[:5000])
    assert services.readout_run(experiment_id=experiment.pk).rollup_mode == "full"  # type: ignore[union-attr]
    assert services.readout_run(experiment_id=experiment.pk).rollup_mode == "incremental"  # type: ignore[union-attr]
    services.metric_update(actor=actor, metric=metrics["purchase"], window_hours=24)
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.rollup_mode == "full"
    # Capping is applied when aggregating: changing it needs no rebuild.
    services.metric_update(actor=actor, metric=metrics["revenue"], capping_value=0.5)
    assert services.readout_run(experiment_id=experiment.pk).rollup_mode == "incremental"  # type: ignore[union-attr]
