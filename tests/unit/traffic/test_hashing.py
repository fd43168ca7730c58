from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from traffic.assignment.hashing import FNV_OFFSET, fnv1a32, fnv1a32_continue, gb_hash


def _reference_fnv(value: str) -> int:
    # Straightforward definition: FNV-1a over UTF-16 code units.
    data = value.encode("utf-16-le", "surrogatepass")
    h = FNV_OFFSET
    for i in range(0, len(data), 2):
        h = ((h ^ int.from_bytes(data[i : i + 2], "little")) * 16777619) % 2**32
    return h


def test_fnv1a32__empty_string__is_the_offset_basis() -> None:
    assert fnv1a32("") == 0x811C9DC5


def test_fnv1a32__known_vector__matches_published_value() -> None:
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_fnv1a32__astral_character__hashes_its_two_surrogate_code_units() -> None:
    by_code_point = ((FNV_OFFSET ^ ord("😀")) * 16777619) % 2**32
    assert fnv1a32("😀") == _reference_fnv("😀")
    assert fnv1a32("😀") != by_code_point


@given(st.text())
def test_fnv1a32__any_text__matches_the_utf16_reference(value: str) -> None:
    assert fnv1a32(value) == _reference_fnv(value)


@given(st.text(), st.text())
def test_fnv1a32_continue__split_input__equals_hash_of_concatenation(a: str, b: str) -> None:
    assert fnv1a32_continue(fnv1a32(a), b) == fnv1a32(a + b)


@given(st.text(), st.text(), st.sampled_from([1, 2]))
def test_gb_hash__any_input__falls_in_unit_interval(seed: str, value: str, version: int) -> None:
    n = gb_hash(seed, value, version)
    assert n is not None
    assert 0 <= n < 1


def test_gb_hash__unknown_version__is_none() -> None:
    assert gb_hash("seed", "value", 3) is None
    assert gb_hash("seed", "value", 0) is None
