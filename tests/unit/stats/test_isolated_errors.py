"""One malformed analysis in a batch, and arms without users (a slice value seen in one arm)."""

from __future__ import annotations

import pytest

from stats import AnalysisInput, InputError, VariationData, analyze_many

CONTROL = VariationData("control", 1000, 120.0, 120.0, 110.0, 110.0, 60.0)
TREATMENT = VariationData("treatment", 1000, 140.0, 140.0, 112.0, 112.0, 70.0)
NOBODY = VariationData("treatment", 0, 0.0)


def _analysis(*arms: VariationData, cuped: bool = True) -> AnalysisInput:
    return AnalysisInput(metric="binomial", variations=arms, cuped=cuped)


def test_arm_without_users__comparison_no_users_not_an_input_error() -> None:
    # The empty arm carries no covariate sums while the control does: nothing to refuse.
    [result] = analyze_many([_analysis(CONTROL, NOBODY)])
    assert result.input_error is None
    assert result.comparisons[0].error == "no_users"
    assert result.variations[1].users == 0


def test_malformed_analysis__isolated__reported_on_its_own_row_rest_computed() -> None:
    bad = _analysis(CONTROL, VariationData("treatment", 1000, 140.0, 140.0, float("inf"), 1.0, 1.0))
    good = _analysis(CONTROL, TREATMENT)
    results = analyze_many([good, bad, good], isolate_errors=True)
    assert results[0] == results[2] and results[0].input_error is None
    assert results[0].comparisons[0].estimate is not None
    refused = results[1]
    assert refused.input_error == "[1].variations[1].covariate_sum: must be finite"
    assert [c.error for c in refused.comparisons] == ["invalid_input"]
    assert refused.comparisons[0].estimate is None and refused.variations[1].users == 1000


def test_malformed_analysis__not_isolated__whole_batch_refused() -> None:
    bad = _analysis(CONTROL, VariationData("treatment", 1000, 140.0, 140.0, 112.0))  # a covariate field missing
    with pytest.raises(InputError, match=r"\[1\]\.variations\[1\]\.main_covariate_sum_product: is required"):
        analyze_many([_analysis(CONTROL, TREATMENT), bad])


def test_missing_field__says_required_not_finite() -> None:
    bad = AnalysisInput(metric="mean", variations=(VariationData("control", 10, 5.0), VariationData("t", 10, 6.0, 9.0)))
    [result] = analyze_many([bad], isolate_errors=True, prefix="")
    assert result.input_error == "variations[0].main_sum_squares: is required"


def test_every_analysis_malformed__all_reported() -> None:
    bad = _analysis(CONTROL, VariationData("treatment", -1, 1.0))
    results = analyze_many([bad, bad], isolate_errors=True)
    assert [r.input_error for r in results] == [
        "[0].variations[1].users: must be a non-negative integer",
        "[1].variations[1].users: must be a non-negative integer",
    ]


@pytest.mark.parametrize(("control", "treatment", "field"), [
    (VariationData("control", 10, 5.0, 9.0), VariationData("t", 10, float("nan"), 9.0), "main_sum"),
    (VariationData("control", 10, 5.0, 9.0, 1.0, 1.0, 1.0), VariationData("t", 10, 6.0, 9.0, float("nan"), 1.0, 1.0),
     "covariate_sum"),
])
def test_field_given_as_nan__says_not_finite_not_required(
    control: VariationData, treatment: VariationData, field: str
) -> None:
    analysis = AnalysisInput(metric="mean", variations=(control, treatment), cuped=True)
    [result] = analyze_many([analysis], isolate_errors=True, prefix="")
    assert result.input_error == f"variations[1].{field}: must be finite"
