"""Traffic of a guarded rollout: units evaluated with the environment's compiled snapshot, as an
SDK would, sending an exposure for the side each fell on and purchase events at a rate per side."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.utils import timezone

from base.models import Environment
from experiments import ingestion
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot


def send_traffic(environment: Environment, *, units: int, prefix: str, rates: tuple[float, float], seed: int,
                 flag: str = "checkout") -> dict[str, int]:
    """`units` units see the flag; each side's units buy with its rate (control, rollout).
    Returns how many units fell on each variation."""
    ingestion._routes_cache.clear()
    snapshot = environment_snapshot(environment=environment)
    rng = np.random.default_rng(seed)
    seen = timezone.now().isoformat()
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for i in range(units):
        unit = f"{prefix}-{i}"
        result = evaluate(snapshot, flag, {"id": unit})
        for assignment in (*result.passthrough, result.experiment):
            if assignment is None or not assignment.in_experiment:
                continue
            side = 0 if assignment.passthrough else 1
            counts[assignment.variation_key] = counts.get(assignment.variation_key, 0) + 1
            items.append({"id": f"{unit}-x", "type": "exposure", "unit_id": unit, "experiment": assignment.key,
                          "variation": assignment.variation_key, "timestamp": seen})
            if rng.random() < rates[side]:
                items.append({"id": f"{unit}-p", "type": "event", "unit_id": unit, "name": "purchase",
                              "timestamp": timezone.now().isoformat()})
    for start in range(0, len(items), 1000):
        result_ = ingestion.events_ingest(environment=environment, items=items[start:start + 1000])
        assert not result_.rejected, result_.rejected[:3]
    return counts
