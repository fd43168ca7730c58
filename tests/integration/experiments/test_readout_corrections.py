"""The multiple-testing correction in the readout path, end to end: events and exposures in
PostgreSQL, a readout of several metrics and treatments, and the stored adjusted p-values
against statsmodels' `multipletests` on the p-values of the same stored sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

import stats
from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Metric, ResultSnapshot
from flags import services as flag_services
from tests.integration.experiments.conftest import create_experiment

pytestmark = [pytest.mark.django_db]

VARIATIONS = ("control", "blue", "green")
METRIC_KEYS = ["purchase", "revenue", "clicks", "errors"]  # errors is the guardrail, outside the family
STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}
KIND: dict[str, stats.MetricType] = {"conversion": "binomial", "mean": "mean", "count": "mean"}


def _traffic(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(n):
        arm = i % 3
        seen = now - timedelta(hours=2 + int(rng.integers(0, 40)))
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "experiment": "layout-test",
                      "variation": VARIATIONS[arm], "timestamp": seen.isoformat()})
        after = (seen + timedelta(minutes=20)).isoformat()
        if rng.random() < (0.10, 0.16, 0.12)[arm]:
            items.append({"id": f"p{i}", "type": "event", "unit_id": f"u{i}", "name": "purchase",
                          "value": round(float(rng.gamma(2.0, 15.0 + 4 * arm)), 2), "timestamp": after})
        for k in range(int(rng.poisson((1.0, 1.3, 1.1)[arm]))):
            items.append({"id": f"c{i}-{k}", "type": "event", "unit_id": f"u{i}", "name": "click", "timestamp": after})
        if rng.random() < 0.05:
            items.append({"id": f"e{i}", "type": "event", "unit_id": f"u{i}", "name": "error", "timestamp": after})
    return items


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_readout__correction__stored_adjusted_p_values_equal_statsmodels_on_the_same_sums(
    method: str, actor: Actor, environments: dict[str, Environment], metrics: dict[str, Metric]
) -> None:
    production = environments["production"]
    flag = flag_services.flag_create(actor=actor, key="layout", value_type="string",
                                     variants=[{"key": v, "value": v} for v in VARIATIONS])
    flag_services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    experiment = create_experiment(
        actor, flag, production, METRIC_KEYS, key="layout-test", correction=method, slice_attributes=[],
        variations=[{"key": v, "weight": 1 / 3} for v in VARIATIONS],
    )
    items = _traffic(3000, seed=11)
    for k in range(0, len(items), 1000):
        result = services.events_ingest(environment=production, items=items[k:k + 1000])
        assert not result.rejected, result.rejected[:3]

    snapshot = services.readout_run(experiment_id=experiment.pk)

    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    settings = snapshot.settings
    family: list[tuple[str, str]] = []
    p_values: list[float] = []
    stored: list[float] = []
    for metric in snapshot.metrics:
        if metric["role"] == "guardrail":
            assert all("p_value_adjusted" not in c for c in metric["comparisons"])
            continue
        # The p-values of the stored sums, from the engine called directly ...
        arms = tuple(stats.VariationData(**arm) for arm in snapshot.inputs["metrics"][metric["key"]]["overall"])
        direct = stats.analyze(stats.AnalysisInput(
            metric=KIND[metric["kind"]], variations=arms, alpha=settings["alpha"], difference_type="relative",
            weights=tuple(settings["weights"]),
        ))
        assert [c["variation"] for c in metric["comparisons"]] == ["blue", "green"]
        for comparison, expected in zip(metric["comparisons"], direct.comparisons, strict=True):
            assert comparison["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
            family.append((metric["key"], comparison["variation"]))
            p_values.append(comparison["p_value"])
            stored.append(comparison["p_value_adjusted"])
            assert comparison["significant"] == (comparison["p_value_adjusted"] < settings["alpha"])
    # ... corrected together, primary and secondary metrics, every treatment: one family of six.
    assert len(family) == 6
    reject, adjusted, _, _ = multipletests(p_values, alpha=settings["alpha"], method=STATSMODELS[method])
    np.testing.assert_allclose(stored, adjusted, rtol=1e-12)
    assert [s < settings["alpha"] for s in stored] == list(reject)
    # The data are such that the correction changes something.
    assert any(a > p for a, p in zip(stored, p_values, strict=True))
    assert min(p_values) < settings["alpha"]
