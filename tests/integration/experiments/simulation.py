"""Simulated experiment traffic with a known effect, and an independent recomputation of the
readout's sufficient statistics from the same rows (plain Python and numpy, no SQL)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tests.integration.experiments.conftest import METRICS

CONVERSION = (0.10, 0.15)  # purchase within 72 h: a true relative lift of +50 %
REVENUE_SCALE = (20.0, 20.0)  # no effect on the order value
TRUE_LIFT = CONVERSION[1] / CONVERSION[0] - 1


@dataclass
class Unit:
    key: str
    variation: int
    first_seen: datetime
    attributes: dict[str, str]
    multiple: bool = False
    events: list[tuple[str, float, datetime]] = field(default_factory=list)


@dataclass
class Simulation:
    units: list[Unit]
    items: list[dict[str, Any]]


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def simulate(*, n_units: int, now: datetime, seed: int, experiment: str = "checkout-test") -> Simulation:
    """Units exposed over the last 20 days, with events before, inside and after their windows."""
    rng = np.random.default_rng(seed)
    units: list[Unit] = []
    items: list[dict[str, Any]] = []
    names = ("control", "treatment")

    def add_event(unit: Unit, name: str, ts: datetime, value: float = 1.0) -> None:
        ts = _ms(ts)
        if ts > now:
            return
        unit.events.append((name, value, ts))
        item: dict[str, Any] = {"id": f"{unit.key}-e{len(unit.events)}", "type": "event", "unit_id": unit.key,
                                "name": name}
        # Both timestamp forms of the API, and both the explicit and the default value.
        item["timestamp"] = int(ts.timestamp() * 1000) if len(unit.events) % 2 else ts.isoformat()
        if value != 1.0 or len(unit.events) % 3:
            item["value"] = value
        items.append(item)

    for i in range(n_units):
        v = int(rng.integers(0, 2))
        first = _ms(now - timedelta(hours=float(rng.uniform(1, 20 * 24))))
        unit = Unit(key=f"sim-{i}", variation=v, first_seen=first,
                    attributes={"country": str(rng.choice(["US", "DE", "FR"])),
                                "platform": str(rng.choice(["ios", "web"]))})
        units.append(unit)
        exposure = {"id": f"{unit.key}-x0", "type": "exposure", "unit_id": unit.key, "experiment": experiment,
                    "variation": names[v], "timestamp": first.isoformat(), "attributes": unit.attributes}
        items.append(exposure)
        if rng.random() < 0.15:  # the same variation again later: still one assignment
            later = _ms(min(now, first + timedelta(hours=float(rng.uniform(0, 48)))))
            items.append({**exposure, "id": f"{unit.key}-x1", "timestamp": later.isoformat(),
                          "attributes": {"country": "ZZ"}})
        if rng.random() < 0.03:  # seen in both variations: excluded from the analysis
            unit.multiple = True
            other = _ms(min(now, first + timedelta(hours=float(rng.uniform(0, 24)))))
            items.append({**exposure, "id": f"{unit.key}-x2", "variation": names[1 - v],
                          "timestamp": other.isoformat()})

        propensity = float(rng.gamma(2.0, 0.5))  # shared by the pre-period and the experiment: CUPED helps
        # Purchases: one in the 72 h window with the variation's probability, others only
        # outside it (before exposure: the CUPED covariate; after the window: revenue only).
        if rng.random() < CONVERSION[v]:
            add_event(unit, "purchase", first + timedelta(hours=float(rng.uniform(0, 72))),
                      round(float(rng.exponential(REVENUE_SCALE[v])) * propensity + 1, 2))
        for _ in range(int(rng.poisson(0.3 * propensity))):
            hours = float(rng.uniform(-20 * 24, 20 * 24 - 72))
            add_event(unit, "purchase", first + timedelta(hours=hours if hours < 0 else hours + 72),
                      round(float(rng.exponential(30.0)), 2))
        # Impressions and clicks, before and after exposure (no effect on CTR).
        for _ in range(int(rng.poisson(4 * propensity))):
            ts = first + timedelta(hours=float(rng.uniform(-16 * 24, 16 * 24)))
            add_event(unit, "impression", ts)
            if rng.random() < 0.3:
                add_event(unit, "click", ts + timedelta(seconds=float(rng.uniform(1, 60))))
        # Activity around day 7 and elsewhere, for retention.
        if rng.random() < 0.4:
            add_event(unit, "page_view", first + timedelta(hours=float(rng.uniform(7 * 24, 8 * 24))))
        for _ in range(int(rng.poisson(2))):
            add_event(unit, "page_view", first + timedelta(hours=float(rng.uniform(-10 * 24, 12 * 24))))
        # Funnel steps, sometimes out of order, sometimes outside the window.
        if rng.random() < 0.5:
            t1 = first + timedelta(hours=float(rng.uniform(-5, 70)))
            add_event(unit, "view_item", t1)
            if rng.random() < 0.6:
                t2 = t1 + timedelta(hours=float(rng.uniform(-3, 20)))
                add_event(unit, "add_to_cart", t2)
                if rng.random() < 0.6:
                    add_event(unit, "checkout", t2 + timedelta(hours=float(rng.uniform(-2, 10))))
        if rng.random() < 0.1:
            add_event(unit, "error", first + timedelta(hours=float(rng.uniform(0, 100))))
    # Events of units never exposed are ignored by the readout.
    for j in range(200):
        ts = _ms(now - timedelta(hours=float(rng.uniform(1, 300))))
        items.append({"id": f"stranger-{j}", "type": "event", "unit_id": f"stranger-{j % 40}", "name": "purchase",
                      "value": 5.0, "timestamp": ts.isoformat()})
    order = rng.permutation(len(items))  # arrival order is not time order
    return Simulation(units=units, items=[items[k] for k in order])


# Independent recomputation ---------------------------------------------------------------------


def _in(ts: datetime, start: datetime, end: datetime | None) -> bool:
    return ts >= start and (end is None or ts < end)


def unit_values(unit: Unit, metric: dict[str, Any], lookback: timedelta) -> tuple[float, float, float, float]:
    """(y, x, d, dx) of one unit: the metric over its window, over the lookback, and denominators."""
    fe = unit.first_seen
    kind = metric["kind"]
    window = metric.get("window_hours")
    end = fe + timedelta(hours=window) if window is not None else None
    pre_start = fe - lookback
    events = unit.events

    def named(name: str, start: datetime, stop: datetime | None) -> list[tuple[str, float, datetime]]:
        return [e for e in events if e[0] == name and _in(e[2], start, stop)]

    if kind == "funnel":
        steps = metric["funnel_steps"]
        reached: datetime | None = fe - timedelta(days=10_000)
        for step in steps:
            times = [e[2] for e in named(step, fe, end) if reached is not None and e[2] >= reached]
            reached = min(times) if times else None
        y = 1.0 if reached is not None else 0.0
        x = 1.0 if named(steps[-1], pre_start, fe) else 0.0
        return y, x, 0.0, 0.0
    if kind == "ltv":
        end = fe + timedelta(days=metric["ltv_day"])
    if kind == "retention":
        day = metric["retention_day"]
        hit = named(metric["event_name"], fe + timedelta(days=day), fe + timedelta(days=day + 1))
        return (1.0 if hit else 0.0), (1.0 if named(metric["event_name"], pre_start, fe) else 0.0), 0.0, 0.0
    post = named(metric["event_name"], fe, end)
    pre = named(metric["event_name"], pre_start, fe)
    if kind == "conversion":
        return (1.0 if post else 0.0), (1.0 if pre else 0.0), 0.0, 0.0
    if kind == "count":
        return float(len(post)), float(len(pre)), 0.0, 0.0
    y, x = sum(e[1] for e in post), sum(e[1] for e in pre)
    if kind == "ratio":
        d = sum(e[1] for e in named(metric["denominator_event"], fe, end))
        dx = sum(e[1] for e in named(metric["denominator_event"], pre_start, fe))
        return y, x, d, dx
    return y, x, 0.0, 0.0


def expected_statistics(
    sim: Simulation, metric_key: str, *, lookback: timedelta, analysis_end: datetime,
    keep: Any = None,
) -> tuple[list[dict[str, float]], float | None]:
    """Per variation, the sufficient statistics the readout should store, and the cap used."""
    metric = METRICS[metric_key]
    mature = analysis_end
    if metric["kind"] == "retention":
        mature = analysis_end - timedelta(days=metric["retention_day"] + 1)
    elif metric["kind"] == "ltv":
        mature = analysis_end - timedelta(days=metric["ltv_day"])
    units = [u for u in sim.units if not u.multiple and (keep is None or keep(u))]
    values = np.array([unit_values(u, metric, lookback) for u in units]).reshape(-1, 4)
    arms = np.array([u.variation for u in units])
    y, x, d, dx = values.T
    cap: float | None = None
    if metric.get("capping") == "percentile":
        # LTV: over the units the analysis counts (exposed at least N days before its end).
        every = np.array([unit_values(u, metric, lookback)[0] for u in sim.units
                          if not u.multiple and (metric["kind"] != "ltv" or u.first_seen <= mature)])
        # numpy's default percentile interpolates linearly, as PostgreSQL's percentile_cont does.
        cap = float(np.percentile(every[every != 0], 100 * metric["capping_value"]))
    elif metric.get("capping") == "absolute":
        cap = float(metric["capping_value"])
    if cap is not None:
        y, x = np.minimum(y, cap), np.minimum(x, cap)
    counted = np.array([u.first_seen <= mature for u in units], dtype=bool)
    out = []
    for v in (0, 1):
        m = (arms == v) & counted
        stats = {
            "users": float(m.sum()), "main_sum": y[m].sum(), "main_sum_squares": (y[m] ** 2).sum(),
            "covariate_sum": x[m].sum(), "covariate_sum_squares": (x[m] ** 2).sum(),
            "main_covariate_sum_product": (x[m] * y[m]).sum(),
        }
        if metric["kind"] == "ratio":
            stats.update({
                "denominator_sum": d[m].sum(), "denominator_sum_squares": (d[m] ** 2).sum(),
                "main_denominator_sum_product": (y[m] * d[m]).sum(),
                "denominator_pre_sum": dx[m].sum(), "denominator_pre_sum_squares": (dx[m] ** 2).sum(),
                "main_post_denominator_pre_sum_product": (y[m] * dx[m]).sum(),
                "main_pre_denominator_post_sum_product": (x[m] * d[m]).sum(),
                "main_pre_denominator_pre_sum_product": (x[m] * dx[m]).sum(),
                "denominator_post_denominator_pre_sum_product": (d[m] * dx[m]).sum(),
            })
        out.append({k: float(val) for k, val in stats.items()})
    return out, cap


def group_by_unit(sim: Simulation) -> dict[str, list[Unit]]:
    groups: dict[str, list[Unit]] = defaultdict(list)
    for unit in sim.units:
        groups[unit.attributes["country"]].append(unit)
    return groups
