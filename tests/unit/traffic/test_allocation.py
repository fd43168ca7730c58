from __future__ import annotations

import pytest

from traffic.assignment.allocation import Overlap, find_overlaps, first_free_range, free_ranges, range_errors


def test_find_overlaps__disjoint_and_touching_ranges__reports_nothing() -> None:
    assert find_overlaps({"a": (0.0, 0.3), "b": (0.3, 0.6), "c": (0.6, 1.0)}) == []


def test_find_overlaps__intersecting_ranges__reports_each_pair_with_the_shared_part() -> None:
    overlaps = find_overlaps({"a": (0.0, 0.5), "b": (0.4, 0.7), "c": (0.45, 0.46)})
    assert Overlap("a", "b", 0.4, 0.5) in overlaps
    assert Overlap("a", "c", 0.45, 0.46) in overlaps
    assert Overlap("b", "c", 0.45, 0.46) in overlaps
    assert len(overlaps) == 3


def test_find_overlaps__float_noise_at_a_boundary__is_not_an_overlap() -> None:
    assert find_overlaps([("a", (0.0, 0.1 + 0.2)), ("b", (0.3, 1.0))]) == []


def test_find_overlaps__empty_range__owns_nothing() -> None:
    assert find_overlaps({"a": (0.2, 0.2), "b": (0.0, 1.0)}) == []


def test_free_ranges__owned_parts__leaves_the_gaps_in_order() -> None:
    assert free_ranges([(0.5, 0.7), (0.0, 0.2)]) == [(0.2, 0.5), (0.7, 1.0)]
    assert free_ranges([]) == [(0.0, 1.0)]
    assert free_ranges([(0.0, 1.0)]) == []


def test_first_free_range__room_left__returns_the_leftmost_fit() -> None:
    owned = [(0.0, 0.2), (0.3, 0.6)]
    assert first_free_range(owned, 0.1) == pytest.approx((0.2, 0.3))
    assert first_free_range(owned, 0.35) == pytest.approx((0.6, 0.95))


def test_first_free_range__no_room__returns_none() -> None:
    assert first_free_range([(0.0, 0.5), (0.6, 1.0)], 0.2) is None
    assert first_free_range([], 0.0) is None
    assert first_free_range([], 1.5) is None


def test_range_errors__outside_unit_interval_or_reversed__are_reported() -> None:
    assert range_errors((0.1, 0.2)) == []
    assert range_errors((0.2, 0.1)) == ["Range [0.2, 0.1) ends before it starts."]
    assert range_errors((-0.1, 1.2)) == ["Range [-0.1, 1.2) must lie within [0, 1]."]
