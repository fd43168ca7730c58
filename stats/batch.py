"""Input side of the engine: analyses (dataclasses or JSON records) -> one checked table.

Every variation of every analysis becomes a column of sums; every analysis an entry of
settings. Value checks then run vectorised over the whole batch and name the first bad field.

JSON records take a column-wise path (`read_records`): settings are pulled out one key at
a time and variations one block of same-keyed dicts at a time, by C-level passes (`map`
with `itemgetter`); types are checked with set operations and numbers converted to numpy
in one call per block. Anything that path does not vouch for (an unexpected type, a
non-finite number, a failed check) sends the whole batch through the per-field parser
instead, which accepts exactly the same inputs and names the offending field.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter
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


def _fail(prefix: str, k: int, field: str, message: str) -> InputError:
    return InputError(f"{prefix.format(k)}{field}", message)


def _check_settings(
    s: engine.GroupSettings, sizes: IntArray, given: IntArray, w: FloatArray, group: IntArray, prefix: str
) -> None:
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
    """Vectorised value checks; on failure the first offending field is named.

    `table` is NUMERIC_FIELDS x variations; "first" means the first variation in batch
    order, then the first field in NUMERIC_FIELDS order.
    """
    present = ~np.isnan(table)
    fail = np.zeros(table.shape, dtype=np.bool_)
    messages: dict[int, str] = {}
    is_bin, is_ratio = metric == engine.BINOMIAL, metric == engine.RATIO

    def flag(column: str, mask: BoolArray, message: str) -> None:
        j = COLUMN[column]
        fail[j] |= mask
        messages.setdefault(j, message)

    n, s = table[0], table[COLUMN["main_sum"]]
    flag("users", ~(n >= 0) | (n != np.floor(n)), "must be a non-negative integer")
    fail |= present & ~np.isfinite(table)
    for j in range(len(NUMERIC_FIELDS)):
        messages.setdefault(j, "must be finite")
    flag("main_sum", ~present[COLUMN["main_sum"]], "is required")
    flag("main_sum_squares", ~is_bin & ~present[COLUMN["main_sum_squares"]], "is required")
    flag("main_sum", is_bin & ((s < 0) | (s > n)), "must be between 0 and users for binomial")
    for f in RATIO_FIELDS:
        flag(f, is_ratio & ~present[COLUMN[f]], "is required for ratio metrics")
    # Covariate fields come as a group: all of them or none, in every variation alike.
    for fields, applies in ((COVARIATE_FIELDS, np.ones_like(is_bin)), (RATIO_COVARIATE_FIELDS, is_ratio)):
        cols = [COLUMN[f] for f in fields]
        has_any = present[cols].any(axis=0) & applies
        in_analysis = (np.bincount(group, weights=has_any.astype(np.float64)) > 0)[group]
        for f, j in zip(fields, cols, strict=True):
            missing = in_analysis & applies & ~present[j]
            if f == "covariate_sum_squares":
                missing &= ~is_bin  # a 0/1 covariate's sum of squares is its sum
            flag(f, missing, "is required in every variation when any covariate field is given")
    if fail.any():
        row, col = np.argwhere(fail.T)[0]
        k = int(group[row])
        arm = int(row - np.flatnonzero(group == k)[0])
        raise _fail(prefix, k, f"variations[{arm}].{NUMERIC_FIELDS[col]}", messages[int(col)])


def _as_array(rows: list[tuple[Any, ...]]) -> FloatArray:
    """NUMERIC_FIELDS x rows floats; None (an explicit JSON null) becomes NaN."""
    width = len(NUMERIC_FIELDS)
    try:
        # Several times faster than np.array on tuples, but it accepts no None.
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    except TypeError:
        flat = np.array(rows, dtype=np.float64)
    return np.ascontiguousarray(flat.reshape(-1, width).T)


def new_batch() -> Batch:
    return Batch([], [], [], [], [], [])


def _checked_table(
    values: FloatArray,
    sizes: IntArray,
    weights: FloatArray,
    given: IntArray,
    settings: engine.GroupSettings,
    prefix: str,
) -> Table:
    group = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    with np.errstate(invalid="ignore"):
        _check_settings(settings, sizes, given, weights, group, prefix)
        _check_values(values, group, settings.metric[group], prefix)
    return Table(values, group, sizes, weights, settings)


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
    weights = np.array(batch.weights, dtype=np.float64)
    given = np.array(batch.weights_given, dtype=np.int64)
    return _checked_table(_as_array(batch.rows), sizes, weights, given, settings, prefix)


class Records(NamedTuple):
    """A checked batch of JSON records and the variation names, in batch order."""

    table: Table
    names: list[str]


def read_records(records: Sequence[Any], prefix: str) -> Records:
    """JSON-shaped analyses -> a checked table; raises InputError naming the first bad field.

    The column-wise reader handles well-formed batches; any batch it does not vouch for
    goes through `parse_analysis`, record by record, which names the offending field.
    """
    fast = _read_columns(records, prefix)
    if fast is not None:
        return fast
    batch = new_batch()
    for k, r in enumerate(records):
        add_input(batch, parse_analysis(r, prefix.format(k).rstrip(".")), prefix.format(k))
    return Records(build_table(batch, prefix), batch.names)


# --- the column-wise reader -------------------------------------------------------------
#
# Each helper returns None as soon as it meets something the per-field parser would
# treat differently from a plain, valid value: that batch then takes the parser.

_NUMBER = frozenset({int, float})  # bool is its own type, so true/false is not a number here
_NUMBER_OR_NULL = frozenset({int, float, type(None)})
_NONE = type(None)
_OPTIONAL = frozenset(NUMERIC_FIELDS[2:])  # an explicit null there means "absent"
_DEFAULTS: dict[str, Any] = {
    "difference_type": "relative",
    "alpha": DEFAULT_ALPHA,
    "sequential": False,
    "sequential_tuning_parameter": DEFAULT_SEQUENTIAL_TUNING_PARAMETER,
    "cuped": False,
    "weights": None,
}
# Variations read at a time: each slice is read in several passes, which find it in the
# CPU cache when it is this small.
_VARIATIONS_SLICE = 2048
# Past this many splits of variations by layout, they are read field by field instead.
_MAX_SPLITS = 16


class _Analyses(NamedTuple):
    """The records' settings as arrays and their variations as one flat list."""

    settings: engine.GroupSettings
    sizes: IntArray
    weights: FloatArray  # per variation
    given: IntArray  # weights given per analysis, -1 for none
    variations: list[Any]


