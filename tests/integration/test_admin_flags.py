"""The flag admin, driven through the test client: every save reaches the services, and every
rejected save re-renders the form with a readable message and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from flags import services
from flags.models import Flag, FlagState, Rule
from tests.integration.conftest_admin import (
    add_inline_form,
    errors_of,
    field_errors,
    flag_add_data,
    read_form,
    snapshot,
    text_of,
)

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _flag(key: str = "new-checkout", **kwargs: Any) -> Flag:
    return services.flag_create(actor=SYSTEM, key=key, **kwargs)


def _state(flag: Flag, env: str = "production") -> FlagState:
    return FlagState.objects.get(flag=flag, environment__key=env)


def _flag_form(client: Client, flag: Flag) -> tuple[str, dict[str, Any]]:
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    return url, read_form(client, url, "flag_form")


def _state_form(client: Client, state: FlagState) -> tuple[str, dict[str, Any]]:
    url = reverse("admin:flags_flagstate_change", args=[state.pk])
    return url, read_form(client, url, "flagstate_form")


def _rule(**values: Any) -> dict[str, Any]:
    return {"position": "", "kind": "force", "enabled": "on", "description": "", "condition": "", "variant": "on",
            "percentage": "100", "split": "", "hash_attribute": "id", "experiment_key": "", "prerequisites": "",
            "seed": "", "fallback_attribute": "", "namespace": "", "phase": "", **values}


# Creating flags ---------------------------------------------------------------------------


def test_flag_add__boolean_without_variants__off_on_created_by_service_and_audited_as_admin(
    admin_client: Client, admin_user: User, environments: Any
) -> None:
    response = admin_client.post(reverse("admin:flags_flag_add"), flag_add_data(tags="checkout, growth"))

    assert response.status_code == 302, errors_of(response)
    flag = Flag.objects.get(key="new-checkout")
    assert [v.key for v in flag.variants.all()] == ["off", "on"]
    assert flag.tags == ["checkout", "growth"]
    states = {s.environment.key: s for s in flag.states.select_related("environment")}
    assert set(states) == {"production", "staging"}
    assert all(not s.enabled and s.default_variant == "off" and s.off_variant == "off" for s in states.values())
    entry = AuditEntry.objects.get(action="flag.create", object_key="new-checkout")
    assert (entry.actor_label, entry.actor_id, entry.via) == ("boss", admin_user.pk, "admin")


def test_flag_add__string_variants__created_in_the_order_typed(admin_client: Client, environments: Any) -> None:
    data = flag_add_data("button-color", value_type="string", variants=[("blue", "Blue"), ("green", "Green")],
                         default_variant="green")

    response = admin_client.post(reverse("admin:flags_flag_add"), data)

    assert response.status_code == 302, errors_of(response)
    flag = Flag.objects.get(key="button-color")
    assert [(v.key, v.value) for v in flag.variants.all()] == [("blue", "Blue"), ("green", "Green")]
    assert _state(flag).default_variant == "green"
    assert _state(flag).off_variant == "blue"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (flag_add_data("bad key!"), "letters, digits"),
        (flag_add_data("price", value_type="number", variants=[("a", "ten")]), "Use a number"),
        (flag_add_data("payload", value_type="json", variants=[("a", "{oops")]), "This is not valid JSON"),
        (flag_add_data("color", value_type="string", variants=[("a", "x"), ("a", "y")]), "duplicate data for key"),
        (flag_add_data("color", value_type="string"), "A flag needs at least one variant."),
        (flag_add_data(default_variant="missing"), "Unknown variant 'missing'."),
        (flag_add_data(prerequisites="[{\"flag\": \"nope\"}]"), "Unknown flag 'nope'."),
        (flag_add_data(prerequisites="[{\"flag\": "), "This is not valid JSON"),
    ],
    ids=["bad-key", "number-value", "json-value", "duplicate-variant", "no-variants", "unknown-default",
         "unknown-prerequisite", "prerequisites-bad-json"],
)
def test_flag_add__invalid_input__form_shows_error_and_nothing_is_written(
    admin_client: Client, environments: Any, data: dict[str, Any], message: str
) -> None:
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_flag_add"), data)

    assert response.status_code == 200
    assert any(message in error for error in errors_of(response)), errors_of(response)
    assert snapshot() == before


def test_flag_add__duplicate_key__form_shows_error_and_nothing_is_written(
    admin_client: Client, environments: Any
) -> None:
    _flag()
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_flag_add"), flag_add_data())

    assert response.status_code == 200
    assert field_errors(response, "key") == ["Flag with this Key already exists."]
    assert snapshot() == before


# Editing flags ----------------------------------------------------------------------------


def test_flag_change__toggle_in_production__enabled_there_only_and_audited_as_toggle(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()
    url, data = _flag_form(admin_client, flag)
    assert data["states-0-default_variant"] == "off"  # production comes first
    data["states-0-enabled"] = "on"
    versions = dict(Environment.objects.values_list("key", "config_version"))

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert _state(flag, "production").enabled is True
    assert _state(flag, "staging").enabled is False
    entry = AuditEntry.objects.get(action="flag.toggle")
    assert (entry.environment, entry.via) == ("production", "admin")
    assert entry.diff["environments.production.enabled"] == {"before": False, "after": True}
    assert Environment.objects.get(key="production").config_version == versions["production"] + 1


def test_flag_change__descriptive_fields_and_new_variant__saved_through_flag_update(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag("color", value_type="string", variants=[{"key": "blue", "value": "Blue"}])
    url, data = _flag_form(admin_client, flag)
    data.update(description="Colour of the buy button", owner="growth")
    add_inline_form(data, "variants", {"key": "green", "name": "", "value": "Green"})

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    flag.refresh_from_db()
    assert (flag.description, flag.owner) == ("Colour of the buy button", "growth")
    assert [(v.key, v.value) for v in flag.variants.all()] == [("blue", "Blue"), ("green", "Green")]
    assert AuditEntry.objects.filter(action="flag.update", via="admin").count() == 1


def test_flag_change__unchanged_form__writes_no_audit_entry(admin_client: Client, environments: Any) -> None:
    flag = _flag("payload", value_type="json", variants=[{"key": "a", "value": {"x": [1, 2.5]}}])
    url, data = _flag_form(admin_client, flag)
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert snapshot() == before


def test_flag_change__metadata__saved_through_flag_update_and_history_in_words(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag("color", metadata={"release": "1.0.1"})
    url, data = _flag_form(admin_client, flag)
    assert json.loads(data["metadata"]) == {"release": "1.0.1"}
    data["metadata"] = json.dumps({"release": "1.0.2", "replicas": 2, "pii": False})

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    flag.refresh_from_db()
    assert flag.metadata == {"release": "1.0.2", "replicas": 2, "pii": False}
    entry = AuditEntry.objects.get(action="flag.update", via="admin")
    assert entry.after is not None and entry.after["metadata"] == flag.metadata
    history = text_of(admin_client.get(reverse("admin:flags_flag_history", args=[flag.pk])))
    assert 'pii false, release "1.0.2", replicas 2' in history and 'release "1.0.1"' in history


def test_flag_change__invalid_metadata__errors_on_the_field_and_nothing_is_written(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag("color", metadata={"release": "1.0.1"})
    url, data = _flag_form(admin_client, flag)
    data["metadata"] = json.dumps({"type": "x", "nested": {"a": 1}})
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    errors = field_errors(response, "metadata")
    assert any(e.startswith("type: 'type' is reserved") for e in errors), errors
    assert "nested: A value is a string, a number or a boolean, not an object." in errors
    assert snapshot() == before
    data["metadata"] = "[1, 2]"
    assert field_errors(admin_client.post(url, data), "metadata")
    assert Flag.objects.get(key="color").metadata == {"release": "1.0.1"}


def test_flag_add__with_metadata__created_by_service(admin_client: Client, environments: Any) -> None:
    data = flag_add_data(key="with-metadata")
    data["metadata"] = json.dumps({"jira": "PAY-42", "weight": 0.5})

    response = admin_client.post(reverse("admin:flags_flag_add"), data)

    assert response.status_code == 302, errors_of(response)
    assert Flag.objects.get(key="with-metadata").metadata == {"jira": "PAY-42", "weight": 0.5}


def test_flag_change__prerequisite_cycle__form_shows_cycle_and_nothing_is_written(
    admin_client: Client, environments: Any
) -> None:
    parent = _flag("parent")
    _flag("child", prerequisites=[{"flag": "parent"}])
    url, data = _flag_form(admin_client, parent)
    data["prerequisites"] = json.dumps([{"flag": "child", "condition": {"value": True}}])
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert field_errors(response, "prerequisites") in (["parent -> child -> parent"], ["child -> parent -> child"])
    assert "Prerequisites would form a cycle." in errors_of(response)
    assert snapshot() == before
    assert Flag.objects.get(key="parent").prerequisites == []


def test_flag_change__removing_a_served_variant__error_on_variants_and_nothing_is_written(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()
    url, data = _flag_form(admin_client, flag)
    data["variants-0-DELETE"] = "on"  # 'off' is served when the flag is off
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "Variant 'off' is served by a state or rule." in errors_of(response)
    assert snapshot() == before


def test_flag_change__unknown_served_variant_in_state__form_error(admin_client: Client, environments: Any) -> None:
    flag = _flag()
    url, data = _flag_form(admin_client, flag)
    data["states-1-default_variant"] = "maybe"

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert any("maybe is not one of the available choices" in e for e in field_errors(response, "default_variant",
                                                                                        "states", 1))


# Rules ------------------------------------------------------------------------------------


def test_flagstate_change__rollout_rule_with_condition__saved_with_coverage_share_and_audited(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()
    services.segment_create(actor=SYSTEM, key="beta", condition={"beta": True})
    url, data = _state_form(admin_client, _state(flag))
    data["enabled"] = "on"
    add_inline_form(data, "rules", _rule(kind="rollout", percentage="25", segments=["beta"],
                                         condition='{"country": {"$in": ["DE", "FR"]}}'))

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    rule = Rule.objects.get()
    assert (rule.kind, rule.variant, rule.coverage, rule.segments) == ("rollout", "on", 0.25, ["beta"])
    assert rule.condition == {"country": {"$in": ["DE", "FR"]}}
    assert _state(flag).enabled is True
    assert list(AuditEntry.objects.filter(via="admin").values_list("action", flat=True).order_by("id")) == [
        "flag.toggle", "flag.rule_create"]


def test_flagstate_change__experiment_split__weights_stored_as_shares(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag("layout", value_type="string", variants=[{"key": "control", "value": "a"},
                                                          {"key": "treatment", "value": "b"}])
    url, data = _state_form(admin_client, _state(flag))
    add_inline_form(data, "rules", _rule(kind="experiment", variant="", split="control: 40, treatment: 60",
                                         experiment_key="layout-test"))

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    rule = Rule.objects.get()
    assert (rule.variations, rule.weights, rule.experiment_key) == (["control", "treatment"], [0.4, 0.6],
                                                                    "layout-test")


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (_rule(condition='{"country": "DE",}'), "condition", "This is not valid JSON"),
        (_rule(condition='["DE"]'), "condition", "Write a JSON object"),
        (_rule(condition='{"country": {"$like": "D%"}}'), "condition", "unknown operator '$like'"),
        (_rule(kind="experiment", variant="", split="off: 50, on: 40"), "split",
         "must add up to 100 % (it adds up to 90 %)"),
        (_rule(kind="experiment", variant="", split="off: 50, maybe: 50"), "split", "Unknown variant 'maybe'."),
        (_rule(kind="experiment", variant="", split="off fifty"), "split", "Could not read 'off fifty'"),
        (_rule(kind="rollout", percentage="150"), "percentage", "Give a percentage between 0 and 100."),
        (_rule(kind="rollout", percentage="-1"), "percentage", "Give a percentage between 0 and 100."),
        (_rule(variant=""), "variant", "Pick the variant this rule serves."),
        (_rule(variant="maybe"), "variant", "maybe is not one of the available choices"),
        (_rule(prerequisites='[{"flag": "ghost"}]'), "prerequisites", "Unknown flag 'ghost'."),
    ],
    ids=["bad-json", "not-an-object", "unknown-operator", "weights-sum", "unknown-split-variant", "unreadable-split",
         "coverage-above", "coverage-below", "no-variant", "unknown-variant", "unknown-prerequisite"],
)
def test_flagstate_change__invalid_rule__form_shows_error_and_nothing_is_written(
    admin_client: Client, environments: Any, rule: dict[str, Any], field: str, message: str
) -> None:
    flag = _flag()
    url, data = _state_form(admin_client, _state(flag))
    index = add_inline_form(data, "rules", rule)
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    errors = field_errors(response, field, "rules", index)
    assert any(message in e for e in errors), errors_of(response)
    assert snapshot() == before


def test_flagstate_change__second_rule_rejected_by_service__first_rule_and_toggle_rolled_back(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()
    url, data = _state_form(admin_client, _state(flag))
    data["enabled"] = "on"
    add_inline_form(data, "rules", _rule(condition='{"plan": "pro"}'))
    bad = add_inline_form(data, "rules", _rule(condition='{"plan": {"$whatever": 1}}'))
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert any("unknown operator '$whatever'" in e for e in field_errors(response, "condition", "rules", bad))
    assert "The rule is not valid." in errors_of(response)
    assert snapshot() == before
    assert _state(flag).enabled is False


def test_flagstate_change__reorder_edit_and_delete_rules__each_through_its_service(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()
    prod = Environment.objects.get(key="production")
    first = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=prod, kind="force", variant="on",
                                      condition={"plan": "pro"})
    second = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=prod, kind="rollout", variant="on",
                                       coverage=0.1)
    third = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=prod, kind="force", variant="off")
    url, data = _state_form(admin_client, _state(flag))
    assert data["rules-1-percentage"] == "10"
    data["rules-0-position"], data["rules-1-position"] = "1", "0"  # swap the first two
    data["rules-1-percentage"] = "30"
    data["rules-2-DELETE"] = "on"

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert list(Rule.objects.order_by("position").values_list("uid", flat=True)) == [second.uid, first.uid]
    assert Rule.objects.get(pk=second.pk).coverage == pytest.approx(0.3)
    assert not Rule.objects.filter(pk=third.pk).exists()
    actions = list(AuditEntry.objects.filter(via="admin").order_by("id").values_list("action", flat=True))
    assert actions == ["flag.rule_update", "flag.rule_delete", "flag.rule_reorder"]


# Archive and history ----------------------------------------------------------------------


def _action(client: Client, action: str, *flags: Flag, confirm: bool) -> Any:
    data = {"action": action, "_selected_action": [str(f.pk) for f in flags]}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse("admin:flags_flag_changelist"), data)


def test_flag_archive_action__asks_for_confirmation_first__then_archives_through_service(
    admin_client: Client, environments: Any
) -> None:
    flag = _flag()

    asked = _action(admin_client, "archive_flags", flag, confirm=False)

    assert asked.status_code == 200
    assert "Archive these flags?" in text_of(asked)
    assert Flag.objects.get(pk=flag.pk).archived_at is None

    done = _action(admin_client, "archive_flags", flag, confirm=True)

    assert done.status_code == 302
    assert Flag.objects.get(pk=flag.pk).archived_at is not None
    assert AuditEntry.objects.filter(action="flag.archive", via="admin").count() == 1

    _action(admin_client, "restore_flags", flag, confirm=True)
    assert Flag.objects.get(pk=flag.pk).archived_at is None


def test_flag_archive_action__flag_required_by_another__refused_with_message(
    admin_client: Client, environments: Any
) -> None:
    parent = _flag("parent")
    _flag("child", prerequisites=[{"flag": "parent"}])

    response = _action(admin_client, "archive_flags", parent, confirm=True)

    assert response.status_code == 302
    assert Flag.objects.get(pk=parent.pk).archived_at is None
    page = admin_client.get(reverse("admin:flags_flag_changelist"))
    assert "Other flags require this flag." in text_of(page)


def test_flag_history__after_a_toggle__shows_who_and_the_diff(admin_client: Client, environments: Any) -> None:
    flag = _flag()
    services.flag_state_update(actor=Actor(label="pm-anna", via="admin"), flag=flag,
                               environment=Environment.objects.get(key="staging"), enabled=True)

    response = admin_client.get(reverse("admin:flags_flag_history", args=[flag.pk]))

    assert response.status_code == 200
    page = text_of(response)
    assert "pm-anna" in page
    assert "flag.toggle" in page
    assert "environments › staging › enabled" in page
    content = response.content.decode()
    assert '<pre class="diff-before' in content and ">false</pre>" in content and ">true</pre>" in content


def test_flag_changelist__shows_per_environment_status(admin_client: Client, environments: Any) -> None:
    flag = _flag()
    services.flag_state_update(actor=SYSTEM, flag=flag, environment=Environment.objects.get(key="production"),
                               enabled=True)

    response = admin_client.get(reverse("admin:flags_flag_changelist"))

    assert response.status_code == 200
    assert "production on" in " ".join(text_of(response).split())
