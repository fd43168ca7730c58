"""The heterogeneity test across slice values: Cochran's Q against statsmodels' meta-analysis,
the one-against-the-rest test, the family's correction and flags, and by simulation the flag
rate when the effect is the same in every slice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

import stats


def _random_inputs(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    se = rng.uniform(0.005, 0.2, k)
    y = rng.normal(rng.normal(0, 0.1), 1.0, k) * se * rng.uniform(0.3, 3.0)
    return y, se


def test_cochran_q__200_random_inputs__same_as_statsmodels_combine_effects() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        y, se = _random_inputs(rng, k)
        found = stats.cochran_q(y, se)
        reference = combine_effects(y, se**2)
        homogeneity = reference.test_homogeneity()
        q, p, df = homogeneity.statistic, homogeneity.pvalue, homogeneity.df
        assert found is not None
        assert found.q == pytest.approx(q, rel=1e-9, abs=1e-12)
        assert found.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)
        assert found.degrees_of_freedom == df == k - 1
        # statsmodels leaves I^2 negative when Q < df; it is a share, so it is clipped at zero here.
        assert found.i_squared == pytest.approx(max(0.0, reference.i2), rel=1e-9, abs=1e-12)
        assert found.pooled == pytest.approx(reference.mean_effect_fe, rel=1e-9, abs=1e-12)
        assert found.pooled_standard_error == pytest.approx(reference.sd_eff_w_fe, rel=1e-9)


def test_cochran_q__unusable_values_left_out() -> None:
    with_gaps = stats.cochran_q([0.1, np.nan, 0.3, 0.2, 0.5], [0.1, 0.1, 0.0, 0.2, np.inf])
    plain = stats.cochran_q([0.1, 0.2], [0.1, 0.2])
    assert with_gaps == plain
    assert stats.cochran_q([0.1, 0.2], [0.1, 0.0]) is None
    assert stats.cochran_q([], []) is None


def test_cochran_q__mismatched_lengths__refused() -> None:
    with pytest.raises(stats.InputError, match="standard_errors"):
        stats.cochran_q([0.1, 0.2], [0.1])


def test_leave_one_out__matches_a_two_sample_z_test_against_the_rest_pooled() -> None:
    y, se = np.array([0.02, 0.05, -0.01, 0.2]), np.array([0.02, 0.03, 0.025, 0.04])
    diff, p = stats.leave_one_out(y, se)
    for i in range(4):
        rest = np.delete(np.arange(4), i)
        pooled = combine_effects(y[rest], se[rest] ** 2)
        d = y[i] - pooled.mean_effect_fe
        z = d / np.hypot(se[i], pooled.sd_eff_w_fe)
        assert diff[i] == pytest.approx(d, rel=1e-12)
        assert p[i] == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-12)


def test_leave_one_out__two_values__same_p_value_as_cochran_q() -> None:
    y, se = np.array([0.1, -0.05]), np.array([0.04, 0.06])
    _, p = stats.leave_one_out(y, se)
    test = stats.cochran_q(y, se)
    assert test is not None
    assert p[0] == pytest.approx(test.p_value, rel=1e-12)
    assert p[1] == pytest.approx(test.p_value, rel=1e-12)


def test_family__holm_over_attributes_as_statsmodels__flags_only_in_significant_attributes() -> None:
    country = stats.AttributeEstimates(
        "country", ("DE", "FR", "US", "UK"), (0.30, 0.02, 0.03, 0.01), (0.05, 0.03, 0.02, 0.03))
    platform = stats.AttributeEstimates("platform", ("ios", "android"), (0.04, 0.02), (0.03, 0.03))
    plan = stats.AttributeEstimates("plan", ("free",), (0.04,), (0.03,))
    found = stats.heterogeneity_family([country, platform, plan], alpha=0.05)
    raw = [found[0].test.p_value, found[1].test.p_value]  # type: ignore[union-attr]
    expected = multipletests(raw, method="holm")[1]
    assert [found[0].p_value_adjusted, found[1].p_value_adjusted] == pytest.approx(expected, rel=1e-12)
    assert found[0].significant and not found[1].significant
    assert [v.value for v in found[0].flagged] == ["DE"]
    assert found[1].flagged == ()
    # Two values that differ: neither is singled out (each differs from the other).
    pair = stats.heterogeneity_family([stats.AttributeEstimates("platform", ("ios", "web"), (0.3, 0.0), (0.03, 0.03))])
    assert pair[0].significant and pair[0].flagged == ()
    # One value: nothing to compare with.
    assert found[2].test is None and found[2].p_value_adjusted is None and not found[2].significant
    # One far-off value does not make the others look different from a rest it distorts.
    assert [v.value for v in found[0].values if v.p_value_adjusted is not None and v.p_value_adjusted < 0.05] != []
    # The values' p-values are corrected within the attribute.
    within = multipletests([v.p_value for v in found[0].values], method="holm")[1]
    assert [v.p_value_adjusted for v in found[0].values] == pytest.approx(within, rel=1e-12)


def test_family__bad_input__refused() -> None:
    with pytest.raises(stats.InputError, match="alpha"):
        stats.heterogeneity_family([], alpha=0)
    with pytest.raises(stats.InputError, match=r"\[0\]"):
        stats.heterogeneity_family([stats.AttributeEstimates("a", ("x", "y"), (0.1,), (0.1, 0.1))])


# Simulation ------------------------------------------------------------------------------------

# Three attributes (2, 4 and 6 values) of uneven sizes; a conversion rate of 10% lifted by 5%
# in every slice, or by 40% in one value of the first attribute.
ATTRIBUTES = {"platform": 2, "plan": 4, "country": 6}
EXPERIMENTS = 4000
ALPHA = 0.05


def _simulate(rng: np.random.Generator, lifts: dict[tuple[str, int], float], experiments: int = EXPERIMENTS
              ) -> list[tuple[stats.AttributeHeterogeneity, ...]]:
    """Per experiment the family's tests; the slices' estimates from binomial draws through the engine."""
    slots = [(name, v) for name, k in ATTRIBUTES.items() for v in range(k)]
    users = rng.integers(1500, 8000, size=(experiments, len(slots))).astype(np.float64)
    rate = 0.1
    lift = np.array([lifts.get(slot, 0.05) for slot in slots])
    control = rng.binomial(users.astype(np.int64), rate).astype(np.float64)
    treated = rng.binomial(users.astype(np.int64), rate * (1 + lift)).astype(np.float64)
    out = stats.compare_arrays(
        stats.ArmArrays(users=users.ravel(), main_sum=control.ravel(), main_sum_squares=control.ravel()),
        stats.ArmArrays(users=users.ravel(), main_sum=treated.ravel(), main_sum_squares=treated.ravel()),
        metric="binomial", difference_type="relative",
    )
    assert (out.error == -1).all()
    estimate = out.estimate.reshape(experiments, len(slots))
    se = np.sqrt(out.variance).reshape(experiments, len(slots))
    results = []
    for e in range(experiments):
        family, start = [], 0
        for name, k in ATTRIBUTES.items():
            values = tuple(f"{name}-{v}" for v in range(k))
            family.append(stats.AttributeEstimates(
                name, values, tuple(estimate[e, start:start + k]), tuple(se[e, start:start + k])))
            start += k
        results.append(stats.heterogeneity_family(family, alpha=ALPHA))
    return results


@pytest.mark.slow
def test_simulation__uniform_effect__any_flag_in_at_most_alpha_of_experiments() -> None:
    results = _simulate(np.random.default_rng(2026), {})
    flagged = np.mean([any(a.flagged for a in family) for family in results])
    attribute_rejections = np.mean([any(a.significant for a in family) for family in results])
    # Holm over three attributes keeps the family-wise rate at or below alpha; the Monte Carlo
    # standard error at 5% and 4,000 experiments is 0.34 points.
    assert flagged <= attribute_rejections
    assert attribute_rejections <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)
    # Each attribute's own test holds its size: uniform p-values under the null.
    for i in range(len(ATTRIBUTES)):
        p = np.array([family[i].test.p_value for family in results])  # type: ignore[union-attr]
        assert np.mean(p < ALPHA) == pytest.approx(ALPHA, abs=0.012)


@pytest.mark.slow
def test_simulation__one_value_differs__found_and_named() -> None:
    # 65% against 5% elsewhere: about four standard errors apart in the smallest slices.
    results = _simulate(np.random.default_rng(2027), {("country", 0): 0.6}, experiments=1000)
    country = [family[2] for family in results]
    assert np.mean([a.significant for a in country]) > 0.9
    named = np.mean([[v.value for v in a.flagged] == ["country-0"] for a in country])
    assert named > 0.8
    # The other attributes stay about as quiet as under the null: once country is rejected, Holm
    # tests the other two at alpha / 2 and alpha, so up to about alpha of them light up.
    assert np.mean([family[0].significant or family[1].significant for family in results]) < 0.08
