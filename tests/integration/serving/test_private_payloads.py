"""What client keys receive, by the environment's client payload setting: full rules, private
segments hashed, encrypted, or remote evaluation only. No private segment value reaches a client
key through any SDK endpoint; applications that pass hashed secure attributes get, from the
payload, the values the server gives the plain ones."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.test import Client
from growthbook import GrowthBook
from growthbook import decrypt as growthbook_decrypt
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from flags import services
from flags.models import Segment
from serving.snapshots import _parse_file, store
from serving.streams.messages import state_of
from tests.integration.serving.conftest import sdk_post

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="privacy", via="system")
VIP_EMAILS = ["ceo@secret.example", "cfo@secret.example", "board-7@secret.example"]
INSIDER_ACCOUNTS = ["acct-hidden-41", "acct-hidden-42"]
PRIVATE_VALUES = [*VIP_EMAILS, *INSIDER_ACCOUNTS]


def build_private_environment(key: str = "production") -> Environment:
    """Flags that use a private id list (on `email`), a private condition (on `account`) and an
    ordinary segment, in force, rollout and experiment rules."""
    env = services.environment_create(actor=ACTOR, key=key)
    services.segment_create(actor=ACTOR, key="vips", kind="ids", attribute="email", ids=VIP_EMAILS, private=True)
    services.segment_create(actor=ACTOR, key="insiders", kind="condition", private=True,
                            condition={"account": {"$in": INSIDER_ACCOUNTS}})
    services.segment_create(actor=ACTOR, key="eu", kind="condition", condition={"country": {"$in": ["DE", "FR"]}})
    flags = {}
    for flag_key in ("vip-lounge", "insider-preview", "eu-banner"):
        flags[flag_key] = services.flag_create(actor=ACTOR, key=flag_key)
    services.flag_rule_create(actor=ACTOR, flag=flags["vip-lounge"], environment=env, kind="force", variant="on",
                              segments=["vips"])
    services.flag_rule_create(actor=ACTOR, flag=flags["insider-preview"], environment=env, kind="rollout",
                              variant="on", coverage=0.5, segments=["insiders"])
    services.flag_rule_create(actor=ACTOR, flag=flags["insider-preview"], environment=env, kind="force",
                              variant="on", condition={"email": "cfo@secret.example"})
    services.flag_rule_create(actor=ACTOR, flag=flags["eu-banner"], environment=env, kind="force", variant="on",
                              segments=["eu"])
    tiers = services.flag_create(actor=ACTOR, key="tiers", value_type="string",
                                 variants=[{"key": "a", "value": "a"}, {"key": "b", "value": "b"}])
    services.flag_rule_create(actor=ACTOR, flag=tiers, environment=env, kind="experiment", variations=["a", "b"],
                              weights=[0.5, 0.5], experiment_key="tiers-exp", segments=["vips"])
    for flag in (*flags.values(), tiers):
        services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    env.refresh_from_db()
    return env


def contexts() -> list[dict[str, Any]]:
    """Members and non-members of the private segments."""
    out: list[dict[str, Any]] = []
    for i in range(12):
        context: dict[str, Any] = {"targetingKey": f"user-{i}", "country": ("DE", "US")[i % 2]}
        if i < len(VIP_EMAILS):
            context["email"] = VIP_EMAILS[i]
        if i % 3 == 0:
            context["account"] = INSIDER_ACCOUNTS[i % 2]
        out.append(context)
    return out


def set_mode(env: Environment, mode: str) -> Environment:
    return services.environment_update(actor=ACTOR, environment=env, client_payload=mode)


def hashed(value: str, salt: str) -> str:
    return hashlib.sha256((salt + value).encode()).hexdigest()


def decrypt(sealed: str, key: str) -> Any:
    iv, text = sealed.split(".")
    decryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(base64.b64decode(iv))).decryptor()
    padded = decryptor.update(base64.b64decode(text)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return orjson.loads(unpadder.update(padded) + unpadder.finalize())


def client_key_answers(client: Client, env: Environment) -> list[tuple[str, bytes]]:
    """Every answer an SDK endpoint gives the client key: the payload, the GrowthBook stream's
    message, OFREP single and bulk, /api/v1/evaluate and remote evaluation, for every context."""
    key = env.client_key
    answers: list[tuple[str, bytes]] = [("payload", client.get(f"/api/features/{key}").content)]
    resolved = store.resolve(key)
    assert resolved is not None
    answers.append(("stream", state_of(resolved[1]).growthbook))
    flag_keys = list(resolved[1].snapshot.features)
    for context in contexts():
        attributes = {k: v for k, v in context.items() if k != "targetingKey"} | {"id": context["targetingKey"]}
        answers.append(("evaluate", sdk_post(client, "/api/v1/evaluate", {"context": context}, key).content))
        answers.append(("ofrep-bulk", sdk_post(client, "/ofrep/v1/evaluate/flags", {"context": context}, key).content))
        for flag_key in flag_keys:
            answers.append((f"ofrep {flag_key}", sdk_post(client, f"/ofrep/v1/evaluate/flags/{flag_key}",
                                                           {"context": context}, key).content))
        answers.append(("remote-eval", sdk_post(client, f"/api/eval/{key}", {"attributes": attributes}, None).content))
    return answers


@pytest.mark.parametrize("mode", ["private", "encrypted", "remote"])
def test_private_modes__no_private_segment_value_reaches_a_client_key(client: Client, mode: str) -> None:
    env = set_mode(build_private_environment(), mode)
    answers = client_key_answers(client, env)
    assert len(answers) > 50
    for where, body in answers:
        for secret in PRIVATE_VALUES:
            assert secret.encode() not in body, f"{secret} in the {where} answer ({mode})"


def test_full_mode__the_walk_finds_the_values__so_the_private_modes_check_something(client: Client) -> None:
    env = build_private_environment()
    bodies = b"".join(body for _, body in client_key_answers(client, env))
    assert all(secret.encode() in bodies for secret in PRIVATE_VALUES)


def test_private_mode__payload_hashes_secure_attributes__python_sdk_with_hashed_values_agrees(client: Client) -> None:
    env = set_mode(build_private_environment(), "private")
    payload = client.get(f"/api/features/{env.client_key}").json()
    salt = env.attribute_salt
    assert sorted(payload["savedGroups"]["vips"]) == sorted(hashed(e, salt) for e in VIP_EMAILS)
    # The ordinary segment's values stay readable; the id list's own rules are unchanged.
    assert "DE" in orjson.dumps(payload["features"]["eu-banner"]).decode()
    gb = GrowthBook(features=payload["features"], saved_groups=payload["savedGroups"])
    try:
        for context in contexts():
            ours = sdk_post(client, "/api/v1/evaluate", {"context": context, "track": False},
                            env.client_key).json()["flags"]
            attributes = {k: v for k, v in context.items() if k != "targetingKey"} | {"id": context["targetingKey"]}
            for secure in ("email", "account"):
                if secure in attributes:
                    attributes[secure] = hashed(attributes[secure], salt)
            gb.set_attributes(attributes)
            for flag_key, flag in ours.items():
                assert gb.get_feature_value(flag_key, None) == flag["value"], (context, flag_key)
    finally:
        gb.destroy()


def test_encrypted_mode__payload_decrypts_with_the_environment_key_to_the_private_payload(client: Client) -> None:
    env = build_private_environment()
    set_mode(env, "private")
    private = client.get(f"/api/features/{env.client_key}").json()
    env = set_mode(env, "encrypted")
    sealed = client.get(f"/api/features/{env.client_key}").json()
    assert sealed["features"] == {} and set(sealed) >= {"encryptedFeatures", "encryptedSavedGroups"}
    assert decrypt(sealed["encryptedFeatures"], env.decryption_key) == private["features"]
    assert decrypt(sealed["encryptedSavedGroups"], env.decryption_key) == private["savedGroups"]
    # The Python SDK's own decryption reads it.
    assert orjson.loads(growthbook_decrypt(sealed["encryptedFeatures"], env.decryption_key)) == private["features"]


def test_remote_mode__payload_refused_for_client_keys__stream_says_features_updated(client: Client) -> None:
    env = set_mode(build_private_environment(), "remote")
    refused = client.get(f"/api/features/{env.client_key}")
    assert refused.status_code == 403 and refused.json()["code"] == "remote_evaluation_only"
    resolved = store.resolve(env.client_key)
    assert resolved is not None
    state = state_of(resolved[1])
    message = state.growthbook
    assert state.remote_only and not state_of(resolved[1]).ofrep.startswith(b"event: features")
    assert b"event: features-updated\ndata: {}\n\n" in message and b"features\ndata: {\"" not in message
    # Server keys are not affected: they evaluate as before.
    ours = sdk_post(client, "/api/v1/evaluate", {"context": {"targetingKey": "u", "email": VIP_EMAILS[0]}},
                    env.server_key).json()
    assert ours["flags"]["vip-lounge"]["value"] is True
    remote = sdk_post(client, f"/api/eval/{env.client_key}", {"attributes": {"id": "u", "email": VIP_EMAILS[0]}},
                      None).json()
    assert remote["features"]["vip-lounge"] == {"defaultValue": True}


def test_snapshot_file__keeps_the_policy__a_restarted_process_still_refuses(client: Client, settings: Any) -> None:
    env = set_mode(build_private_environment(), "remote")
    assert client.get(f"/api/features/{env.client_key}").status_code == 403
    loaded = _parse_file(store.directory() / f"environment-{env.pk}.json")
    assert loaded is not None
    assert loaded[1].remote_only and loaded[1].policy.secure_attributes == {"email", "account"}


def test_private_condition_segment__comparisons_that_cannot_be_hashed__refused(write_client: APIClient) -> None:
    refused = write_client.post("/api/v1/segments", {"key": "adults", "kind": "condition", "private": True,
                                                    "condition": {"email": {"$regex": "@secret"}}}, format="json")
    assert refused.status_code == 400
    assert "$regex" in str(refused.json()["details"]["condition"])
    made = write_client.post("/api/v1/segments", {"key": "staff", "kind": "condition", "private": True,
                                                 "condition": {"email": {"$in": ["a@b.c"]}}}, format="json")
    assert made.status_code == 201 and made.json()["private"] is True


def test_environment_api__client_payload_set_and_checked(write_client: APIClient, read_client: APIClient) -> None:
    services.environment_create(actor=ACTOR, key="staging")
    bad = write_client.patch("/api/v1/environments/staging", {"client_payload": "secret"}, format="json")
    assert bad.status_code == 400 and "client_payload" in bad.json()["details"]
    assert read_client.patch("/api/v1/environments/staging", {"client_payload": "remote"},
                             format="json").status_code == 403
    before = Environment.objects.get(key="staging").config_version
    done = write_client.patch("/api/v1/environments/staging", {"client_payload": "encrypted"}, format="json")
    assert done.status_code == 200
    body = done.json()
    assert body["client_payload"] == "encrypted" and len(base64.b64decode(body["decryption_key"])) == 16
    assert body["attribute_salt"] and Environment.objects.get(key="staging").config_version == before + 1


def test_admin__environment_client_payload_changed_through_the_service(admin_client: Client) -> None:
    env = services.environment_create(actor=ACTOR, key="qa")
    url = f"/admin/base/environment/{env.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and env.decryption_key in page.content.decode()
    response = admin_client.post(url, {"client_payload": "remote", "review_exempts_kill_switch": "on"})
    assert response.status_code == 302
    changed = Environment.objects.get(pk=env.pk)
    assert changed.client_payload == "remote" and changed.config_version == env.config_version + 1
    assert AuditEntry.objects.filter(action="environment.update", object_key="qa").count() == 1
    assert not AuditEntry.objects.filter(action="environment.review_settings", object_key="qa").exists()
    assert client_payload_refused(admin_client, changed)


def client_payload_refused(client: Client, env: Environment) -> bool:
    return bool(client.get(f"/api/features/{env.client_key}").status_code == 403)


def test_remote_eval__announces_the_stream_only_where_it_tells_of_changes(client: Client, settings: Any) -> None:
    settings.STREAMING_URL = "http://stream.example"
    env = build_private_environment()
    body = {"attributes": {"id": "u"}}
    assert "x-sse-support" not in sdk_post(client, f"/api/eval/{env.client_key}", body, None)
    env = set_mode(env, "remote")
    assert sdk_post(client, f"/api/eval/{env.client_key}", body, None)["x-sse-support"] == "enabled"


def test_admin__segment_marked_private__saved_private_or_refused_with_the_reason(admin_client: Client) -> None:
    base = {"key": "staff", "name": "Staff", "description": "", "kind": "condition", "attribute": "id", "ids": "",
            "private": "on"}
    refused = admin_client.post("/admin/flags/segment/add/", {**base, "condition": '{"email": {"$regex": "@x"}}'})
    assert refused.status_code == 200 and "$regex" in refused.content.decode()
    assert not Segment.objects.filter(key="staff").exists()
    saved = admin_client.post("/admin/flags/segment/add/", {**base, "condition": '{"email": {"$in": ["a@x"]}}'})
    assert saved.status_code == 302
    assert Segment.objects.get(key="staff").private is True
