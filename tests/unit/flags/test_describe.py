"""Conditions, prerequisites and rules in words (`flags.engine.describe`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from flags.engine import describe_condition, describe_prerequisite, describe_rule
from flags.engine.conditions import LOGICAL_OPERATORS, VALUE_OPERATORS

# One condition per operator of the language, with its words.
OPERATORS: list[tuple[str, dict[str, Any], str]] = [
    ("$eq", {"plan": {"$eq": "pro"}}, "plan is pro"),
    ("$ne", {"plan": {"$ne": "free"}}, "plan is not free"),
    ("$in", {"plan": {"$in": ["pro", "business"]}}, "plan is one of pro, business"),
    ("$nin", {"country": {"$nin": ["US", "CA"]}}, "country is none of US, CA"),
    ("$ini", {"country": {"$ini": ["de", "fr"]}}, "country is one of de, fr (ignoring case)"),
    ("$nini", {"country": {"$nini": ["de", "fr"]}}, "country is none of de, fr (ignoring case)"),
    ("$gt", {"age": {"$gt": 17}}, "age is greater than 17"),
    ("$gte", {"age": {"$gte": 18}}, "age is at least 18"),
    ("$lt", {"age": {"$lt": 65}}, "age is less than 65"),
    ("$lte", {"age": {"$lte": 64.5}}, "age is at most 64.5"),
    ("$regex", {"email": {"$regex": "@example\\.com$"}}, "email matches the pattern @example\\.com$"),
    ("$regexi", {"email": {"$regexi": "@EXAMPLE"}}, "email matches the pattern @EXAMPLE (ignoring case)"),
    ("$exists", {"company": {"$exists": True}}, "company is set"),
    ("$type", {"tags": {"$type": "array"}}, "tags is a list"),
    ("$elemMatch", {"scores": {"$elemMatch": {"$gt": 90}}}, "scores has an item that is greater than 90"),
    ("$all", {"tags": {"$all": ["beta", "mobile"]}}, "tags contains all of beta, mobile"),
    ("$alli", {"tags": {"$alli": ["Beta"]}}, "tags contains Beta (ignoring case)"),
    ("$size", {"tags": {"$size": 3}}, "tags has 3 items"),
    ("$not", {"email": {"$not": {"$regex": "@example\\.com$"}}}, "email does not match the pattern @example\\.com$"),
    ("$veq", {"app": {"$veq": "2.0.0"}}, "app is version 2.0.0"),
    ("$vne", {"app": {"$vne": "2.0.0"}}, "app is not version 2.0.0"),
    ("$vgt", {"app": {"$vgt": "2.0.0"}}, "app is a version after 2.0.0"),
    ("$vgte", {"app": {"$vgte": "2.1.0"}}, "app is version 2.1.0 or later"),
    ("$vlt", {"app": {"$vlt": "3.0.0"}}, "app is a version before 3.0.0"),
    ("$vlte", {"app": {"$vlte": "3.0.0"}}, "app is version 3.0.0 or earlier"),
    ("$inGroup", {"id": {"$inGroup": "beta-testers"}}, "id is in segment beta-testers"),
    ("$notInGroup", {"id": {"$notInGroup": "beta-testers"}}, "id is not in segment beta-testers"),
    ("$and", {"$and": [{"plan": "pro"}, {"country": "DE"}]}, "plan is pro and country is DE"),
    ("$or", {"$or": [{"plan": "pro"}, {"country": "DE"}]}, "plan is pro or country is DE"),
    ("$nor", {"$nor": [{"plan": "free"}, {"country": "US"}]}, "not (plan is free or country is US)"),
]


@pytest.mark.parametrize(("operator", "condition", "words"), OPERATORS, ids=[o[0] for o in OPERATORS])
def test_describe_condition__each_operator__reads_in_words(operator: str, condition: dict[str, Any],
                                                           words: str) -> None:
    assert describe_condition(condition) == words


def test_describe_condition__every_operator_of_the_language__has_words_not_json() -> None:
    assert {operator for operator, _, _ in OPERATORS} == VALUE_OPERATORS | LOGICAL_OPERATORS
    for _, condition, _ in OPERATORS:
        words = describe_condition(condition)
        assert '"$' not in words and "{" not in words, words


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        # Plain values compare as they are; a missing attribute reads as null.
        ({"plan": "pro", "beta": True, "seats": 10}, "plan is pro and beta is true and seats is 10"),
        ({"company": None}, "company is not set"),
        ({"company": {"$eq": None}}, "company is not set"),
        ({"company": {"$ne": None}}, "company is set"),
        ({"company": {"$exists": False}}, "company is not set"),
        ({"plan": {"$in": ["pro"]}}, "plan is pro"),
        ({"plan": {"$nin": ["free"]}}, "plan is not free"),
        ({"plan": {"$in": []}}, "plan is one of an empty list"),
        ({"tags": {"$size": 1}}, "tags has 1 item"),
        ({"tags": {"$size": {"$gte": 2}}}, "the number of items in tags is at least 2"),
        ({"date": {"$gte": "2026-01-01"}}, "date is at or after 2026-01-01"),
        ({"date": {"$lt": "2026-01-01"}}, "date is before 2026-01-01"),
        ({"flag": {"$type": "boolean"}}, "flag is true or false"),
        ({"items": {"$elemMatch": {"sku": "a-1", "qty": {"$gte": 2}}}},
         "items has an item where sku is a-1 and qty is at least 2"),
        # Several operators on one attribute must all hold; negated, one failing is enough.
        ({"age": {"$gte": 18, "$lt": 65}}, "age is at least 18 and age is less than 65"),
        ({"age": {"$not": {"$gte": 18, "$lt": 65}}}, "age is not at least 18 or age is not less than 65"),
        ({"plan": {"$not": "free"}}, "plan is not free"),
        ({"scores": {"$not": {"$elemMatch": {"$lt": 10}}}}, "scores has no item that is less than 10"),
        ({"$not": {"plan": "free"}}, "not (plan is free)"),
        # "and" inside "or" (and the other way round) gets parentheses.
        ({"plan": "pro", "$or": [{"country": "DE"}, {"beta": True}]},
         "plan is pro and (country is DE or beta is true)"),
        ({"$or": [{"plan": "pro", "seats": {"$gt": 5}}, {"beta": True}]},
         "(plan is pro and seats is greater than 5) or beta is true"),
        # Strings that could be read otherwise are quoted.
        ({"city": {"$in": ["Berlin", "New York", "", "true", "42"]}},
         'city is one of Berlin, "New York", "", "true", "42"'),
        ({"plan": {"$in": [f"p{i}" for i in range(12)]}},
         "plan is one of p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, … (12 in all)"),
        ({"user.plan": "pro"}, "user.plan is pro"),
        # Empty conditions hold for everyone; their negation for nobody.
        ({}, "everyone"),
        (None, "everyone"),
        ({"$and": []}, "everyone"),
        ({"$or": []}, "everyone"),
        ({"$not": {}}, "nobody"),
    ],
)
def test_describe_condition__combinations_and_edge_cases(condition: Any, words: str) -> None:
    assert describe_condition(condition) == words


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ({"plan": {"$unknown": 1}}, '{"plan": {"$unknown": 1}}'),
        ({"plan": {"$in": "pro"}}, '{"plan": {"$in": "pro"}}'),
        ({"$where": "x"}, '{"$where": "x"}'),
        ({"$or": "pro"}, '{"$or": "pro"}'),
        ({"plan": "pro", "age": {"$gt": True}}, 'plan is pro and {"age": {"$gt": true}}'),
        ("plan", '"plan"'),
        ([{"plan": "pro"}], '[{"plan": "pro"}]'),
    ],
)
def test_describe_condition__no_words__compact_json_in_place(condition: Any, words: str) -> None:
    assert describe_condition(condition) == words


def test_describe_condition__segments__named_first() -> None:
    assert describe_condition({}, segments=["beta-testers"]) == "in segment beta-testers"
    assert describe_condition({"plan": "pro"}, segments=["beta-testers", "internal"]) == (
        "in segment beta-testers and in segment internal and plan is pro"
    )
    assert describe_condition({"$or": [{"a": 1}, {"b": 2}]}, segments=["internal"]) == (
        "in segment internal and (a is 1 or b is 2)"
    )


@pytest.mark.parametrize(
    ("prerequisite", "words"),
    [
        ({"flag": "new-checkout"}, "new-checkout is on"),
        ({"flag": "new-checkout", "condition": {"value": True}}, "new-checkout is on"),
        ({"flag": "new-checkout", "condition": {"value": False}}, "new-checkout is off"),
        ({"flag": "ranking", "condition": {"value": "semantic"}}, "ranking is semantic"),
        ({"flag": "ranking", "condition": {"value": {"$in": ["a", "b"]}}}, "ranking is one of a, b"),
        ({"flag": "limit", "condition": {"value": {"$gte": 100}}}, "limit is at least 100"),
        ({"flag": "ranking", "condition": {}}, "ranking has any value"),
        ({"name": "ranking"}, '{"name": "ranking"}'),
    ],
)
def test_describe_prerequisite(prerequisite: dict[str, Any], words: str) -> None:
    assert describe_prerequisite(prerequisite) == words


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"kind": "force", "variant": "on"}, "forced to on"),
        ({"kind": "force", "variant": "annual-first",
          "condition": {"plan": {"$in": ["pro", "business"]}, "country": {"$in": ["DE", "FR", "NL"]}}},
         "forced to annual-first when plan is one of pro, business and country is one of DE, FR, NL"),
        ({"kind": "force", "variant": "compact", "segments": ["beta-testers"], "condition": {}},
         "forced to compact when in segment beta-testers"),
        ({"kind": "rollout", "variant": "on", "coverage": 0.2, "hash_attribute": "id"},
         "serves on to 20% of users by id"),
        ({"kind": "rollout", "variant": "on", "coverage": 0.125, "hash_attribute": "device_id",
          "fallback_attribute": "id"},
         "serves on to 12.5% of users by device_id, or id when device_id is missing"),
        # A forced value for a share of the units is a rollout.
        ({"kind": "force", "variant": "on", "coverage": 0.5}, "serves on to 50% of users by id"),
        ({"kind": "experiment", "variations": ["control", "treatment"], "weights": [0.5, 0.5], "coverage": 1.0},
         "an experiment split: control 50%, treatment 50% (by id)"),
        ({"kind": "experiment", "variations": ["a", "b", "c"], "weights": [1 / 3, 1 / 3, 1 / 3], "coverage": 0.8,
          "hash_attribute": "company"},
         "an experiment split of 80% of users: a 33.33%, b 33.33%, c 33.33% (by company)"),
        ({"kind": "experiment", "variations": ["control", "treatment"]},
         "an experiment split: control 50%, treatment 50% (by id)"),
        ({"kind": "force", "variant": "on", "prerequisites": [{"flag": "new-checkout"}]},
         "forced to on when new-checkout is on"),
        ({"kind": "force", "variant": "on", "condition": {"$or": [{"plan": "pro"}, {"beta": True}]},
          "prerequisites": [{"flag": "new-checkout", "condition": {"value": True}}]},
         "forced to on when (plan is pro or beta is true) and new-checkout is on"),
        ({"kind": "rollout", "variant": "on", "coverage": 0.05, "starts_at": "2026-12-01T10:00:00+00:00",
          "ends_at": "2026-12-02T10:00:00+00:00"},
         "serves on to 5% of users by id, from 2026-12-01 10:00 UTC until 2026-12-02 10:00 UTC"),
        ({"kind": "force", "variant": "on",
          "starts_at": datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))},
         "forced to on, from 2026-12-01 10:00 UTC"),
        ({"kind": "force", "variant": "on", "ends_at": datetime(2026, 12, 1, 10, 0, tzinfo=UTC)},
         "forced to on, until 2026-12-01 10:00 UTC"),
        ({"kind": "force", "variant": "on", "enabled": False}, "forced to on (disabled)"),
        # A wizard's answers: an experiment split with targeting, nothing else.
        ({"variations": ["control", "treatment"], "weights": [0.5, 0.5], "coverage": 0.5,
          "condition": {"country": "DE"}},
         "an experiment split of 50% of users: control 50%, treatment 50% (by id) when country is DE"),
    ],
)
def test_describe_rule(rule: dict[str, Any], words: str) -> None:
    assert describe_rule(rule) == words
