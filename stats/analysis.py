"""The public entry points: analyses in, results out, all batched into one numpy pass.

Analyses are typed dataclasses (`analyze_many`); JSON-shaped records reach the same call
through `stats.parse` (`analyze_records`, used by the CLI). The batch becomes one checked
table (stats.table); the engine, SRM and corrections then run once over it.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from stats import engine
from stats.corrections import adjust_p_values
from stats.parse import parse_analysis, result_to_dict
from stats.srm import srm_arrays
from stats.table import COLUMN, Table, build_table, build_table_isolated
from stats.types import (
    DEFAULT_SRM_THRESHOLD,
    ERROR_CODES,
    AnalysisInput,
    AnalysisResult,
    BoolArray,
    Comparison,
    CorrectionMethod,
    ErrorCode,
    FloatArray,
    InputError,
    VariationSummary,
)

# Error code index -> label; index -1 (no error) picks the trailing None.
_ERROR_LABELS = np.array([*ERROR_CODES, None], dtype=object)


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
    risk_control: list[float | None]
    risk_treatment: list[float | None]
    cuped_applied: list[bool]  # per comparison
    mean: list[float | None]
    stddev: list[float | None]
    srm_p_value: list[float]
    standard_error: list[float | None]


def _nullable(x: FloatArray, defined: BoolArray | None = None) -> list[float | None]:
    """Floats with NaN (and undefined comparisons) as None, converted in one pass."""
    missing = np.isnan(x) if defined is None else np.isnan(x) | ~defined
    out = x.astype(object)
    out[missing] = None
    return out.tolist()  # type: ignore[no-any-return]


def _compute(t: Table, correction: CorrectionMethod | None) -> _Columns:
    """The engine, SRM and the correction over the whole table; results as Python lists."""
    offsets = np.cumsum(t.sizes) - t.sizes
    rows = np.arange(t.values.shape[1], dtype=np.int64)
    position = rows - offsets[t.group]
    treatment = rows[position > 0]
    comparison_group = t.group[treatment]
    control = offsets[comparison_group]
    columns = dict(zip(COLUMN, t.values, strict=True))
    core = engine.run(engine.ArmColumns(columns, t.group), t.settings, control, treatment)
    defined = core.error == engine.NO_ERROR

    grid = (len(t.sizes), int(t.sizes.max()))
    users_grid, weights_grid = np.zeros(grid), np.zeros(grid)
    users_grid[t.group, position] = t.values[0]
    weights_grid[t.group, position] = t.weights
    srm_p = srm_arrays(users_grid, weights_grid)[2]

    adjusted = np.full(treatment.shape[0], np.nan)
    if correction is not None:
        adjusted = adjust_p_values(np.where(defined, core.p_value, np.nan), correction)
    return _Columns(
        _nullable(core.estimate, defined),
        _nullable(core.ci_low, defined),
        _nullable(core.ci_high, defined),
        _nullable(core.p_value, defined),
        _nullable(core.chance_to_win, defined),
        _nullable(core.variance_reduction, defined),
        _nullable(adjusted),
        _ERROR_LABELS[core.error].tolist(),
        _nullable(core.risk_control, defined),
        _nullable(core.risk_treatment, defined),
        core.cuped_applied[comparison_group].tolist(),
        _nullable(core.mean),
        _nullable(core.stddev),
        srm_p.tolist(),
        _nullable(np.sqrt(np.where(core.variance >= 0, core.variance, np.nan)), defined),
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
        build_table(analyses, prefix)


def analyze_many(
    analyses: Sequence[AnalysisInput],
    *,
    correction: CorrectionMethod | None = None,
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    prefix: str = "[{}].",
    isolate_errors: bool = False,
) -> list[AnalysisResult]:
    """Analyse a batch of analyses in one vectorised pass.

    With `correction`, p-values of all defined comparisons in the batch form one family
    and `p_value_adjusted` is filled in. `prefix` shapes the field path of input errors.
    A malformed analysis raises InputError for the whole batch, unless `isolate_errors`:
    then it gets a result of its own whose `input_error` says what is wrong (and whose
    comparisons carry the error `invalid_input`), and the rest are analysed as usual.
    """
    if not analyses:
        return []
    with _collector_paused():
        if not isolate_errors:
            return _analyze_many(analyses, build_table(analyses, prefix), correction, srm_threshold)
        table, valid, errors = build_table_isolated(analyses, prefix)
        done = (
            dict(zip(valid, _analyze_many([analyses[k] for k in valid], table, correction, srm_threshold), strict=True))
            if table is not None
            else {}
        )
        return [done[k] if k in done else _refused(a, errors[k]) for k, a in enumerate(analyses)]


def _refused(a: AnalysisInput, error: InputError) -> AnalysisResult:
    summaries = tuple(VariationSummary(v.name, v.users, None, None) for v in a.variations)
    comparisons = tuple(
        Comparison(v.name, a.difference_type, None, None, None, None, None, False, None, a.sequential,
                   ErrorCode.INVALID_INPUT, engine=a.engine)
        for v in a.variations[1:]
    )
    return AnalysisResult(math.nan, False, summaries, comparisons, input_error=str(error))


def _analyze_many(
    analyses: Sequence[AnalysisInput], table: Table, correction: CorrectionMethod | None, srm_threshold: float
) -> list[AnalysisResult]:
    c = _compute(table, correction)
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
                    a.engine,
                    _risk(c.risk_control[i], c.risk_treatment[i]),
                    c.standard_error[i],
                )
            )
            i += 1
        r += len(a.variations)
        p = c.srm_p_value[k]
        results.append(AnalysisResult(p, p < srm_threshold, summaries, tuple(comparisons)))
    return results


def _risk(control: float | None, treatment: float | None) -> tuple[float, float] | None:
    return None if control is None or treatment is None else (control, treatment)


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

    Each record goes through `parse_analysis`, the batch through `analyze_many` and each
    result through `result_to_dict`; `p_value_adjusted` is present only with a correction.
    """
    with _collector_paused():
        analyses = [parse_analysis(r, prefix.format(k).rstrip(".")) for k, r in enumerate(records)]
        results = analyze_many(analyses, correction=correction, srm_threshold=srm_threshold, prefix=prefix)
        return [result_to_dict(r, with_adjusted=correction is not None) for r in results]