def _read_columns(records: Sequence[Any], prefix: str) -> Records | None:
    if not records:
        return None
    analyses = _read_analyses(records if isinstance(records, list) else list(records))
    if analyses is None:
        return None
    flat = analyses.variations
    values = np.full((len(NUMERIC_FIELDS), len(flat)), np.nan)
    names: list[str] = []
    for start in range(0, len(flat), _VARIATIONS_SLICE):
        stop = min(start + _VARIATIONS_SLICE, len(flat))
        found = _variation_columns(flat[start:stop], values[:, start:stop])
        if found is None:
            return None
        names += found
    try:
        table = _checked_table(values, analyses.sizes, analyses.weights, analyses.given, analyses.settings, prefix)
    except InputError:
        return None  # the parser names the field, exactly as for any other batch
    return Records(table, names)


def _read_analyses(records: list[Any]) -> _Analyses | None:
    columns = _setting_columns(records)
    if columns is None or "metric" not in columns or "variations" not in columns:
        return None
    n = len(records)
    metric, variations = columns["metric"], columns["variations"]
    difference = columns.get("difference_type")
    if (
        not _choices(metric, METRIC_TYPES)
        or (difference is not None and not _choices(difference, DIFFERENCE_TYPES))
        or set(map(type, variations)) != {list}
    ):
        return None
    alpha = _setting_numbers(columns.get("alpha"), DEFAULT_ALPHA, n)
    tuning = _setting_numbers(columns.get("sequential_tuning_parameter"), DEFAULT_SEQUENTIAL_TUNING_PARAMETER, n)
    sequential, cuped = _flags(columns.get("sequential"), n), _flags(columns.get("cuped"), n)
    flat = list(chain.from_iterable(variations))
    if alpha is None or tuning is None or sequential is None or cuped is None or not flat:
        return None
    sizes = np.fromiter(map(len, variations), dtype=np.int64, count=n)
    weights = _weights(columns.get("weights"), sizes, len(flat))
    if weights is None:
        return None
    settings = engine.GroupSettings(
        metric=np.fromiter(map(_METRIC_INDEX.__getitem__, metric), dtype=np.int64, count=n),
        alpha=alpha,
        relative=np.ones(n, dtype=np.bool_)
        if difference is None
        else np.fromiter(map("relative".__eq__, difference), dtype=np.bool_, count=n),
        sequential=sequential,
        tuning=tuning,
        cuped=cuped,
    )
    return _Analyses(settings, sizes, weights[0], weights[1], flat)


