"""Management API for flags, rules and segments, through the test client and real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from base.models import Environment
from flags.models import Flag, Rule, Segment

pytestmark = pytest.mark.django_db


def _create_flag(client: APIClient, **body: Any) -> Any:
    return client.post("/api/v1/flags", {"key": "new-checkout", **body}, format="json")


def _counts() -> tuple[int, int, int, int]:
    return Flag.objects.count(), Rule.objects.count(), Segment.objects.count(), AuditEntry.objects.count()


def test_flag_create__boolean_without_variants__gets_off_and_on(write_client: APIClient, environments: Any) -> None:
    response = _create_flag(write_client)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [v["key"] for v in body["variants"]] == ["off", "on"]
    assert set(body["environments"]) == {"production", "staging"}
    assert body["environments"]["production"]["enabled"] is False
    assert AuditEntry.objects.filter(action="flag.create", object_key="new-checkout").count() == 1


def test_flag_create__every_write__bumps_config_version(write_client: APIClient, environments: Any) -> None:
    before = dict(Environment.objects.values_list("key", "config_version"))
    _create_flag(write_client)
    write_client.patch("/api/v1/flags/new-checkout/environments/production", {"enabled": True}, format="json")
    after = dict(Environment.objects.values_list("key", "config_version"))
    assert after["production"] == before["production"] + 2
    assert after["staging"] == before["staging"] + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "bad key!"}, "key"),
        ({"value_type": "string", "variants": [{"key": "a", "value": 1}]}, "variants[0].value"),
        ({"value_type": "number", "variants": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}, "variants[1].key"),
        ({"default_variant": "missing"}, "default_variant"),
        ({"prerequisites": [{"flag": "nope"}]}, "prerequisites[0].flag"),
    ],
)
def test_flag_create__invalid_input__400_and_nothing_written(
    write_client: APIClient, environments: Any, body: dict[str, Any], field: str
) -> None:
    before = _counts()
    response = _create_flag(write_client, **body)
    assert response.status_code == 400, response.json()
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert field in payload["details"], payload
    assert _counts() == before


def test_flag_create__duplicate_key__409(write_client: APIClient, environments: Any) -> None:
    assert _create_flag(write_client).status_code == 201
    before = _counts()
    response = _create_flag(write_client)
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_key"
    assert _counts() == before


def test_flag_create__read_token__403(read_client: APIClient, environments: Any) -> None:
    response = _create_flag(read_client)
    assert response.status_code == 403
    assert set(response.json()) == {"code", "message", "details"}
    assert Flag.objects.count() == 0


def test_flag_api__no_token__401(environments: Any) -> None:
    response = APIClient().get("/api/v1/flags")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_flag_api__revoked_or_unknown_token__401(environments: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sbm_not-a-real-token")
    assert client.get("/api/v1/flags").status_code == 401


def test_flag_get__unknown_key__404(read_client: APIClient, environments: Any) -> None:
    response = read_client.get("/api/v1/flags/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "flag_not_found"


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"kind": "force", "variant": "on", "condition": {"country": {"$bogus": 1}}}, "condition"),
        ({"kind": "force", "variant": "on", "condition": "not an object"}, "condition"),
        ({"kind": "force", "variant": "maybe"}, "variant"),
        ({"kind": "rollout", "variant": "on", "coverage": 1.5}, "coverage"),
        ({"kind": "experiment", "variations": ["off", "on"], "weights": [0.5, 0.6]}, "weights"),
        ({"kind": "experiment", "variations": ["off"], "weights": [1.0]}, "variations"),
        ({"kind": "force", "variant": "on", "segments": ["ghosts"]}, "segments"),
        ({"kind": "force", "variant": "on", "condition": {"email": {"$regex": "("}}}, "condition"),
    ],
)
def test_flag_rule_create__invalid_rule__400_and_nothing_written(
    write_client: APIClient, environments: Any, rule: dict[str, Any], field: str
) -> None:
    _create_flag(write_client)
    before = _counts()
    response = write_client.post("/api/v1/flags/new-checkout/environments/production/rules", rule, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"], response.json()
    assert _counts() == before


def test_flag_rules__create_reorder_update_delete__ordered_and_audited(
    write_client: APIClient, environments: Any
) -> None:
    _create_flag(write_client)
    url = "/api/v1/flags/new-checkout/environments/production/rules"
    first = write_client.post(
        url, {"kind": "force", "variant": "on", "condition": {"plan": "pro"}}, format="json"
    ).json()
    second = write_client.post(url, {"kind": "rollout", "variant": "on", "coverage": 0.1}, format="json").json()
    assert [r["id"] for r in write_client.get(url).json()] == [first["id"], second["id"]]
    response = write_client.post(f"{url}/reorder", {"rule_ids": [second["id"], first["id"]]}, format="json")
    assert [r["id"] for r in response.json()] == [second["id"], first["id"]]
    patched = write_client.patch(f"{url}/{second['id']}", {"coverage": 0.25}, format="json")
    assert patched.status_code == 200 and patched.json()["coverage"] == 0.25
    assert write_client.delete(f"{url}/{first['id']}").status_code == 204
    assert [r["id"] for r in write_client.get(url).json()] == [second["id"]]
    actions = list(AuditEntry.objects.filter(object_key="new-checkout").values_list("action", flat=True))
    assert {"flag.rule_create", "flag.rule_reorder", "flag.rule_update", "flag.rule_delete"} <= set(actions)
    update = AuditEntry.objects.filter(action="flag.rule_update").get()
    assert any(path.endswith(".coverage") for path in update.diff)


def test_flag_prerequisites__cycle__400(write_client: APIClient, environments: Any) -> None:
    _create_flag(write_client)
    assert _create_flag(write_client, key="upsell", prerequisites=[{"flag": "new-checkout"}]).status_code == 201
    before = _counts()
    response = write_client.patch("/api/v1/flags/new-checkout", {"prerequisites": [{"flag": "upsell"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "prerequisite_cycle"
    assert _counts() == before


def test_flag_archive__required_by_active_flag__409(write_client: APIClient, environments: Any) -> None:
    _create_flag(write_client)
    _create_flag(write_client, key="upsell", prerequisites=[{"flag": "new-checkout"}])
    response = write_client.post("/api/v1/flags/new-checkout/archive")
    assert response.status_code == 409
    assert response.json()["details"]["required_by"] == ["upsell"]


def test_flag_archive__then_restore__listed_accordingly(write_client: APIClient, environments: Any) -> None:
    _create_flag(write_client)
    assert write_client.post("/api/v1/flags/new-checkout/archive").json()["archived"] is True
    assert write_client.get("/api/v1/flags").json()["count"] == 0
    assert write_client.get("/api/v1/flags?archived=true").json()["count"] == 1
    assert write_client.post("/api/v1/flags/new-checkout/restore").json()["archived"] is False


def test_segments__in_use__cannot_be_deleted(write_client: APIClient, environments: Any) -> None:
    created = write_client.post(
        "/api/v1/segments", {"key": "beta", "kind": "ids", "ids": ["u1", "u2"], "attribute": "id"}, format="json"
    )
    assert created.status_code == 201, created.json()
    _create_flag(write_client)
    write_client.post(
        "/api/v1/flags/new-checkout/environments/production/rules",
        {"kind": "force", "variant": "on", "segments": ["beta"]},
        format="json",
    )
    response = write_client.delete("/api/v1/segments/beta")
    assert response.status_code == 409
    assert Segment.objects.filter(key="beta").exists()


def test_segments__bad_condition__400(write_client: APIClient, environments: Any) -> None:
    response = write_client.post("/api/v1/segments", {"key": "eu", "condition": {"$and": "nope"}}, format="json")
    assert response.status_code == 400
    assert not Segment.objects.exists()


def test_audit_api__lists_entries_with_diff(write_client: APIClient, environments: Any) -> None:
    _create_flag(write_client)
    write_client.patch("/api/v1/flags/new-checkout", {"description": "One-page checkout"}, format="json")
    body = write_client.get("/api/v1/audit?object_key=new-checkout&action=flag.update").json()
    assert body["count"] == 1
    assert body["results"][0]["diff"]["description"] == {"before": "", "after": "One-page checkout"}


def test_environment_rotate_keys__old_keys_replaced(write_client: APIClient, environments: Any) -> None:
    old = environments["production"].client_key
    response = write_client.post("/api/v1/environments/production/rotate-keys")
    assert response.status_code == 200
    assert response.json()["client_key"] != old


def test_malformed_json__400_with_error_body(write_client: APIClient, environments: Any) -> None:
    response = write_client.post("/api/v1/flags", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_schema__served_as_openapi(read_client: APIClient, environments: Any) -> None:
    response = read_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/flags" in response.json()["paths"]


# Free-form metadata -------------------------------------------------------------------------

METADATA = {"release": "1.0.2", "replicas": 2, "cost_weight": 0.5, "pii": False}


def test_flag_metadata__create_read_update__round_trips_and_audited(
    write_client: APIClient, environments: Any
) -> None:
    created = _create_flag(write_client, metadata=METADATA)
    assert created.status_code == 201, created.json()
    assert created.json()["metadata"] == METADATA
    read = write_client.get("/api/v1/flags/new-checkout").json()
    assert read["metadata"] == METADATA
    assert type(read["metadata"]["replicas"]) is int and type(read["metadata"]["cost_weight"]) is float

    changed = {"release": "1.1.0", "pii": True}
    response = write_client.patch("/api/v1/flags/new-checkout", {"metadata": changed}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["metadata"] == changed  # the whole object is replaced
    assert Flag.objects.get(key="new-checkout").metadata == changed
    entry = AuditEntry.objects.filter(action="flag.update", object_key="new-checkout").latest("id")
    assert entry.before is not None and entry.after is not None
    assert entry.before["metadata"] == METADATA and entry.after["metadata"] == changed

    # Other changes leave it alone; a flag created without it has none.
    write_client.patch("/api/v1/flags/new-checkout", {"owner": "growth"}, format="json")
    assert Flag.objects.get(key="new-checkout").metadata == changed
    assert _create_flag(write_client, key="plain").json()["metadata"] == {}


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ([1, 2], "metadata"),
        ("release", "metadata"),
        ({f"k{i}": i for i in range(33)}, "metadata"),
        ({"bad key": 1}, "metadata.bad key"),
        ({"a" * 65: 1}, f"metadata.{'a' * 64}"),
        ({"type": "json"}, "metadata.type"),
        ({"nested": {"a": 1}}, "metadata.nested"),
        ({"list": [1]}, "metadata.list"),
        ({"none": None}, "metadata.none"),
        ({"long": "x" * 257}, "metadata.long"),
        ({"huge": 2**53}, "metadata.huge"),
    ],
)
def test_flag_metadata__invalid__400_naming_the_key_and_nothing_written(
    write_client: APIClient, environments: Any, metadata: Any, field: str
) -> None:
    before = _counts()
    response = _create_flag(write_client, metadata=metadata)
    assert response.status_code == 400, response.json()
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert field in payload["details"], payload
    assert _counts() == before

    assert _create_flag(write_client, key="kept", metadata={"ok": 1}).status_code == 201
    before = _counts()
    response = write_client.patch("/api/v1/flags/kept", {"metadata": metadata}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert _counts() == before
    assert Flag.objects.get(key="kept").metadata == {"ok": 1}


def test_schema__flag_metadata__typed_object_with_its_limits(read_client: APIClient, environments: Any) -> None:
    schemas = read_client.get("/api/schema/?format=json").json()["components"]["schemas"]
    metadata = schemas["FlagOutput"]["properties"]["metadata"]
    assert metadata["type"] == "object" and metadata["maxProperties"] == 32
    assert {option["type"] for option in metadata["additionalProperties"]["oneOf"]} == {"string", "number", "boolean"}
    inputs = [s for name, s in schemas.items() if "metadata" in s.get("properties", {}) and name != "FlagOutput"]
    assert inputs, "the create and update inputs document metadata"
