"""JSON <-> dataclasses for the documented input and output shapes.

Parsing checks types and shapes and names the offending field in `InputError`;
value checks that need the whole batch (sizes, required fields per metric type) are
made once, vectorised, when the batch becomes a table (`stats.table.build_table`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from stats.types import (
    CORRECTION_METHODS,
    DEFAULT_ALPHA,
    DEFAULT_SEQUENTIAL_TUNING_PARAMETER,
    DIFFERENCE_TYPES,
    ENGINES,
    METRIC_TYPES,
    NUMERIC_FIELDS,
    AnalysisInput,
    AnalysisResult,
    Comparison,
    CorrectionMethod,
    DifferenceType,
    Engine,
    InputError,
    MetricType,
    VariationData,
)

ANALYSIS_KEYS = frozenset(
    {
        "metric",
        "alpha",
        "difference_type",
        "sequential",
        "sequential_tuning_parameter",
        "cuped",
        "weights",
        "variations",
        "engine",
        "prior_mean",
        "prior_stddev",
        "prior_type",
    }
)
_OPTIONAL_NUMBERS = NUMERIC_FIELDS[2:]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _number(value: Any, path: str, key: str | int | None = None) -> float:
    """A finite JSON number; the field path is only built when there is an error."""
    # bool is an int subclass in Python; true/false is never a count or a sum.
    if type(value) is float and math.isfinite(value):
        return value
    where = path if key is None else _join(path, key)
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer beyond the largest float
            raise InputError(where, "must be finite (the integer is too large for a float)") from None
    if type(value) is not float:
        raise InputError(where, f"must be a number, got {type(value).__name__}")
    raise InputError(where, "must be finite")


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(path, f"must be true or false, got {type(value).__name__}")
    return value


def _choice(value: Any, options: Sequence[str], path: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise InputError(path, f"must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return value


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(path, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise InputError(path, f"must be a list, got {type(value).__name__}")
    return value


def parse_variation(raw: Any, path: str) -> VariationData:
    """One variation row; unknown keys are ignored (warehouse rows carry extra columns)."""
    obj = _object(raw, path)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(_join(path, "name"), "must be a non-empty string")
    for key in ("users", "main_sum"):
        if key not in obj:
            raise InputError(_join(path, key), "is required")
    users = _number(obj["users"], path, "users")
    if users < 0 or users != int(users):
        raise InputError(_join(path, "users"), "must be a non-negative integer")
    extra = {key: _number(obj[key], path, key) for key in _OPTIONAL_NUMBERS if obj.get(key) is not None}
    return VariationData(name=name, users=int(users), main_sum=_number(obj["main_sum"], path, "main_sum"), **extra)


def parse_analysis(raw: Any, path: str = "") -> AnalysisInput:
    """One analysis object; unknown settings are rejected so that typos do not pass silently."""
    obj = _object(raw, path)
    unknown = sorted(set(obj) - ANALYSIS_KEYS)
    if unknown:
        raise InputError(_join(path, unknown[0]), "is not a known setting")
    if "metric" not in obj:
        raise InputError(_join(path, "metric"), "is required")
    metric: MetricType = _choice(obj["metric"], METRIC_TYPES, _join(path, "metric"))  # type: ignore[assignment]
    difference: DifferenceType = _choice(  # type: ignore[assignment]
        obj.get("difference_type", "relative"), DIFFERENCE_TYPES, _join(path, "difference_type")
    )
    if "variations" not in obj:
        raise InputError(_join(path, "variations"), "is required")
    variations_raw = _list(obj["variations"], _join(path, "variations"))
    variations_path = _join(path, "variations")
    variations = tuple(parse_variation(v, _join(variations_path, i)) for i, v in enumerate(variations_raw))
    engine: Engine = _choice(obj.get("engine", "frequentist"), ENGINES, _join(path, "engine"))  # type: ignore[assignment]
    prior_type: DifferenceType | None = None
    if obj.get("prior_type") is not None:
        prior_type = _choice(obj["prior_type"], DIFFERENCE_TYPES, _join(path, "prior_type"))  # type: ignore[assignment]
    weights: tuple[float, ...] | None = None
    if obj.get("weights") is not None:
        weights_path = _join(path, "weights")
        weights = tuple(_number(w, weights_path, i) for i, w in enumerate(_list(obj["weights"], weights_path)))
    return AnalysisInput(
        metric=metric,
        variations=variations,
        alpha=_number(obj.get("alpha", DEFAULT_ALPHA), path, "alpha"),
        difference_type=difference,
        sequential=_boolean(obj.get("sequential", False), _join(path, "sequential")),
        sequential_tuning_parameter=_number(
            obj.get("sequential_tuning_parameter", DEFAULT_SEQUENTIAL_TUNING_PARAMETER),
            path,
            "sequential_tuning_parameter",
        ),
        cuped=_boolean(obj.get("cuped", False), _join(path, "cuped")),
        weights=weights,
        engine=engine,
        prior_mean=None if obj.get("prior_mean") is None else _number(obj["prior_mean"], path, "prior_mean"),
        prior_stddev=None if obj.get("prior_stddev") is None else _number(obj["prior_stddev"], path, "prior_stddev"),
        prior_type=prior_type,
    )


class Request(NamedTuple):
    """A decoded request: the analysis records, the correction and the top-level shape.

    shape is "object" (one analysis), "list" (a list of them) or "family" (an object with
    "analyses" and optionally "correction"). Records are checked when analysed.
    """

    records: list[Any]
    correction: CorrectionMethod | None
    shape: str


def parse_request(raw: Any) -> Request:
    """Tell the accepted top-level shapes apart."""
    if isinstance(raw, list):
        return Request(raw, None, "list")
    obj = _object(raw, "")
    if "analyses" not in obj:
        return Request([obj], None, "object")
    unknown = sorted(set(obj) - {"analyses", "correction"})
    if unknown:
        raise InputError(unknown[0], "is not a known key next to 'analyses'")
    correction: CorrectionMethod | None = None
    if obj.get("correction") is not None:
        correction = _choice(obj["correction"], CORRECTION_METHODS, "correction")  # type: ignore[assignment]
    return Request(list(_list(obj["analyses"], "analyses")), correction, "family")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def comparison_to_dict(c: Comparison, with_adjusted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variation": c.variation,
        "difference_type": c.difference_type,
        "estimate": _num(c.estimate),
        "ci_low": _num(c.ci_low),
        "ci_high": _num(c.ci_high),
        "p_value": _num(c.p_value),
        "chance_to_win": _num(c.chance_to_win),
        "cuped_applied": c.cuped_applied,
        "variance_reduction": _num(c.variance_reduction),
        "sequential": c.sequential,
        "error": c.error,
    }
    if c.engine == "bayesian":
        out["risk"] = None if c.risk is None else [_num(c.risk[0]), _num(c.risk[1])]
    if with_adjusted:
        out["p_value_adjusted"] = _num(c.p_value_adjusted)
    return out


def result_to_dict(result: AnalysisResult, with_adjusted: bool = False) -> dict[str, Any]:
    """The documented output object; NaN never leaks out, undefined numbers are None."""
    return {
        "srm_p_value": _num(result.srm_p_value),
        "srm_warning": result.srm_warning,
        "variations": [
            {"name": v.name, "users": v.users, "mean": _num(v.mean), "stddev": _num(v.stddev)}
            for v in result.variations
        ],
        "comparisons": [comparison_to_dict(c, with_adjusted) for c in result.comparisons],
    }
