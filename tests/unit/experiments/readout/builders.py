"""Readout inputs built from a few numbers: per-variation sums of binomial and mean metrics,
overall and per slice value, the way the readout job sums its SQL rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import stats
from experiments.readout import (
    AnalysisSettings,
    GroupSums,
    Look,
    MetricDescription,
    ReadoutInput,
    ReadoutWarning,
    SliceSums,
    VariationSpec,
)

END = datetime(2026, 3, 1, 12, tzinfo=UTC)


def conversion(name: str, users: int, rate: float, *, pre_rate: float | None = None) -> stats.VariationData:
    """A 0/1 metric; with `pre_rate`, the pre-exposure covariate CUPED adjusts with."""
    y = round(users * rate)
    if pre_rate is None:
        return stats.VariationData(name=name, users=users, main_sum=y, main_sum_squares=y)
    x = round(users * pre_rate)
    both = min(x, y) * 0.8
    return stats.VariationData(name=name, users=users, main_sum=y, main_sum_squares=y, covariate_sum=x,
                               covariate_sum_squares=x, main_covariate_sum_product=both)


def mean(name: str, users: int, mu: float, sd: float, *, pre_mu: float | None = None) -> stats.VariationData:
    main = {"main_sum": users * mu, "main_sum_squares": users * (sd * sd + mu * mu)}
    if pre_mu is None:
        return stats.VariationData(name=name, users=users, **main)
    return stats.VariationData(name=name, users=users, covariate_sum=users * pre_mu,
                               covariate_sum_squares=users * (sd * sd + pre_mu * pre_mu),
                               main_covariate_sum_product=users * (mu * pre_mu + 0.6 * sd * sd), **main)


VARIATIONS = (VariationSpec("control", "Control", 0.5), VariationSpec("treatment", "Treatment", 0.5))
METRICS = (
    MetricDescription("buy", "Buy", "conversion", "primary", "higher"),
    MetricDescription("revenue", "Revenue", "mean", "secondary", "higher", cap=100.0),
    MetricDescription("errors", "Errors", "count", "guardrail", "lower"),
)


def sums(users: Sequence[int], *, lift: float = 0.1, errors_lift: float = 0.0, cuped: bool = True) -> GroupSums:
    """Sums of METRICS for one group of units, one entry per variation."""
    per_metric = []
    for i, spec in enumerate(METRICS):
        arms = []
        for v, n in enumerate(users):
            name = VARIATIONS[v].key
            if spec.kind == "conversion":
                arms.append(conversion(name, n, 0.1 * (1 + lift * v), pre_rate=0.1 if cuped else None))
            else:
                base = 8.0 if i == 1 else 0.3
                effect = lift if i == 1 else errors_lift
                arms.append(mean(name, n, base * (1 + effect * v), base, pre_mu=base if cuped else None))
        per_metric.append(tuple(arms))
    return GroupSums(units=tuple(users), metrics=tuple(per_metric))


def readout_input(*, users: Sequence[int] = (5000, 5000), settings: AnalysisSettings | None = None,
                  slices: Sequence[tuple[str, str, Sequence[int]]] = (), multiple: int = 0, lift: float = 0.1,
                  errors_lift: float = 0.0, warnings: Sequence[ReadoutWarning] = ()) -> ReadoutInput:
    settings = settings or AnalysisSettings(sequential=True, cuped=True, min_sample_per_arm=100,
                                            weights=(0.5, 0.5))
    return ReadoutInput(
        variations=VARIATIONS[:len(users)],
        metrics=METRICS,
        settings=settings,
        overall=sums(users, lift=lift, errors_lift=errors_lift, cuped=settings.cuped),
        look=Look(analysis_end=END, phase=1),
        slices=tuple(SliceSums(a, v, sums(u, lift=lift, errors_lift=errors_lift, cuped=settings.cuped))
                     for a, v, u in slices),
        multiple_exposure_units=multiple,
        warnings=tuple(warnings),
    )


def with_settings(data: ReadoutInput, **changes: object) -> ReadoutInput:
    return replace(data, settings=replace(data.settings, **changes))  # type: ignore[arg-type]
