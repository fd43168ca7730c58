"""The vectorised readout engine.

All variations of all analyses in a call become rows of one set of numpy columns; all
comparisons (control vs each treatment) become index pairs into them. Each formula then
runs once over every row, whatever mix of metric types and settings the batch holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from stats import bayesian, cuped, frequentist, ratio, sequential
from stats.types import (
    ERROR_CODES,
    METRIC_TYPES,
    NUMERIC_FIELDS,
    BoolArray,
    DifferenceType,
    Engine,
    ErrorCode,
    FloatArray,
    IntArray,
    MetricType,
)

MEAN, BINOMIAL, RATIO = (METRIC_TYPES.index(m) for m in ("mean", "binomial", "ratio"))
NO_ERROR = -1


class ArmColumns(NamedTuple):
    """Per-variation sufficient statistics as columns (NaN where a field is absent)."""

    values: Mapping[str, FloatArray]  # one column per name in NUMERIC_FIELDS
    group: IntArray  # index of the analysis each row belongs to


class GroupSettings(NamedTuple):
    """Per-analysis settings as arrays of length n_groups."""

    metric: IntArray  # index into METRIC_TYPES
    alpha: FloatArray
    relative: BoolArray
    sequential: BoolArray
    tuning: FloatArray
    cuped: BoolArray
    bayesian: BoolArray
    prior_mean: FloatArray  # NaN: flat prior
    prior_variance: FloatArray  # NaN: flat prior
    prior_relative: BoolArray  # the prior is on the relative lift (else on the absolute difference)


class CoreResult(NamedTuple):
    # per arm
    mean: FloatArray
    stddev: FloatArray
    # per group
    theta: FloatArray
    cuped_applied: BoolArray
    # per comparison
    estimate: FloatArray
    variance: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray
    chance_to_win: FloatArray
    variance_reduction: FloatArray
    error: IntArray  # index into ERROR_CODES, or NO_ERROR
    risk_control: FloatArray  # Bayesian comparisons only, NaN elsewhere
    risk_treatment: FloatArray


class _Moments(NamedTuple):
    post: FloatArray  # unadjusted per-arm estimate (mean, proportion or ratio)
    var_post: FloatArray  # per-unit variance of it
    pre: FloatArray  # covariate counterpart
    var_pre: FloatArray
    cov: FloatArray  # per-unit covariance of post and pre


def _moments(c: Mapping[str, FloatArray], metric: IntArray) -> _Moments:
    """Per-arm moments for every metric type, selected row by row."""
    n = c["users"]
    is_bin, is_ratio = metric == BINOMIAL, metric == RATIO
    sy, sx = c["main_sum"], c["covariate_sum"]
    ybar, xbar = sy / n, sx / n
    var_y = np.where(
        is_bin, frequentist.binomial_variance(ybar), frequentist.sample_variance(n, sy, c["main_sum_squares"])
    )
    var_x = np.where(
        is_bin, frequentist.binomial_variance(xbar), frequentist.sample_variance(n, sx, c["covariate_sum_squares"])
    )
    # Binomial pairs use E[xy] - p_x p_y (n denominator), matching p(1-p)
    # (STATISTICS.md section 11.3); other metrics the unbiased covariance.
    cov_xy = np.where(
        is_bin,
        c["main_covariate_sum_product"] / n - xbar * ybar,
        frequentist.sample_covariance(n, sy, sx, c["main_covariate_sum_product"]),
    )
    m = _Moments(ybar, var_y, xbar, var_x, cov_xy)
    rows = np.flatnonzero(is_ratio)
    if rows.size:
        r = ratio.ratio_covariate_moments(c["users"][rows], **{f: c[f][rows] for f in NUMERIC_FIELDS[1:]})
        for target, source in zip(m, r, strict=True):
            target[rows] = source
    return m


def _theta(
    c: Mapping[str, FloatArray], group: IntArray, group_metric: IntArray, m: _Moments, usable: BoolArray
) -> FloatArray:
    """One theta per analysis, pooled over all of its variations."""

    def total(x: FloatArray) -> FloatArray:
        weights = np.where(usable, x, 0.0)
        return np.bincount(group, weights=weights, minlength=group_metric.shape[0]).astype(np.float64)

    metric = group_metric[group]
    n, sy, sx = total(c["users"]), total(c["main_sum"]), total(c["covariate_sum"])
    # For 0/1 metrics the sum of squares is the sum itself.
    is_bin = metric == BINOMIAL
    qy = total(np.where(is_bin, c["main_sum"], c["main_sum_squares"]))
    qx = total(np.where(is_bin, c["covariate_sum"], c["covariate_sum_squares"]))
    pooled = cuped.pooled_theta(n, sy, qy, sx, qx, total(c["main_covariate_sum_product"]), group_metric == BINOMIAL)
    ratio_theta = cuped.ratio_theta(total(m.cov), total(m.var_pre), total(m.var_post))
    return np.where(group_metric == RATIO, ratio_theta, pooled)


def _first_error(conditions: list[tuple[str, BoolArray]], size: int) -> IntArray:
    out = np.full(size, NO_ERROR, dtype=np.int64)
    # Fill from the lowest precedence up so the highest-precedence code wins.
    for code, mask in reversed(conditions):
        out[mask] = ERROR_CODES.index(code)
    return out


def run(arms: ArmColumns, settings: GroupSettings, control: IntArray, treatment: IntArray) -> CoreResult:
    """Analyse every (control, treatment) pair of rows in one pass.

    Undefined arithmetic (empty arms, zero variances) is expected here: it is silenced and
    the affected comparisons get an error code instead.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _run(arms, settings, control, treatment)


