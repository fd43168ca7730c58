"""The public entry points: analyses in, results out, all batched into one numpy pass."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stats import engine
from stats.corrections import adjust_p_values
from stats.srm import srm_arrays
from stats.types import (
    COVARIATE_FIELDS,
    DEFAULT_SRM_THRESHOLD,
    DIFFERENCE_TYPES,
    ERROR_CODES,
    METRIC_TYPES,
    NUMERIC_FIELDS,
    RATIO_COVARIATE_FIELDS,
    RATIO_FIELDS,
    AnalysisInput,
    AnalysisResult,
    BoolArray,
    Comparison,
    CorrectionMethod,
    FloatArray,
    InputError,
    IntArray,
    VariationData,
    VariationSummary,
)

_COL = {name: i for i, name in enumerate(NUMERIC_FIELDS)}


def _row(v: VariationData) -> tuple[float | None, ...]:
    return (
        v.users,
        v.main_sum,
        v.main_sum_squares,
        v.covariate_sum,
        v.covariate_sum_squares,
        v.main_covariate_sum_product,
        v.denominator_sum,
        v.denominator_sum_squares,
        v.main_denominator_sum_product,
        v.denominator_pre_sum,
        v.denominator_pre_sum_squares,
        v.main_post_denominator_pre_sum_product,
        v.main_pre_denominator_post_sum_product,
        v.main_pre_denominator_pre_sum_product,
        v.denominator_post_denominator_pre_sum_product,
    )


def _check_settings(a: AnalysisInput, path: str) -> None:
    if a.metric not in METRIC_TYPES:
        raise InputError(f"{path}metric", f"must be one of {', '.join(METRIC_TYPES)}")
    if a.difference_type not in DIFFERENCE_TYPES:
        raise InputError(f"{path}difference_type", f"must be one of {', '.join(DIFFERENCE_TYPES)}")
    if not 0.0 < a.alpha < 1.0:
        raise InputError(f"{path}alpha", "must be between 0 and 1")
    if not (math.isfinite(a.sequential_tuning_parameter) and a.sequential_tuning_parameter > 0):
        raise InputError(f"{path}sequential_tuning_parameter", "must be a positive number")
    if len(a.variations) < 2:
        raise InputError(f"{path}variations", "needs a control and at least one treatment")
    if a.weights is not None:
        if len(a.weights) != len(a.variations):
            raise InputError(f"{path}weights", f"needs one weight per variation ({len(a.variations)})")
        if any(not (math.isfinite(w) and w >= 0) for w in a.weights) or sum(a.weights) <= 0:
            raise InputError(f"{path}weights", "must be non-negative and not all zero")


def _check_values(analyses: Sequence[AnalysisInput], table: FloatArray, group: IntArray, prefix: str) -> None:
    """Vectorised value checks; on failure find the first offending field for the message."""
    metric = np.array([METRIC_TYPES.index(a.metric) for a in analyses])[group]
    present = ~np.isnan(table)
    fail = np.zeros(table.shape, dtype=np.bool_)
    messages: dict[int, str] = {}

    def flag(column: str, mask: BoolArray, message: str) -> None:
        j = _COL[column]
        fail[:, j] |= mask
        messages.setdefault(j, message)

    with np.errstate(invalid="ignore"):
        flag("users", ~(table[:, 0] >= 0) | (table[:, 0] != np.floor(table[:, 0])), "must be a non-negative integer")
        for j in range(table.shape[1]):
            flag(NUMERIC_FIELDS[j], present[:, j] & ~np.isfinite(table[:, j]), "must be finite")
        flag("main_sum", ~present[:, _COL["main_sum"]], "is required")
        flag("main_sum_squares", (metric != engine.BINOMIAL) & ~present[:, _COL["main_sum_squares"]], "is required")
        n, s = table[:, 0], table[:, _COL["main_sum"]]
        flag("main_sum", (metric == engine.BINOMIAL) & ((s < 0) | (s > n)), "must be between 0 and users for binomial")
        for f in RATIO_FIELDS:
            flag(f, (metric == engine.RATIO) & ~present[:, _COL[f]], "is required for ratio metrics")
        # Covariate fields come as a group: all of them or none, in every variation alike.
        groups: list[tuple[tuple[str, ...], BoolArray]] = [(COVARIATE_FIELDS, np.ones(len(metric), dtype=np.bool_))]
        groups.append((RATIO_COVARIATE_FIELDS, metric == engine.RATIO))
        for fields, applies in groups:
            cols = [_COL[f] for f in fields]
            has_any = present[:, cols].any(axis=1) & applies
            analysis_any = np.bincount(group, weights=has_any.astype(np.float64), minlength=len(analyses)) > 0
            for f, j in zip(fields, cols, strict=True):
                missing = analysis_any[group] & applies & ~present[:, j]
                if f == "covariate_sum_squares":
                    # A 0/1 covariate's sum of squares is its sum.
                    missing &= metric != engine.BINOMIAL
                flag(f, missing, "is required in every variation when any covariate field is given")
    if fail.any():
        row, col = np.argwhere(fail)[0]
        k = int(group[row])
        arm = int(row - np.flatnonzero(group == k)[0])
        raise InputError(f"{prefix.format(k)}variations[{arm}].{NUMERIC_FIELDS[col]}", messages[int(col)])


def _table(analyses: Sequence[AnalysisInput], prefix: str) -> tuple[FloatArray, IntArray, IntArray]:
    """Checked (rows x NUMERIC_FIELDS) table, the analysis of each row, and analysis sizes."""
    for k, a in enumerate(analyses):
        _check_settings(a, prefix.format(k))
    sizes = np.array([len(a.variations) for a in analyses], dtype=np.int64)
    group = np.repeat(np.arange(len(analyses), dtype=np.int64), sizes)
    table = np.array([_row(v) for a in analyses for v in a.variations], dtype=np.float64)
    _check_values(analyses, table, group, prefix)
    return table, group, sizes


def validate(analyses: Sequence[AnalysisInput], prefix: str = "[{}].") -> None:
    """Raise InputError naming the first malformed field of the batch."""
    if analyses:
        _table(analyses, prefix)


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


def analyze_many(
    analyses: Sequence[AnalysisInput],
    *,
    correction: CorrectionMethod | None = None,
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    prefix: str = "[{}].",
) -> list[AnalysisResult]:
    """Analyse a batch of analyses in one vectorised pass.

    With `correction`, p-values of all defined comparisons in the batch form one family
    and `p_value_adjusted` is filled in. `prefix` shapes the field path of input errors.
    """
    if not analyses:
        return []
    table, group, sizes = _table(analyses, prefix)
    k_count = len(analyses)

    offsets = np.cumsum(sizes) - sizes
    rows = np.arange(table.shape[0], dtype=np.int64)
    position = rows - offsets[group]
    treatment = rows[position > 0]
    control = offsets[group[treatment]]
    settings = engine.GroupSettings(
        metric=np.array([METRIC_TYPES.index(a.metric) for a in analyses], dtype=np.int64),
        alpha=np.array([a.alpha for a in analyses], dtype=np.float64),
        relative=np.array([a.difference_type == "relative" for a in analyses]),
        sequential=np.array([a.sequential for a in analyses]),
        tuning=np.array([a.sequential_tuning_parameter for a in analyses], dtype=np.float64),
        cuped=np.array([a.cuped for a in analyses]),
    )
    columns = {name: table[:, j] for name, j in _COL.items()}
    core = engine.run(engine.ArmColumns(columns, group), settings, control, treatment)

    width = int(sizes.max())
    users_grid = np.zeros((k_count, width))
    weights_grid = np.zeros((k_count, width))
    users_grid[group, position] = table[:, 0]
    weights_grid[group, position] = np.concatenate(
        [np.asarray(a.weights if a.weights is not None else [1.0] * len(a.variations)) for a in analyses]
    )
    _, _, srm_p = srm_arrays(users_grid, weights_grid)

    defined = core.error == engine.NO_ERROR
    blank = np.full(treatment.shape[0], np.nan)
    adjusted = blank
    if correction is not None:
        adjusted = adjust_p_values(np.where(defined, core.p_value, np.nan), correction)

    def masked(x: FloatArray) -> list[float]:
        return np.where(defined, x, np.nan).tolist()  # type: ignore[no-any-return]

    est, low, high = masked(core.estimate), masked(core.ci_low), masked(core.ci_high)
    pval, ctw, red = masked(core.p_value), masked(core.chance_to_win), masked(core.variance_reduction)
    adj = adjusted.tolist()
    errors = [None if e < 0 else ERROR_CODES[e] for e in core.error.tolist()]
    means, stddevs = core.mean.tolist(), core.stddev.tolist()
    applied = core.cuped_applied.tolist()
    srm_list = srm_p.tolist()

    results: list[AnalysisResult] = []
    i = 0  # running index over comparisons
    r = 0  # running index over rows
    for k, a in enumerate(analyses):
        summaries = tuple(
            VariationSummary(v.name, v.users, _opt(means[r + j]), _opt(stddevs[r + j]))
            for j, v in enumerate(a.variations)
        )
        comps = []
        for v in a.variations[1:]:
            comps.append(
                Comparison(
                    v.name,
                    a.difference_type,
                    _opt(est[i]),
                    _opt(low[i]),
                    _opt(high[i]),
                    _opt(pval[i]),
                    _opt(ctw[i]),
                    applied[k],
                    _opt(red[i]),
                    a.sequential,
                    errors[i],
                    _opt(adj[i]),
                )
            )
            i += 1
        r += len(a.variations)
        p_srm = srm_list[k]
        results.append(AnalysisResult(p_srm, p_srm < srm_threshold, summaries, tuple(comps)))
    return results


def analyze(analysis: AnalysisInput, *, srm_threshold: float = DEFAULT_SRM_THRESHOLD) -> AnalysisResult:
    """Analyse one metric: every treatment against the first variation."""
    return analyze_many([analysis], srm_threshold=srm_threshold, prefix="")[0]
