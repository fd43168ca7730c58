"""Attribute definitions and the attributes a condition tests (`flags.engine.attributes`)."""

from __future__ import annotations

from typing import Any

import pytest

from flags.engine.attributes import (
    ATTRIBUTE_ALLOWED_VALUES_MAX,
    AttributeDefinition,
    attributes_in,
    attributes_unknown,
    check_attribute,
    is_version,
)


def _check(**values: Any) -> dict[str, list[str]]:
    return check_attribute(**{"name": "country", "type": "string", **values})


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"allowed_values": ["DE", "FR"], "description": "ISO country code"},
        {"name": "user.plan"},
        {"name": "app_version", "type": "semver", "allowed_values": ["1.2.3", "v2.0", "1.4.0-beta.2"]},
        {"name": "age", "type": "number", "allowed_values": [18, 21.5, -1]},
        {"name": "beta", "type": "boolean"},
        {"name": "tags", "type": "list", "allowed_values": ["beta", "vip", 7]},
        {"allowed_values": None},
    ],
)
def test_check_attribute__valid__no_errors(values: dict[str, Any]) -> None:
    assert _check(**values) == {}


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"name": ""}, "name", "letters, digits"),
        ({"name": "$or"}, "name", "letters, digits"),
        ({"name": ".hidden"}, "name", "not starting with a dot"),
        ({"name": "a" * 101}, "name", "1-100"),
        ({"name": 7}, "name", "letters, digits"),
        ({"type": "date"}, "type", "string, number, boolean, semver, list"),
        ({"description": "x" * 2001}, "description", "At most 2,000 characters"),
        ({"description": 5}, "description", "as text"),
        ({"allowed_values": "DE, FR"}, "allowed_values", "as a list"),
        ({"type": "boolean", "allowed_values": [True]}, "allowed_values", "takes no list"),
        ({"allowed_values": ["x"] * (ATTRIBUTE_ALLOWED_VALUES_MAX + 1)}, "allowed_values", "At most 500"),
        ({"allowed_values": ["DE", 1]}, "allowed_values[1]", "1 is not a string"),
        ({"allowed_values": ["DE", "DE"]}, "allowed_values[1]", "'DE' is listed twice"),
        ({"allowed_values": [""]}, "allowed_values[0]", "1-200 characters"),
        ({"allowed_values": ["x" * 201]}, "allowed_values[0]", "1-200 characters"),
        ({"type": "number", "allowed_values": [1, "2"]}, "allowed_values[1]", "'2' is not a number"),
        ({"type": "number", "allowed_values": [True]}, "allowed_values[0]", "not a number"),
        ({"type": "number", "allowed_values": [float("nan")]}, "allowed_values[0]", "not a number"),
        ({"type": "number", "allowed_values": [1, 1.0]}, "allowed_values[1]", "listed twice"),
        ({"type": "semver", "allowed_values": ["1.2.x"]}, "allowed_values[0]", 'not a version such as "1.2.3"'),
        ({"type": "list", "allowed_values": [["a"]]}, "allowed_values[0]", "not a string or a number"),
    ],
)
def test_check_attribute__invalid__error_names_the_field(values: dict[str, Any], field: str, words: str) -> None:
    errors = _check(**values)
    assert field in errors, errors
    assert any(words in message for message in errors[field]), errors


def test_check_attribute__every_problem_at_once() -> None:
    errors = check_attribute(name="", type="date", allowed_values="x", description=1)
    assert set(errors) == {"name", "type", "allowed_values", "description"}


@pytest.mark.parametrize(("value", "expected"), [
    ("1.2.3", True), ("v2", True), ("1.0.0-rc.1", True), ("1.0.0+build.5", True),
    ("1.2.x", False), ("", False), ("v", False), (1, False),
])
def test_is_version(value: object, expected: bool) -> None:
    assert is_version(value) is expected


def test_attributes_in__nested_logic__every_attribute_once_in_order() -> None:
    condition = {
        "country": {"$in": ["DE"]},
        "$or": [{"plan": "pro"}, {"$and": [{"age": {"$gte": 18}}, {"country": "FR"}]}],
        "$not": {"email": {"$regex": "@example"}},
        "scores": {"$elemMatch": {"value": {"$gt": 3}}},
    }
    assert attributes_in(condition) == ["country", "scores", "plan", "age", "email"]
    assert attributes_in({}) == [] and attributes_in(None) == [] and attributes_in([1]) == []


def test_attributes_unknown__names_what_no_definition_names() -> None:
    condition = {"country": "DE", "browser": "firefox", "$or": [{"plan": "pro"}, {"device": "ios"}]}
    assert attributes_unknown(condition, ["country", "plan"]) == ["browser", "device"]


def test_definition__document_round_trip() -> None:
    document = {"name": "tags", "type": "list", "allowed_values": ["a", "b"], "description": "Labels"}
    definition = AttributeDefinition.from_document(document)
    assert definition == AttributeDefinition("tags", "list", ("a", "b"), "Labels")
    assert definition.as_document() == document
    assert AttributeDefinition.from_document({"name": "x", "type": "weird"}).type == "string"