def _run(arms: ArmColumns, settings: GroupSettings, control: IntArray, treatment: IntArray) -> CoreResult:
    c, group = arms.values, arms.group
    n_groups = settings.metric.shape[0]
    metric = settings.metric[group]
    n = c["users"]
    m = _moments(c, metric)

    # CUPED is used for an analysis when asked for and every arm large enough to count
    # has finite covariate moments; theta = 0 (no covariate variance) also falls back.
    arm_has_cov = np.isfinite(m.pre) & np.isfinite(m.var_pre) & np.isfinite(m.cov)
    big = n >= 2
    covered = np.bincount(group, weights=(big & ~arm_has_cov).astype(np.float64), minlength=n_groups) == 0
    want = settings.cuped & covered
    theta = np.where(want, _theta(c, group, settings.metric, m, big & arm_has_cov & want[group]), 0.0)
    applied = want & (theta != 0.0)
    t_arm = theta[group]
    on = applied[group]
    var_pre = np.where(on, m.var_pre, 0.0)
    cov = np.where(on, m.cov, 0.0)
    adj = np.where(on, m.post - t_arm * m.pre, m.post)
    adj_var = cuped.adjusted_variance(m.var_post, var_pre, cov, t_arm)

    a, b = control, treatment
    g = group[a]
    na, nb = n[a], n[b]
    rel = settings.relative[g]
    th = theta[g]
    diff = adj[b] - adj[a]
    v_abs = frequentist.absolute_variance(adj_var[a], na, adj_var[b], nb)
    v_abs_plain = frequentist.absolute_variance(m.var_post[a], na, m.var_post[b], nb)
    v_rel = cuped.relative_variance(m.post[a], m.var_post[a], var_pre[a], cov[a], na, m.post[b], adj_var[b], nb, th)
    # Ratio metrics with CUPED, relative lift: the delta method over both arms' four means.
    ratio_rel = np.flatnonzero((metric[a] == RATIO) & rel & applied[g])
    if ratio_rel.size:
        ca, cb = a[ratio_rel], b[ratio_rel]
        v_rel[ratio_rel] = ratio.cuped_relative_variance(
            {k: col[ca] for k, col in c.items()}, {k: col[cb] for k, col in c.items()}, th[ratio_rel]
        )
    v_rel_plain = frequentist.relative_variance(m.post[a], m.var_post[a], na, m.post[b], m.var_post[b], nb)
    estimate = np.where(rel, frequentist.relative_lift(m.post[a], diff), diff)
    variance = np.where(rel, v_rel, v_abs)
    variance_plain = np.where(rel, v_rel_plain, v_abs_plain)
    alpha = settings.alpha[g]

    # Each comparison gets the fixed-horizon t test, the confidence sequence or the Bayesian
    # posterior; compute each only on its own rows (the t quantile is the costliest function here).
    seq, bayes = settings.sequential[g], settings.bayesian[g]
    low, high, p = np.full_like(estimate, np.nan), np.full_like(estimate, np.nan), np.full_like(estimate, np.nan)
    fx = np.flatnonzero(~seq & ~bayes)
    if fx.size:
        dof = frequentist.welch_dof(adj_var[a[fx]], na[fx], adj_var[b[fx]], nb[fx])
        low[fx], high[fx], p[fx] = frequentist.t_interval(estimate[fx], variance[fx], dof, alpha[fx])
    sq = np.flatnonzero(seq & ~bayes)
    if sq.size:
        total, tuning = na[sq] + nb[sq], settings.tuning[g[sq]]
        low[sq], high[sq] = sequential.confidence_sequence(estimate[sq], variance[sq], total, alpha[sq], tuning)
        p[sq] = sequential.sequential_p_value(estimate[sq], variance[sq], total, alpha[sq], tuning)
    ctw = frequentist.chance_to_win(estimate, variance)
    reduction = np.where(applied[g], cuped.variance_reduction(variance, variance_plain), np.nan)
    risk_control, risk_treatment = np.full_like(estimate, np.nan), np.full_like(estimate, np.nan)
    # A prior given for the other difference type converts through the control's unadjusted mean.
    prior_converted = bayes & np.isfinite(settings.prior_variance[g]) & (settings.prior_relative[g] != rel)
    by = np.flatnonzero(bayes)
    if by.size:
        prior_mean, prior_variance = _prior_for(settings, g[by], rel[by], m.post[a[by]])
        post = bayesian.analyse(estimate[by], variance[by], alpha[by], prior_mean, prior_variance)
        estimate[by], variance[by], low[by], high[by], ctw[by] = (
            post.mean, post.variance, post.ci_low, post.ci_high, post.chance_to_win
        )
        risk_control[by], risk_treatment[by] = post.risk_control, post.risk_treatment

    zero_den = (metric == RATIO) & (c["denominator_sum"] == 0)
    finite = np.isfinite(estimate) & np.isfinite(variance) & (variance > 0)
    finite &= np.isfinite(low) & np.isfinite(high) & np.isfinite(ctw)
    finite &= np.where(bayes, np.isfinite(risk_control) & np.isfinite(risk_treatment), np.isfinite(p))
    error = _first_error(
        [
            (ErrorCode.NO_USERS, (na == 0) | (nb == 0)),
            (ErrorCode.TOO_FEW_USERS, (na < 2) | (nb < 2)),
            (ErrorCode.ZERO_DENOMINATOR, zero_den[a] | zero_den[b]),
            (ErrorCode.ZERO_VARIANCE, (adj_var[a] <= 0) | (adj_var[b] <= 0)),
            (ErrorCode.ZERO_CONTROL_MEAN, (rel | prior_converted) & (m.post[a] == 0)),
            (ErrorCode.NUMERICAL_ERROR, ~finite),
        ],
        a.shape[0],
    )
    mean = np.where((n > 0) & ~zero_den, m.post, np.nan)
    stddev = np.sqrt(np.where(m.var_post >= 0, m.var_post, np.nan))
    return CoreResult(
        mean, stddev, theta, applied, estimate, variance, low, high, p, ctw, reduction, error, risk_control,
        risk_treatment,
    )


