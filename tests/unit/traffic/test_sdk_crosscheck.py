"""Agreement with the ``growthbook`` PyPI SDK on random experiments.

20,000 random (seed, unit, weights, coverage) cases, with both hash versions,
invalid weight vectors (which fall back to equal weights), numeric unit ids and
non-ASCII ids. Every assignment must match: variation, inclusion and bucket.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from flags.engine.evaluation import run_experiment
from flags.engine.types import Experiment

growthbook = pytest.importorskip("growthbook")

CASES = 20_000
_ALPHABET = string.ascii_letters + string.digits + "-_.:@"
_EXOTIC = "éüßøΩЖ中文😀🚀"


def _unit(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return rng.randint(-(10**6), 10**9)
    if roll < 0.10:
        return "".join(rng.choice(_ALPHABET + _EXOTIC) for _ in range(rng.randint(1, 12)))
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 24)))


def _weights(rng: random.Random, n: int) -> list[float] | None:
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.25:
        # Invalid on purpose: wrong length or a sum far from 1.
        return [rng.random() for _ in range(n + rng.choice((-1, 1)))] if rng.random() < 0.5 else [0.7] * n
    raw = [rng.random() + 0.01 for _ in range(n)]
    total = sum(raw)
    return [w / total for w in raw]


def _coverage(rng: random.Random) -> float | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return rng.choice((0.0, 1.0, 0.5, 0.25))
    return rng.random()


def _case(rng: random.Random) -> dict[str, Any]:
    n = rng.randint(2, 5)
    return {
        "key": "exp-" + "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 10))),
        "seed": rng.choice((None, "".join(rng.choice(_ALPHABET + _EXOTIC) for _ in range(rng.randint(0, 16))))),
        "n": n,
        "weights": _weights(rng, n),
        "coverage": _coverage(rng),
        "hash_version": rng.choice((1, 2, 2)),
        "unit": _unit(rng),
    }


def test_run_experiment__20000_random_cases__agrees_with_growthbook_sdk() -> None:
    rng = random.Random(20240611)
    sdk = growthbook.GrowthBook(attributes={})
    mismatches = []
    for _ in range(CASES):
        case = _case(rng)
        variations = list(range(case["n"]))
        ours = run_experiment(
            Experiment(
                key=case["key"],
                variations=tuple(variations),
                weights=tuple(case["weights"]) if case["weights"] is not None else None,
                coverage=case["coverage"],
                seed=case["seed"],
                hash_version=case["hash_version"],
            ),
            {"id": case["unit"]},
        )
        options: dict[str, Any] = {"key": case["key"], "variations": variations, "hashVersion": case["hash_version"]}
        for name, field in (("weights", "weights"), ("coverage", "coverage"), ("seed", "seed")):
            if case[field] is not None:
                options[name] = case[field]
        sdk.set_attributes({"id": case["unit"]})
        theirs = sdk.run(growthbook.Experiment(**options))
        got = (ours.variation_id, ours.in_experiment, ours.hash_used, ours.bucket)
        want = (theirs.variationId, theirs.inExperiment, theirs.hashUsed, theirs.bucket)
        if got != want:
            mismatches.append((case, got, want))
    assert mismatches == [], f"{len(mismatches)} of {CASES} disagree, first: {mismatches[:3]}"
