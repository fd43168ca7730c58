"""What a readout asks of the engine that sums the data, and what it gets back (pure).

A `ReadoutSpec` names the metrics (`MetricSpec`), the CUPED lookback and the slice attributes;
an `AggregateRow` is one variation and combination of slice values with, per metric, the sums
`metric_columns` names. The built-in PostgreSQL path (`experiments.readout_sql`) and the
warehouse path (`experiments.warehouse`) both take the first and return the second, and
`experiments.mappers` turns the rows into the readout contract's input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import timedelta

__all__ = [
    "BINARY_KINDS",
    "CAPPABLE_KINDS",
    "COLUMNS",
    "KINDS",
    "AggregateRow",
    "MetricSpec",
    "ReadoutSpec",
    "metric_columns",
]

# Columns v0..v63 of a rollup row (experiments.models.ROLLUP_COLUMNS).
COLUMNS = 64
BINARY_KINDS = frozenset({"conversion", "retention", "funnel"})
CAPPABLE_KINDS = frozenset({"mean", "count", "ratio", "ltv"})
KINDS = frozenset({"conversion", "mean", "count", "ratio", "retention", "funnel", "ltv"})


@dataclass(frozen=True, slots=True)
class MetricSpec:
    key: str
    kind: str
    event: str = ""
    denominator: str = ""
    steps: tuple[str, ...] = ()
    retention_day: int | None = None
    window_hours: int | None = None
    capping: str = "none"
    capping_value: float | None = None
    # LTV at day N: the event's values summed over [first exposure, + N days).
    ltv_day: int | None = None

    def mature_after(self) -> timedelta | None:
        """How long after its first exposure a unit enters this metric's analysis: retention
        counts a unit once its day N has ended, LTV at day N once N days have passed; the
        other kinds count every unit at once (None)."""
        if self.kind == "retention":
            return timedelta(days=(self.retention_day or 0) + 1)
        if self.kind == "ltv":
            return timedelta(days=self.ltv_day or 0)
        return None

    def events(self) -> set[str]:
        names = set(self.steps) if self.kind == "funnel" else {self.event}
        if self.kind == "ratio":
            names.add(self.denominator)
        return names


@dataclass(frozen=True, slots=True)
class ReadoutSpec:
    phase_id: int
    metrics: tuple[MetricSpec, ...]
    # 0 turns the pre-exposure covariate off.
    lookback_hours: int = 0
    slice_attributes: tuple[str, ...] = ()

    def layout_hash(self) -> str:
        """Identifies what the rollup holds; capping is applied later and does not count."""
        # `ltv_day` is left out where empty, so that rollups built before the field existed stay valid.
        described = {
            "metrics": [
                {k: v for k, v in asdict(m).items()
                 if k not in ("capping", "capping_value") and not (k == "ltv_day" and v is None)}
                for m in self.metrics
            ],
            "lookback_hours": self.lookback_hours,
            "slices": list(self.slice_attributes),
            "columns": COLUMNS,
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AggregateRow:
    variation: int
    slices: tuple[str | None, ...]
    units: int
    # Per metric, the sums named by `metric_columns`.
    sums: tuple[tuple[float | None, ...], ...]


def metric_columns(kind: str) -> tuple[str, ...]:
    """Names of the sums an aggregate returns for a metric of this kind, in order."""
    columns = ["users", "main_sum", "main_sum_squares", "covariate_sum", "covariate_sum_squares",
               "main_covariate_sum_product"]
    if kind == "ratio":
        columns += ["denominator_sum", "denominator_sum_squares", "main_denominator_sum_product",
                    "denominator_pre_sum", "denominator_pre_sum_squares", "main_post_denominator_pre_sum_product",
                    "main_pre_denominator_post_sum_product", "main_pre_denominator_pre_sum_product",
                    "denominator_post_denominator_pre_sum_product"]
    return tuple(columns)
