"""What the SDK edge reports when `/metrics` is scraped: how fresh this process's snapshots are
and which configurations fail to compile (`config.metrics_http` runs it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.metrics import EVALUATIONS
from flags.engine.types import Evaluation, Reason
from serving.snapshots import store

__all__ = ["SnapshotCollector", "count_evaluations"]


# The counter of each (endpoint, reason), looked up once: `labels()` costs more than the increment.
_children: dict[tuple[str, Reason], Any] = {}
_reason = attrgetter("reason")


def count_evaluations(endpoint: str, evaluations: Iterable[Evaluation]) -> None:
    """Count evaluations by reason (one increment per reason, not per flag)."""
    for reason, count in Counter(map(_reason, evaluations)).items():
        child = _children.get((endpoint, reason))
        if child is None:
            child = _children[(endpoint, reason)] = EVALUATIONS.labels(endpoint, reason.value)
        child.inc(count)


class SnapshotCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = store.status()
        age = GaugeMetricFamily(
            "splitbase_snapshot_age_seconds",
            "Seconds since the serving process last confirmed its snapshots with the database.")
        age.add_metric([], store.silent_for() if status["state"] == "ok" else status.get("degraded_for_seconds", 0.0))
        yield age
        versions = GaugeMetricFamily("splitbase_snapshot_config_version",
                                     "Configuration version served, by environment.", labels=["environment"])
        for environment, version in sorted(status["environments"].items()):
            versions.add_metric([environment], version)
        yield versions
        failing = GaugeMetricFamily("splitbase_snapshot_compile_failing",
                                    "1 for an environment whose newest configuration does not compile.",
                                    labels=["environment"])
        for environment in sorted(status.get("compile_failures", {})):
            failing.add_metric([environment], 1)
        yield failing
