"""Does an effect differ across the values of a slice attribute?

Each value of an attribute (country = DE, FR, US ...) holds its own units, so its estimate of
the effect is independent of the others'. Given one estimate and standard error per value:

- Cochran's Q tests whether all values share one effect: with inverse-variance weights
  w_i = 1/se_i^2 and the weighted mean m = sum(w_i y_i) / sum(w_i),
  Q = sum(w_i (y_i - m)^2), which is chi-square with k - 1 degrees of freedom when the effect
  is the same everywhere. I^2 = max(0, (Q - (k - 1)) / Q) is the share of the spread that is
  more than noise.
- One value against the rest: z_i = (y_i - m_-i) / sqrt(se_i^2 + 1 / sum_{j != i} w_j), where
  m_-i is the weighted mean of the other values (two-sided normal p-value). With two values
  z_i^2 = Q.

`heterogeneity_family` runs the test for a family of attributes (for example every slice
attribute of one metric and treatment) and corrects the attributes' p-values for
multiplicity (Holm by default). Within an attribute that is significant after the correction,
values are flagged step down: the value furthest from the rest (smallest one-against-the-rest
p-value) is flagged when that p-value, Bonferroni-corrected over the values still in play, is
below alpha; it is then set aside, and the next step runs only while Cochran's Q over the
values left is still significant (at alpha / m, m the number of attributes tested). Setting a
flagged value aside keeps one very different slice from making the others look different
from a "rest" it distorts. Every flag needs a significant attribute: when the effect is the
same in every slice, the chance of any flag in the family is at most alpha.

The values' reported p-values are those against all the attribute's other values (Holm
over the values for the adjusted one); the flags come from the step-down above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from stats.corrections import adjust_p_values
from stats.types import CorrectionMethod, FloatArray, InputError


@dataclass(frozen=True, slots=True)
class CochranQ:
    """The test of one attribute over the values that have an estimate."""

    q: float
    degrees_of_freedom: int
    p_value: float
    i_squared: float
    pooled: float  # the inverse-variance weighted mean effect
    pooled_standard_error: float


@dataclass(frozen=True, slots=True)
class ValueDifference:
    """One value against the weighted mean of the attribute's other values."""

    value: str
    estimate: float | None
    difference: float | None  # estimate minus the rest's weighted mean
    p_value: float | None  # None: the value has no usable estimate and takes no part
    p_value_adjusted: float | None = None
    differs: bool = False


@dataclass(frozen=True, slots=True)
class AttributeHeterogeneity:
    """One attribute of a family: its test, the corrected p-value and its values."""

    attribute: str
    test: CochranQ | None  # None with fewer than two usable values
    p_value_adjusted: float | None
    significant: bool
    values: tuple[ValueDifference, ...]

    @property
    def flagged(self) -> tuple[ValueDifference, ...]:
        return tuple(v for v in self.values if v.differs)


@dataclass(frozen=True, slots=True)
class AttributeEstimates:
    """The input for one attribute: per value an estimate and its standard error (None, NaN,
    or a standard error that is not positive: the value has no usable estimate)."""

    attribute: str
    values: tuple[str, ...]
    estimates: tuple[float | None, ...]
    standard_errors: tuple[float | None, ...]


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def cochran_q(estimates: npt.ArrayLike, standard_errors: npt.ArrayLike) -> CochranQ | None:
    """Cochran's Q over the usable values; None when fewer than two are usable."""
    y, se = _f(estimates).ravel(), _f(standard_errors).ravel()
    if y.shape != se.shape:
        raise InputError("standard_errors", "must have one entry per estimate")
    usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, se = y[usable], se[usable]
    k = y.size
    if k < 2:
        return None
    w = 1.0 / (se * se)
    total = w.sum()
    pooled = float((w * y).sum() / total)
    q = float((w * (y - pooled) ** 2).sum())
    df = k - 1
    p = float(stats.chi2.sf(q, df))
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return CochranQ(q, df, p, i2, pooled, float(np.sqrt(1.0 / total)))


def leave_one_out(estimates: npt.ArrayLike, standard_errors: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Per value: its difference from the other usable values' weighted mean, and the two-sided
    p-value of that difference (NaN for unusable values, or with fewer than two usable)."""
    y, se = _f(estimates).ravel(), _f(standard_errors).ravel()
    usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
    diff, p = np.full(y.shape, np.nan), np.full(y.shape, np.nan)
    if usable.sum() < 2:
        return diff, p
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(usable, 1.0 / (se * se), 0.0)
        wy = np.where(usable, w * y, 0.0)
        rest_w = w.sum() - w
        rest_mean = (wy.sum() - wy) / rest_w
        d = y - rest_mean
        z = d / np.sqrt(se * se + 1.0 / rest_w)
        two_sided = 2.0 * special.ndtr(-np.abs(z))
    diff[usable], p[usable] = d[usable], two_sided[usable]
    return diff, p


def _step_down(y: FloatArray, se: FloatArray, *, alpha: float, attributes: int) -> set[int]:
    """The values flagged in a significant attribute (indexes), as the module describes."""
    usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
    flagged: set[int] = set()
    while True:
        left = usable.copy()
        left[list(flagged)] = False
        # Two values differ from each other, not one from "the rest": neither is singled out.
        if left.sum() < 3:
            return flagged
        if flagged:
            rest = cochran_q(y[left], se[left])
            if rest is None or rest.p_value * attributes >= alpha:
                return flagged
        _, p = leave_one_out(np.where(left, y, np.nan), np.where(left, se, np.nan))
        candidate = int(np.nanargmin(p))
        if p[candidate] * left.sum() >= alpha:
            return flagged
        flagged.add(candidate)


def heterogeneity_family(
    attributes: Sequence[AttributeEstimates], *, alpha: float = 0.05, correction: CorrectionMethod = "holm"
) -> tuple[AttributeHeterogeneity, ...]:
    """The test of every attribute of one family, corrected over the family; see the module."""
    if not 0 < alpha < 1:
        raise InputError("alpha", "must be between 0 and 1")
    tests = []
    for k, a in enumerate(attributes):
        if not len(a.values) == len(a.estimates) == len(a.standard_errors):
            raise InputError(f"[{k}]", "values, estimates and standard errors must have the same length")
        y = _f([np.nan if v is None else v for v in a.estimates])
        se = _f([np.nan if v is None else v for v in a.standard_errors])
        tests.append((y, se, cochran_q(y, se)))
    family_p = adjust_p_values([np.nan if t is None else t.p_value for _, _, t in tests], correction)
    tested = sum(t is not None for _, _, t in tests)
    out = []
    for a, (y, se, test), adjusted in zip(attributes, tests, family_p.tolist(), strict=True):
        significant = test is not None and adjusted < alpha
        diff, p = leave_one_out(y, se)
        value_p = adjust_p_values(p, correction)
        flagged = _step_down(y, se, alpha=alpha, attributes=tested) if significant else set()
        values = tuple(
            ValueDifference(
                value=name,
                estimate=float(y[i]) if np.isfinite(y[i]) else None,
                difference=float(diff[i]) if np.isfinite(diff[i]) else None,
                p_value=float(p[i]) if np.isfinite(p[i]) else None,
                p_value_adjusted=float(value_p[i]) if np.isfinite(value_p[i]) else None,
                differs=i in flagged,
            )
            for i, name in enumerate(a.values)
        )
        out.append(AttributeHeterogeneity(
            attribute=a.attribute, test=test, p_value_adjusted=None if test is None else float(adjusted),
            significant=significant, values=values,
        ))
    return tuple(out)
