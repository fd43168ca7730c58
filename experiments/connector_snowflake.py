"""Snowflake through its own driver (`snowflake-connector-python`, the `snowflake` extra).

A session runs in UTC (`TIMEZONE`), tagged `splitbase` (`QUERY_TAG`, to find the readouts' cost
in the account's query history), with `STATEMENT_TIMEOUT_IN_SECONDS` at the source's timeout;
each statement is also given that timeout, after which the driver asks the server to cancel it.
A statement that comes back after its deadline (an emulator that ignores the cancel) is refused
the same way.

Credentials: a password (`password_env`) or a key pair (`private_key_env`, the PEM text of the
user's private key, and `private_key_passphrase_env` when the key is encrypted), each read from
the environment variable the connection names. `host`, `port` and `protocol` reach an endpoint
other than the account's own (a proxy, a private link, an emulator). Neither the secrets nor the
connection's names reach the log or an error message.
"""

from __future__ import annotations

import contextlib
import decimal
import math
import time
from collections.abc import Mapping
from typing import Any

from experiments.connector_base import ConnectorError, driver, secret, timed_out

__all__ = ["SnowflakeConnection"]

# The driver's error numbers of a statement stopped at a timeout: cancelled by the client's
# deadline (604) or by STATEMENT_TIMEOUT_IN_SECONDS (630).
TIMEOUT_ERRNOS = frozenset({604, 630})
# Connection fields passed to the driver as they are.
PLAIN_FIELDS = ("account", "user", "warehouse", "database", "schema", "role", "host", "port", "protocol")


def plain(value: Any) -> Any:
    """A NUMBER with a scale comes back as a Decimal: whole ones as int, others as float."""
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    return value


def _private_key(connection: Mapping[str, Any]) -> bytes | None:
    """The PEM key of `private_key_env` as the DER bytes the driver signs its login token with."""
    pem = secret(connection, "private_key_env")
    if pem is None:
        return None
    from cryptography.hazmat.primitives import serialization

    passphrase = secret(connection, "private_key_passphrase_env")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        # The reason only (a wrong passphrase, not PEM): never the key.
        raise ConnectorError(f"Snowflake: the private key of 'private_key_env' cannot be read ({exc}).") from None
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class SnowflakeConnection:
    engine = "snowflake"

    def __init__(self, connection: Mapping[str, Any], timeout: float):
        snowflake = driver("snowflake.connector", "snowflake")
        params: dict[str, Any] = {k: connection[k] for k in PLAIN_FIELDS if k in connection}
        self.hidden = [str(v) for k, v in params.items() if k not in ("port", "protocol") and len(str(v)) >= 3]
        password = secret(connection, "password_env")
        key = _private_key(connection)
        if key is not None:
            params.update(private_key=key, authenticator="SNOWFLAKE_JWT")
        elif password is not None:
            params["password"] = password
            self.hidden.append(password)
        self.errors: tuple[type[BaseException], ...] = (snowflake.errors.Error,)
        self.timeout = max(1, math.ceil(timeout))
        try:
            self.conn = snowflake.connect(
                **params,
                login_timeout=self.timeout,
                application="splitbase",
                autocommit=True,
                client_session_keep_alive=False,
                session_parameters={
                    "TIMEZONE": "UTC",
                    "STATEMENT_TIMEOUT_IN_SECONDS": self.timeout,
                    "QUERY_TAG": "splitbase",
                },
            )
        except self.errors as exc:
            raise ConnectorError(f"Snowflake: could not connect ({self._reason(exc)})") from None

    def _reason(self, exc: BaseException) -> str:
        """The driver's message without the account, the host, the user or the password."""
        message = str(getattr(exc, "msg", None) or exc).strip()
        message = message.splitlines()[0] if message else type(exc).__name__
        for value in self.hidden:
            message = message.replace(value, "…")
        return message[:500]

    def execute(self, sql: str, timeout: float) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        started = time.monotonic()
        limit = max(1, math.ceil(timeout))
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, timeout=limit)
            rows = [tuple(plain(v) for v in row) for row in cursor.fetchall()]
            columns = tuple(d[0] for d in cursor.description or ())
        except self.errors as exc:
            if getattr(exc, "errno", None) in TIMEOUT_ERRNOS or time.monotonic() - started >= limit:
                raise timed_out(timeout) from exc
            raise ConnectorError(f"Snowflake: {self._reason(exc)}") from exc
        finally:
            cursor.close()
        if time.monotonic() - started >= limit:
            raise timed_out(timeout)
        return columns, rows

    def version(self) -> str:
        _, rows = self.execute("SELECT CURRENT_VERSION()", min(self.timeout, 60))
        return f"Snowflake {rows[0][0] if rows else '?'}"

    def close(self) -> None:
        with contextlib.suppress(*self.errors):
            self.conn.close()
