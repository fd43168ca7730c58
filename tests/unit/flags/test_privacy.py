"""The payload made private for client keys: secure attribute values hashed wherever a condition
compares with them, id lists matched against them hashed, everything else untouched; the
conditions a private segment may not use; the policy's round trip through the snapshot file."""

from __future__ import annotations

import hashlib
from typing import Any

from flags.engine.conditions import eval_condition
from flags.engine.privacy import (
    ClientPolicy,
    condition_attributes,
    hash_secure_value,
    private_condition_problems,
    private_payload,
    secure_attributes_of,
)

SALT = "pepper"
POLICY = ClientPolicy(mode="private", salt=SALT, decryption_key="", secure_attributes=frozenset({"email"}))


def h(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def test_hash_secure_value__sha256_of_salt_then_value() -> None:
    assert hash_secure_value("a@b.c", SALT) == h("a@b.c")
    assert hash_secure_value(42, SALT) == h("42")


def test_private_payload__hashes_every_comparison_with_a_secure_attribute_and_its_groups() -> None:
    payload: dict[str, Any] = {
        "features": {
            "f": {"defaultValue": False, "rules": [
                {"condition": {"$and": [{"email": {"$in": ["x@y.z"]}}, {"country": "DE"}]}, "force": True},
                {"condition": {"email": "boss@y.z", "plan": {"$ne": "free"}}, "force": True},
                {"condition": {"$not": {"email": {"$inGroup": "vips"}}}, "force": True},
                {"condition": {"email": {"$exists": True}}, "force": True},
                {"force": True},
            ]},
            "g": {"defaultValue": 1},
        },
        "savedGroups": {"vips": ["v@y.z"], "regions": ["DE"]},
        "dateUpdated": "now",
    }
    out = private_payload(payload, POLICY)
    rules = out["features"]["f"]["rules"]
    assert rules[0]["condition"] == {"$and": [{"email": {"$in": [h("x@y.z")]}}, {"country": "DE"}]}
    assert rules[1]["condition"] == {"email": h("boss@y.z"), "plan": {"$ne": "free"}}
    assert rules[2]["condition"] == {"$not": {"email": {"$inGroup": "vips"}}}
    assert rules[3]["condition"] == {"email": {"$exists": True}}
    assert out["savedGroups"] == {"vips": [h("v@y.z")], "regions": ["DE"]}
    assert out["features"]["g"] == {"defaultValue": 1} and out["dateUpdated"] == "now"
    # The original is not changed, and a hashed attribute value matches the hashed condition.
    assert payload["savedGroups"]["vips"] == ["v@y.z"]
    groups = out["savedGroups"]
    assert eval_condition(rules[1]["condition"], {"email": h("boss@y.z"), "plan": "pro"}, groups)
    assert not eval_condition(rules[2]["condition"], {"email": h("v@y.z")}, groups)
    assert eval_condition(rules[2]["condition"], {"email": h("x@y.z")}, groups)


def test_private_payload__without_secure_attributes_or_in_full_mode__unchanged() -> None:
    payload = {"features": {"f": {"defaultValue": 1, "rules": [{"condition": {"email": "a"}, "force": 2}]}}}
    assert private_payload(payload, ClientPolicy(mode="private", salt=SALT)) == payload
    assert private_payload(payload, ClientPolicy(mode="full", salt=SALT, secure_attributes=frozenset({"email"}))) \
        == payload


def test_private_condition_problems__only_equality_and_membership_may_be_hashed() -> None:
    assert private_condition_problems({"email": {"$in": ["a"]}, "$or": [{"id": "x"}, {"id": {"$nin": ["y"]}}]}) == []
    assert private_condition_problems({"email": {"$regex": "@x"}}) == ["email: $regex"]
    assert private_condition_problems({"$and": [{"age": {"$gt": 3}}], "v": {"$not": {"$vlt": "1"}}}) == [
        "age: $gt", "v: $vlt"]


def test_secure_attributes__of_id_lists_and_conditions() -> None:
    assert condition_attributes({"$or": [{"a": 1}, {"$not": {"b": 2}}], "c": {"$in": [1]}}) == {"a", "b", "c"}
    assert secure_attributes_of([("ids", "email", {}), ("condition", "", {"account": "x"})]) == {"email", "account"}


def test_client_policy__json_round_trip__unknown_mode_serves_nothing() -> None:
    assert ClientPolicy.from_json(POLICY.to_json()) == POLICY
    assert ClientPolicy.from_json(None) == ClientPolicy()
    assert ClientPolicy.from_json({"mode": "later"}).mode == "remote"
