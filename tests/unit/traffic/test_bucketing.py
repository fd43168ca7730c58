from __future__ import annotations

import pytest

from traffic.assignment.bucketing import (
    get_bucket_ranges,
    hash_string,
    in_namespace,
    in_range,
    is_filtered_out,
    is_included_in_rollout,
    js_number_to_string,
    resolve_hash_value,
    valid_weights,
)
from traffic.assignment.hashing import hash_v1, hash_v2
from traffic.assignment.types import Filter, Namespace


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (123, "123"), (1.0, "1"), (1.5, "1.5"), (-2.25, "-2.25"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"),
     (0.000001, "0.000001"), (123456789012345680000.0, "123456789012345680000"), (2**60, "1152921504606847000"),
     (float("inf"), "Infinity"), (float("nan"), "NaN")],
)  # fmt: skip
def test_js_number_to_string__number__formats_as_javascript(value: float, text: str) -> None:
    assert js_number_to_string(value) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "abc"), ("", ""), (42, "42"), (4.0, "4"), (0, ""), (True, ""), (None, ""), ([1], ""), ({"a": 1}, "")],
)
def test_hash_string__attribute_value__is_what_sdks_hash(value: object, expected: str) -> None:
    assert hash_string(value) == expected


def test_resolve_hash_value__missing_attribute__uses_the_fallback() -> None:
    assert resolve_hash_value({"device": "d1"}, "id", "device") == ("device", "d1")
    assert resolve_hash_value({"id": "u1", "device": "d1"}, "id", "device") == ("id", "u1")
    assert resolve_hash_value({}, "id", "device") == ("id", "")


def test_valid_weights__bad_vectors__are_rejected() -> None:
    assert valid_weights([0.5, 0.5], 2)
    assert valid_weights([0.4, 0.5999], 2)
    assert not valid_weights([0.5, 0.5], 3)
    assert not valid_weights([1.2, -0.2], 2)
    assert not valid_weights([0.5, float("nan")], 2)
    assert not valid_weights(None, 2)


def test_get_bucket_ranges__negative_weight__falls_back_to_equal_weights() -> None:
    assert get_bucket_ranges(2, 1.0, [1.2, -0.2]) == [(0, 0.5), (0.5, 1.0)]


def test_in_range__bounds__are_half_open() -> None:
    assert in_range(0.2, (0.2, 0.3))
    assert not in_range(0.3, (0.2, 0.3))


def test_in_namespace__dataclass_and_list_forms__agree() -> None:
    for unit in ("1", "2", "3", "4"):
        assert in_namespace(unit, Namespace("ns", 0.0, 0.4)) == in_namespace(unit, ["ns", 0, 0.4])


def test_is_included_in_rollout__no_range_or_coverage__includes_everybody() -> None:
    assert is_included_in_rollout("seed", "", bucket_range=None, coverage=None)


def test_is_included_in_rollout__coverage__is_half_open() -> None:
    n = hash_v2("seed", "u1")
    assert is_included_in_rollout("seed", "u1", coverage=n + 1e-9, hash_version=2)
    assert not is_included_in_rollout("seed", "u1", coverage=n, hash_version=2)
    assert not is_included_in_rollout("seed", "u1", coverage=0.0, hash_version=2)


def test_is_included_in_rollout__range__takes_precedence_over_coverage() -> None:
    n = hash_v1("seed", "u1")
    assert is_included_in_rollout("seed", "u1", bucket_range=(n, n + 0.001), coverage=0.0)
    assert not is_included_in_rollout("seed", "u1", bucket_range=(0.0, n), coverage=1.0)


def test_is_included_in_rollout__missing_unit_or_bad_version__excludes() -> None:
    assert not is_included_in_rollout("seed", "", coverage=0.5)
    assert not is_included_in_rollout("seed", "u1", coverage=1.0, hash_version=99)


def test_is_filtered_out__unit_in_a_range__is_kept() -> None:
    n = hash_v2("layer", "u1")
    keep = Filter(seed="layer", ranges=((0.0, 0.0), (n, n + 0.0001)))
    drop = Filter(seed="layer", ranges=((0.0, n),))
    assert not is_filtered_out([keep], {"id": "u1"})
    assert is_filtered_out([keep, drop], {"id": "u1"})
    assert is_filtered_out([keep], {})


def test_is_filtered_out__custom_attribute__hashes_that_attribute() -> None:
    n = hash_v2("layer", "c9")
    flt = Filter(seed="layer", ranges=((n, n + 0.0001),), attribute="company")
    assert not is_filtered_out([flt], {"id": "u1", "company": "c9"})
