"""Flag evaluation throughput: our pure core against the GrowthBook Python SDK.

One environment with 50 flags of mixed rule types (targeted force rules,
percentage rollouts, experiments, prerequisites, saved groups, a kill switch
and a scheduled rule) is evaluated for N distinct units by both engines in the
same run: ours through ``flags.engine.evaluation.evaluate_all`` on the compiled
snapshot, the SDK through ``GrowthBook.eval_feature`` on the payload that
``flags.engine.gbformat.snapshot_to_payload`` makes of the same snapshot. Every value
must agree.

    python bench/evaluate.py [--units 100000] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flags.engine.evaluation import evaluate_all
from flags.engine.gbformat import snapshot_to_payload
from flags.engine.types import Feature, ParentCondition, Rule, Snapshot, VariationMeta
from traffic.assignment.types import Filter, Namespace

NOW = 1_750_000_000.0
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "BR", "IN", "JP"]
PLANS = ["free", "pro", "team", "enterprise"]


def _force_flags() -> list[Feature]:
    conditions: list[dict[str, Any]] = [
        {"country": {"$in": ["US", "CA"]}},
        {"plan": "enterprise"},
        {"age": {"$gte": 18, "$lt": 30}},
        {"app_version": {"$vgte": "2.3.0"}},
        {"email": {"$regex": "@corp\\.example$"}},
        {"$or": [{"plan": "pro"}, {"country": "GB"}]},
        {"country": {"$nin": ["BR", "IN"]}, "plan": {"$ne": "free"}},
        {"beta": True},
        {"tags": {"$elemMatch": {"$eq": "vip"}}},
        {"age": {"$exists": True}, "$not": {"country": "JP"}},
    ]
    return [
        Feature(
            f"targeted-{i}",
            default_value=False,
            default_variant="off",
            rules=(Rule(id=f"t{i}", condition=cond, force=True, force_variant="on"),),
        )
        for i, cond in enumerate(conditions)
    ]


def _rollout_flags() -> list[Feature]:
    flags = []
    for i in range(10):
        rule = (
            Rule(id=f"ro{i}", force=True, force_variant="on", coverage=0.05 + 0.09 * i, hash_version=2)
            if i % 2 == 0
            else Rule(id=f"ro{i}", force=True, force_variant="on", range=(0.0, 0.1 * i), hash_version=2, seed=f"s{i}")
        )
        flags.append(Feature(f"rollout-{i}", default_value=False, default_variant="off", rules=(rule,)))
    return flags


def _experiment_flags() -> list[Feature]:
    flags = []
    for i in range(10):
        n = 2 + i % 3
        keys = ("control", "treatment-a", "treatment-b", "treatment-c")[:n]
        rule = Rule(
            id=f"ex{i}",
            key=f"experiment-{i}",
            seed=f"experiment-{i}",
            hash_version=2,
            variations=tuple(f"{k}-value" for k in keys),
            weights=tuple([1 / n] * n) if i % 2 else None,
            coverage=0.9 if i % 3 == 0 else None,
            namespace=Namespace("checkout-layer", 0.1 * (i % 5), 0.1 * (i % 5) + 0.5) if i % 4 == 1 else None,
            condition={"country": {"$in": COUNTRIES[:5]}} if i % 5 == 2 else None,
            meta=tuple(VariationMeta(k) for k in keys),
        )
        flags.append(Feature(f"experiment-{i}", "control-value", "control", (rule,), value_type="string"))
    return flags


def _prerequisite_flags() -> list[Feature]:
    parents = ["targeted-0", "rollout-4", "experiment-1", "targeted-3"]
    flags = []
    for i in range(8):
        parent = parents[i % 4]
        wanted: Any = "treatment-a-value" if parent.startswith("experiment") else True
        flags.append(
            Feature(
                f"dependent-{i}",
                default_value=0,
                default_variant="zero",
                value_type="number",
                rules=(
                    Rule(
                        id=f"d{i}",
                        parent_conditions=(ParentCondition(parent, {"value": wanted}, gate=i % 2 == 0),),
                        force=i + 1,
                        force_variant="more",
                    ),
                ),
            )
        )
    return flags


def _group_flags() -> list[Feature]:
    return [
        Feature(
            f"segment-{i}",
            default_value=False,
            default_variant="off",
            rules=(Rule(id=f"g{i}", condition={"id": {"$inGroup": f"group-{i % 3}"}}, force=True, force_variant="on"),),
        )
        for i in range(6)
    ]


def _mixed_flags() -> list[Feature]:
    layered = Rule(
        id="layered",
        key="layered-test",
        seed="layered-test",
        hash_version=2,
        variations=({"color": "blue"}, {"color": "green"}),
        filters=(Filter(seed="holdout", ranges=((0.1, 1.0),)),),
        meta=(VariationMeta("blue"), VariationMeta("green")),
    )
    return [
        Feature(
            "checkout-flow",
            {"color": "grey"},
            "grey",
            (
                Rule(id="staff", condition={"email": {"$regex": "@corp\\.example$"}}, force={"color": "red"}),
                Rule(id="ramp", force={"color": "pink"}, coverage=0.2, hash_version=2, seed="ramp"),
                layered,
            ),
            value_type="json",
        ),
        Feature("kill-switch", True, "on", (Rule(force=False),), enabled=False),
        Feature(
            "launch",
            False,
            "off",
            (Rule(id="launch-day", force=True, force_variant="on", starts_at=NOW - 60, ends_at=NOW + 86_400),),
        ),
        Feature(
            "pricing",
            10,
            "base",
            (
                Rule(id="vip", condition={"plan": "enterprise", "country": {"$in": ["US", "GB"]}}, force=8),
                Rule(
                    id="price-test",
                    key="price-test",
                    hash_version=2,
                    variations=(10, 12, 14),
                    weights=(0.5, 0.25, 0.25),
                ),
            ),
            value_type="number",
        ),
        Feature("static-copy", "Welcome!", "default", value_type="string"),
        Feature(
            "limits",
            {"max": 5},
            "default",
            (Rule(condition={"plan": {"$in": ["pro", "team"]}}, force={"max": 50}),),
            value_type="json",
        ),
    ]


def build_snapshot(units: list[dict[str, Any]]) -> Snapshot:
    features = _force_flags() + _rollout_flags() + _experiment_flags() + _prerequisite_flags() + _group_flags()
    features += _mixed_flags()
    assert len(features) == 50, len(features)
    rng = random.Random(3)
    groups = {f"group-{g}": tuple(u["id"] for u in rng.sample(units, 2_000)) for g in range(3)}
    return Snapshot("bench", 1, {f.key: f for f in features}, groups, "2025-06-15T00:00:00Z")


def build_units(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    units = []
    for i in range(count):
        unit: dict[str, Any] = {
            "id": f"user-{i:07d}-{rng.getrandbits(24):06x}",
            "country": rng.choice(COUNTRIES),
            "plan": rng.choice(PLANS),
            "app_version": f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
            "email": f"u{i}@{rng.choice(['corp.example', 'mail.example', 'web.example'])}",
            "beta": rng.random() < 0.1,
            "tags": rng.sample(["vip", "new", "churn-risk", "mobile"], rng.randint(0, 2)),
        }
        if rng.random() < 0.8:
            unit["age"] = rng.randint(13, 80)
        units.append(unit)
    return units


def make_ours(snapshot: Snapshot) -> Callable[[list[dict[str, Any]]], list[list[Any]]]:
    keys = list(snapshot.features)

    def run(units: list[dict[str, Any]]) -> list[list[Any]]:
        values = []
        for attributes in units:
            results = evaluate_all(snapshot, attributes, now=NOW)
            values.append([results[k].value for k in keys])
        return values

    return run


def make_sdk(snapshot: Snapshot) -> Callable[[list[dict[str, Any]]], list[list[Any]]]:
    from growthbook import GrowthBook

    payload = snapshot_to_payload(snapshot, now=NOW)
    keys = list(snapshot.features)

    def run(units: list[dict[str, Any]]) -> list[list[Any]]:
        # A fresh instance per chunk: one long-lived instance remembers every
        # exposure it tracked and slows down as that memory grows.
        sdk = GrowthBook(attributes={}, features=payload["features"], saved_groups=payload.get("savedGroups"))
        values = []
        for attributes in units:
            sdk.set_attributes(attributes)
            values.append([sdk.eval_feature(k).value for k in keys])
        return values

    return run


def _agreeing(ours: list[list[Any]], theirs: list[list[Any]]) -> int:
    return sum(
        type(a) is type(b) and a == b
        for row_a, row_b in zip(ours, theirs, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )


def measure(
    ours: Callable[[list[dict[str, Any]]], list[list[Any]]],
    sdk: Callable[[list[dict[str, Any]]], list[list[Any]]],
    units: list[dict[str, Any]],
    chunk: int,
) -> tuple[float, float, int, list[float]]:
    """Seconds of each engine, the count of agreeing values and the per-chunk speed ratios.

    Times are CPU seconds of this process, which busy neighbours on a shared
    machine disturb less than wall time. The engines alternate on chunks of
    units, so that what disturbance remains weighs on both alike; values are
    compared and dropped chunk by chunk, so that a growing heap does not tax
    the engine that allocates more through longer garbage collections.
    """
    ours_seconds = sdk_seconds = 0.0
    same = 0
    ratios = []
    for offset in range(0, len(units), chunk):
        block = units[offset : offset + chunk]
        start = time.process_time()
        theirs_values = sdk(block)
        middle = time.process_time()
        ours_values = ours(block)
        end = time.process_time()
        sdk_seconds += middle - start
        ours_seconds += end - middle
        ratios.append((middle - start) / (end - middle))
        same += _agreeing(ours_values, theirs_values)
    return ours_seconds, sdk_seconds, same, ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="units per alternation between the engines")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the SDK logs every skipped rule at debug level

    import growthbook

    units = build_units(args.units)
    snapshot = build_snapshot(units)
    flags = len(snapshot.features)
    evaluations = flags * len(units)

    ours_seconds, sdk_seconds, same, ratios = measure(make_ours(snapshot), make_sdk(snapshot), units, args.chunk)
    ours_rate = evaluations / ours_seconds
    sdk_rate = evaluations / sdk_seconds
    print(f"python {platform.python_version()} on {platform.machine()}, growthbook {growthbook.__version__}")
    print(f"{flags} flags x {len(units):,} units = {evaluations:,} evaluations per engine\n")
    rows = [
        ("growthbook SDK (eval_feature)", sdk_seconds, sdk_rate, 1.0),
        ("ours (evaluate_all on snapshot)", ours_seconds, ours_rate, ours_rate / sdk_rate),
    ]
    print(f"| {'engine':<34} | {'CPU s':>8} | {'evaluations/s':>13} | {'ratio':>6} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 15}|{'-' * 8}|")
    for name, elapsed, rate, ratio in rows:
        print(f"| {name:<34} | {elapsed:>8.2f} | {rate:>13,.0f} | {ratio:>5.2f}x |")
    ratios.sort()
    print(f"\nper-chunk ratio ({len(ratios)} chunks of {args.chunk:,} units): ", end="")
    print(f"min {ratios[0]:.2f}x, median {ratios[len(ratios) // 2]:.2f}x, max {ratios[-1]:.2f}x")
    print(f"identical values: {same:,} / {evaluations:,}")
    if same != evaluations:
        print("MISMATCH: the engines disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
