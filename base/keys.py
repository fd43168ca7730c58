"""Keys of configuration objects, SDK keys and management tokens: their rules, generation
and digests. Pure: the flag engine and every app's services check keys with it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

CLIENT_PREFIX = "sdk-client-"
SERVER_PREFIX = "sdk-server-"
TOKEN_PREFIX = "sbm_"  # noqa: S105 - a prefix, not a secret

# Keys of flags, segments, environments, experiments, metrics, layers and holdouts.
KEY_PATTERN = r"^[A-Za-z0-9._-]+$"
KEY_MAX_LENGTH = 100
_KEY_RE = re.compile(rf"^[A-Za-z0-9._-]{{1,{KEY_MAX_LENGTH}}}$")

# Field -> messages; empty when valid, so a write is refused with every problem listed.
Errors = dict[str, list[str]]


def check_key(value: object, field: str = "key") -> Errors:
    if not isinstance(value, str) or not _KEY_RE.match(value):
        return {field: [f"Use 1-{KEY_MAX_LENGTH} letters, digits, dots, underscores or hyphens."]}
    return {}


def new_client_key() -> str:
    return CLIENT_PREFIX + secrets.token_urlsafe(18)


def new_server_key() -> str:
    return SERVER_PREFIX + secrets.token_urlsafe(24)


def new_decryption_key() -> str:
    """A 128-bit AES key, base64, as GrowthBook SDKs take it in their ``decryptionKey`` option."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def new_attribute_salt() -> str:
    """The salt an environment hashes secure attribute values with."""
    return secrets.token_hex(16)


def new_management_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
