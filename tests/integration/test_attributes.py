"""Attribute definitions through the management API and the admin: every write validated,
audited and refused as a whole, nothing served changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base.models import ApiToken, Environment
from flags import attributes, services
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import AttributeDefinition, Flag, FlagState, Rule, Segment
from tests.integration.base.roles import read_only_user, token_client
from tests.integration.conftest_admin import add_inline_form, errors_of, read_form

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
URL = "/api/v1/attributes"
COUNTRY: dict[str, Any] = {"name": "country", "type": "string", "allowed_values": ["DE", "FR", "US"],
           "description": "ISO country code"}


def _state() -> tuple[list[dict[str, Any]], int, list[int]]:
    rows = [dict(row) for row in
            AttributeDefinition.objects.order_by("name").values("name", "type", "allowed_values", "description")]
    versions = list(Environment.objects.order_by("key").values_list("config_version", flat=True))
    return rows, AuditEntry.objects.count(), versions


# The management API ---------------------------------------------------------------------------


def test_api__create_read_list_change_delete__each_write_audited_and_nothing_served_changes(
    write_client: APIClient, environments: Any
) -> None:
    versions = dict(Environment.objects.values_list("key", "config_version"))

    created = write_client.post(URL, COUNTRY, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() == COUNTRY
    assert write_client.post(URL, {"name": "age", "type": "number"}, format="json").status_code == 201
    assert write_client.get(f"{URL}/country").json() == COUNTRY
    listed = write_client.get(URL).json()
    assert listed["count"] == 2 and [a["name"] for a in listed["results"]] == ["age", "country"]
    assert listed["results"][0] == {"name": "age", "type": "number", "allowed_values": [], "description": ""}

    changed = write_client.patch(f"{URL}/country", {"allowed_values": ["DE", "FR", "NL"]}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json() == {**COUNTRY, "allowed_values": ["DE", "FR", "NL"]}

    assert write_client.delete(f"{URL}/age").status_code == 204
    assert write_client.get(f"{URL}/age").status_code == 404

    entries = list(AuditEntry.objects.filter(object_type="attribute").order_by("id"))
    assert [(e.action, e.object_key) for e in entries] == [
        ("attribute.create", "country"), ("attribute.create", "age"), ("attribute.update", "country"),
        ("attribute.delete", "age")]
    assert entries[2].diff["allowed_values"] == {"before": ["DE", "FR", "US"], "after": ["DE", "FR", "NL"]}
    assert dict(Environment.objects.values_list("key", "config_version")) == versions


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", URL, {**COUNTRY, "values": ["DE"]}, "values"),
        ("post", URL, {"name": "plan", "kind": "string"}, "kind"),
        ("post", URL, {"type": "string"}, "name"),
        ("post", URL, {"name": "bad name"}, "name"),
        ("post", URL, {"name": "plan", "type": "date"}, "type"),
        ("post", URL, {"name": "age", "type": "number", "allowed_values": [1, "two"]}, "allowed_values[1]"),
        ("post", URL, {"name": "beta", "type": "boolean", "allowed_values": [True, False]}, "allowed_values"),
        ("post", URL, {"name": "plan", "allowed_values": ["x"] * 501}, "allowed_values"),
        ("post", URL, {"name": "plan", "description": "x" * 2001}, "description"),
        ("patch", f"{URL}/country", {"name": "land"}, "name"),
        ("patch", f"{URL}/country", {"type": "number"}, "allowed_values[0]"),
        ("patch", f"{URL}/country", {"allowed_values": "DE"}, "allowed_values"),
    ],
    ids=["unknown-field", "unknown-field-2", "no-name", "bad-name", "bad-type", "number-values", "boolean-values",
         "too-many-values", "long-description", "rename", "type-against-kept-values", "values-not-a-list"],
)
def test_api__bad_input__400_naming_the_field_and_nothing_written(
    write_client: APIClient, environments: Any, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    before = _state()

    response = getattr(write_client, method)(path, body, format="json")

    assert response.status_code == 400, response.json()
    payload = response.json()
    assert payload["code"] == "validation_error" and field in payload["details"], payload
    assert _state() == before


def test_api__duplicate_name__409_and_unknown_name__404(write_client: APIClient, environments: Any) -> None:
    attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    before = _state()

    duplicate = write_client.post(URL, {"name": "country"}, format="json")
    missing = write_client.patch(f"{URL}/nope", {"description": "x"}, format="json")

    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_key")
    assert (missing.status_code, missing.json()["code"]) == (404, "attribute_not_found")
    assert write_client.delete(f"{URL}/nope").status_code == 404
    assert _state() == before


def test_api__roles__read_only_reads_and_is_refused_writes(environments: Any) -> None:
    attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    reader = token_client(read_only_user(), ApiToken.Scope.WRITE)
    before = _state()

    assert reader.get(URL).status_code == 200
    for method, path, body in (("post", URL, {"name": "plan"}), ("patch", f"{URL}/country", {"description": "x"}),
                               ("delete", f"{URL}/country", {})):
        response = getattr(reader, method)(path, body, format="json")
        assert response.status_code == 403, (method, response.json())
        assert response.json()["details"]["action"].startswith("attribute.")
    assert _state() == before


def test_api__owner_may_define_but_not_delete__delete_refused(environments: Any) -> None:
    owner = User.objects.create_user("pm", password="pw-pm-12345", is_staff=True)
    owner.user_permissions.set(Permission.objects.filter(
        codename__in=["view_attributedefinition", "add_attributedefinition", "change_attributedefinition"]))
    client = token_client(owner)

    assert client.post(URL, COUNTRY, format="json").status_code == 201
    refused = client.delete(f"{URL}/country")

    assert refused.status_code == 403 and refused.json()["details"] == {"action": "attribute.delete"}
    assert AttributeDefinition.objects.filter(name="country").exists()


# The admin ----------------------------------------------------------------------------------


def _add_data(**values: Any) -> dict[str, Any]:
    return {"name": "app_version", "type": "semver", "allowed_values": "1.0.0\n2.0.0\n", "description": "", **values}


def test_admin__create_number_attribute__values_read_as_numbers_and_audited_as_admin(
    admin_client: Client, environments: Any
) -> None:
    response = admin_client.post(reverse("admin:flags_attributedefinition_add"),
                                 _add_data(name="age", type="number", allowed_values="18\n21.5\n65"))

    assert response.status_code == 302, errors_of(response)
    assert AttributeDefinition.objects.get(name="age").allowed_values == [18, 21.5, 65]
    entry = AuditEntry.objects.get(action="attribute.create", object_key="age")
    assert entry.via == "admin"
    page = admin_client.get(reverse("admin:flags_attributedefinition_changelist")).content.decode()
    assert "18, 21.5, 65" in page


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"allowed_values": "1.0.0\nlatest"}, "'latest' is not a version such as \"1.2.3\"."),
        ({"type": "number", "allowed_values": "1\nmany"}, "'many' is not a number."),
        ({"name": "$where"}, "letters, digits"),
        ({"type": "boolean", "allowed_values": "true"}, "takes no list of allowed values"),
    ],
)
def test_admin__invalid_definition__form_shows_error_and_nothing_is_written(
    admin_client: Client, environments: Any, values: dict[str, Any], message: str
) -> None:
    before = _state()

    response = admin_client.post(reverse("admin:flags_attributedefinition_add"), _add_data(**values))

    assert response.status_code == 200
    assert any(message in error for error in errors_of(response)), errors_of(response)
    assert _state() == before


def test_admin__change_and_delete__through_the_services(admin_client: Client, environments: Any) -> None:
    attribute = attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    url = reverse("admin:flags_attributedefinition_change", args=[attribute.pk])
    data = read_form(admin_client, url, "attributedefinition_form")
    assert data["allowed_values"] == "DE\nFR\nUS"
    data["allowed_values"] = "DE\nFR\nUS\nNL"

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert AttributeDefinition.objects.get(pk=attribute.pk).allowed_values == ["DE", "FR", "US", "NL"]
    delete = admin_client.post(reverse("admin:flags_attributedefinition_delete", args=[attribute.pk]), {"post": "yes"})
    assert delete.status_code == 302
    assert not AttributeDefinition.objects.exists()
    assert list(AuditEntry.objects.filter(object_type="attribute").order_by("id").values_list("action", "via")) == [
        ("attribute.create", "system"), ("attribute.update", "admin"), ("attribute.delete", "admin")]
    history = admin_client.get(reverse("admin:flags_attributedefinition_history", args=[attribute.pk]))
    assert history.status_code in (302, 404)  # the object is gone


def test_admin__history__shows_the_audited_changes(admin_client: Client, environments: Any) -> None:
    attribute = attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    attributes.attribute_update(actor=SYSTEM, attribute=attribute, description="Where the user is")

    page = admin_client.get(reverse("admin:flags_attributedefinition_history", args=[attribute.pk]))

    assert page.status_code == 200
    assert "Where the user is" in page.content.decode()


# Conditions on attributes nobody defined ------------------------------------------------------------


def test_undefined_attribute__api_and_admin_rules_and_a_segment__saved_and_served_not_refused(
    write_client: APIClient, admin_client: Client, environments: Any
) -> None:
    attributes.attribute_create(actor=SYSTEM, **COUNTRY)
    services.flag_create(actor=SYSTEM, key="new-checkout")
    services.flag_state_update(actor=SYSTEM, flag=Flag.objects.get(key="new-checkout"),
                               environment=environments["production"], enabled=True)
    # Over the API: a misspelt attribute is written.
    response = write_client.post("/api/v1/flags/new-checkout/environments/production/rules",
                                 {"kind": "force", "variant": "on", "condition": {"contry": "DE"}}, format="json")
    assert response.status_code == 201, response.json()
    # In the admin's flag-state form (with a value outside the allowed list too) and segment form.
    state = FlagState.objects.get(flag__key="new-checkout", environment__key="production")
    url = reverse("admin:flags_flagstate_change", args=[state.pk])
    data = read_form(admin_client, url, "flagstate_form")
    add_inline_form(data, "rules", {"position": "", "kind": "force", "enabled": "on", "description": "",
                                    "condition": '{"browser": "firefox", "country": "NL"}', "variant": "on",
                                    "percentage": "", "split": "", "hash_attribute": "id", "experiment_key": "",
                                    "prerequisites": "", "seed": "", "fallback_attribute": "", "namespace": "",
                                    "phase": ""})
    saved = admin_client.post(url, data)
    assert saved.status_code == 302, errors_of(saved)
    segment = admin_client.post(reverse("admin:flags_segment_add"), {
        "key": "firefox-users", "name": "", "description": "", "kind": "condition",
        "condition": '{"browser": "firefox"}', "attribute": "id", "ids": ""})
    assert segment.status_code == 302, errors_of(segment)

    assert [rule.condition for rule in Rule.objects.filter(state=state).order_by("position")] == [
        {"contry": "DE"}, {"browser": "firefox", "country": "NL"}]
    assert Segment.objects.get(key="firefox-users").condition == {"browser": "firefox"}
    snapshot = environment_snapshot(environment=Environment.objects.get(key="production"))
    assert evaluate(snapshot, "new-checkout", {"id": "a", "contry": "DE"}).value is True
    assert evaluate(snapshot, "new-checkout", {"id": "b", "browser": "firefox", "country": "NL"}).value is True
    assert evaluate(snapshot, "new-checkout", {"id": "c", "country": "DE"}).value is False
