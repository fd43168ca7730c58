from __future__ import annotations

from typing import Any

import pytest

from flags.engine.conditions import compile_condition, eval_condition, index_groups, validate_condition


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        ({"age": 30}, {"age": "30"}, True),
        ({"plan": "pro"}, {"plan": ["pro"]}, True),
        ({"beta": True}, {"beta": 1}, True),
        ({"beta": True}, {}, False),
        ({"age": {"$gt": 18}}, {"age": "abc"}, False),
        ({"age": {"$lt": 10}}, {"age": None}, True),
        ({"name": {"$regex": "^a"}}, {}, False),
        ({"code": {"$regex": "^12"}}, {"code": 123}, True),
        ({"tags": {"$in": ["a"]}}, {"tags": "a"}, True),
        ({"n": {"$in": [1]}}, {"n": True}, False),
        ({"n": {"$in": [True]}}, {"n": True}, True),
        ({"items.0.sku": "x"}, {"items": [{"sku": "x"}]}, True),
        ({"items.length": 2}, {"items": [1, 2]}, True),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 2}}, True),
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 2, "b": 1}}, False),
        ({"v": {"$vgte": "2.0.0"}}, {"v": "v2.1.0-beta"}, True),
        ({"x": {"$eq": [1]}}, {"x": [1]}, False),
        ({"x": {"$bogus": 1}}, {"x": 1}, False),
        ({"$or": "not a list"}, {}, False),
        ({"$nor": {"a": 1}}, {}, False),
        ({"nums": {"$elemMatch": {"$lt": 1}}}, {"nums": [0]}, False),
    ],
)
def test_eval_condition__javascript_semantics__match_growthbook_js(
    condition: dict[str, Any], attributes: dict[str, Any], expected: bool
) -> None:
    assert eval_condition(condition, attributes) is expected


def test_eval_condition__none_or_empty__matches_everybody() -> None:
    assert eval_condition(None, {})
    assert eval_condition({}, {})


def test_compile_condition__not_an_object__never_matches() -> None:
    assert compile_condition(["a"])({}, {}) is False


def test_compile_condition__reused__evaluates_many_units_consistently() -> None:
    matcher = compile_condition({"country": {"$in": ["US", "CA"]}, "id": {"$inGroup": "beta"}})
    groups = index_groups({"beta": ["u1", "u2"]})
    assert [matcher({"country": c, "id": u}, groups) for c, u in [("US", "u1"), ("FR", "u1"), ("CA", "u3")]] == [
        True,
        False,
        False,
    ]


def test_eval_condition__attributes_of_unexpected_types__never_raise() -> None:
    condition = {"a.b": {"$gt": 1, "$regex": "x", "$size": 2, "$all": [1], "$vlt": "1.0.0", "$elemMatch": {"c": 1}}}
    for value in (None, 1, "s", [1, {"c": 1}], {"b": object()}, {"b": [None]}, float("nan")):
        assert eval_condition(condition, {"a": value}) is False


def test_validate_condition__valid_condition__has_no_errors() -> None:
    condition = {
        "country": {"$in": ["US", "CA"]},
        "$or": [{"plan": "pro"}, {"age": {"$gte": 18, "$lt": 65}}],
        "version": {"$vgte": "1.2.0"},
        "email": {"$regex": "@example\\.com$"},
        "id": {"$inGroup": "beta"},
        "tags": {"$elemMatch": {"$eq": "vip"}, "$size": {"$gt": 1}},
        "name": {"$not": {"$regex": "^test"}, "$exists": True, "$type": "string"},
    }
    assert validate_condition(condition) == []
    assert validate_condition(condition, saved_groups=["beta"]) == []


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (["country"], "condition: must be a JSON object, got a list."),
        ({"country": {"$regx": "US"}}, "condition.country.$regx: unknown operator '$regx'."),
        ({"country": {"$in": "US"}}, "condition.country.$in: expected a list, got a string."),
        ({"age": {"$gt": [1]}}, "condition.age.$gt: expected a number or a string, got a list."),
        ({"email": {"$regex": "(unclosed"}}, "condition.email.$regex: invalid regular expression ("),
        ({"email": {"$regex": 5}}, "condition.email.$regex: expected a regular expression string, got a number."),
        ({"name": {"$exists": "yes"}}, "condition.name.$exists: expected true or false, got a string."),
        ({"name": {"$type": "int"}}, "condition.name.$type: expected one of array, boolean, null, number, object, "),
        ({"$or": {"plan": "pro"}}, "condition.$or: expected a list of conditions, got an object."),
        ({"$and": [{"a": 1}, "b"]}, "condition.$and[1]: expected a condition object, got a string."),
        ({"$not": [1]}, "condition.$not: expected a condition object, got a list."),
        ({"$in": ["US"]}, "condition.$in: operator '$in' must be applied to an attribute"),
        ({"age": {"$gt": 1, "max": 2}}, "condition.age: mixes operators ($gt) with plain keys (max)."),
        ({"v": {"$vgt": None}}, 'condition.v.$vgt: expected a version string such as "1.2.3", got null.'),
        ({"id": {"$inGroup": 7}}, "condition.id.$inGroup: expected a saved group id, got a number."),
        ({"tags": {"$elemMatch": [1]}}, "condition.tags.$elemMatch: expected an object, got a list."),
        ({"tags": {"$size": "2"}}, "condition.tags.$size: expected a number or an operator object, got a string."),
        ({"$or": [{"x": {"$or": []}}]}, "condition.$or[0].x.$or: unknown operator '$or' (use $or, $and, $nor or $not"),
    ],
)
def test_validate_condition__invalid__reports_the_path_and_problem(condition: Any, message: str) -> None:
    errors = validate_condition(condition)
    assert len(errors) == 1, errors
    assert errors[0].startswith(message)


def test_validate_condition__unknown_saved_group__is_reported_when_groups_are_known() -> None:
    assert validate_condition({"id": {"$inGroup": "gone"}}, saved_groups=["beta"]) == [
        "condition.id.$inGroup: unknown saved group 'gone'."
    ]


def test_validate_condition__several_problems__are_all_listed() -> None:
    errors = validate_condition({"a": {"$in": 1}, "b": {"$regx": 1}, "$nor": [{"c": {"$exists": 1}}]})
    assert len(errors) == 3
