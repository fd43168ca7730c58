"""Generation and hashing of SDK keys and management tokens."""

import hashlib
import secrets

CLIENT_PREFIX = "sdk-client-"
SERVER_PREFIX = "sdk-server-"
TOKEN_PREFIX = "sbm_"  # noqa: S105 - a prefix, not a secret


def new_client_key() -> str:
    return CLIENT_PREFIX + secrets.token_urlsafe(18)


def new_server_key() -> str:
    return SERVER_PREFIX + secrets.token_urlsafe(24)


def new_management_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
