"""`manage.py create_token` and `revoke_token`: tokens for automation, printed once, audited."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.models import AuditEntry
from base.models import ApiToken


def _create(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("create_token", *args, "--json", stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_create_token__json__token_scope_user_printed_and_usable(admin_user: User, environments: Any) -> None:
    result = _create("--user", "boss", "--scope", "read", "--name", "ci reader")
    assert result["scope"] == "read" and result["user"] == "boss" and result["name"] == "ci reader"
    assert result["token"].startswith("sbm_") and result["prefix"] == result["token"][:10]
    client = _client(result["token"])
    assert client.get("/api/v1/flags").status_code == 200
    assert client.post("/api/v1/flags", {"key": "x"}, format="json").status_code == 403
    stored = ApiToken.objects.get(prefix=result["prefix"])
    assert stored.token_hash != result["token"]  # only the digest is kept
    entry = AuditEntry.objects.get(action="token.create", object_key=result["prefix"])
    assert entry.via == "command" and entry.after == {"name": "ci reader", "scope": "read", "user": "boss"}


def test_create_token__plain__prints_only_the_token_on_stdout(admin_user: User) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", "--user", "boss", "--scope", "write", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("sbm_") and "\n" not in token
    assert "shown once" in err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody", "--scope", "read"], "No user named 'nobody'"),
        (["--user", "boss", "--scope", "read", "--name", "x" * 121], "needs a name"),
    ],
)
def test_create_token__bad_input__command_error_and_nothing_stored(
    admin_user: User, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args)
    assert not ApiToken.objects.exists()


def test_create_token__unknown_scope__refused(admin_user: User) -> None:
    with pytest.raises(CommandError):
        call_command("create_token", "--user", "boss", "--scope", "admin")


def test_create_token__inactive_user__refused(db: Any) -> None:
    User.objects.create_user("gone", is_active=False, is_staff=True)
    with pytest.raises(CommandError, match="inactive"):
        call_command("create_token", "--user", "gone", "--scope", "read")


def test_revoke_token__prefix__token_stops_working_and_audited(admin_user: User, environments: Any) -> None:
    result = _create("--user", "boss", "--scope", "write")
    out = io.StringIO()
    call_command("revoke_token", result["prefix"], stdout=out)
    assert "Revoked token" in out.getvalue()
    assert _client(result["token"]).get("/api/v1/flags").status_code == 401
    entry = AuditEntry.objects.get(action="token.revoke", object_key=result["prefix"])
    assert entry.via == "command"
    again = io.StringIO()
    call_command("revoke_token", result["token"], stdout=again)  # the whole token works too
    assert "already revoked" in again.getvalue()


def test_revoke_token__unknown_or_short_prefix__command_error(admin_user: User) -> None:
    _create("--user", "boss", "--scope", "read")
    with pytest.raises(CommandError, match="No token starts with"):
        call_command("revoke_token", "sbm_zzzzzz")
    with pytest.raises(CommandError, match="first 8 characters"):
        call_command("revoke_token", "sbm_")


def test_revoke_token__ambiguous_prefix__lists_the_candidates(admin_user: User) -> None:
    ApiToken.objects.create(name="a", user=admin_user, prefix="sbm_abcd12", token_hash="1" * 64)
    ApiToken.objects.create(name="b", user=admin_user, prefix="sbm_abcd34", token_hash="2" * 64)
    with pytest.raises(CommandError, match="Several tokens") as raised:
        call_command("revoke_token", "sbm_abcd")
    assert "sbm_abcd12" in str(raised.value) and "sbm_abcd34" in str(raised.value)
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()
