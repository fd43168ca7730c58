"""`readout_compute` against the statistics engine called directly: same numbers, one batch,
the sample-ratio check and the correction once, the headline rule, guardrails and warnings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import stats
from experiments.readout import AnalysisSettings, Readout, ReadoutWarning, readout_compute, readout_to_json
from tests.unit.experiments.readout import builders
from tests.unit.experiments.readout.builders import METRICS, readout_input, with_settings

KIND: dict[str, stats.MetricType] = {"conversion": "binomial", "mean": "mean", "count": "mean"}


def _direct(data: Any, metric: int, *, cuped: bool, sequential: bool, difference_type: stats.DifferenceType,
            arms: Any = None) -> stats.AnalysisResult:
    settings = data.settings
    return stats.analyze(stats.AnalysisInput(
        metric=KIND[METRICS[metric].kind], variations=arms or data.overall.metrics[metric], alpha=settings.alpha,
        difference_type=difference_type, sequential=sequential,
        sequential_tuning_parameter=settings.sequential_tuning, cuped=cuped, weights=settings.weights,
    ))


def _same(stored: Any, direct: stats.Comparison, direction: str) -> None:
    chance = direct.chance_to_win
    if direction == "lower" and chance is not None:
        chance = 1.0 - chance
    assert (stored.variation, stored.difference_type) == (direct.variation, direct.difference_type)
    assert (stored.estimate, stored.ci_low, stored.ci_high, stored.p_value) == (
        direct.estimate, direct.ci_low, direct.ci_high, direct.p_value)
    assert stored.chance_to_win == chance
    assert (stored.cuped_applied, stored.sequential, stored.error) == (
        direct.cuped_applied, direct.sequential, direct.error)


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    calls: list[Any] = []
    real: Callable[..., Any] = getattr(stats, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, name, spy)
    return calls


def test_readout_compute__every_overall_view__equals_the_engine_called_directly() -> None:
    data = readout_input()
    readout = readout_compute(data)
    modes = {"fixed": (False, False), "cuped": (True, False), "sequential": (True, True),
             "sequential_unadjusted": (False, True)}
    for i, metric in enumerate(readout.metrics):
        for mode, (cuped, sequential) in modes.items():
            stored = metric.mode(mode)
            direct = [c for dtype in ("relative", "absolute") for c in _direct(
                data, i, cuped=cuped, sequential=sequential, difference_type=dtype).comparisons]
            assert len(stored) == len(direct) == 2
            for s, d in zip(stored, direct, strict=True):
                _same(s, d, metric.direction)
        fixed = _direct(data, i, cuped=False, sequential=False, difference_type="relative")
        assert [(a.key, a.users, a.mean, a.stddev) for a in metric.variations] == [
            (v.name, v.users, v.mean, v.stddev) for v in fixed.variations]
    assert readout.metrics[0].cuped[0].cuped_applied and readout.metrics[0].cuped[0].variance_reduction


def test_readout_compute__one_batch__srm_and_correction_once(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _spy(monkeypatch, "analyze_many")
    srm = _spy(monkeypatch, "srm_test")
    corrections = _spy(monkeypatch, "adjust_p_values")
    data = readout_input(slices=[("country", "DE", (2000, 2100)), ("country", "FR", (3000, 2900))],
                         settings=AnalysisSettings(sequential=True, cuped=True, correction="holm",
                                                   weights=(0.5, 0.5)))
    readout = readout_compute(data)
    assert len(batches) == 1
    # 3 metrics x 4 analyses x 2 difference types, and 3 metrics x 2 slice values in the headline
    # (sequential) analysis and in the fixed-horizon one the heterogeneity test reads.
    assert len(batches[0][0]) == 3 * 4 * 2 + 3 * 2 * 2
    assert srm == [([5000, 5000], [0.5, 0.5])]
    assert len(corrections) == 1
    assert readout.srm_p_value == stats.srm_test([5000, 5000], [0.5, 0.5]).p_value


def test_readout_compute__correction__goal_metrics_headline_family() -> None:
    data = readout_input(settings=AnalysisSettings(sequential=False, cuped=True, correction="holm",
                                                   weights=(0.5, 0.5), alpha=0.05), lift=0.03)
    readout = readout_compute(data)
    goals = [m for m in readout.metrics if m.role != "guardrail"]
    raw = np.array([m.comparisons[0].p_value for m in goals])
    expected = stats.adjust_p_values(raw, "holm")
    for metric, adjusted in zip(goals, expected.tolist(), strict=True):
        c = metric.comparisons[0]
        assert c.p_value_adjusted == adjusted
        assert c.significant is (adjusted < 0.05)
    guardrail = readout.metric("errors")
    assert guardrail is not None and guardrail.comparisons[0].p_value_adjusted is None
    doc = readout_to_json(readout)
    assert "p_value_adjusted" in doc["metrics"][0]["comparisons"][0]
    assert "p_value_adjusted" not in doc["metrics"][2]["comparisons"][0]
    assert all("p_value_adjusted" not in c and "significant" not in c for c in doc["metrics"][0]["cuped"])


def test_readout_compute__no_correction__significance_from_the_interval() -> None:
    readout = readout_compute(readout_input())
    for metric in readout.metrics:
        for c in metric.comparisons:
            assert c.p_value_adjusted is None and c.significant is c.excludes_zero
    assert "p_value_adjusted" not in readout_to_json(readout)["metrics"][0]["comparisons"][0]


@pytest.mark.parametrize(("sequential", "cuped", "headline"), [
    (True, True, "sequential"), (True, False, "sequential"), (False, True, "cuped"), (False, False, "fixed"),
])
def test_readout_compute__headline__the_settings_rule_everywhere(sequential: bool, cuped: bool, headline: str) -> None:
    settings = AnalysisSettings(sequential=sequential, cuped=cuped, weights=(0.5, 0.5), difference_type="absolute")
    assert settings.headline == headline
    data = readout_input(settings=settings, slices=[("platform", "ios", (1000, 1000))])
    readout = readout_compute(data)
    assert readout.headline == headline
    for metric in readout.metrics:
        assert metric.headline == headline
        own = [c for c in metric.mode(headline) if c.difference_type == "absolute"]
        assert [c.estimate for c in metric.comparisons] == [c.estimate for c in own]
        # Every view in both difference types, the experiment's own first.
        assert [c.difference_type for c in metric.fixed] == ["absolute", "relative"]
        assert bool(metric.sequential_unadjusted) is cuped
    mode_cuped, mode_sequential = settings.modes[headline]
    sliced = readout.slices[0].metric("buy")
    assert sliced is not None
    direct = _direct(data, 0, cuped=mode_cuped and cuped, sequential=mode_sequential, difference_type="absolute",
                     arms=data.slices[0].sums.metrics[0])
    _same(sliced.comparisons[0], direct.comparisons[0], "higher")


@pytest.mark.parametrize(("errors_lift", "status"), [(0.0, "ok"), (-0.03, "ok"), (0.03, "warning"), (0.5, "failing")])
def test_readout_compute__guardrail__worst_comparison_decides(errors_lift: float, status: str) -> None:
    readout = readout_compute(readout_input(errors_lift=errors_lift))
    errors = readout.metric("errors")
    assert errors is not None and errors.guardrail == status
    assert readout.guardrail_status == status
    assert ("guardrail_failing" in {w.code for w in readout.warnings}) is (status == "failing")
    assert all(m.guardrail is None for m in readout.metrics if m.role != "guardrail")


def test_readout_compute__no_guardrail_metric__no_status() -> None:
    data = readout_input()
    goals = replace(data, metrics=data.metrics[:2], overall=replace(data.overall, metrics=data.overall.metrics[:2]))
    readout = readout_compute(goals)
    assert readout.guardrail_status is None
    assert readout_to_json(readout)["guardrail_status"] == ""


def test_readout_compute__warnings__in_order_with_the_jobs_own() -> None:
    data = readout_input(users=(60, 5400), multiple=200, errors_lift=2.0,
                         warnings=[ReadoutWarning("late_events", "Events arrived after the cut.")])
    readout = readout_compute(data)
    assert [w.code for w in readout.warnings] == ["srm", "low_sample", "guardrail_failing", "multiple_exposures",
                                                  "late_events"]
    assert readout.multiple_exposure_units == 200
    assert readout.multiple_exposure_share == pytest.approx(200 / 5660)
    assert "200 of 5660 units (3.5%)" in readout.warnings[3].message
    assert readout.srm_warning and readout.srm_p_value is not None and readout.srm_p_value < 0.001


def test_readout_compute__no_units__no_data_and_no_srm() -> None:
    readout = readout_compute(readout_input(users=(0, 0)))
    assert [w.code for w in readout.warnings] == ["no_data"]
    assert readout.srm_p_value is None and not readout.srm_warning and readout.units == 0
    assert [v.share for v in readout.variations] == [None, None]


def test_readout_compute__one_variation__sums_kept_nothing_compared() -> None:
    data = readout_input(users=(800,), settings=AnalysisSettings(weights=(1.0,)),
                         slices=[("country", "DE", (300,))])
    readout = readout_compute(data)
    assert all(not m.comparisons and not m.variations and not m.fixed for m in readout.metrics)
    assert readout.inputs is not None and readout.inputs.metrics["buy"].overall == data.overall.metrics[0]
    assert readout.inputs.metrics["buy"].slices is None
    assert [(s.value, s.metrics) for s in readout.slices] == [("DE", ())]


def test_readout_compute__variations_and_inputs__as_given() -> None:
    data = readout_input(users=(4000, 6000), settings=AnalysisSettings(weights=(0.4, 0.6)),
                         slices=[("country", "DE", (100, 150))])
    readout = readout_compute(data)
    assert [(v.key, v.name, v.weight, v.units, v.share) for v in readout.variations] == [
        ("control", "Control", 0.4, 4000, 0.4), ("treatment", "Treatment", 0.6, 6000, 0.6)]
    assert readout.inputs is not None
    assert readout.inputs.analysis_end == builders.END.isoformat() and readout.inputs.phase == 1
    assert readout.inputs.metrics["revenue"].slices == {"country": {"DE": data.slices[0].sums.metrics[1]}}
    assert readout.metric("revenue").cap == 100.0  # type: ignore[union-attr]
    assert readout.slices[0].units == (100, 150)


def test_readout_compute__cuped_off__covariate_ignored() -> None:
    data = with_settings(readout_input(), cuped=False)
    readout = readout_compute(data)
    assert not any(c.cuped_applied for m in readout.metrics for c in m.cuped)
    assert isinstance(readout, Readout) and readout.settings == data.settings
