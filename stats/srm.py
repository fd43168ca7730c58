"""Sample-ratio mismatch: do the observed user counts fit the configured split?

A mismatch means assignment or logging lost users unevenly, which biases every metric of
the experiment, so the readout flags it before anyone reads a lift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import special

from stats.types import DEFAULT_SRM_THRESHOLD, FloatArray, InputError, SrmResult


def srm_arrays(users: npt.ArrayLike, weights: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Chi-square statistic, degrees of freedom and p-value along the last axis.

    Arms with a weight <= 0 (including padding) take no part. Rows without users or with
    fewer than two weighted arms get p = 1.
    """
    obs = np.asarray(users, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    active = w > 0
    w = np.where(active, w, 0.0)
    total = np.sum(np.where(active, obs, 0.0), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # E_i = N * w_i / sum w: users expected in each arm under the configured split.
        expected = total * w / np.sum(w, axis=-1, keepdims=True)
        # chi2 = sum (O_i - E_i)^2 / E_i over weighted arms (Pearson 1900; scipy chisquare).
        terms = np.where(active, (obs - expected) ** 2 / expected, 0.0)
    chi2 = np.sum(terms, axis=-1)
    # df = weighted arms - 1: zero-weight arms are not part of the test, so they do not
    # count as degrees of freedom either (STATISTICS.md section 11.5).
    dof = np.sum(active, axis=-1).astype(np.float64) - 1.0
    ok = (dof >= 1) & (total[..., 0] > 0)
    p = np.where(ok, special.chdtrc(np.maximum(dof, 1.0), np.where(ok, chi2, 0.0)), 1.0)
    return np.where(ok, chi2, 0.0), np.maximum(dof, 0.0), p


def srm_test(
    users: Sequence[int],
    weights: Sequence[float] | None = None,
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """Chi-square test of observed users per variation against the configured weights."""
    if weights is None:
        weights = [1.0] * len(users)
    if len(weights) != len(users):
        raise InputError("weights", f"expected {len(users)} weights, got {len(weights)}")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError("weights", "weights must be finite, non-negative and not all zero")
    chi2, dof, p = srm_arrays(np.asarray(users, dtype=np.float64), np.asarray(weights, dtype=np.float64))
    p_value = float(p)
    return SrmResult(p_value=p_value, chi_square=float(chi2), degrees_of_freedom=int(dof), warning=p_value < threshold)
