"""Replacing a flag's rule set in one environment (`flags.rule_sets.flag_rules_replace`), called
directly: the whole set is checked first, then written in one transaction with the audit
entries of the single-rule writes."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import Conflict, ValidationFailed
from flags import services
from flags.models import Flag, Rule
from flags.rule_sets import flag_rules_replace
from tests.integration.conftest_admin import snapshot

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
PM = Actor(label="pm", via="admin")


@pytest.fixture
def flag(environments: dict[str, Environment]) -> Flag:
    return services.flag_create(actor=SYSTEM, key="new-checkout")


@pytest.fixture
def prod(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


def _rules(flag: Flag, env: Environment) -> list[Rule]:
    return list(Rule.objects.filter(state__flag=flag, state__environment=env).order_by("position"))


def _actions() -> list[str]:
    return list(AuditEntry.objects.filter(actor_label="pm").order_by("id").values_list("action", flat=True))


def _three(flag: Flag, env: Environment) -> list[Rule]:
    return [
        services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="force", variant="on",
                                  condition={"plan": "pro"}),
        services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="rollout", variant="on",
                                  coverage=0.1),
        services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="force", variant="off"),
    ]


def test_replace__change_add_drop_and_reorder__written_in_the_given_order_and_audited(
    flag: Flag, prod: Environment
) -> None:
    first, second, third = _three(flag, prod)
    versions = Environment.objects.get(pk=prod.pk).config_version

    result = flag_rules_replace(actor=PM, flag=flag, environment=prod, rules=[
        {"id": second.uid, "coverage": 0.3},
        {"kind": "force", "variant": "off", "condition": {"country": "DE"}},
        {"id": first.uid},
    ])

    rules = _rules(flag, prod)
    assert [r.uid for r in result] == [r.uid for r in rules]
    assert rules[0].uid == second.uid and rules[0].coverage == pytest.approx(0.3)
    assert (rules[1].variant, rules[1].condition) == ("off", {"country": "DE"})
    assert rules[2].uid == first.uid and rules[2].condition == {"plan": "pro"}
    assert not Rule.objects.filter(pk=third.pk).exists()
    assert _actions() == ["flag.rule_update", "flag.rule_create", "flag.rule_delete", "flag.rule_reorder"]
    assert all(e.environment == "production" for e in AuditEntry.objects.filter(actor_label="pm"))
    assert Environment.objects.get(pk=prod.pk).config_version > versions


def test_replace__same_rules_in_the_same_order__writes_nothing(flag: Flag, prod: Environment) -> None:
    first, second, third = _three(flag, prod)
    before = snapshot()

    flag_rules_replace(actor=PM, flag=flag, environment=prod, rules=[
        {"id": first.uid, "condition": {"plan": "pro"}, "variant": "on"},  # the values it already has
        {"id": second.uid},
        {"id": third.uid},
    ])

    assert snapshot() == before
    assert _actions() == []


def test_replace__several_bad_items__every_error_named_by_index_and_nothing_written(
    flag: Flag, prod: Environment
) -> None:
    first, *_ = _three(flag, prod)
    before = snapshot()

    with pytest.raises(ValidationFailed) as caught:
        flag_rules_replace(actor=PM, flag=flag, environment=prod, rules=[
            {"id": first.uid, "condition": {"plan": {"$whatever": 1}}},
            {"kind": "force", "variant": "on"},
            {"kind": "force", "variant": "maybe"},
            {"kind": "rollout", "variant": "on", "colour": "red"},
        ])

    assert caught.value.message == "The rule is not valid."
    details = caught.value.details
    assert any("unknown operator '$whatever'" in m for m in details["rules[0].condition"])
    assert "Unknown variant 'maybe'." in details["rules[2].variant"]
    assert details["rules[3].colour"] == ["A rule has no field 'colour' that can be set."]
    assert not any(key.startswith("rules[1]") for key in details)
    assert snapshot() == before


def test_replace__unknown_or_repeated_id__refused(flag: Flag, prod: Environment) -> None:
    first, *_ = _three(flag, prod)
    other = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=Environment.objects.get(key="staging"),
                                      kind="force", variant="on")

    with pytest.raises(ValidationFailed) as caught:
        flag_rules_replace(actor=PM, flag=flag, environment=prod,
                           rules=[{"id": first.uid}, {"id": first.uid}, {"id": other.uid}])

    assert caught.value.details == {
        "rules[1].id": [f"Rule '{first.uid}' appears twice."],
        "rules[2].id": [f"Rule '{other.uid}' is not a rule of this flag in production."],
    }
    assert len(_rules(flag, prod)) == 3


def test_replace__a_rule_added_since_the_caller_read__refused_instead_of_deleted(
    flag: Flag, prod: Environment
) -> None:
    first, second, third = _three(flag, prod)
    read = [first.uid, second.uid, third.uid]
    added = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=prod, kind="force", variant="off")

    with pytest.raises(Conflict) as caught:
        flag_rules_replace(actor=PM, flag=flag, environment=prod, rules=[{"id": uid} for uid in read],
                           replacing=read)

    assert caught.value.code == "rules_changed"
    assert caught.value.details == {"rules": [f"New rule: {added.uid}."]}
    assert Rule.objects.filter(pk=added.pk).exists()


def test_replace__empty_set__deletes_every_rule_of_that_environment_only(
    flag: Flag, prod: Environment, environments: dict[str, Any]
) -> None:
    _three(flag, prod)
    kept = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["staging"], kind="force",
                                     variant="on")

    assert flag_rules_replace(actor=PM, flag=flag, environment=prod, rules=[]) == []

    assert _rules(flag, prod) == []
    assert list(Rule.objects.values_list("uid", flat=True)) == [kept.uid]
    assert _actions() == ["flag.rule_delete"] * 3
