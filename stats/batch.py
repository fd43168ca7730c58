"""Input side of the engine: analyses (dataclasses or JSON records) -> one checked table.

Every variation of every analysis becomes a row of sums; every analysis a row of settings.
Value checks then run vectorised over the whole batch and name the first bad field.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from stats import engine
from stats.parse import ANALYSIS_KEYS, parse_analysis
from stats.types import (
    COVARIATE_FIELDS,
    DEFAULT_ALPHA,
    DEFAULT_SEQUENTIAL_TUNING_PARAMETER,
    DIFFERENCE_TYPES,
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
# Types a JSON number (or an absent field) may have; bool is its own type, so it is excluded.
_ROW_TYPES = frozenset({int, float, type(None)})
# Default for a field a record leaves out: NaN, so rows convert with np.fromiter.
_ABSENT = (float("nan"),) * len(NUMERIC_FIELDS)


class Setting(NamedTuple):
    metric: int  # index into METRIC_TYPES, -1 when unknown
    alpha: float
    relative: bool
    sequential: bool
    tuning: float
    cuped: bool


class Batch(NamedTuple):
    """Analyses gathered as Python lists, before they become arrays."""

    settings: list[Setting]
    names: list[str]
    rows: list[tuple[Any, ...]]  # NUMERIC_FIELDS per variation, None where absent
    sizes: list[int]
    weights: list[float]  # per variation; 1.0 where the analysis gives none
    weights_given: list[int]  # number of weights given per analysis, -1 for none


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


def add_input(batch: Batch, a: AnalysisInput, path: str) -> None:
    if a.difference_type not in DIFFERENCE_TYPES:
        raise InputError(f"{path}difference_type", f"must be one of {', '.join(DIFFERENCE_TYPES)}")
    batch.settings.append(
        Setting(
            _METRIC_INDEX.get(a.metric, -1),
            a.alpha,
            a.difference_type == "relative",
            a.sequential,
            a.sequential_tuning_parameter,
            a.cuped,
        )
    )
    batch.rows.extend(_row(v) for v in a.variations)
    batch.names.extend(v.name for v in a.variations)
    batch.sizes.append(len(a.variations))
    _add_weights(batch, a.weights, len(a.variations))


def _add_weights(batch: Batch, weights: Sequence[float] | None, size: int) -> None:
    if weights is None:
        batch.weights.extend([1.0] * size)
        batch.weights_given.append(-1)
    else:
        batch.weights.extend(weights[:size])
        batch.weights.extend([1.0] * (size - len(weights)))
        batch.weights_given.append(len(weights))


def _all_at_once(batch: Batch, records: Sequence[Any]) -> bool:
    """Add a batch of well-formed records with whole-column operations; False to go one by one.

    Settings are read column by column and type-checked with set operations, so a large
    batch costs a few list comprehensions rather than a Python loop with many branches.
    """
    if set(map(type, records)) != {dict} or not all(map(ANALYSIS_KEYS.issuperset, records)):
        return False
    metric = [_METRIC_INDEX.get(r.get("metric"), -1) for r in records]
    difference = [r.get("difference_type", "relative") for r in records]
    alpha = [r.get("alpha", DEFAULT_ALPHA) for r in records]
    tuning = [r.get("sequential_tuning_parameter", DEFAULT_SEQUENTIAL_TUNING_PARAMETER) for r in records]
    sequential = [r.get("sequential", False) for r in records]
    cuped = [r.get("cuped", False) for r in records]
    weights = [r.get("weights") for r in records]
    variations = [r.get("variations") for r in records]
    if (
        min(metric) < 0
        or not set(difference) <= set(DIFFERENCE_TYPES)
        or not set(map(type, alpha)) | set(map(type, tuning)) <= {int, float}
        or set(map(type, sequential)) | set(map(type, cuped)) != {bool}
        or set(map(type, variations)) != {list}
        or not set(map(type, weights)) <= {list, type(None)}
    ):
        return False
    sizes = list(map(len, variations))
    given = [-1 if w is None else len(w) for w in weights]
    flat_weights = list(chain.from_iterable(w or [1.0] * n for w, n in zip(weights, sizes, strict=True)))
    flat = list(chain.from_iterable(variations))
    if (
        set(map(type, flat)) != {dict}
        or not set(map(type, flat_weights)) <= {int, float}
        or any(g >= 0 and g != n for g, n in zip(given, sizes, strict=True))
    ):
        return False
    relative = [d == "relative" for d in difference]
    batch.settings.extend(map(Setting, metric, alpha, relative, sequential, tuning, cuped))
    batch.rows.extend([tuple(map(v.get, NUMERIC_FIELDS, _ABSENT)) for v in flat])
    batch.names.extend([v.get("name") for v in flat])
    batch.sizes.extend(sizes)
    batch.weights.extend(flat_weights)
    batch.weights_given.extend(given)
    return True


def add_records(batch: Batch, records: Sequence[Any], prefix: str) -> None:
    """JSON-shaped analyses, read column by column without building dataclasses.

    Types are checked once for the whole batch (C-level set operations). When anything is
    unusual, every record goes through the full parser instead, which names the offending
    field if there is one.
    """
    if not _all_at_once(batch, records):
        for k, r in enumerate(records):
            add_input(batch, parse_analysis(r, prefix.format(k).rstrip(".")), prefix.format(k))
        return
    names_ok = set(map(type, batch.names)) <= {str} and all(batch.names)
    if not names_ok or not _ROW_TYPES.issuperset(map(type, chain.from_iterable(batch.rows))):
        for k, r in enumerate(records):
            parse_analysis(r, prefix.format(k).rstrip("."))  # raises at the first bad record
        raise InputError("", "malformed input")  # pragma: no cover - the parser is stricter


class Table(NamedTuple):
    values: FloatArray  # rows x NUMERIC_FIELDS
    group: IntArray
    sizes: IntArray
    weights: FloatArray
    settings: engine.GroupSettings


def _fail(prefix: str, k: int, field: str, message: str) -> InputError:
    return InputError(f"{prefix.format(k)}{field}", message)


def _check_settings(
    batch: Batch, s: engine.GroupSettings, sizes: IntArray, w: FloatArray, group: IntArray, prefix: str
) -> None:
    given = np.asarray(batch.weights_given)
    weight_bad = np.bincount(group, weights=(~(np.isfinite(w) & (w >= 0))).astype(np.float64), minlength=len(sizes))
    weight_sum = np.bincount(group, weights=np.where(np.isfinite(w), w, 0.0), minlength=len(sizes))
    checks: list[tuple[BoolArray, str, str]] = [
        (s.metric < 0, "metric", f"must be one of {', '.join(METRIC_TYPES)}"),
        (~((s.alpha > 0) & (s.alpha < 1)), "alpha", "must be between 0 and 1"),
        (~(np.isfinite(s.tuning) & (s.tuning > 0)), "sequential_tuning_parameter", "must be a positive number"),
        (sizes < 2, "variations", "needs a control and at least one treatment"),
        ((given >= 0) & (given != sizes), "weights", "needs one weight per variation"),
        ((given >= 0) & ((weight_bad > 0) | (weight_sum <= 0)), "weights", "must be non-negative and not all zero"),
    ]
    for bad, field, message in checks:
        if bad.any():
            raise _fail(prefix, int(np.flatnonzero(bad)[0]), field, message)


def _check_values(table: FloatArray, group: IntArray, metric: IntArray, prefix: str) -> None:
    """Vectorised value checks; on failure the first offending field is named."""
    present = ~np.isnan(table)
    fail = np.zeros(table.shape, dtype=np.bool_)
    messages: dict[int, str] = {}
    is_bin, is_ratio = metric == engine.BINOMIAL, metric == engine.RATIO

    def flag(column: str, mask: BoolArray, message: str) -> None:
        j = COLUMN[column]
        fail[:, j] |= mask
        messages.setdefault(j, message)

    n, s = table[:, 0], table[:, COLUMN["main_sum"]]
    flag("users", ~(n >= 0) | (n != np.floor(n)), "must be a non-negative integer")
    for j, name in enumerate(NUMERIC_FIELDS):
        flag(name, present[:, j] & ~np.isfinite(table[:, j]), "must be finite")
    flag("main_sum", ~present[:, COLUMN["main_sum"]], "is required")
    flag("main_sum_squares", ~is_bin & ~present[:, COLUMN["main_sum_squares"]], "is required")
    flag("main_sum", is_bin & ((s < 0) | (s > n)), "must be between 0 and users for binomial")
    for f in RATIO_FIELDS:
        flag(f, is_ratio & ~present[:, COLUMN[f]], "is required for ratio metrics")
    # Covariate fields come as a group: all of them or none, in every variation alike.
    for fields, applies in ((COVARIATE_FIELDS, np.ones_like(is_bin)), (RATIO_COVARIATE_FIELDS, is_ratio)):
        cols = [COLUMN[f] for f in fields]
        has_any = present[:, cols].any(axis=1) & applies
        in_analysis = (np.bincount(group, weights=has_any.astype(np.float64)) > 0)[group]
        for f, j in zip(fields, cols, strict=True):
            missing = in_analysis & applies & ~present[:, j]
            if f == "covariate_sum_squares":
                missing &= ~is_bin  # a 0/1 covariate's sum of squares is its sum
            flag(f, missing, "is required in every variation when any covariate field is given")
    if fail.any():
        row, col = np.argwhere(fail)[0]
        k = int(group[row])
        arm = int(row - np.flatnonzero(group == k)[0])
        raise _fail(prefix, k, f"variations[{arm}].{NUMERIC_FIELDS[col]}", messages[int(col)])


def _as_array(rows: list[tuple[Any, ...]]) -> FloatArray:
    """rows x NUMERIC_FIELDS floats; None (an explicit JSON null) becomes NaN."""
    width = len(NUMERIC_FIELDS)
    try:
        # Several times faster than np.array on tuples, but it accepts no None.
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    except TypeError:
        flat = np.array(rows, dtype=np.float64)
    return flat.reshape(-1, width)


def new_batch() -> Batch:
    return Batch([], [], [], [], [], [])


def build_table(batch: Batch, prefix: str) -> Table:
    """Arrays of the batch, checked; raises InputError naming the first bad field."""
    s = np.array(batch.settings, dtype=np.float64).reshape(-1, len(Setting._fields))
    settings = engine.GroupSettings(
        metric=s[:, 0].astype(np.int64),
        alpha=s[:, 1],
        relative=s[:, 2] != 0,
        sequential=s[:, 3] != 0,
        tuning=s[:, 4],
        cuped=s[:, 5] != 0,
    )
    sizes = np.array(batch.sizes, dtype=np.int64)
    group = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    weights = np.array(batch.weights, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        _check_settings(batch, settings, sizes, weights, group, prefix)
        values = _as_array(batch.rows)
        _check_values(values, group, settings.metric[group], prefix)
    return Table(values, group, sizes, weights, settings)
