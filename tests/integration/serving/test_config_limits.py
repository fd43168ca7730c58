"""Configuration cannot take serving down: conditions and json values beyond the documented
limits are refused at the API (naming the field), values at the limits are served, and a
too-deep condition already stored (written around the services) costs only its own rule."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed
from flags import services
from flags.engine import limits
from flags.models import Flag, FlagState, Rule, Segment, Variant
from flags.rule_sets import flag_rules_replace
from tests.integration.serving.conftest import sdk_post

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="limits", via="system")
BULK = "/ofrep/v1/evaluate/flags"
SINGLE = "/ofrep/v1/evaluate/flags/{}"
CONTEXT = {"context": {"targetingKey": "u-1", "plan": "pro", "country": "DE"}}


def nested_condition(depth: int) -> dict[str, Any]:
    """A condition exactly `depth` levels deep (objects and lists) that matches `plan: pro`:
    `$and` lists of one condition around `{"plan": "pro"}` (1 level) or
    `{"plan": {"$eq": "pro"}}` (2 levels)."""
    condition: dict[str, Any] = {"plan": "pro"} if depth % 2 else {"plan": {"$eq": "pro"}}
    for _ in range((depth - 1) // 2):
        condition = {"$and": [condition]}
    return condition


def nested_value(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    """Production with three served flags besides the ones a test adds."""
    env = environments["production"]
    for key in ("checkout", "banner", "search"):
        flag = services.flag_create(actor=ACTOR, key=key)
        services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, kind="force", variant="on",
                                  condition={"country": "DE"})
        services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    return env


def _refresh(env: Environment) -> Environment:
    env.refresh_from_db()
    return env


def _assert_every_flag_served(client: Client, env: Environment) -> dict[str, Any]:
    """OFREP bulk, each single flag and the GrowthBook payload all answer 200."""
    env = _refresh(env)
    bulk = sdk_post(client, BULK, CONTEXT, env.server_key)
    assert bulk.status_code == 200, bulk.content[:300]
    flags = {item["key"]: item for item in bulk.json()["flags"]}
    for key in flags:
        single = sdk_post(client, SINGLE.format(key), CONTEXT, env.server_key)
        assert single.status_code == 200, (key, single.content[:300])
    assert client.get(f"/api/features/{env.client_key}").status_code == 200
    return flags


def _rules_url(flag: str, env: str = "production") -> str:
    return f"/api/v1/flags/{flag}/environments/{env}/rules"


def test_nested_condition__helper__builds_the_depth_asked() -> None:
    for depth in range(1, 40):
        assert _depth(nested_condition(depth)) == depth


def test_rule_condition__at_the_limit__201_and_every_flag_still_served(
    client: Client, write_client: APIClient, production: Environment
) -> None:
    services.flag_create(actor=ACTOR, key="deep")
    condition = nested_condition(limits.CONDITION_MAX_DEPTH)

    response = write_client.post(_rules_url("deep"), {"kind": "force", "variant": "on", "condition": condition},
                                 format="json")
    assert response.status_code == 201, response.content[:300]
    services.flag_state_update(actor=ACTOR, flag=Flag.objects.get(key="deep"), environment=production, enabled=True)

    flags = _assert_every_flag_served(client, production)
    assert set(flags) == {"checkout", "banner", "search", "deep"}
    assert flags["deep"]["value"] is True and flags["deep"]["reason"] == "TARGETING_MATCH"
    assert all(flags[key]["value"] is True for key in ("checkout", "banner", "search"))


def test_rule_condition__one_level_over_the_limit__400_naming_the_field(
    write_client: APIClient, production: Environment
) -> None:
    services.flag_create(actor=ACTOR, key="deep")
    condition = nested_condition(limits.CONDITION_MAX_DEPTH + 1)

    response = write_client.post(_rules_url("deep"), {"kind": "force", "variant": "on", "condition": condition},
                                 format="json")

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["details"] == {
        "condition": [f"condition: nested deeper than {limits.CONDITION_MAX_DEPTH} levels (objects and lists)."]
    }
    assert not Rule.objects.filter(state__flag__key="deep").exists()


def test_rule_set__condition_over_the_limit__refused_naming_the_item(production: Environment) -> None:
    flag = services.flag_create(actor=ACTOR, key="deep")
    rules = [{"kind": "force", "variant": "on", "condition": {"plan": "pro"}},
             {"kind": "force", "variant": "on", "condition": nested_condition(limits.CONDITION_MAX_DEPTH + 1)}]

    with pytest.raises(ValidationFailed) as refused:
        flag_rules_replace(actor=ACTOR, flag=flag, environment=production, rules=rules)

    assert isinstance(refused.value.details, dict)
    assert list(refused.value.details) == ["rules[1].condition"]
    assert "nested deeper than" in refused.value.details["rules[1].condition"][0]
    assert not Rule.objects.filter(state__flag=flag).exists()


def test_json_variant__at_the_limit__201_and_served_everywhere(
    client: Client, write_client: APIClient, production: Environment, environments: dict[str, Environment]
) -> None:
    value = nested_value(limits.VALUE_MAX_DEPTH)
    body = {"key": "layout", "value_type": "json",
            "variants": [{"key": "plain", "value": {}}, {"key": "deep", "value": value}], "default_variant": "deep"}

    response = write_client.post("/api/v1/flags", body, format="json")
    assert response.status_code == 201, response.content[:300]
    flag = Flag.objects.get(key="layout")
    for env in environments.values():
        services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)

    assert _assert_every_flag_served(client, production)["layout"]["value"] == value
    assert _assert_every_flag_served(client, environments["staging"])["layout"]["value"] == value


def test_json_variant__one_level_over_the_limit__400_naming_the_variant(
    write_client: APIClient, production: Environment
) -> None:
    deep = nested_value(limits.VALUE_MAX_DEPTH + 1)
    variants = [{"key": "plain", "value": {}}, {"key": "deep", "value": deep}]
    body = {"key": "layout", "value_type": "json", "variants": variants}

    response = write_client.post("/api/v1/flags", body, format="json")

    assert response.status_code == 400, response.content[:300]
    assert response.json()["details"] == {
        "variants[1].value": [f"nested deeper than {limits.VALUE_MAX_DEPTH} levels (objects and lists)."]
    }
    assert not Flag.objects.filter(key="layout").exists()


def test_json_variant__changed_to_one_over_the_limit__400(write_client: APIClient, production: Environment) -> None:
    services.flag_create(actor=ACTOR, key="layout", value_type="json", variants=[{"key": "plain", "value": {}}])
    variants = [{"key": "plain", "value": nested_value(limits.VALUE_MAX_DEPTH + 1)}]

    response = write_client.patch("/api/v1/flags/layout", {"variants": variants}, format="json")

    assert response.status_code == 400, response.content[:300]
    assert list(response.json()["details"]) == ["variants[0].value"]
    assert Variant.objects.get(flag__key="layout").value == {}


def _store_rule(flag: Flag, env: Environment, condition: Any, **fields: Any) -> Rule:
    """A rule written with the ORM, around validation, as an old row could be."""
    state = FlagState.objects.get(flag=flag, environment=env)
    rule = Rule.objects.create(state=state, uid="r_stored", kind="force", variant="on", condition=condition,
                               position=0, seed=flag.key, **fields)
    Environment.objects.filter(pk=env.pk).update(config_version=env.config_version + 1)
    return rule


@pytest.mark.parametrize("depth", [300, 600])
def test_stored_condition__far_too_deep__its_rule_never_matches_and_every_other_flag_is_served(
    client: Client, production: Environment, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    flag = services.flag_create(actor=ACTOR, key="old")
    services.flag_rule_create(actor=ACTOR, flag=flag, environment=production, kind="force", variant="on",
                              condition={"plan": "pro"})
    services.flag_state_update(actor=ACTOR, flag=flag, environment=production, enabled=True)
    stored = _store_rule(flag, _refresh(production), nested_condition(depth), description="too deep")
    Rule.objects.filter(state=stored.state).exclude(pk=stored.pk).update(position=1)

    with caplog.at_level(logging.ERROR, logger="flags.mappers"):
        flags = _assert_every_flag_served(client, production)

    assert set(flags) == {"checkout", "banner", "search", "old"}
    assert all(flags[key]["value"] is True for key in ("checkout", "banner", "search"))
    # The stored rule is passed over; the valid rule after it serves.
    assert (flags["old"]["value"], flags["old"]["reason"]) == (True, "TARGETING_MATCH")
    evaluated = sdk_post(client, "/api/v1/evaluate", {"context": CONTEXT["context"], "flags": ["old"]},
                         production.server_key).json()
    assert evaluated["flags"]["old"]["ruleId"] != "r_stored"
    assert any("r_stored" in r.getMessage() and "never matches" in r.getMessage() for r in caplog.records)


def test_stored_segment_condition__too_deep__rules_using_it_never_match(
    client: Client, production: Environment
) -> None:
    Segment.objects.create(key="deep", kind=Segment.Kind.CONDITION, condition=nested_condition(500))
    flag = services.flag_create(actor=ACTOR, key="old")
    services.flag_state_update(actor=ACTOR, flag=flag, environment=production, enabled=True)
    _store_rule(flag, _refresh(production), {}, segments=["deep"])

    flags = _assert_every_flag_served(client, production)

    assert (flags["old"]["value"], flags["old"]["variant"]) == (False, "off")
    assert all(flags[key]["value"] is True for key in ("checkout", "banner", "search"))


def test_stored_prerequisite_condition__too_deep__gates_its_flag_only(
    client: Client, production: Environment
) -> None:
    flag = services.flag_create(actor=ACTOR, key="old")
    services.flag_state_update(actor=ACTOR, flag=flag, environment=production, enabled=True, default_variant="on")
    Flag.objects.filter(pk=flag.pk).update(prerequisites=[{"flag": "checkout", "condition": nested_condition(400)}])
    _store_rule(flag, _refresh(production), {"plan": "pro"},
                prerequisites=[{"flag": "banner", "condition": nested_condition(400)}])

    flags = _assert_every_flag_served(client, production)

    assert "value" not in flags["old"]  # gated: the provider falls back to the code default
    assert all(flags[key]["value"] is True for key in ("checkout", "banner", "search"))


def test_stored_json_variant__far_too_deep__flag_left_out_and_the_others_served(
    client: Client, production: Environment, environments: dict[str, Environment],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flag = services.flag_create(actor=ACTOR, key="layout", value_type="json", variants=[{"key": "plain", "value": {}}])
    Variant.objects.filter(flag=flag).update(value=nested_value(300))
    Environment.objects.update(config_version=1000)

    with caplog.at_level(logging.ERROR, logger="flags.mappers"):
        for env in environments.values():
            flags = _assert_every_flag_served(client, env)
            assert "layout" not in flags
    assert set(_assert_every_flag_served(client, production)) == {"checkout", "banner", "search"}
    assert any("layout" in r.getMessage() for r in caplog.records)
