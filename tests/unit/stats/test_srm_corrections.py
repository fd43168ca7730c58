"""Sample-ratio mismatch and multiple-comparison corrections against scipy/statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

import stats
from stats.srm import srm_arrays


def test_srm_test__random_counts__matches_scipy_chisquare() -> None:
    rng = np.random.default_rng(31)
    for _ in range(100):
        k = int(rng.integers(2, 7))
        weights = rng.uniform(0.05, 1, k)
        users = rng.multinomial(int(rng.integers(50, 10**6)), weights / weights.sum())
        expected = users.sum() * weights / weights.sum()
        ref = sps.chisquare(users, expected)
        ours = stats.srm_test(users.tolist(), weights.tolist())
        assert ours.chi_square == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
        assert ours.degrees_of_freedom == k - 1


def test_srm_test__clear_imbalance__warns_below_threshold() -> None:
    assert stats.srm_test([5000, 5400]).warning
    assert not stats.srm_test([5000, 5050]).warning
    assert stats.srm_test([5000, 5050], threshold=0.7).warning


def test_srm_test__no_users__p_value_one() -> None:
    assert stats.srm_test([0, 0], [1, 1]).p_value == 1.0


def test_srm_test__wrong_number_of_weights__raises_input_error() -> None:
    with pytest.raises(stats.InputError) as err:
        stats.srm_test([10, 10], [1.0])
    assert err.value.field == "weights"


def test_srm_arrays__padded_rows__same_as_one_by_one() -> None:
    users = np.array([[100, 120, 0], [50, 50, 70]])
    weights = np.array([[1, 1, 0], [1, 1, 1]])
    _, _, p = srm_arrays(users, weights)
    assert p[0] == pytest.approx(stats.srm_test([100, 120]).p_value)
    assert p[1] == pytest.approx(stats.srm_test([50, 50, 70]).p_value)


@pytest.mark.parametrize(("method", "reference"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_p_values__random_families__match_statsmodels(method: str, reference: str) -> None:
    rng = np.random.default_rng(32)
    for size in (1, 2, 5, 37, 200):
        p = np.concatenate([rng.uniform(0, 1, size), rng.uniform(0, 0.01, size // 3)])
        ours = stats.adjust_p_values(p, method)  # type: ignore[arg-type]
        np.testing.assert_allclose(ours, multipletests(p, method=reference)[1], rtol=1e-12)


def test_adjust_p_values__ties_and_nan__nan_left_out_of_family() -> None:
    p = np.array([0.01, np.nan, 0.01, 0.04, np.nan, 0.5])
    ours = stats.adjust_p_values(p, "holm")
    assert np.isnan(ours[[1, 4]]).all()
    np.testing.assert_allclose(ours[[0, 2, 3, 5]], multipletests(p[[0, 2, 3, 5]], method="holm")[1])


def test_adjust_p_values__unknown_method__raises_input_error() -> None:
    with pytest.raises(stats.InputError):
        stats.adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