def _setting_columns(records: list[Any]) -> dict[str, Sequence[Any]] | None:
    """Each setting of the records as one column; keys no record has are left out."""
    if set(map(type, records)) != {dict}:
        return None
    if len(set(map(len, records))) == 1 and ANALYSIS_KEYS.issuperset(records[0]):
        # Usually every record has the same keys: fetching each of the first record's keys
        # from all of them (a C-level pass per key) proves it, as they all have that many.
        try:
            return {key: list(map(itemgetter(key), records)) for key in records[0]}
        except KeyError:
            pass
    keys = set().union(*records)
    if not ANALYSIS_KEYS.issuperset(keys):
        return None
    return {k: list(map(dict.get, records, repeat(k), repeat(_DEFAULTS.get(k)))) for k in keys}


def _floats(column: Sequence[Any], nullable: bool) -> FloatArray | None:
    """Finite JSON numbers as float64, null (where allowed) as NaN."""
    kinds = set(map(type, column))
    try:
        if kinds <= _NUMBER:
            out = np.fromiter(column, dtype=np.float64, count=len(column))
        elif nullable and kinds <= _NUMBER_OR_NULL:
            absent = np.array([x is None for x in column], dtype=np.bool_)
            out = np.array([0.0 if x is None else x for x in column], dtype=np.float64)
            if not np.isfinite(out).all():
                return None
            out[absent] = np.nan
            return out
        else:
            return None
    except OverflowError:  # an int beyond float range: the parser reports it
        return None
    return out if np.isfinite(out).all() else None


def _setting_numbers(column: Sequence[Any] | None, default: float, n: int) -> FloatArray | None:
    return np.full(n, default) if column is None else _floats(column, nullable=False)


def _flags(column: Sequence[Any] | None, n: int) -> BoolArray | None:
    if column is None:
        return np.zeros(n, dtype=np.bool_)
    return np.fromiter(column, dtype=np.bool_, count=n) if set(map(type, column)) == {bool} else None


def _choices(column: Sequence[Any], options: Sequence[str]) -> bool:
    return set(map(type, column)) == {str} and set(column) <= set(options)


def _weights(column: Sequence[Any] | None, sizes: IntArray, count: int) -> tuple[FloatArray, IntArray] | None:
    """Per-variation weights (1.0 where an analysis gives none) and the number given."""
    weights, given = np.ones(count), np.full(len(sizes), -1, dtype=np.int64)
    kinds = set() if column is None else set(map(type, column))
    if not kinds <= {list, _NONE}:
        return None
    if column is None or list not in kinds:
        return weights, given
    if kinds == {list}:
        given = np.fromiter(map(len, column), dtype=np.int64, count=len(sizes))
        lists = column
    else:
        given = np.array([-1 if w is None else len(w) for w in column], dtype=np.int64)
        lists = [w for w in column if w is not None]
    has = given >= 0
    if (has & (given != sizes)).any():
        return None  # the parser names the analysis
    listed = _floats(list(chain.from_iterable(lists)), nullable=False)
    if listed is None:
        return None
    if has.all():
        return listed, given
    weights[np.repeat(has, sizes)] = listed
    return weights, given


def _subset(items: list[Any], rows: IntArray) -> list[Any]:
    return [items[rows[0]]] if len(rows) == 1 else list(itemgetter(*rows.tolist())(items))


