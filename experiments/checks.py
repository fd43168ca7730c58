"""Checks of what an experiment write is given, before anything is written: variations against
the flag's variants, metric links against the catalog, the analysis and assignment settings,
layer, holdout and data source keys, and data sources themselves.

Each check adds its messages to an errors dict (`{field: [messages]}`), so a write reports
every bad field at once (`base.checks.raise_if`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from base.checks import add_error, is_number
from base.keys import Errors
from experiments.models import DataSource, Experiment, ExperimentMetric, Metric
from experiments.validation import tags_errors, target_mde_errors
from experiments.warehouse import (
    ENGINES,
    EVENT_COLUMNS,
    EXPOSURE_COLUMNS,
    connection_errors,
    export_table_errors,
    query_check,
)
from flags.engine import validation
from flags.models import Flag, Segment
from traffic.assignment.allocation import range_errors
from traffic.models import Holdout, Layer

__all__ = ["MAX_RAMP_STEPS", "MAX_SLICE_ATTRIBUTES", "MAX_TIMEOUT_SECONDS", "RAMP_HORIZON", "WEIGHT_TOLERANCE",
           "check_data_source", "check_metric_links", "check_ramp", "check_ramp_steps", "check_settings",
           "check_variations", "resolve_key"]

WEIGHT_TOLERANCE = 1e-6
MAX_TIMEOUT_SECONDS = 3600
MAX_SLICE_ATTRIBUTES = 5
# A ramp schedule has at most this many steps, the last at most this far ahead.
MAX_RAMP_STEPS = 10
RAMP_HORIZON = timedelta(days=365)


def check_variations(variations: Any, flag: Flag, errors: Errors) -> None:
    """`{key, name, weight}` items naming variants of `flag`, each once, weights in [0, 1]."""
    if not isinstance(variations, list):
        add_error(errors, "variations", "Give a list of variations: {key, name, weight}.")
        return
    variant_keys = set(flag.variants.values_list("key", flat=True))
    seen: set[str] = set()
    for i, v in enumerate(variations):
        if not isinstance(v, Mapping) or not isinstance(v.get("key"), str):
            add_error(errors, f"variations[{i}].key", "Each variation needs the key of a variant of the flag.")
            continue
        if v["key"] not in variant_keys:
            add_error(errors, f"variations[{i}].key", f"The flag '{flag.key}' has no variant '{v['key']}'.")
        if v["key"] in seen:
            add_error(errors, f"variations[{i}].key", f"Variation '{v['key']}' appears twice.")
        seen.add(v["key"])
        weight = v.get("weight")
        if not is_number(weight) or not 0 <= weight <= 1:
            add_error(errors, f"variations[{i}].weight", "The weight must be a number between 0 and 1.")


def check_metric_links(metrics: Any, errors: Errors) -> list[tuple[Metric, str]]:
    """`{metric, role}` items naming catalog metrics, each once; returns the valid links."""
    if not isinstance(metrics, list):
        add_error(errors, "metrics", "Give a list of {metric, role}.")
        return []
    keys = [m.get("metric") if isinstance(m, Mapping) else None for m in metrics]
    found = {m.key: m for m in Metric.objects.filter(key__in=[k for k in keys if isinstance(k, str)])}
    links: list[tuple[Metric, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(metrics):
        key = keys[i]
        role = item.get("role", ExperimentMetric.Role.SECONDARY) if isinstance(item, Mapping) else None
        metric = found.get(key) if isinstance(key, str) else None
        if metric is None:
            add_error(errors, f"metrics[{i}].metric", f"Unknown metric '{key}'.")
            continue
        if role not in ExperimentMetric.Role.values:
            add_error(errors, f"metrics[{i}].role", f"Use one of {', '.join(ExperimentMetric.Role.values)}.")
            continue
        if metric.key in seen:
            add_error(errors, f"metrics[{i}].metric", f"Metric '{metric.key}' appears twice.")
            continue
        seen.add(metric.key)
        links.append((metric, str(role)))
    return links


def check_settings(data: Mapping[str, Any], errors: Errors) -> None:
    """The assignment and analysis settings present in `data`, and the layer range."""
    if "coverage" in data and (not is_number(data["coverage"]) or not 0 <= data["coverage"] <= 1):
        add_error(errors, "coverage", "Coverage must be a number between 0 and 1.")
    if "condition" in data:
        errors.update(validation.check_condition(data["condition"] or {}))
    if "segments" in data:
        _check_segments(data["segments"], errors)
    if "hash_attribute" in data and (not isinstance(data["hash_attribute"], str) or not data["hash_attribute"]):
        add_error(errors, "hash_attribute", "Name the attribute units are hashed by (for example 'id').")
    if "alpha" in data and (not is_number(data["alpha"]) or not 0.001 <= data["alpha"] <= 0.5):
        add_error(errors, "alpha", "Alpha must be between 0.001 and 0.5.")
    if "difference_type" in data and data["difference_type"] not in Experiment.DifferenceType.values:
        add_error(errors, "difference_type", f"Use one of {', '.join(Experiment.DifferenceType.values)}.")
    if "correction" in data and data["correction"] not in Experiment.Correction.values:
        add_error(errors, "correction", f"Use one of {', '.join(Experiment.Correction.values)}.")
    if "sequential_tuning" in data and (not is_number(data["sequential_tuning"]) or data["sequential_tuning"] <= 0):
        add_error(errors, "sequential_tuning", "The tuning parameter must be a positive number of units.")
    _check_engine(data, errors)
    lookback = data.get("cuped_lookback_days", 14)
    if not isinstance(lookback, int) or isinstance(lookback, bool) or not 1 <= lookback <= 90:
        add_error(errors, "cuped_lookback_days", "The lookback must be 1 to 90 days.")
    minimum = data.get("min_sample_per_arm", 0)
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
        add_error(errors, "min_sample_per_arm", "Give a non-negative number of units.")
    if "slice_attributes" in data:
        attrs = data["slice_attributes"]
        if (not isinstance(attrs, list) or len(attrs) > MAX_SLICE_ATTRIBUTES
                or not all(isinstance(a, str) and 0 < len(a) <= 100 for a in attrs)
                or len(set(attrs)) != len(attrs)):
            add_error(errors, "slice_attributes", f"Give up to {MAX_SLICE_ATTRIBUTES} different attribute names.")
    if "target_mde" in data:
        for message in target_mde_errors(data["target_mde"]):
            add_error(errors, "target_mde", message)
    if "tags" in data:
        for message in tags_errors(data["tags"]):
            add_error(errors, "tags", message)
    start, end = data.get("range_start"), data.get("range_end")
    if data.get("layer") is not None:
        if not is_number(start) or not is_number(end):
            add_error(errors, "range_start",
                      "An experiment in a layer needs the range it owns: start and end in [0, 1].")
        else:
            for message in range_errors((float(start), float(end))):
                add_error(errors, "range_start", message)
            if end - start <= 0:
                add_error(errors, "range_end", "The range must not be empty.")


PRIOR_MEAN_LIMIT = 1.0
PRIOR_STDDEV_RANGE = (0.001, 10.0)


def _check_engine(data: Mapping[str, Any], errors: Errors) -> None:
    """The statistics engine and its prior, and what the Bayesian engine cannot be combined with.
    `data` holds the experiment's engine (the project's default for a new experiment)."""
    engine = data.get("stats_engine", Experiment.StatsEngine.FREQUENTIST)
    if engine not in Experiment.StatsEngine.values:
        add_error(errors, "stats_engine", f"Use one of {', '.join(Experiment.StatsEngine.values)}.")
        return
    if "prior_enabled" in data and not isinstance(data["prior_enabled"], bool):
        add_error(errors, "prior_enabled", "Give true or false.")
    if "prior_mean" in data and (not is_number(data["prior_mean"])
                                 or not -PRIOR_MEAN_LIMIT <= data["prior_mean"] <= PRIOR_MEAN_LIMIT):
        add_error(errors, "prior_mean",
                  f"The prior mean is a relative lift between {-PRIOR_MEAN_LIMIT:g} and {PRIOR_MEAN_LIMIT:g} "
                  "(0 = no change).")
    low, high = PRIOR_STDDEV_RANGE
    if "prior_stddev" in data and (not is_number(data["prior_stddev"]) or not low <= data["prior_stddev"] <= high):
        add_error(errors, "prior_stddev",
                  f"The prior standard deviation is a relative lift between {low:g} and {high:g} (0.3 is the usual).")
    if engine != Experiment.StatsEngine.BAYESIAN:
        return
    if data.get("sequential") is True:
        add_error(errors, "sequential",
                  "The Bayesian engine has no sequential test: turn sequential off, or choose the frequentist "
                  "engine (stats_engine) for an always-valid readout.")
    if data.get("correction") not in (None, "", Experiment.Correction.NONE):
        add_error(errors, "correction",
                  "The multiple-testing correction adjusts p-values, which the Bayesian engine does not give: "
                  "set it to none, or choose the frequentist engine (stats_engine).")


def _check_segments(segments: Any, errors: Errors) -> None:
    """Keys of saved segments, each once, all known."""
    if segments is None:
        return
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        add_error(errors, "segments", "Give a list of segment keys.")
        return
    if len(set(segments)) != len(segments):
        add_error(errors, "segments", "A segment is listed twice.")
    known = set(Segment.objects.filter(key__in=segments).values_list("key", flat=True))
    for key in segments:
        if key not in known:
            add_error(errors, "segments", f"Unknown segment '{key}'.")


def resolve_key(model: type[Layer] | type[Holdout] | type[DataSource], key: Any, field: str, errors: Errors) -> Any:
    """The layer or holdout a key names (None for no key); an unknown key is an error of `field`."""
    if key is None or key == "":
        return None
    if isinstance(key, model):
        return key
    found = model.objects.filter(key=key).first() if isinstance(key, str) else None
    if found is None:
        add_error(errors, field, f"Unknown {field.replace('_', ' ')} '{key}'.")
    return found


def check_data_source(data: Mapping[str, Any], errors: Errors) -> None:
    """A data source's engine, connection (no secrets, only environment variable names), the
    two queries (parsed in the engine's dialect: one SELECT returning the required columns),
    the name and the timeout."""
    engine = ENGINES.get(str(data.get("engine")))
    if engine is None:
        add_error(errors, "engine", f"Use one of {', '.join(ENGINES)}.")
    else:
        for message in connection_errors(engine, data.get("connection", {})):
            add_error(errors, "connection", message)
        for field, required in (("exposure_query", EXPOSURE_COLUMNS), ("event_query", EVENT_COLUMNS)):
            for message in query_check(data.get(field), engine.dialect, required).errors:
                add_error(errors, field, message)
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        add_error(errors, "name", "Give a name of at most 200 characters.")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 4000:
        add_error(errors, "description", "Give a description of at most 4000 characters.")
    table = data.get("exposure_export_table", "")
    if table:
        for message in export_table_errors(table, str(data.get("engine"))):
            add_error(errors, "exposure_export_table", message)
    timeout = data.get("timeout_seconds", 300)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        add_error(errors, "timeout_seconds", f"Give a timeout of 1 to {MAX_TIMEOUT_SECONDS} seconds.")


def _check_running(experiment: Experiment, errors: Errors) -> None:
    if experiment.status != Experiment.Status.RUNNING:
        add_error(errors, "status", f"Only a running experiment is ramped; this one is {experiment.status}.")


def _check_coverage(value: Any, field: str, errors: Errors) -> bool:
    if not is_number(value) or not 0.0 < float(value) <= 1.0:
        add_error(errors, field, "Coverage is a share above 0 and at most 1 (0.5 is 50%).")
        return False
    return True


def check_ramp(experiment: Experiment, coverage: Any, weights: Any, errors: Errors) -> None:
    """A change now: a new coverage in (0, 1] and/or one weight per variation summing to 1."""
    _check_running(experiment, errors)
    if coverage is None and weights is None:
        add_error(errors, "coverage", "Give the new coverage, the new weights, or both.")
    if coverage is not None:
        _check_coverage(coverage, "coverage", errors)
    if weights is not None:
        count = experiment.variations.count()
        if not isinstance(weights, Sequence) or isinstance(weights, str) or len(weights) != count:
            add_error(errors, "weights", f"Give one weight per variation ({count}), control first.")
        elif not all(is_number(w) and 0.0 <= float(w) <= 1.0 for w in weights):
            add_error(errors, "weights", "Each weight is a share from 0 to 1.")
        elif abs(sum(float(w) for w in weights) - 1.0) > WEIGHT_TOLERANCE:
            add_error(errors, "weights", "Weights must sum to 1.")


def check_ramp_steps(experiment: Experiment, steps: Sequence[tuple[Any, Any]], now: datetime,
                     errors: Errors) -> None:
    """A schedule: 1 to `MAX_RAMP_STEPS` `(coverage, apply_at)` steps, each raising the coverage
    above the one before (the first above today's) at a later time, all in the next year."""
    _check_running(experiment, errors)
    if not 1 <= len(steps) <= MAX_RAMP_STEPS:
        add_error(errors, "steps", f"Give 1 to {MAX_RAMP_STEPS} steps.")
        return
    previous_coverage, previous_at = float(experiment.coverage), now
    for i, (coverage, at) in enumerate(steps):
        if _check_coverage(coverage, f"steps[{i}].coverage", errors):
            if float(coverage) <= previous_coverage:
                what = "today's coverage" if i == 0 else "the step before"
                add_error(errors, f"steps[{i}].coverage",
                          f"Each step raises coverage above {what} ({previous_coverage * 100:.4g}%).")
            previous_coverage = max(previous_coverage, float(coverage))
        if not isinstance(at, datetime) or at.tzinfo is None:
            add_error(errors, f"steps[{i}].apply_at", "Give a date and time with its time zone.")
            continue
        if at <= previous_at:
            add_error(errors, f"steps[{i}].apply_at",
                      "Each step comes after " + ("now." if i == 0 else "the step before."))
        elif at > now + RAMP_HORIZON:
            add_error(errors, f"steps[{i}].apply_at", "Plan steps within the next 365 days.")
        previous_at = max(previous_at, at)


def check_holdout_active(holdout: Holdout | None, errors: Errors) -> None:
    """An experiment may only join a holdout that still holds."""
    if holdout is not None and holdout.ended_at is not None:
        add_error(errors, "holdout", f"Holdout '{holdout.key}' has ended; pick another or none.")
