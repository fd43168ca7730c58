"""The public entry points: analyses in, results out, all batched into one numpy pass.

Two doors lead to the same batch: typed dataclasses (`analyze_many`) and JSON-shaped
records (`analyze_records`, used by the CLI and by callers that store JSON). Both become
one checked table (stats.batch); the engine, SRM and corrections then run once over it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from stats import engine
from stats.batch import COLUMN, Table, add_input, build_table, new_batch, read_records
from stats.corrections import adjust_p_values
from stats.srm import srm_arrays
from stats.types import (
    DEFAULT_SRM_THRESHOLD,
    ERROR_CODES,
    AnalysisInput,
    AnalysisResult,
    BoolArray,
    Comparison,
    CorrectionMethod,
    FloatArray,
    IntArray,
    VariationSummary,
)

# Error code index -> label; index -1 (no error) picks the trailing None.
_ERROR_LABELS = np.array([*ERROR_CODES, None], dtype=object)
# Settings.relative (as 0/1) -> difference_type; shared str objects, no copies per comparison.
_DIFFERENCE_LABELS = np.array(["absolute", "relative"], dtype=object)


class _Columns(NamedTuple):
    """Results as plain Python lists, None where undefined, ready to wrap."""

    estimate: list[float | None]
    ci_low: list[float | None]
    ci_high: list[float | None]
    p_value: list[float | None]
    chance_to_win: list[float | None]
    variance_reduction: list[float | None]
    p_value_adjusted: list[float | None]
    error: list[str | None]
    cuped_applied: list[bool]  # per comparison
    mean: list[float | None]
    stddev: list[float | None]
    srm_p_value: list[float]


def _nullable(x: FloatArray, defined: BoolArray | None = None) -> list[float | None]:
    """Floats with NaN (and undefined comparisons) as None, converted in one pass."""
    missing = np.isnan(x) if defined is None else np.isnan(x) | ~defined
    out = x.astype(object)
    out[missing] = None
    return out.tolist()  # type: ignore[no-any-return]


def _json_numbers(x: FloatArray, defined: BoolArray | None = None) -> list[float | None]:
    """Floats as JSON numbers: None where not finite (as `parse.result_to_dict`) or undefined.

    `tolist()` makes the Python floats in one C loop; only when some entries are missing
    does an object array put the None in place, so a clean column costs one call.
    """
    missing = ~np.isfinite(x) if defined is None else ~(np.isfinite(x) & defined)
    if not missing.any():
        return x.tolist()  # type: ignore[no-any-return]
    out = np.full(x.shape, None, dtype=object)
    keep = ~missing
    out[keep] = x[keep]
    return out.tolist()  # type: ignore[no-any-return]


class _Core(NamedTuple):
    core: engine.CoreResult
    treatment: IntArray  # row of each comparison's treatment
    comparison_group: IntArray  # analysis of each comparison
    srm_p_value: FloatArray  # per analysis
    p_value_adjusted: FloatArray  # per comparison, NaN without a correction


def _run(t: Table, correction: CorrectionMethod | None) -> _Core:
    offsets = np.cumsum(t.sizes) - t.sizes
    rows = np.arange(t.values.shape[1], dtype=np.int64)
    position = rows - offsets[t.group]
    treatment = rows[position > 0]
    comparison_group = t.group[treatment]
    control = offsets[comparison_group]
    columns = dict(zip(COLUMN, t.values, strict=True))
    core = engine.run(engine.ArmColumns(columns, t.group), t.settings, control, treatment)

    grid = (len(t.sizes), int(t.sizes.max()))
    users_grid, weights_grid = np.zeros(grid), np.zeros(grid)
    users_grid[t.group, position] = t.values[0]
    weights_grid[t.group, position] = t.weights
    srm_p = srm_arrays(users_grid, weights_grid)[2]

    adjusted = np.full(treatment.shape[0], np.nan)
    if correction is not None:
        defined = core.error == engine.NO_ERROR
        adjusted = adjust_p_values(np.where(defined, core.p_value, np.nan), correction)
    return _Core(core, treatment, comparison_group, srm_p, adjusted)


def _compute(t: Table, correction: CorrectionMethod | None) -> _Columns:
    r = _run(t, correction)
    core = r.core
    defined = core.error == engine.NO_ERROR
    return _Columns(
        _nullable(core.estimate, defined),
        _nullable(core.ci_low, defined),
        _nullable(core.ci_high, defined),
        _nullable(core.p_value, defined),
        _nullable(core.chance_to_win, defined),
        _nullable(core.variance_reduction, defined),
        _nullable(r.p_value_adjusted),
        _ERROR_LABELS[core.error].tolist(),
        core.cuped_applied[r.comparison_group].tolist(),
        _nullable(core.mean),
        _nullable(core.stddev),
        r.srm_p_value.tolist(),
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch builds its many small containers.

    They hold no reference cycles, so nothing is lost; without the pause, collections
    triggered by the allocations rescan the caller's live objects and cost a third of the
    time of a large batch.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def validate(analyses: Sequence[AnalysisInput], prefix: str = "[{}].") -> None:
    """Raise InputError naming the first malformed field of the batch."""
    if analyses:
        batch = new_batch()
        for k, a in enumerate(analyses):
            add_input(batch, a, prefix.format(k))
        build_table(batch, prefix)


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
    with _collector_paused():
        return _analyze_many(analyses, correction, srm_threshold, prefix)


def _analyze_many(
    analyses: Sequence[AnalysisInput], correction: CorrectionMethod | None, srm_threshold: float, prefix: str
) -> list[AnalysisResult]:
    batch = new_batch()
    for k, a in enumerate(analyses):
        add_input(batch, a, prefix.format(k))
    c = _compute(build_table(batch, prefix), correction)
    results: list[AnalysisResult] = []
    i = r = 0  # running indexes over comparisons and variations
    for k, a in enumerate(analyses):
        summaries = tuple(
            VariationSummary(v.name, v.users, c.mean[r + j], c.stddev[r + j]) for j, v in enumerate(a.variations)
        )
        comparisons = []
        for v in a.variations[1:]:
            comparisons.append(
                Comparison(
                    v.name,
                    a.difference_type,
                    c.estimate[i],
                    c.ci_low[i],
                    c.ci_high[i],
                    c.p_value[i],
                    c.chance_to_win[i],
                    c.cuped_applied[i],
                    c.variance_reduction[i],
                    a.sequential,
                    c.error[i],
                    c.p_value_adjusted[i],
                )
            )
            i += 1
        r += len(a.variations)
        p = c.srm_p_value[k]
        results.append(AnalysisResult(p, p < srm_threshold, summaries, tuple(comparisons)))
    return results


def analyze(analysis: AnalysisInput, *, srm_threshold: float = DEFAULT_SRM_THRESHOLD) -> AnalysisResult:
    """Analyse one metric: every treatment against the first variation."""
    return analyze_many([analysis], srm_threshold=srm_threshold, prefix="")[0]


def analyze_records(
    records: Sequence[Mapping[str, Any]],
    *,
    correction: CorrectionMethod | None = None,
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    prefix: str = "[{}].",
) -> list[dict[str, Any]]:
    """JSON-shaped analyses in, JSON-shaped results out (the documented input/output).

    Same numbers as `analyze_many`; skips the dataclasses, which matters for large batches.
    `p_value_adjusted` is present only when a correction is given.
    """
    if not records:
        return []
    with _collector_paused():
        return _analyze_records(records, correction, srm_threshold, prefix)


def _analyze_records(
    records: Sequence[Mapping[str, Any]], correction: CorrectionMethod | None, srm_threshold: float, prefix: str
) -> list[dict[str, Any]]:
    table, names = read_records(records, prefix)
    r = _run(table, correction)
    return _result_dicts(table, names, r, correction is not None, srm_threshold)


def _users(n: FloatArray) -> list[int]:
    """User counts as Python ints, as `parse_variation` makes them (int of the float)."""
    if n.size and n.max() < 2.0**63:
        return n.astype(np.int64).tolist()  # type: ignore[no-any-return]
    return [int(u) for u in n.tolist()]


# Analyses whose output is built at a time. Their columns become Python lists, then dicts,
# and the lists are dropped again while all of it is still in the CPU cache.
_OUTPUT_SLICE = 1024


def _lists(columns: Sequence[npt.NDArray[Any] | list[Any]], start: int, stop: int) -> list[list[Any]]:
    """Rows start:stop of each column as a list; NaN and inf in float columns become None."""
    return [
        c[start:stop]
        if isinstance(c, list)
        else _json_numbers(c[start:stop])
        if c.dtype == np.float64
        else c[start:stop].tolist()
        for c in columns
    ]


def _result_dicts(
    t: Table, names: list[str], r: _Core, with_adjusted: bool, srm_threshold: float
) -> list[dict[str, Any]]:
    """The documented output objects, built column by column.

    Each column is a numpy array (NaN where the output has None) that becomes a Python list
    in one call; the dicts are made by comprehensions over the zipped lists and cut per
    analysis, with no per-value conversion or intermediate object per comparison. Same
    values, None, types and key order as `parse.result_to_dict` applied to the typed
    results (tested in tests/unit/stats/test_records_path.py).
    """
    core, g = r.core, r.comparison_group
    defined = core.error == engine.NO_ERROR
    treatment = r.treatment.tolist()

    def undefined_as_nan(x: FloatArray) -> FloatArray:
        return np.where(defined, x, np.nan)

    comparison_columns: list[npt.NDArray[Any] | list[Any]] = [
        [names[treatment[0]]] if len(treatment) == 1 else list(itemgetter(*treatment)(names)),
        _DIFFERENCE_LABELS[t.settings.relative[g].view(np.int8)],
        undefined_as_nan(core.estimate),
        undefined_as_nan(core.ci_low),
        undefined_as_nan(core.ci_high),
        undefined_as_nan(core.p_value),
        undefined_as_nan(core.chance_to_win),
        core.cuped_applied[g],
        undefined_as_nan(core.variance_reduction),
        t.settings.sequential[g],
        _ERROR_LABELS[core.error],
    ]
    if with_adjusted:
        comparison_columns.append(r.p_value_adjusted)
    variation_columns: list[npt.NDArray[Any]] = [core.mean, core.stddev]
    srm = r.srm_p_value
    srm_warning = srm < srm_threshold
    # Where each analysis' variations and comparisons start and end in the flat columns.
    v_end = np.cumsum(t.sizes)
    v_start = v_end - t.sizes
    c_start = v_start - np.arange(len(v_start))
    c_end = v_end - np.arange(1, len(v_end) + 1)
    out: list[dict[str, Any]] = []
    for k0 in range(0, len(v_start), _OUTPUT_SLICE):
        k1 = min(k0 + _OUTPUT_SLICE, len(v_start))
        v0, c0 = int(v_start[k0]), int(c_start[k0])
        v1, c1 = int(v_end[k1 - 1]), int(c_end[k1 - 1])
        comparisons = _comparison_dicts(_lists(comparison_columns, c0, c1), with_adjusted)
        mean, sd = _lists(variation_columns, v0, v1)
        variations = [
            {"name": name, "users": n, "mean": m, "stddev": s}
            for name, n, m, s in zip(names[v0:v1], _users(t.values[0, v0:v1]), mean, sd, strict=True)
        ]
        out += [
            {
                "srm_p_value": p,
                "srm_warning": warning,
                "variations": variations[a:b],
                "comparisons": comparisons[c:d],
            }
            for p, warning, a, b, c, d in zip(
                _json_numbers(srm[k0:k1]),
                srm_warning[k0:k1].tolist(),
                (v_start[k0:k1] - v0).tolist(),
                (v_end[k0:k1] - v0).tolist(),
                (c_start[k0:k1] - c0).tolist(),
                (c_end[k0:k1] - c0).tolist(),
                strict=True,
            )
        ]
    return out


def _comparison_dicts(columns: list[list[Any]], with_adjusted: bool) -> list[dict[str, Any]]:
    # Spelled out as a dict display: twice as fast as dict(zip(keys, row)) on this hot path.
    rows = [
        {
            "variation": name,
            "difference_type": diff,
            "estimate": est,
            "ci_low": low,
            "ci_high": high,
            "p_value": p,
            "chance_to_win": ctw,
            "cuped_applied": applied,
            "variance_reduction": reduction,
            "sequential": seq,
            "error": error,
        }
        for name, diff, est, low, high, p, ctw, applied, reduction, seq, error in zip(*columns[:11], strict=True)
    ]
    if with_adjusted:
        for row, adjusted in zip(rows, columns[11], strict=True):
            row["p_value_adjusted"] = adjusted
    return rows