def _prior_for(
    settings: GroupSettings, group: IntArray, relative: BoolArray, control_mean: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The prior in the units of each comparison's difference type.

    A prior on the relative lift becomes one on the absolute difference by scaling with the
    control's unadjusted mean, and back (as gbstats' `EffectBayesianABTest` rescales it):
    mean * |mean_A|, variance * mean_A^2. A flat prior stays flat (NaN).
    """
    mu0, tau2 = settings.prior_mean[group], settings.prior_variance[group]
    prior_relative = settings.prior_relative[group]
    scale = np.abs(control_mean)
    to_absolute = prior_relative & ~relative
    to_relative = ~prior_relative & relative
    factor = np.where(to_absolute, scale, np.where(to_relative, 1.0 / scale, 1.0))
    return mu0 * factor, tau2 * factor * factor


@dataclass(frozen=True, slots=True)
class ArmArrays:
    """Sufficient statistics of one arm across many experiments, one entry each (scalars broadcast)."""

    users: npt.ArrayLike
    main_sum: npt.ArrayLike
    main_sum_squares: npt.ArrayLike | None = None
    covariate_sum: npt.ArrayLike | None = None
    covariate_sum_squares: npt.ArrayLike | None = None
    main_covariate_sum_product: npt.ArrayLike | None = None
    denominator_sum: npt.ArrayLike | None = None
    denominator_sum_squares: npt.ArrayLike | None = None
    main_denominator_sum_product: npt.ArrayLike | None = None
    denominator_pre_sum: npt.ArrayLike | None = None
    denominator_pre_sum_squares: npt.ArrayLike | None = None
    main_post_denominator_pre_sum_product: npt.ArrayLike | None = None
    main_pre_denominator_post_sum_product: npt.ArrayLike | None = None
    main_pre_denominator_pre_sum_product: npt.ArrayLike | None = None
    denominator_post_denominator_pre_sum_product: npt.ArrayLike | None = None


def _fields(arm: ArmArrays) -> list[npt.ArrayLike | None]:
    return [getattr(arm, f) for f in NUMERIC_FIELDS]


class ComparisonArrays(NamedTuple):
    estimate: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray
    chance_to_win: FloatArray
    variance: FloatArray
    variance_reduction: FloatArray
    theta: FloatArray
    cuped_applied: BoolArray
    error: IntArray  # index into stats.types.ERROR_CODES, -1 when defined
    risk_control: FloatArray  # Bayesian engine only, NaN otherwise
    risk_treatment: FloatArray


def compare_arrays(
    control: ArmArrays,
    treatment: ArmArrays,
    *,
    metric: MetricType,
    alpha: float = 0.05,
    difference_type: DifferenceType = "relative",
    sequential: bool = False,
    sequential_tuning_parameter: float = 5000.0,
    cuped: bool = False,
    engine: Engine = "frequentist",
    prior_mean: float | None = None,
    prior_stddev: float | None = None,
    prior_type: DifferenceType | None = None,
) -> ComparisonArrays:
    """Compare many two-arm experiments given as arrays (simulations, backfills).

    Entry i of every array belongs to experiment i; theta is pooled over its two arms. With
    the Bayesian engine `estimate` and `variance` are the posterior's, `p_value` is NaN and
    `risk_control`/`risk_treatment` are set; settings are not checked here (see `stats.analyze`).
    """
    given = [np.asarray(v, dtype=np.float64) for arm in (control, treatment) for v in _fields(arm) if v is not None]
    shape = np.broadcast_shapes(*(g.shape for g in given))
    if len(shape) != 1:
        raise ValueError("arm arrays must broadcast to one dimension (one entry per experiment)")
    k = shape[0]

    def column(name: str) -> FloatArray:
        parts = [getattr(arm, name) for arm in (control, treatment)]
        if any(p is None for p in parts):
            return np.full(2 * k, np.nan)
        return np.concatenate([np.broadcast_to(np.asarray(p, dtype=np.float64), shape) for p in parts])

    cols = {f: column(f) for f in NUMERIC_FIELDS}
    idx = np.arange(k, dtype=np.int64)
    settings = GroupSettings(
        metric=np.full(k, METRIC_TYPES.index(metric), dtype=np.int64),
        alpha=np.full(k, alpha),
        relative=np.full(k, difference_type == "relative"),
        sequential=np.full(k, sequential),
        tuning=np.full(k, sequential_tuning_parameter),
        cuped=np.full(k, cuped),
        bayesian=np.full(k, engine == "bayesian"),
        prior_mean=np.full(k, np.nan if prior_mean is None else prior_mean),
        prior_variance=np.full(k, np.nan if prior_stddev is None else prior_stddev**2),
        prior_relative=np.full(k, (prior_type or difference_type) == "relative"),
    )
    r = run(ArmColumns(cols, np.concatenate([idx, idx])), settings, idx, idx + k)
    return ComparisonArrays(
        r.estimate,
        r.ci_low,
        r.ci_high,
        r.p_value,
        r.chance_to_win,
        r.variance,
        r.variance_reduction,
        r.theta,
        r.cuped_applied,
        r.error,
        r.risk_control,
        r.risk_treatment,
    )
