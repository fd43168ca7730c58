"""Analyses -> one checked table of sums, the input of the engine.

Every variation of every analysis becomes a column of sums; every analysis an entry of
settings. Value checks then run vectorised over the whole batch and name the first bad field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from stats import engine
from stats.types import (
    COVARIATE_FIELDS,
    DIFFERENCE_TYPES,
    ENGINES,
    METRIC_TYPES,
    NUMERIC_FIELDS,
    RATIO_COVARIATE_FIELDS,
    RATIO_FIELDS,
    AnalysisInput,
    BoolArray,
    FloatArray,
    InputError,
    IntArray,
    VariationData,
)

COLUMN = {name: i for i, name in enumerate(NUMERIC_FIELDS)}
_METRIC_INDEX: dict[Any, int] = {m: i for i, m in enumerate(METRIC_TYPES)}
_ENGINE_INDEX: dict[Any, int] = {e: i for i, e in enumerate(ENGINES)}
_PRIOR_TYPE_INDEX: dict[Any, int] = {None: -1, **{d: i for i, d in enumerate(DIFFERENCE_TYPES)}}


class _Setting(NamedTuple):
    metric: int  # index into METRIC_TYPES, -1 when unknown
    alpha: float
    relative: bool
    sequential: bool
    tuning: float
    cuped: bool
    engine: int  # index into ENGINES, -1 when unknown
    prior_mean: float  # NaN when not given
    prior_stddev: float  # NaN when not given
    prior_mean_given: bool
    prior_stddev_given: bool
    prior_type: int  # index into DIFFERENCE_TYPES; -1 when not given, -2 when unknown


class _Batch(NamedTuple):
    """Analyses gathered as Python lists, before they become arrays."""

    settings: list[_Setting]
    rows: list[tuple[Any, ...]]  # NUMERIC_FIELDS per variation, None where absent
    sizes: list[int]
    weights: list[float]  # per variation; 1.0 where the analysis gives none
    weights_given: list[int]  # number of weights given per analysis, -1 for none


class Table(NamedTuple):
    values: FloatArray  # NUMERIC_FIELDS x variations (one contiguous row per field), NaN where absent
    group: IntArray  # analysis of each variation
    sizes: IntArray  # variations per analysis
    weights: FloatArray  # per variation
    settings: engine.GroupSettings


def _row(v: VariationData) -> tuple[Any, ...]:
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


def _add(batch: _Batch, a: AnalysisInput, path: str) -> None:
    if a.difference_type not in DIFFERENCE_TYPES:
        raise InputError(f"{path}difference_type", f"must be one of {', '.join(DIFFERENCE_TYPES)}")
    batch.settings.append(
        _Setting(
            _METRIC_INDEX.get(a.metric, -1),
            a.alpha,
            a.difference_type == "relative",
            a.sequential,
            a.sequential_tuning_parameter,
            a.cuped,
            _ENGINE_INDEX.get(a.engine, -1),
            math.nan if a.prior_mean is None else a.prior_mean,
            math.nan if a.prior_stddev is None else a.prior_stddev,
            a.prior_mean is not None,
            a.prior_stddev is not None,
            _PRIOR_TYPE_INDEX.get(a.prior_type, -2),
        )
    )
    batch.rows.extend(_row(v) for v in a.variations)
    batch.sizes.append(len(a.variations))
    _add_weights(batch, a.weights, len(a.variations))


def _add_weights(batch: _Batch, weights: Sequence[float] | None, size: int) -> None:
    if weights is None:
        batch.weights.extend([1.0] * size)
        batch.weights_given.append(-1)
    else:
        batch.weights.extend(weights[:size])
        batch.weights.extend([1.0] * (size - len(weights)))
        batch.weights_given.append(len(weights))


def _fail(prefix: str, k: int, field: str, message: str) -> InputError:
    return InputError(f"{prefix.format(k)}{field}", message)


class _Prior(NamedTuple):
    """The prior settings as given, for the checks (the engine gets them through GroupSettings)."""

    engine: IntArray
    mean: FloatArray
    stddev: FloatArray
    mean_given: BoolArray
    stddev_given: BoolArray
    type: IntArray


def _check_settings(
    s: engine.GroupSettings,
    prior: _Prior,
    sizes: IntArray,
    given: IntArray,
    w: FloatArray,
    group: IntArray,
    prefix: str,
) -> None:
    weight_bad = np.bincount(group, weights=(~(np.isfinite(w) & (w >= 0))).astype(np.float64), minlength=len(sizes))
    weight_sum = np.bincount(group, weights=np.where(np.isfinite(w), w, 0.0), minlength=len(sizes))
    bayes = prior.engine == ENGINES.index("bayesian")
    any_prior = prior.mean_given | prior.stddev_given
    checks: list[tuple[BoolArray, str, str]] = [
        (s.metric < 0, "metric", f"must be one of {', '.join(METRIC_TYPES)}"),
        (~((s.alpha > 0) & (s.alpha < 1)), "alpha", "must be between 0 and 1"),
        (~(np.isfinite(s.tuning) & (s.tuning > 0)), "sequential_tuning_parameter", "must be a positive number"),
        (prior.engine < 0, "engine", f"must be one of {', '.join(ENGINES)}"),
        (bayes & s.sequential, "sequential", "is for the frequentist engine only (the Bayesian engine has no "
         "sequential mode)"),
        (~bayes & prior.mean_given, "prior_mean", "applies to the bayesian engine only"),
        (~bayes & prior.stddev_given, "prior_stddev", "applies to the bayesian engine only"),
        (prior.stddev_given & ~prior.mean_given, "prior_mean", "is required with prior_stddev"),
        (prior.mean_given & ~prior.stddev_given, "prior_stddev", "is required with prior_mean (none for a flat prior)"),
        (prior.mean_given & ~np.isfinite(prior.mean), "prior_mean", "must be finite"),
        (prior.stddev_given & ~(np.isfinite(prior.stddev) & (prior.stddev > 0)), "prior_stddev",
         "must be a positive number"),
        (prior.type == -2, "prior_type", f"must be one of {', '.join(DIFFERENCE_TYPES)}"),
        ((prior.type >= 0) & ~any_prior, "prior_type", "applies with prior_mean and prior_stddev only"),
        (sizes < 2, "variations", "needs a control and at least one treatment"),
        ((given >= 0) & (given != sizes), "weights", "needs one weight per variation"),
        ((given >= 0) & ((weight_bad > 0) | (weight_sum <= 0)), "weights", "must be non-negative and not all zero"),
    ]
    for bad, field, message in checks:
        if bad.any():
            raise _fail(prefix, int(np.flatnonzero(bad)[0]), field, message)


def _check_values(
    table: FloatArray, group: IntArray, metric: IntArray, prefix: str, given: BoolArray | None = None
) -> None:
    """Vectorised value checks; on failure the first offending field is named.

    `table` is NUMERIC_FIELDS x variations; "first" means the first variation in batch
    order, then the first field in NUMERIC_FIELDS order. `given` marks the cells given a
    value (NaN included); None when every NaN cell is a field not given.
    """
    present = ~np.isnan(table) if given is None else given
    # Per cell, the index of the first message that applies to it (-1: none): a field that is
    # missing is reported as missing, one that is there but infinite as not finite.
    reason = np.full(table.shape, -1, dtype=np.int64)
    messages: list[str] = []
    is_bin, is_ratio = metric == engine.BINOMIAL, metric == engine.RATIO

    def mark(rows: Any, mask: BoolArray, message: str) -> None:
        messages.append(message)
        cells = reason[rows]
        reason[rows] = np.where(mask & (cells < 0), len(messages) - 1, cells)

    def flag(column: str, mask: BoolArray, message: str) -> None:
        mark(COLUMN[column], mask, message)

    n, s = table[0], table[COLUMN["main_sum"]]
    flag("users", ~(n >= 0) | (n != np.floor(n)), "must be a non-negative integer")
    mark(slice(None), present & ~np.isfinite(table), "must be finite")
    # An arm without users has no sums to give: its comparisons report `no_users` instead.
    has_users = n > 0
    flag("main_sum", ~present[COLUMN["main_sum"]], "is required")
    flag("main_sum_squares", has_users & ~is_bin & ~present[COLUMN["main_sum_squares"]], "is required")
    flag("main_sum", is_bin & ((s < 0) | (s > n)), "must be between 0 and users for binomial")
    for f in RATIO_FIELDS:
        flag(f, has_users & is_ratio & ~present[COLUMN[f]], "is required for ratio metrics")
    # Covariate fields come as a group: all of them or none, in every variation alike.
    for fields, applies in ((COVARIATE_FIELDS, np.ones_like(is_bin)), (RATIO_COVARIATE_FIELDS, is_ratio)):
        cols = [COLUMN[f] for f in fields]
        has_any = present[cols].any(axis=0) & applies
        in_analysis = (np.bincount(group, weights=has_any.astype(np.float64)) > 0)[group]
        for f, j in zip(fields, cols, strict=True):
            missing = in_analysis & applies & has_users & ~present[j]
            if f == "covariate_sum_squares":
                missing &= ~is_bin  # a 0/1 covariate's sum of squares is its sum
            flag(f, missing, "is required in every variation when any covariate field is given")
    if (reason >= 0).any():
        row, col = np.argwhere((reason >= 0).T)[0]
        k = int(group[row])
        arm = int(row - np.flatnonzero(group == k)[0])
        raise _fail(prefix, k, f"variations[{arm}].{NUMERIC_FIELDS[col]}", messages[int(reason[col, row])])


def _as_array(rows: list[tuple[Any, ...]]) -> FloatArray:
    """NUMERIC_FIELDS x rows floats; None (a field not given) becomes NaN."""
    width = len(NUMERIC_FIELDS)
    try:
        # Several times faster than np.array on tuples, but it accepts no None.
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    except TypeError:
        flat = np.array(rows, dtype=np.float64)
    return np.ascontiguousarray(flat.reshape(-1, width).T)


def _given(rows: list[tuple[Any, ...]], values: FloatArray) -> BoolArray | None:
    """The cells given a value, NaN included, as NUMERIC_FIELDS x rows; None when every NaN
    cell of `values` is a field not given (the common case, told by counting alone)."""
    if int(np.isnan(values).sum()) == sum(row.count(None) for row in rows):
        return None
    return np.array([[v is not None for v in row] for row in rows], dtype=np.bool_).reshape(-1, len(NUMERIC_FIELDS)).T


def build_table(analyses: Sequence[AnalysisInput], prefix: str) -> Table:
    """The analyses as arrays, checked; raises InputError naming the first bad field.

    `prefix` formatted with an analysis' index starts the field path of its errors.
    """
    batch = _Batch([], [], [], [], [])
    for k, a in enumerate(analyses):
        _add(batch, a, prefix.format(k))
    s = np.array(batch.settings, dtype=np.float64).reshape(-1, len(_Setting._fields))
    settings = engine.GroupSettings(
        metric=s[:, 0].astype(np.int64),
        alpha=s[:, 1],
        relative=s[:, 2] != 0,
        sequential=s[:, 3] != 0,
        tuning=s[:, 4],
        cuped=s[:, 5] != 0,
        bayesian=s[:, 6] == ENGINES.index("bayesian"),
        prior_mean=np.where(s[:, 9] != 0, s[:, 7], np.nan),
        prior_variance=np.where(s[:, 10] != 0, s[:, 8] ** 2, np.nan),
        prior_relative=np.where(s[:, 11] >= 0, s[:, 11] == DIFFERENCE_TYPES.index("relative"), s[:, 2] != 0),
    )
    prior = _Prior(s[:, 6].astype(np.int64), s[:, 7], s[:, 8], s[:, 9] != 0, s[:, 10] != 0, s[:, 11].astype(np.int64))
    sizes = np.array(batch.sizes, dtype=np.int64)
    weights = np.array(batch.weights, dtype=np.float64)
    given = np.array(batch.weights_given, dtype=np.int64)
    values = _as_array(batch.rows)
    group = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    with np.errstate(invalid="ignore"):
        _check_settings(settings, prior, sizes, given, weights, group, prefix)
        _check_values(values, group, settings.metric[group], prefix, _given(batch.rows, values))
    return Table(values, group, sizes, weights, settings)


def build_table_isolated(
    analyses: Sequence[AnalysisInput], prefix: str
) -> tuple[Table | None, list[int], dict[int, InputError]]:
    """Like `build_table`, but a malformed analysis is set aside instead of failing the batch.

    Returns the table of the valid analyses (None when there are none), their indexes in
    `analyses`, and the error of each analysis set aside. The batch is checked as a whole
    first; only when that fails is each analysis checked alone, so a clean batch costs the same.
    """
    try:
        return build_table(analyses, prefix), list(range(len(analyses))), {}
    except InputError:
        pass
    errors: dict[int, InputError] = {}
    for k, a in enumerate(analyses):
        try:
            build_table([a], prefix.format(k))
        except InputError as exc:
            errors[k] = exc
    valid = [k for k in range(len(analyses)) if k not in errors]
    if not valid:
        return None, [], errors
    return build_table([analyses[k] for k in valid], prefix), valid, errors