def _variation_columns(flat: list[Any], values: FloatArray) -> list[str] | None:
    """Write the NUMERIC_FIELDS x variations values (NaN filled) and return the names, or None.

    Variations are read in blocks that share their keys (the layout): first by number of
    keys, then split on a key some of them lack until each block has one layout. Batches
    with many layouts (say, nulls or extra columns here and there) are read field by field.
    """
    if set(map(type, flat)) != {dict}:
        return None
    try:
        names = _names(list(map(itemgetter("name"), flat)))
    except KeyError:
        return None
    if names is None:
        return None
    count = len(flat)
    lengths = np.fromiter(map(len, flat), dtype=np.int64, count=count)
    distinct = np.flatnonzero(np.bincount(lengths))
    if len(distinct) == 1:
        pending = [(np.arange(count, dtype=np.int64), flat)]
    else:
        pending = [(rows, _subset(flat, rows)) for rows in (np.flatnonzero(lengths == n) for n in distinct)]
    splits = 0
    while pending:
        rows, dicts = pending.pop()
        found = _fetch(values, rows, dicts)
        if found is True:
            continue
        if found is False:
            return None
        splits += 1
        if splits > _MAX_SPLITS:
            return names if _by_field(values, np.arange(count, dtype=np.int64), flat) else None
        has = np.fromiter(map(dict.__contains__, dicts, repeat(found.key)), dtype=np.bool_, count=len(dicts))
        if has.all() or not has.any():
            return None  # a key that is and is not there: leave it to the parser
        for part in (np.flatnonzero(has), np.flatnonzero(~has)):
            pending.append((rows[part], _subset(dicts, part)))
    return names


class _Missing(NamedTuple):
    """Some of the variations lack this key of the first one."""

    key: Any


def _by_field(values: FloatArray, rows: IntArray, dicts: list[Any]) -> bool:
    """Like `_fetch` for variations with many different layouts: one pass per field."""
    present = set().union(*dicts)
    for field in NUMERIC_FIELDS:
        if field in present or field not in _OPTIONAL:
            numbers = _floats(list(map(dict.get, dicts, repeat(field))), field in _OPTIONAL)
            if numbers is None:
                return False
            values[COLUMN[field], rows] = numbers
    return True


def _fetch(values: FloatArray, rows: IntArray, dicts: list[Any]) -> _Missing | bool:
    """Write the numbers of variations laid out like the first into `values`.

    Every variation has a name (checked before). Fetching the first one's other keys from
    each of them is also the check that they all have the same keys (they have as many):
    a KeyError means they do not, and the missing key is returned. False is returned for
    anything the parser would treat differently, True when the values are written.
    """
    keys = tuple(dicts[0])
    numeric = tuple(k for k in keys if k in COLUMN)
    extra = tuple(k for k in keys if k not in COLUMN and k != "name")  # warehouse columns
    if "users" not in numeric or "main_sum" not in numeric:
        return False
    try:
        fetched = list(map(itemgetter(*numeric), dicts))
        if extra:
            list(map(itemgetter(*extra), dicts))
    except KeyError as missing:
        return _Missing(missing.args[0])
    numbers = _numbers(fetched, numeric)
    if numbers is None:
        return False
    values[np.array([COLUMN[k] for k in numeric], dtype=np.int64)[:, None], rows] = numbers.T
    return True


def _names(names: list[Any]) -> list[str] | None:
    """The names if they are all non-empty strings."""
    return names if set(map(type, names)) == {str} and all(names) else None


def _numbers(rows: list[tuple[Any, ...]], fields: tuple[str, ...]) -> FloatArray | None:
    """variations x fields floats from one tuple per variation; None as in `_floats`."""
    if set(map(type, chain.from_iterable(rows))) <= _NUMBER:
        try:
            flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * len(fields))
        except OverflowError:  # an int beyond float range: the parser reports it
            return None
        return flat.reshape(len(rows), len(fields)) if np.isfinite(flat).all() else None
    # Explicit nulls (or bad values): field by field, where null means absent.
    out = np.empty((len(rows), len(fields)))
    for j, (field, column) in enumerate(zip(fields, zip(*rows, strict=True), strict=True)):
        numbers = _floats(column, field in _OPTIONAL)
        if numbers is None:
            return None
        out[:, j] = numbers
    return out
