"""The demo's admin login and management token, made once and kept in a private file.

Only a token's SHA-256 is stored in the database and a password only as a hash, so the values
`make demo` prints are kept in `DEMO_DIR/credentials.json` (readable by its owner only) and
printed again on each start. They are replaced when they no longer work (the password was
changed in the admin, the token was revoked, the database is a new one) or when asked to.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from audit.types import Actor
from base import tokens
from base.keys import token_digest
from base.models import ApiToken

__all__ = ["DEMO_TOKEN_NAME", "DemoLogin", "demo_login_ensure", "demo_login_file", "demo_login_read",
           "demo_login_write"]

DEMO_USERNAME = "admin"
DEMO_TOKEN_NAME = "demo token"  # noqa: S105 - a label, not a secret


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    token: str

    def as_json(self) -> dict[str, Any]:
        return {"admin": {"username": self.username, "password": self.password}, "management_token": self.token}


def demo_login_file() -> Path:
    return Path(settings.DEMO_DIR) / "credentials.json"


def demo_login_read(path: Path) -> DemoLogin | None:
    """The stored login, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text())
        return DemoLogin(
            username=str(data["admin"]["username"]),
            password=str(data["admin"]["password"]),
            token=str(data["management_token"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def demo_login_write(path: Path, login: DemoLogin) -> None:
    """Write the file for its owner only (0600), replacing the old one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(login.as_json(), handle, indent=2)
            handle.write("\n")
        os.chmod(partial, 0o600)  # the umask may have taken bits away, never added them
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def _admin(stored: DemoLogin | None, *, rotate: bool) -> tuple[User, str]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        password = secrets.token_urlsafe(12)
        return user_model.objects.create_superuser(DEMO_USERNAME, "admin@example.com", password), password
    if stored is not None and not rotate and user.check_password(stored.password):
        return user, stored.password
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user, password


def _token_works(raw: str, user: User) -> bool:
    return ApiToken.objects.filter(
        token_hash=token_digest(raw), user=user, user__is_active=True, scope=ApiToken.Scope.WRITE,
        revoked_at__isnull=True,
    ).exists()


def _token(stored: DemoLogin | None, user: User, *, actor: Actor, rotate: bool) -> str:
    if stored is not None and not rotate and _token_works(stored.token, user):
        return stored.token
    # One demo token at a time: the one printed.
    for old in ApiToken.objects.filter(name=DEMO_TOKEN_NAME, revoked_at__isnull=True):
        tokens.api_token_revoke(actor=actor, token=old)
    _, raw = tokens.api_token_create(actor=actor, user=user, name=DEMO_TOKEN_NAME, scope=ApiToken.Scope.WRITE)
    return raw


def demo_login_ensure(*, actor: Actor, stored: DemoLogin | None, rotate: bool = False) -> DemoLogin:
    """The admin user and a write token: the stored ones while they still work, else new ones."""
    user, password = _admin(stored, rotate=rotate)
    token = _token(stored, user, actor=actor, rotate=rotate)
    return DemoLogin(username=user.get_username(), password=password, token=token)
