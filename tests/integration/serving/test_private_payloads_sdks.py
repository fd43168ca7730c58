"""The real JavaScript SDK against a live server with an environment's private client payloads:
with `decryptionKey` it reads the encrypted payload, and given the secure attributes hashed
(`sha256(salt + value)`) it gives every unit the values `/api/v1/evaluate` gives the plain ones;
in remote-evaluation-only mode it evaluates remotely with plain attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.test import Client

from tests.integration.serving.conftest import sdk_post
from tests.integration.serving.test_private_payloads import build_private_environment, contexts, hashed, set_mode
from tests.integration.serving.test_remote_eval_sdks import run_js_sdk


def _plain(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if k != "targetingKey"} | {"id": context["targetingKey"]}


def test_encrypted_payload__javascript_sdk_with_decryption_key_and_hashed_attributes__agrees_with_evaluate(
    live_server: Any, transactional_db: Any, client: Client, tmp_path: Path
) -> None:
    env = set_mode(build_private_environment(), "encrypted")
    units = []
    for context in contexts():
        attributes = _plain(context)
        for secure in ("email", "account"):
            if secure in attributes:
                attributes[secure] = hashed(attributes[secure], env.attribute_salt)
        units.append({"attributes": attributes})
    seen = run_js_sdk(live_server.url, env.client_key, units, tmp_path, decryption_key=env.decryption_key)
    members = 0
    for context, got in zip(contexts(), seen, strict=True):
        assert got["ready"] is True, got["error"]
        ours = sdk_post(client, "/api/v1/evaluate", {"context": context, "track": False}, env.client_key).json()
        assert got["values"] == {key: flag["value"] for key, flag in ours["flags"].items()}, context
        members += got["values"]["vip-lounge"] is True
    assert members == 3


def test_remote_only__javascript_sdk_in_remote_eval_mode__plain_attributes(
    live_server: Any, transactional_db: Any, client: Client, tmp_path: Path
) -> None:
    env = set_mode(build_private_environment(), "remote")
    units = [{"attributes": _plain(context)} for context in contexts()]
    seen = run_js_sdk(live_server.url, env.client_key, units, tmp_path)
    for context, got in zip(contexts(), seen, strict=True):
        ours = sdk_post(client, "/api/v1/evaluate", {"context": context, "track": False}, env.client_key).json()
        assert got["values"] == {key: flag["value"] for key, flag in ours["flags"].items()}, context
    # Without remoteEval the SDK is refused the payload.
    refused = run_js_sdk(live_server.url, env.client_key, units[:1], tmp_path, decryption_key=env.decryption_key)
    assert refused[0]["ready"] is False and "403" in refused[0]["error"]
