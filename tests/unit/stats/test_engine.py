"""The batch engine: consistency between entry points, multi-arm layouts and error codes."""

from __future__ import annotations

import types
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import stats
from stats.types import AnalysisInput, ErrorCode, VariationData
from tests.unit.stats.factories import random_analysis, sums, variation

KINDS = ["mean", "binomial", "cuped", "cuped_binomial", "ratio", "ratio_cuped"]


def test_analyze_many__mixed_batch__same_as_one_at_a_time() -> None:
    rng = np.random.default_rng(51)
    batch = []
    for i in range(60):
        kind = KINDS[i % len(KINDS)]
        batch.append(
            random_analysis(
                rng,
                kind,
                arms=int(rng.integers(2, 5)),
                difference_type=str(rng.choice(["absolute", "relative"])),
                sequential=bool(rng.random() < 0.5),
                alpha=float(rng.choice([0.01, 0.05])),
            )
        )
    together = stats.analyze_many(batch)
    for a, result in zip(batch, together, strict=True):
        assert stats.analyze(a) == result


def test_analyze__three_arms__one_comparison_per_treatment_with_names() -> None:
    rng = np.random.default_rng(52)
    a = random_analysis(rng, "mean", arms=3)
    result = stats.analyze(a)
    assert [v.name for v in result.variations] == ["control", "v1", "v2"]
    assert [c.variation for c in result.comparisons] == ["v1", "v2"]
    assert all(c.difference_type == "relative" and c.error is None for c in result.comparisons)


def test_compare_arrays__same_data__same_as_analyze() -> None:
    rng = np.random.default_rng(53)
    a = random_analysis(rng, "ratio_cuped", difference_type="absolute", sequential=True)
    ours = stats.analyze(a).comparisons[0]
    fields = [f for f in stats.types.NUMERIC_FIELDS]
    arms = [stats.ArmArrays(**{f: np.array([getattr(v, f)]) for f in fields}) for v in a.variations]
    out = stats.compare_arrays(*arms, metric="ratio", difference_type="absolute", sequential=True, cuped=True)
    assert out.estimate[0] == pytest.approx(ours.estimate, rel=1e-12)
    assert out.ci_low[0] == pytest.approx(ours.ci_low, rel=1e-12)
    assert out.p_value[0] == pytest.approx(ours.p_value, rel=1e-12)
    assert bool(out.cuped_applied[0]) and ours.cuped_applied


def test_chance_to_win__treatment_clearly_better__near_one_and_symmetric() -> None:
    rng = np.random.default_rng(54)
    good, bad = variation("good", sums(rng.normal(11, 2, 2000))), variation("bad", sums(rng.normal(10, 2, 2000)))
    up = stats.analyze(AnalysisInput(metric="mean", variations=(bad, good))).comparisons[0]
    down = stats.analyze(AnalysisInput(metric="mean", variations=(good, bad))).comparisons[0]
    assert up.chance_to_win is not None and up.chance_to_win > 0.999
    assert down.chance_to_win is not None and down.chance_to_win < 0.001


def _arm(name: str, users: int, total: float, squares: float) -> VariationData:
    return VariationData(name, users, main_sum=total, main_sum_squares=squares)


@pytest.mark.parametrize(
    ("control", "treatment", "metric", "difference_type", "code"),
    [
        (_arm("c", 0, 0, 0), _arm("t", 10, 5, 9), "mean", "relative", ErrorCode.NO_USERS),
        (_arm("c", 1, 3, 9), _arm("t", 10, 5, 9), "mean", "absolute", ErrorCode.TOO_FEW_USERS),
        (_arm("c", 10, 30, 90), _arm("t", 10, 5, 9), "mean", "absolute", ErrorCode.ZERO_VARIANCE),
        (_arm("c", 10, 0, 4), _arm("t", 10, 5, 9), "mean", "relative", ErrorCode.ZERO_CONTROL_MEAN),
        (VariationData("c", 100, 0), VariationData("t", 100, 5), "binomial", "absolute", ErrorCode.ZERO_VARIANCE),
        (VariationData("c", 100, 100), VariationData("t", 100, 50), "binomial", "absolute", ErrorCode.ZERO_VARIANCE),
    ],
)
def test_analyze__degenerate_input__error_code_and_null_numbers(
    control: VariationData, treatment: VariationData, metric: str, difference_type: str, code: str
) -> None:
    a = AnalysisInput(metric=metric, variations=(control, treatment), difference_type=difference_type)  # type: ignore[arg-type]
    c = stats.analyze(a).comparisons[0]
    assert c.error == code
    assert (c.estimate, c.ci_low, c.ci_high, c.p_value, c.chance_to_win) == (None, None, None, None, None)


