"""What a readout is computed from: sums per variation, the experiment's design, and the look."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import stats
from experiments.readout.settings import AnalysisSettings
from experiments.readout.types import ReadoutWarning, Rollup


@dataclass(frozen=True, slots=True)
class VariationSpec:
    """One variation as configured; the first is the control."""

    key: str
    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class MetricDescription:
    """One metric of the experiment: what it is, its role here, and its cap at this look."""

    key: str
    name: str
    kind: str  # conversion, mean, count, ratio, retention or funnel
    role: str  # primary, secondary or guardrail
    direction: str  # higher or lower is better
    cap: float | None = None
    # Retention and LTV: the day N (only units exposed long enough before the analysis end count).
    day: int | None = None


@dataclass(frozen=True, slots=True)
class GroupSums:
    """Sufficient statistics of one group of units (everyone, or one slice value)."""

    units: tuple[int, ...]  # per variation
    metrics: tuple[tuple[stats.VariationData, ...], ...]  # per metric, then per variation


@dataclass(frozen=True, slots=True)
class SliceSums:
    attribute: str
    value: str
    sums: GroupSums


@dataclass(frozen=True, slots=True)
class Look:
    """When the data was cut, and for which phase."""

    analysis_end: datetime
    phase: int
    caps: Mapping[str, float | None] = field(default_factory=dict)  # percentile caps by metric key
    rollup: Rollup | None = None


@dataclass(frozen=True, slots=True)
class ReadoutInput:
    """Everything `readout_compute` needs; `metrics` and every `GroupSums.metrics` align."""

    variations: tuple[VariationSpec, ...]
    metrics: tuple[MetricDescription, ...]
    settings: AnalysisSettings
    overall: GroupSums
    look: Look
    slices: tuple[SliceSums, ...] = ()
    # Units left out because they saw more than one variation.
    multiple_exposure_units: int = 0
    # Warnings the job knows of that the numbers cannot show.
    warnings: tuple[ReadoutWarning, ...] = ()
