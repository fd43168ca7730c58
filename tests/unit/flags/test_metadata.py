"""A flag's free-form metadata: the validation rules, and how it joins the flag's own fields."""

from __future__ import annotations

from typing import Any

import pytest

from flags.engine.limits import METADATA_MAX_INTEGER, METADATA_MAX_KEYS, METADATA_MAX_STRING
from flags.engine.validation import METADATA_RESERVED_KEYS, check_metadata
from flags.history_words import flag_diff_words, metadata_words
from flags.mappers import flag_metadata
from flags.models import Flag


def test_check_metadata__strings_numbers_booleans__valid() -> None:
    metadata = {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True, "off": False, "zero": 0,
                "team.on-call:primary_2": "", "big": METADATA_MAX_INTEGER, "small": -METADATA_MAX_INTEGER}
    assert check_metadata(metadata) == {}
    assert check_metadata({}) == {}


@pytest.mark.parametrize("given", [None, [], "release", 1, [["a", 1]]])
def test_check_metadata__not_an_object__refused(given: Any) -> None:
    assert check_metadata(given) == {"metadata": ["Give a JSON object of keys to strings, numbers or booleans."]}


def test_check_metadata__at_most_the_key_limit() -> None:
    assert check_metadata({f"k{i}": i for i in range(METADATA_MAX_KEYS)}) == {}
    errors = check_metadata({f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)})
    assert errors == {"metadata": [f"At most {METADATA_MAX_KEYS} keys (this object has {METADATA_MAX_KEYS + 1})."]}


@pytest.mark.parametrize("key", ["", "1abc", "_x", "with space", "ünïcode", "a/b", "a" * 65])
def test_check_metadata__bad_key__refused_under_its_name(key: str) -> None:
    errors = check_metadata({key: "x"})
    assert list(errors) == [f"metadata.{key[:64]}"]
    assert len(errors[f"metadata.{key[:64]}"]) == 1


def test_check_metadata__key_of_64_characters__valid() -> None:
    assert check_metadata({"a" * 64: 1}) == {}


@pytest.mark.parametrize("key", METADATA_RESERVED_KEYS)
def test_check_metadata__reserved_key__refused(key: str) -> None:
    assert "reserved" in check_metadata({key: "x"})[f"metadata.{key}"][0]


@pytest.mark.parametrize(("value", "words"), [
    (None, "not null"), ([1], "not a list"), ({"a": 1}, "not an object"), ([], "not a list"),
])
def test_check_metadata__null_list_object__refused(value: Any, words: str) -> None:
    assert check_metadata({"k": value}) == {"metadata.k": [f"A value is a string, a number or a boolean, {words}."]}


def test_check_metadata__value_limits() -> None:
    assert check_metadata({"s": "x" * METADATA_MAX_STRING}) == {}
    assert "at most 256 characters" in check_metadata({"s": "x" * (METADATA_MAX_STRING + 1)})["metadata.s"][0]
    assert list(check_metadata({"n": METADATA_MAX_INTEGER + 1})) == ["metadata.n"]
    assert check_metadata({"n": float("nan")}) == {"metadata.n": ["A number value must be finite."]}
    assert check_metadata({"n": float("inf")}) == {"metadata.n": ["A number value must be finite."]}


def test_check_metadata__every_problem_listed() -> None:
    errors = check_metadata({"type": "x", "ok": 1, "bad": None, "9": 2})
    assert sorted(errors) == ["metadata.9", "metadata.bad", "metadata.type"]


def test_flag_metadata__free_form_then_own_fields() -> None:
    flag = Flag(key="f", value_type="boolean", owner="growth", tags=["a", "b"],
                metadata={"release": "1.0.2", "weight": 0.5, "count": 2, "pii": False})
    assert flag_metadata(flag) == {"release": "1.0.2", "weight": 0.5, "count": 2, "pii": False, "type": "boolean",
                                   "owner": "growth", "tags": "a,b"}


def test_flag_metadata__row_written_around_validation__own_fields_win_and_bad_values_left_out() -> None:
    flag = Flag(key="f", value_type="string", owner="growth",
                metadata={"type": "json", "owner": "someone", "nested": {"a": 1}, "none": None, "ok": "yes"})
    assert flag_metadata(flag) == {"type": "string", "owner": "growth", "ok": "yes"}
    assert flag_metadata(Flag(key="g", value_type="number", metadata=["not", "an", "object"])) == {"type": "number"}


def test_flag_diff_words__metadata__whole_object_in_words() -> None:
    before = {"metadata": {"release": "1.0.1", "pii": False}}
    after = {"metadata": {"release": "1.0.2", "pii": False, "weight": 0.5}}
    words = flag_diff_words("metadata.release", before, after)
    assert words is not None
    assert (words.about, words.before, words.after) == (
        "metadata", 'pii false, release "1.0.1"', 'pii false, release "1.0.2", weight 0.5')
    assert metadata_words({}) == "no metadata"
