"""What the review gate (`base.reviews`) needs to know about experiments: how a change request
names one, and when a change of it changes what its environment serves (starting, stopping,
ramping, or changing a running one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from base.models import Environment
from base.reviews import ref_kind
from config.errors import NotFound
from experiments.models import Experiment
from flags.models import Rule
from traffic.models import Holdout

__all__ = ["experiment_target", "holdout_target", "launched_target", "of_experiment", "of_holdout_rules", "of_launch",
           "of_running_experiment", "ramp_schedule_steps"]


def _experiment(key: str) -> Experiment:
    found = Experiment.objects.select_related("environment", "flag").filter(key=key).first()
    if found is None:
        raise NotFound(f"Experiment '{key}' no longer exists.")
    return found


ref_kind("experiment", encode=lambda experiment: experiment.key, decode=_experiment)


def _holdout(key: str) -> Holdout:
    found = Holdout.objects.filter(key=key).first()
    if found is None:
        raise NotFound(f"Holdout '{key}' no longer exists.")
    return found


ref_kind("holdout", encode=lambda holdout: holdout.key, decode=_holdout)


def of_holdout_rules(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    """Where ending a holdout changes what is served: the environments whose flags keep its
    units on an earlier value (its force rules)."""
    ids = Rule.objects.filter(kind=Rule.Kind.FORCE, holdout=kwargs["holdout"].key).values_list(
        "state__environment_id", flat=True)
    return list(Environment.objects.filter(pk__in=ids).order_by("key"))


def holdout_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "holdout", kwargs["holdout"].key


def of_experiment(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return [kwargs["experiment"].environment]


def of_running_experiment(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    """A draft or a stopped experiment serves nothing: only a running one's changes are reviewed."""
    experiment = kwargs["experiment"]
    return [experiment.environment] if experiment.status == Experiment.Status.RUNNING else []


def of_launch(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return [kwargs["environment"]] if kwargs.get("start") or kwargs.get("new_flag_key") else []


def experiment_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "experiment", kwargs["experiment"].key


def launched_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "experiment", str(kwargs["key"])


def ramp_schedule_steps(items: Any) -> list[tuple[float, datetime]]:
    """A ramp schedule's `(coverage, apply_at)` steps from their JSON."""
    return [(float(coverage), datetime.fromisoformat(at)) for coverage, at in items]
