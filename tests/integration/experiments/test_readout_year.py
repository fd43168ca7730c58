"""A year of history: units exposed over 14 months, their purchases loaded with
`manage.py import_events`, read out with a 365-day window and LTV at days 30, 90 and 365 on
real PostgreSQL; every sufficient statistic equals an independent recomputation in pandas
(immature units left out of the LTV metrics, their percentile cap over the mature units)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.ingestion import MAX_HISTORY
from experiments.models import ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import backdate
from tests.integration.experiments.test_readout_correctness import _assert_statistics

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

N_UNITS = 600
LOOKBACK_DAYS = 14
YEAR_METRICS: dict[str, dict[str, Any]] = {
    "revenue-year": {"kind": "mean", "event_name": "purchase", "window_hours": 24 * 365},
    "ltv-d30": {"kind": "ltv", "event_name": "purchase", "ltv_day": 30},
    "ltv-d90": {"kind": "ltv", "event_name": "purchase", "ltv_day": 90, "capping": "percentile",
                "capping_value": 0.9},
    "ltv-d365": {"kind": "ltv", "event_name": "purchase", "ltv_day": 365},
}


def _history(now: datetime, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures spread over the last 430 days; purchases before, inside and after a year."""
    rng = np.random.default_rng(seed)
    units, events = [], []
    for i in range(N_UNITS):
        first = (now - timedelta(days=float(rng.uniform(1, 430)))).replace(microsecond=0)
        arm = int(rng.integers(0, 2))
        units.append({"unit": f"y-{i}", "variation": arm, "first_seen": first})
        for j in range(int(rng.poisson(6))):
            offset = timedelta(days=float(rng.uniform(-LOOKBACK_DAYS - 5, 420)))
            ts = (first + offset).replace(microsecond=0)
            if ts > now or ts < now - MAX_HISTORY + timedelta(days=1):
                continue
            events.append({"id": f"y-{i}-{j}", "unit": f"y-{i}", "ts": ts,
                           "value": round(float(rng.exponential(25.0 if arm else 22.0)), 2)})
        # Exactly on the edges: at +30 days (outside LTV at day 30, inside at day 90).
        if first + timedelta(days=30) <= now:
            events.append({"id": f"y-{i}-edge", "unit": f"y-{i}", "ts": first + timedelta(days=30), "value": 7.0})
    return pd.DataFrame(units), pd.DataFrame(events)


def _expected(units: pd.DataFrame, events: pd.DataFrame, metric: dict[str, Any], analysis_end: datetime
              ) -> list[dict[str, float]]:
    """Per arm: users, Σy, Σy², Σx, Σx², Σxy, recomputed from the rows with pandas."""
    joined = events.merge(units, on="unit")
    days = metric.get("ltv_day")
    after = timedelta(hours=metric["window_hours"]) if days is None else timedelta(days=days)
    post = joined[(joined.ts >= joined.first_seen) & (joined.ts < joined.first_seen + after)]
    pre = joined[(joined.ts >= joined.first_seen - timedelta(days=LOOKBACK_DAYS)) & (joined.ts < joined.first_seen)]
    frame = units.set_index("unit")
    frame["y"] = post.groupby("unit").value.sum().reindex(frame.index, fill_value=0.0)
    frame["x"] = pre.groupby("unit").value.sum().reindex(frame.index, fill_value=0.0)
    if days is not None:  # LTV: only units exposed at least N days before the end
        frame = frame[frame.first_seen <= analysis_end - timedelta(days=days)]
    if metric.get("capping") == "percentile":
        nonzero = frame.y[frame.y != 0].to_numpy()
        cap = float(np.percentile(nonzero, 100 * metric["capping_value"]))
        frame["y"], frame["x"] = frame.y.clip(upper=cap), frame.x.clip(upper=cap)
    out = []
    for arm in (0, 1):
        f = frame[frame.variation == arm]
        out.append({"users": float(len(f)), "main_sum": float(f.y.sum()), "main_sum_squares": float((f.y ** 2).sum()),
                    "covariate_sum": float(f.x.sum()), "covariate_sum_squares": float((f.x ** 2).sum()),
                    "main_covariate_sum_product": float((f.x * f.y).sum())})
    return out


def _csv(events: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "unit_id", "timestamp", "name", "value"])
    for row in events.itertuples():
        writer.writerow([row.id, row.unit, row.ts.isoformat(), "purchase", row.value])
    return out.getvalue()


def test_readout__a_year_of_history__365_day_window_and_ltv_equal_pandas(
    actor: Actor, checkout_flag: Flag, production: Environment, tmp_path: Path,
) -> None:
    for key, body in YEAR_METRICS.items():
        services.metric_create(actor=actor, key=key, **body)
    experiment = services.experiment_create(
        actor=actor, key="year-test", flag=checkout_flag, environment=production, cuped_lookback_days=LOOKBACK_DAYS,
        variations=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        metrics=[{"metric": k, "role": "primary" if k == "ltv-d365" else "secondary"} for k in YEAR_METRICS])
    experiment = services.experiment_start(actor=actor, experiment=experiment)
    backdate(experiment, days=440)
    now = datetime.now(tz=UTC)
    units, events = _history(now, seed=365)
    # Exposures older than the API's 90 days, as a year-long experiment collected them.
    exposures = [{"id": f"{u.unit}-x", "type": "exposure", "unit_id": u.unit, "experiment": experiment.key,
                  "variation": ("control", "treatment")[u.variation], "timestamp": u.first_seen.isoformat()}
                 for u in units.itertuples()]
    for start in range(0, len(exposures), 1000):
        result = services.events_ingest(environment=production, items=exposures[start:start + 1000],
                                        max_past=MAX_HISTORY)
        assert not result.rejected, result.rejected[:3]
    path = tmp_path / "purchases.csv"
    path.write_text(_csv(events))
    out = io.StringIO()
    call_command("import_events", str(path), environment=production.key, stdout=out)
    assert f"{len(events)} accepted, 0 duplicate, 0 rejected" in out.getvalue()
    assert (events.ts < now - timedelta(days=300)).sum() > 100  # history well beyond the API's 90 days

    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.analysis_end is not None
    inputs = snapshot.inputs["metrics"]
    for key, metric in YEAR_METRICS.items():
        _assert_statistics(inputs[key]["overall"], _expected(units, events, metric, snapshot.analysis_end), key)
    # Mature units: everyone for the window metric, fewer as N grows; the pages show the count.
    users = {key: sum(arm["users"] for arm in inputs[key]["overall"]) for key in YEAR_METRICS}
    assert users["revenue-year"] == N_UNITS > users["ltv-d30"] > users["ltv-d90"] > users["ltv-d365"] > 0
    by_key = {m["key"]: m for m in snapshot.metrics}
    assert by_key["ltv-d365"]["day"] == 365 and "day" not in by_key["revenue-year"]
    assert sum(a["users"] for a in by_key["ltv-d90"]["variations"]) == users["ltv-d90"]
    assert snapshot.inputs["caps"]["ltv-d90"] is not None
