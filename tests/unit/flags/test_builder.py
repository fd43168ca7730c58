"""The condition builder's model (`flags.engine.builder`): rows to conditions and back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flags.engine import eval_condition, validate_condition
from flags.engine.attributes import AttributeDefinition
from flags.engine.builder import (
    OPERATORS,
    OPERATORS_BY_TYPE,
    Builder,
    Clause,
    builder_catalog,
    builder_from_condition,
    builder_from_document,
    builder_to_document,
    condition_from_builder,
    condition_warnings,
    operator_label,
)

DEFINITIONS = [
    AttributeDefinition("country", "string", ("DE", "FR", "NL", "US")),
    AttributeDefinition("plan", "string", ("free", "pro", "business")),
    AttributeDefinition("age", "number"),
    AttributeDefinition("beta", "boolean"),
    AttributeDefinition("app_version", "semver"),
    AttributeDefinition("tags", "list", ("vip", "early")),
]

# Conditions as the builder writes them: read and written back unchanged.
CANONICAL: list[tuple[dict[str, Any], Builder]] = [
    ({}, Builder()),
    ({"country": "DE"}, Builder("all", (Clause("country", "$eq", ("DE",)),))),
    ({"plan": {"$in": ["pro", "business"]}, "country": {"$in": ["DE", "FR", "NL"]}},
     Builder("all", (Clause("plan", "$in", ("pro", "business")), Clause("country", "$in", ("DE", "FR", "NL"))))),
    ({"age": {"$gte": 18, "$lt": 65}}, Builder("all", (Clause("age", "$gte", (18,)), Clause("age", "$lt", (65,))))),
    ({"$or": [{"plan": "pro"}, {"beta": True}]},
     Builder("any", (Clause("plan", "$eq", ("pro",)), Clause("beta", "$eq", (True,))))),
    ({"app_version": {"$vgte": "2.4.0"}, "email": {"$not": {"$regex": "@example\\.com$"}}},
     Builder("all", (Clause("app_version", "$vgte", ("2.4.0",)), Clause("email", "$notRegex", ("@example\\.com$",))))),
    ({"tags": {"$elemMatch": {"$eq": "vip"}}, "company": {"$exists": True}, "ref": {"$exists": False}},
     Builder("all", (Clause("tags", "$contains", ("vip",)), Clause("company", "$exists"),
                     Clause("ref", "$notExists")))),
    ({"$and": [{"age": {"$gt": 17}}, {"country": "DE"}, {"age": {"$lt": 30}}]},
     Builder("all", (Clause("age", "$gt", (17,)), Clause("country", "$eq", ("DE",)), Clause("age", "$lt", (30,))))),
    ({"$and": [{"ref": {"$exists": True}}, {"ref": {"$exists": False}}]},
     Builder("all", (Clause("ref", "$exists"), Clause("ref", "$notExists")))),
    ({"tags": {"$all": ["vip", "early"], "$size": 2}},
     Builder("all", (Clause("tags", "$all", ("vip", "early")), Clause("tags", "$size", (2,))))),
]


@pytest.mark.parametrize(("condition", "builder"), CANONICAL)
def test_canonical_condition__reads_as_rows_and_writes_back_unchanged(
    condition: dict[str, Any], builder: Builder
) -> None:
    assert builder_from_condition(condition) == builder
    assert condition_from_builder(builder) == condition
    assert validate_condition(condition) == []


@pytest.mark.parametrize(
    ("condition", "written"),
    [
        ({"plan": {"$eq": "pro"}}, {"plan": "pro"}),
        ({"$and": [{"plan": "pro", "country": "DE"}]}, {"plan": "pro", "country": "DE"}),
        ({"$or": [{"plan": {"$eq": "pro"}}]}, {"$or": [{"plan": "pro"}]}),
        (None, {}),
    ],
)
def test_hand_written_condition__reads_as_rows__written_back_equivalent(condition: Any, written: Any) -> None:
    builder = builder_from_condition(condition)
    assert builder is not None
    assert condition_from_builder(builder) == written


@pytest.mark.parametrize(
    "condition",
    [
        {"$or": [{"plan": "pro", "country": "DE"}, {"beta": True}]},
        {"country": "DE", "$or": [{"plan": "pro"}, {"beta": True}]},
        {"$and": [{"$or": [{"plan": "pro"}, {"beta": True}]}]},
        {"$not": {"plan": "pro"}},
        {"$nor": [{"plan": "pro"}]},
        {"scores": {"$elemMatch": {"$gt": 3}}},
        {"tags": {"$size": {"$gt": 2}}},
        {"plan": None},
        {"plan": ["pro"]},
        {"plan": {"$in": [["pro"]]}},
        {"id": {"$inGroup": "beta-testers"}},
        {"$or": []},
        {"$and": ["plan"]},
        ["plan"],
        "plan",
    ],
)
def test_condition_the_rows_cannot_show__none(condition: Any) -> None:
    assert builder_from_condition(condition) is None


# Any builder the rows can make -----------------------------------------------------------------

SCALARS = st.one_of(st.sampled_from(["DE", "pro", "1.2.3", "", "$x", "a b"]), st.integers(-5, 100),
                    st.booleans(), st.floats(allow_nan=False, allow_infinity=False, width=32))


@st.composite
def clauses(draw: Any) -> Clause:
    operator = draw(st.sampled_from(sorted(OPERATORS)))
    arity = OPERATORS[operator].arity
    values: tuple[Any, ...] = ()
    if arity == "one":
        values = (draw(SCALARS),)
    elif arity == "many":
        values = tuple(draw(st.lists(SCALARS, max_size=3)))
    return Clause(draw(st.sampled_from(["country", "plan", "age", "tags", "user.plan"])), operator, values)


BUILDERS = st.builds(Builder, st.sampled_from(["all", "any"]),
                     st.lists(clauses(), min_size=1, max_size=5).map(tuple))


@settings(max_examples=400, deadline=None)
@given(BUILDERS)
def test_any_builder__written_valid_and_read_back_the_same(builder: Builder) -> None:
    condition = condition_from_builder(builder)
    assert builder_from_condition(condition) == builder
    assert condition_from_builder(builder_from_document(builder_to_document(builder))) == condition


CONTEXTS = st.fixed_dictionaries({}, optional={
    "country": st.sampled_from(["DE", "FR", "US"]), "plan": st.sampled_from(["free", "pro"]),
    "age": st.integers(0, 90), "beta": st.booleans(), "tags": st.lists(st.sampled_from(["vip", "early"]))})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([
    {"plan": {"$eq": "pro"}, "age": {"$gte": 18}},
    {"$and": [{"plan": "pro", "country": {"$in": ["DE", "FR"]}}, {"age": {"$lt": 40}}]},
    {"$or": [{"beta": {"$eq": True}}, {"tags": {"$elemMatch": {"$eq": "vip"}}}]},
    {"tags": {"$in": ["vip"]}, "country": {"$nin": ["US"]}},
]), CONTEXTS)
def test_hand_written_condition__written_back_matches_the_same_units(condition: Any, context: Any) -> None:
    builder = builder_from_condition(condition)
    assert builder is not None
    assert eval_condition(condition_from_builder(builder), context) == eval_condition(condition, context)


# Catalog and words -------------------------------------------------------------------------------


def test_catalog__attributes_operators_and_words_per_type() -> None:
    catalog = builder_catalog(DEFINITIONS[:1])
    assert catalog["attributes"] == [{"name": "country", "type": "string", "allowed_values": ["DE", "FR", "NL", "US"],
                                      "description": ""}]
    assert catalog["operators"]["$in"] == {"label": "is one of", "arity": "many"}
    assert ["$in", "contains any of"] in catalog["types"]["list"]
    assert [op for op, _ in catalog["types"]["semver"]][:2] == ["$veq", "$vne"]
    assert set(catalog["types"]) == {*OPERATORS_BY_TYPE}
    assert operator_label("$nin", "list") == "contains none of" and operator_label("$nin") == "is none of"


def test_every_operator_is_offered_for_some_type_and_every_type_offers_set_and_not_set() -> None:
    offered = {op for kind, ops in OPERATORS_BY_TYPE.items() if kind != "unknown" for op in ops}
    assert offered == set(OPERATORS)
    assert all({"$exists", "$notExists"} <= set(ops) for ops in OPERATORS_BY_TYPE.values())


# Warnings ----------------------------------------------------------------------------------------


def test_warnings__unknown_attribute__a_warning_naming_it() -> None:
    (warning,) = condition_warnings({"contry": "DE"}, DEFINITIONS)
    assert warning.startswith("contry is not a defined attribute: check its spelling")


def test_warnings__values_outside_allowed_or_of_another_type__one_each() -> None:
    warnings = condition_warnings(
        {"country": {"$in": ["DE", "XX"]}, "age": {"$gte": "18"}, "app_version": {"$vgt": "latest"},
         "beta": {"$eq": 1}, "tags": {"$in": ["vip", "gold"]}},
        DEFINITIONS,
    )
    assert warnings == [
        "country is one of XX: XX is not one of the allowed values of country.",
        'age is at least "18": "18" is not a number.',
        'app_version is a version after latest: latest is not a version such as "1.2.3".',
        "beta is 1: 1 is not true or false.",
        "tags contains any of gold: gold is not one of the allowed values of tags.",
    ]


def test_warnings__operator_not_meant_for_the_type() -> None:
    assert condition_warnings({"age": {"$vgt": "1.0.0"}}, DEFINITIONS) == [
        "age is a number attribute: 'is a version after' is not meant for it."]


def test_warnings__sensible_condition_and_patterns__none() -> None:
    condition = {"country": {"$in": ["DE", "FR"]}, "email": {"$regex": "@x"}, "age": {"$gte": 18},
                 "tags": {"$size": 2}, "beta": True}
    assert condition_warnings(condition, [*DEFINITIONS, AttributeDefinition("email", "string")]) == []
