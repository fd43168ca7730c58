"""The input checks of a guarded rollout, each with its documented limit (docs/releases.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from base.checks import add_error, is_number
from base.keys import Errors
from experiments.models import Metric
from stats.guarded import compared_steps, rollout_alphas

MAX_STEPS = 10
MIN_STEP_SECONDS = 1
MAX_STEP_SECONDS = 90 * 24 * 3600
MAX_GUARDRAILS = 5
MIN_ALPHA, MAX_ALPHA = 0.001, 0.2
# The smallest level a single test may get (the experiments' own lower limit for alpha).
MIN_TEST_ALPHA = 0.001
MIN_UNITS, MAX_UNITS = 10, 1_000_000
MAX_THRESHOLD = 1.0
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True, slots=True)
class Step:
    percent: float
    min_duration_seconds: int

    def document(self) -> dict[str, Any]:
        return {"percent": self.percent, "min_duration_seconds": self.min_duration_seconds}


@dataclass(frozen=True, slots=True)
class Guardrail:
    metric: str
    direction: str
    threshold: float | None

    def document(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "threshold": self.threshold}


def check_steps(raw: Any, errors: Errors) -> list[Step]:
    """2 to 10 steps `{percent, min_duration_seconds}`: percentages rising above 0 to exactly 100
    at the last step; each step below 100% lasts at least 1 s and at most 90 days."""
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_STEPS:
        add_error(errors, "steps", f"Give 2 to {MAX_STEPS} steps, each {{percent, min_duration_seconds}}.")
        return []
    steps: list[Step] = []
    previous = 0.0
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            add_error(errors, f"steps[{i}]", "Each step is {percent, min_duration_seconds}.")
            continue
        percent = item.get("percent")
        last = i == len(raw) - 1
        if not is_number(percent) or not 0 < percent <= 100:
            add_error(errors, f"steps[{i}].percent", "A percentage above 0 and at most 100.")
            continue
        if percent <= previous:
            add_error(errors, f"steps[{i}].percent", "Each step serves more units than the one before.")
        if last and percent != 100:
            add_error(errors, f"steps[{i}].percent", "The last step is 100%: where the rollout ends.")
        if not last and percent >= 100:
            add_error(errors, f"steps[{i}].percent", "Only the last step is 100%.")
        duration = item.get("min_duration_seconds", 0 if last else None)
        if (not isinstance(duration, int) or isinstance(duration, bool)
                or not (last or MIN_STEP_SECONDS <= duration <= MAX_STEP_SECONDS)):
            add_error(errors, f"steps[{i}].min_duration_seconds",
                      f"Whole seconds from {MIN_STEP_SECONDS} to {MAX_STEP_SECONDS} (90 days).")
            duration = 0
        previous = float(percent)
        steps.append(Step(percent=float(percent), min_duration_seconds=int(duration)))
    unknown = [k for item in raw if isinstance(item, Mapping) for k in item if k not in ("percent",
                                                                                        "min_duration_seconds")]
    if unknown:
        add_error(errors, "steps", f"Unknown step fields: {', '.join(sorted(set(map(str, unknown))))}.")
    return steps


def check_guardrails(raw: Any, errors: Errors) -> list[Guardrail]:
    """1 to 5 catalog metrics `{metric, direction?, threshold?}`, each once, not archived. The
    direction (what is good: higher or lower) defaults to the catalog's; the threshold is the
    relative change tolerated before harm counts (0 to 1, e.g. 0.02), none by default."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_GUARDRAILS:
        add_error(errors, "guardrails", f"Give 1 to {MAX_GUARDRAILS} guardrails, each {{metric, direction, "
                                        "threshold}}.")
        return []
    keys = [item.get("metric") for item in raw if isinstance(item, Mapping)]
    catalog = {m.key: m for m in Metric.objects.filter(key__in=[k for k in keys if isinstance(k, str)])}
    found: list[Guardrail] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), str):
            add_error(errors, f"guardrails[{i}].metric", "Name a metric of the catalog.")
            continue
        metric = catalog.get(item["metric"])
        if metric is None:
            add_error(errors, f"guardrails[{i}].metric", f"Unknown metric '{item['metric']}'.")
            continue
        if metric.archived_at is not None:
            add_error(errors, f"guardrails[{i}].metric", f"Metric '{metric.key}' is archived.")
        if metric.key in seen:
            add_error(errors, f"guardrails[{i}].metric", f"Metric '{metric.key}' appears twice.")
        seen.add(metric.key)
        direction = item.get("direction") or metric.direction
        if direction not in DIRECTIONS:
            add_error(errors, f"guardrails[{i}].direction", "Say what is good for the metric: higher or lower.")
        threshold = item.get("threshold")
        if threshold is not None and (not is_number(threshold) or not 0 <= threshold <= MAX_THRESHOLD):
            add_error(errors, f"guardrails[{i}].threshold", "A relative change from 0 to 1 (0.02 is 2%), or null.")
            threshold = None
        unknown = sorted(set(map(str, item)) - {"metric", "direction", "threshold"})
        if unknown:
            add_error(errors, f"guardrails[{i}]", f"Unknown guardrail fields: {', '.join(unknown)}.")
        found.append(Guardrail(metric=metric.key, direction=str(direction),
                               threshold=None if threshold is None else float(threshold)))
    return found


def check_settings(*, on_harm: Any, alpha: Any, min_units: Any, steps: list[Step], guardrails: list[Guardrail],
                   errors: Errors) -> None:
    if on_harm not in ("rollback", "pause"):
        add_error(errors, "on_harm", "Use 'rollback' (to 0%, the flag serves its default) or 'pause'.")
    if not is_number(alpha) or not MIN_ALPHA <= alpha <= MAX_ALPHA:
        add_error(errors, "alpha", f"The false-alarm budget of the whole rollout: from {MIN_ALPHA} to {MAX_ALPHA}.")
    elif steps and guardrails and not errors:
        level = rollout_alphas(float(alpha), steps=max(1, compared_steps([s.percent for s in steps])),
                               guardrails=len(guardrails)).guardrail
        if level < MIN_TEST_ALPHA:
            add_error(errors, "alpha", f"Split over {len(guardrails)} guardrails and the steps below 100%, each test "
                                       f"gets {level:.2g}, below {MIN_TEST_ALPHA}: use fewer steps or guardrails, "
                                       "or a larger alpha.")
    if not isinstance(min_units, int) or isinstance(min_units, bool) or not MIN_UNITS <= min_units <= MAX_UNITS:
        add_error(errors, "min_units", f"Units on each side before a guardrail may stop the rollout: from "
                                       f"{MIN_UNITS} to {MAX_UNITS}.")
