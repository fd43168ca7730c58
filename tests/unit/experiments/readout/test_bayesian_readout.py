"""The readout with the Bayesian engine, and the heterogeneity tests over slices: the stored
analyses equal the engine called directly, the prior follows the metric's direction, risk is
stored per comparison, and the document round trips as version 3."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import stats
from experiments.readout import (
    SCHEMA_VERSION,
    AnalysisSettings,
    document_version,
    readout_compute,
    readout_from_json,
    readout_to_json,
)
from tests.unit.experiments.readout.builders import METRICS, readout_input

KIND: dict[str, stats.MetricType] = {"conversion": "binomial", "mean": "mean", "count": "mean"}
BAYES = AnalysisSettings(engine="bayesian", cuped=True, min_sample_per_arm=100, weights=(0.5, 0.5))
PRIOR = replace(BAYES, prior_mean=0.0, prior_stddev=0.3)


def _direct(arms: tuple[stats.VariationData, ...], metric: int, *, cuped: bool, difference_type: stats.DifferenceType,
            prior: bool, direction: str) -> stats.AnalysisResult:
    mean = None
    if prior:
        mean = 0.0 if direction == "higher" else -0.0
    return stats.analyze(stats.AnalysisInput(
        metric=KIND[METRICS[metric].kind], variations=arms, difference_type=difference_type, cuped=cuped,
        weights=(0.5, 0.5), engine="bayesian", prior_mean=mean, prior_stddev=0.3 if prior else None,
        prior_type="relative" if prior else None,
    ))


@pytest.mark.parametrize("analysis", [BAYES, PRIOR], ids=["flat", "prior"])
def test_bayesian_readout__views__equal_the_engine_called_directly(analysis: AnalysisSettings) -> None:
    data = readout_input(settings=analysis)
    readout = readout_compute(data)
    assert readout.headline == "bayesian"
    for i, metric in enumerate(readout.metrics):
        assert metric.sequential == () and metric.sequential_unadjusted == ()
        for mode, cuped in (("bayesian", True), ("bayesian_unadjusted", False)):
            stored = metric.mode(mode)
            direct = [c for dtype in ("relative", "absolute") for c in _direct(
                data.overall.metrics[i], i, cuped=cuped, difference_type=dtype, prior=analysis.has_prior,
                direction=metric.direction).comparisons]
            assert len(stored) == len(direct) == 2
            for s, d in zip(stored, direct, strict=True):
                assert s.p_value is None and d.risk is not None and s.risk is not None
                assert (s.estimate, s.ci_low, s.ci_high) == (d.estimate, d.ci_low, d.ci_high)
                if metric.direction == "lower":
                    assert s.chance_to_win == 1.0 - d.chance_to_win  # type: ignore[operator]
                    assert s.risk == (d.risk[1], d.risk[0])
                else:
                    assert s.chance_to_win == d.chance_to_win and s.risk == d.risk
        # The headline is the CUPED-adjusted posterior in the experiment's own type, judged by its interval.
        headline = metric.comparisons[0]
        assert headline == replace(metric.bayesian[0], significant=headline.significant)
        assert headline.significant == headline.excludes_zero
        assert headline.p_value_adjusted is None


def test_bayesian_readout__prior_mean__turned_for_lower_is_better_metrics() -> None:
    settings = replace(BAYES, prior_mean=0.05, prior_stddev=0.01)
    data = readout_input(settings=settings, lift=0.0)
    readout = readout_compute(data)
    buy, errors = readout.metric("buy"), readout.metric("errors")
    assert buy is not None and errors is not None
    # A strong prior of +5% in the good direction: up for a higher-is-better metric, down for a
    # lower-is-better one; either way a chance of being better above one half with no data effect.
    assert buy.numbers("bayesian", "relative")["treatment"].estimate > 0.01  # type: ignore[operator]
    assert errors.numbers("bayesian", "relative")["treatment"].estimate < -0.01  # type: ignore[operator]
    assert errors.numbers("bayesian", "relative")["treatment"].chance_to_win > 0.5  # type: ignore[operator]


def test_bayesian_readout__correction_ignored__no_adjusted_p_values() -> None:
    readout = readout_compute(readout_input(settings=replace(BAYES, correction="holm")))
    assert all(c.p_value_adjusted is None for m in readout.metrics for c in m.comparisons)


def test_bayesian_readout__document__version_3_round_trip() -> None:
    readout = readout_compute(readout_input(settings=PRIOR, slices=[("country", "DE", (800, 800)),
                                                                     ("country", "FR", (900, 900))]))
    doc = json.loads(json.dumps(readout_to_json(readout)))
    assert doc["schema_version"] == SCHEMA_VERSION == 3 and document_version(doc) == 3
    assert doc["settings"]["engine"] == "bayesian" and doc["settings"]["prior_stddev"] == 0.3
    buy = doc["metrics"][0]
    assert "sequential" not in buy and len(buy["bayesian"]) == 2 and len(buy["bayesian"][0]["risk"]) == 2
    assert "risk" not in buy["fixed"][0]
    again = readout_from_json(doc)
    assert again == readout
    assert readout_to_json(again) == doc
    # Slices show the Bayesian headline.
    assert again.slices[0].metrics[0].comparisons[0].risk is not None


def test_frequentist_readout__document__no_bayesian_keys() -> None:
    doc = readout_to_json(readout_compute(readout_input()))
    assert doc["settings"]["engine"] == "frequentist" and doc["settings"]["prior_mean"] is None
    assert all("bayesian" not in m and all("risk" not in c for c in m["comparisons"]) for m in doc["metrics"])


# Heterogeneity ---------------------------------------------------------------------------------

SLICES = [("country", "DE", (3000, 3000)), ("country", "FR", (3000, 3000)), ("country", "US", (3000, 3000)),
          ("platform", "ios", (4500, 4500)), ("platform", "android", (4500, 4500))]


@pytest.mark.parametrize("analysis", [
    AnalysisSettings(cuped=True, min_sample_per_arm=100, weights=(0.5, 0.5)),
    AnalysisSettings(sequential=True, cuped=True, min_sample_per_arm=100, weights=(0.5, 0.5)),
    BAYES,
], ids=["fixed", "sequential", "bayesian"])
def test_heterogeneity__equals_the_family_test_on_the_fixed_horizon_slice_estimates(analysis: AnalysisSettings) -> None:
    data = readout_input(settings=analysis, slices=SLICES)
    readout = readout_compute(data)
    for i, metric in enumerate(readout.metrics):
        assert [(h.variation, h.attribute) for h in metric.heterogeneity] == [
            ("treatment", "country"), ("treatment", "platform")]
        family = []
        for attribute in ("country", "platform"):
            parts = [p for p in data.slices if p.attribute == attribute]
            found = [stats.analyze(stats.AnalysisInput(
                metric=KIND[METRICS[i].kind], variations=p.sums.metrics[i], difference_type="relative", cuped=True,
                weights=(0.5, 0.5))).comparisons[0] for p in parts]
            family.append(stats.AttributeEstimates(attribute, tuple(p.value for p in parts),
                                                   tuple(c.estimate for c in found),
                                                   tuple(c.standard_error for c in found)))
        expected = stats.heterogeneity_family(family, alpha=analysis.alpha)
        for stored, direct in zip(metric.heterogeneity, expected, strict=True):
            assert direct.test is not None
            assert stored.q == direct.test.q and stored.p_value == direct.test.p_value
            assert stored.p_value_adjusted == direct.p_value_adjusted
            assert stored.significant == direct.significant
            assert [(v.value, v.p_value, v.differs) for v in stored.values] == [
                (v.value, v.p_value, v.differs) for v in direct.values]


def test_heterogeneity__one_slice_differs__flagged_the_rest_noise() -> None:
    data = readout_input(settings=AnalysisSettings(min_sample_per_arm=100, weights=(0.5, 0.5)), slices=SLICES)
    # DE: a lift of 60% where every other slice has 10%.
    from tests.unit.experiments.readout.builders import sums
    parts = list(data.slices)
    parts[0] = replace(parts[0], sums=sums((3000, 3000), lift=0.6, cuped=False))
    readout = readout_compute(replace(data, slices=tuple(parts)))
    buy = readout.metric("buy")
    assert buy is not None
    country = buy.heterogeneity_of("treatment", "country")
    platform = buy.heterogeneity_of("treatment", "platform")
    assert country is not None and platform is not None
    assert country.significant and [v.value for v in country.flagged] == ["DE"]
    assert not platform.significant and platform.flagged == ()
    assert all(v.p_value is not None for v in country.values)


def test_heterogeneity__small_slices_left_out() -> None:
    slices = [("country", "DE", (3000, 3000)), ("country", "FR", (50, 50)), ("country", "US", (3000, 3000))]
    readout = readout_compute(readout_input(settings=AnalysisSettings(min_sample_per_arm=100, weights=(0.5, 0.5)),
                                            slices=slices))
    test = readout.metrics[0].heterogeneity_of("treatment", "country")
    assert test is not None and test.degrees_of_freedom == 1
    assert [v.p_value is None for v in test.values] == [False, True, False]
    one = readout_compute(readout_input(settings=AnalysisSettings(min_sample_per_arm=100, weights=(0.5, 0.5)),
                                        slices=slices[:2]))
    lonely = one.metrics[0].heterogeneity_of("treatment", "country")
    assert lonely is not None and lonely.q is None and not lonely.significant


def test_heterogeneity__no_slices__none_stored() -> None:
    readout = readout_compute(readout_input())
    assert all(m.heterogeneity == () for m in readout.metrics)
    assert all("heterogeneity" not in m for m in readout_to_json(readout)["metrics"])
