"""Hash-range bookkeeping for layers.

Experiments in one layer own disjoint parts of the layer's hash space, so a
unit is in at most one of them. These functions find clashes between owned
ranges and the first gap wide enough for a new experiment; the caller decides
what to do with the answer (reject the write, suggest a range).

Ranges are half-open [start, end): two ranges that only touch do not overlap,
and an empty range owns nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from traffic.assignment.types import BucketRange

__all__ = ["EPSILON", "Overlap", "find_overlaps", "first_free_range", "free_ranges", "range_errors"]

# Tolerance for float noise such as 0.1 + 0.2 when comparing range ends.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two owners whose ranges share the hash interval [start, end)."""

    first: str
    second: str
    start: float
    end: float


def range_errors(bucket_range: BucketRange) -> list[str]:
    """Human-readable problems with one range (empty list when it is valid)."""
    start, end = bucket_range
    errors: list[str] = []
    if not 0.0 <= start <= 1.0 or not 0.0 <= end <= 1.0:
        errors.append(f"Range [{start}, {end}) must lie within [0, 1].")
    if end < start:
        errors.append(f"Range [{start}, {end}) ends before it starts.")
    return errors


def _as_pairs(
    ranges: Mapping[str, BucketRange] | Iterable[tuple[str, BucketRange]],
) -> list[tuple[str, BucketRange]]:
    if isinstance(ranges, Mapping):
        return list(ranges.items())
    return list(ranges)


def find_overlaps(
    ranges: Mapping[str, BucketRange] | Iterable[tuple[str, BucketRange]],
) -> list[Overlap]:
    """Every pair of owners whose ranges intersect, ordered by start.

    ``ranges`` maps an owner (an experiment key) to its range, or is a list of
    ``(owner, range)`` pairs when one owner holds several ranges.
    """
    pairs = sorted(
        ((owner, r) for owner, r in _as_pairs(ranges) if r[1] - r[0] > EPSILON),
        key=lambda item: (item[1][0], item[1][1], item[0]),
    )
    overlaps: list[Overlap] = []
    for i, (owner_a, (start_a, end_a)) in enumerate(pairs):
        for owner_b, (start_b, end_b) in pairs[i + 1 :]:
            if start_b >= end_a - EPSILON:
                # Sorted by start: nothing further right can reach back into a.
                break
            lo, hi = max(start_a, start_b), min(end_a, end_b)
            if hi - lo > EPSILON:
                overlaps.append(Overlap(owner_a, owner_b, lo, hi))
    return overlaps


def free_ranges(owned: Iterable[BucketRange]) -> list[BucketRange]:
    """The gaps of [0, 1) that no owned range covers, in order."""
    gaps: list[BucketRange] = []
    cursor = 0.0
    for start, end in sorted(owned):
        if end - start <= EPSILON:
            continue
        if start - cursor > EPSILON:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if 1.0 - cursor > EPSILON:
        gaps.append((cursor, 1.0))
    return gaps


def first_free_range(owned: Iterable[BucketRange], width: float) -> BucketRange | None:
    """The leftmost free range of ``width`` in [0, 1), or None when none fits."""
    if width <= 0 or width > 1 + EPSILON:
        return None
    for start, end in free_ranges(owned):
        if end - start >= width - EPSILON:
            return (start, min(start + width, 1.0))
    return None