def test_analyze__ratio_with_zero_denominator__zero_denominator_error() -> None:
    ratio_arm = {"denominator_sum": 0.0, "denominator_sum_squares": 0.0, "main_denominator_sum_product": 0.0}
    c = VariationData("c", 10, 0.0, 0.0, **ratio_arm)
    t = VariationData(
        "t", 10, 5.0, 9.0, denominator_sum=10.0, denominator_sum_squares=12.0, main_denominator_sum_product=6.0
    )
    result = stats.analyze(AnalysisInput(metric="ratio", variations=(c, t)))
    assert result.comparisons[0].error == ErrorCode.ZERO_DENOMINATOR
    assert result.variations[0].mean is None


def test_analyze__one_bad_arm_of_three__other_comparison_still_computed() -> None:
    rng = np.random.default_rng(55)
    a = random_analysis(rng, "cuped", arms=3)
    broken = replace(a.variations[2], users=1)
    result = stats.analyze(replace(a, variations=(*a.variations[:2], broken)))
    assert result.comparisons[0].error is None and result.comparisons[0].cuped_applied
    assert result.comparisons[1].error == ErrorCode.TOO_FEW_USERS


def test_analyze__sequential_flag__wider_interval_than_fixed() -> None:
    rng = np.random.default_rng(56)
    a = random_analysis(rng, "mean")
    fixed, seq = stats.analyze(a).comparisons[0], stats.analyze(replace(a, sequential=True)).comparisons[0]
    assert seq.sequential and not fixed.sequential
    assert seq.estimate == fixed.estimate
    assert seq.ci_high - seq.ci_low > fixed.ci_high - fixed.ci_low  # type: ignore[operator]


def test_analyze_many__holm_correction__adjusts_across_all_comparisons() -> None:
    rng = np.random.default_rng(57)
    batch = [random_analysis(rng, "mean", arms=3) for _ in range(4)]
    results = stats.analyze_many(batch, correction="holm")
    raw = [c.p_value for r in results for c in r.comparisons]
    adjusted = [c.p_value_adjusted for r in results for c in r.comparisons]
    np.testing.assert_allclose(adjusted, stats.adjust_p_values(raw, "holm"))  # type: ignore[arg-type]
    assert all(a >= p for a, p in zip(adjusted, raw, strict=True))  # type: ignore[operator]


def test_analyze__srm_in_result__matches_srm_test_with_weights() -> None:
    rng = np.random.default_rng(58)
    a = replace(random_analysis(rng, "mean", arms=3), weights=(0.2, 0.4, 0.4))
    result = stats.analyze(a)
    expected = stats.srm_test([v.users for v in a.variations], [0.2, 0.4, 0.4])
    assert result.srm_p_value == pytest.approx(expected.p_value)
    assert result.srm_warning == expected.warning


def test_analyze__binomial_summary__mean_is_rate_stddev_is_bernoulli() -> None:
    result = stats.analyze(
        AnalysisInput(metric="binomial", variations=(VariationData("c", 400, 100), VariationData("t", 400, 120)))
    )
    assert result.variations[0].mean == pytest.approx(0.25)
    assert result.variations[0].stddev == pytest.approx(np.sqrt(0.25 * 0.75))


def _as_record(a: AnalysisInput) -> dict[str, object]:
    fields = stats.types.NUMERIC_FIELDS
    return {
        "metric": a.metric,
        "alpha": a.alpha,
        "difference_type": a.difference_type,
        "sequential": a.sequential,
        "sequential_tuning_parameter": a.sequential_tuning_parameter,
        "cuped": a.cuped,
        "weights": None if a.weights is None else list(a.weights),
        "variations": [
            {"name": v.name, **{f: getattr(v, f) for f in fields if getattr(v, f) is not None}} for v in a.variations
        ],
    }


@pytest.mark.parametrize("correction", [None, "bh"])
def test_analyze_records__records_of_typed_batch__result_dicts_of_analyze_many(correction: str | None) -> None:
    rng = np.random.default_rng(59)
    batch = [random_analysis(rng, KINDS[i % len(KINDS)], arms=int(rng.integers(2, 4))) for i in range(30)]
    records: list[Any] = [_as_record(a) for a in batch]
    records[3] = types.MappingProxyType(records[3])  # any mapping is a record
    via_records = stats.analyze_records(records, correction=correction)  # type: ignore[arg-type]
    via_classes = stats.analyze_many(batch, correction=correction)  # type: ignore[arg-type]
    assert via_records == [stats.result_to_dict(r, with_adjusted=correction is not None) for r in via_classes]


def test_validate__bad_variation_in_batch__names_index_and_field() -> None:
    rng = np.random.default_rng(60)
    good = random_analysis(rng, "ratio")
    bad = replace(good, variations=(good.variations[0], replace(good.variations[1], denominator_sum=None)))
    stats.validate([good])
    with pytest.raises(stats.InputError) as err:
        stats.validate([good, bad])
    assert err.value.field == "[1].variations[1].denominator_sum"
