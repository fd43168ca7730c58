"""Multiple-comparison corrections across a family of comparisons.

The family is every comparison reported together (goal metrics x variations x slices).
Holm controls the family-wise error rate; Benjamini-Hochberg controls the false
discovery rate and is less strict when many metrics move at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stats.types import CORRECTION_METHODS, CorrectionMethod, FloatArray, InputError


def adjust_p_values(p_values: npt.ArrayLike, method: CorrectionMethod) -> FloatArray:
    """Adjusted p-values in the input order; NaN entries are left out of the family.

    Same numbers as statsmodels multipletests(method="holm" | "fdr_bh").
    """
    if method not in CORRECTION_METHODS:
        raise InputError("correction", f"must be one of {', '.join(CORRECTION_METHODS)}")
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    if m == 0:
        return out
    order = np.argsort(p[present], kind="stable")
    ranked = p[present][order]
    rank = np.arange(1, m + 1, dtype=np.float64)
    if method == "holm":
        # p~(i) = max_{j<=i} min(1, (m - j + 1) p(j)): Bonferroni on the remaining
        # hypotheses at each step, kept monotone (Holm 1979).
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1.0) * ranked))
    else:
        # p~(i) = min_{j>=i} min(1, m p(j) / j): the step-up rule read as p-values
        # (Benjamini & Hochberg 1995).
        adjusted = np.minimum.accumulate(np.minimum(1.0, m * ranked / rank)[::-1])[::-1]
    result = np.empty(m)
    result[order] = adjusted
    out[present] = result
    return out
