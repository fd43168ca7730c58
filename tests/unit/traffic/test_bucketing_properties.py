"""Statistical and stability properties of bucketing (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from traffic.assignment.bucketing import choose_variation, get_bucket_ranges
from traffic.assignment.hashing import hash_v2

UNITS = [f"user-{i}" for i in range(100_000)]
SAMPLE = UNITS[:3_000]

seeds = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)


@st.composite
def weight_vectors(draw: st.DrawFn) -> list[float]:
    n = draw(st.integers(min_value=2, max_value=4))
    raw = draw(st.lists(st.integers(min_value=1, max_value=100), min_size=n, max_size=n))
    return [w / sum(raw) for w in raw]


def _assign(seed: str, units: list[str], ranges: list[tuple[float, float]]) -> list[int]:
    return [choose_variation(hash_v2(seed, unit), ranges) for unit in units]


@settings(max_examples=4, deadline=None)
@given(seed=seeds, weights=weight_vectors())
def test_split__100k_units__within_sampling_error_of_weights(seed: str, weights: list[float]) -> None:
    counts = [0] * len(weights)
    for index in _assign(seed, UNITS, get_bucket_ranges(len(weights), 1.0, weights)):
        counts[index] += 1
    total = len(UNITS)
    for count, weight in zip(counts, weights, strict=True):
        sigma = math.sqrt(weight * (1 - weight) / total)
        # Five standard errors, plus the 1e-4 granularity of version-2 hashes.
        assert abs(count / total - weight) <= 5 * sigma + 2e-4, (counts, weights)


@settings(max_examples=25, deadline=None)
@given(
    seed=seeds,
    weights=weight_vectors(),
    low=st.floats(min_value=0.0, max_value=1.0),
    high=st.floats(min_value=0.0, max_value=1.0),
)
def test_coverage__raised__keeps_every_bucketed_unit_in_its_variation(
    seed: str, weights: list[float], low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    before = _assign(seed, SAMPLE, get_bucket_ranges(len(weights), low, weights))
    after = _assign(seed, SAMPLE, get_bucket_ranges(len(weights), high, weights))
    for old, new in zip(before, after, strict=True):
        if old >= 0:
            assert new == old


@settings(max_examples=4, deadline=None)
@given(seeds=st.lists(seeds, min_size=3, max_size=3, unique=True))
def test_seed__changed_for_one_experiment__reshuffles_it_independently_of_another(seeds: list[str]) -> None:
    seed_a, seed_a2, seed_b = seeds
    ranges = get_bucket_ranges(2, 1.0, None)
    units = UNITS[:20_000]
    a, a2, b = (_assign(s, units, ranges) for s in (seed_a, seed_a2, seed_b))
    # The other experiment is untouched by construction; the reshuffled one
    # must look independent of both its old assignment and the other experiment.
    total = len(units)
    sigma = math.sqrt(0.25 * 0.75 / total)
    for left, right in ((a2, b), (a2, a)):
        cells = [0, 0, 0, 0]
        for x, y in zip(left, right, strict=True):
            cells[2 * x + y] += 1
        for cell in cells:
            assert abs(cell / total - 0.25) <= 5 * sigma + 1e-3, cells
