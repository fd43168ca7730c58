"""The GrowthBook payload as a client (public) key receives it, by the environment's policy
(``flags.engine.privacy``): as it is, with secure attributes hashed, encrypted the way
GrowthBook encrypts payloads, or not at all (remote evaluation only).

Encryption: AES-128-CBC with PKCS#7 padding and a random 16-byte IV, written
``base64(iv) + "." + base64(ciphertext)``, which the SDKs' ``decryptionKey`` option reads.
``features`` and ``savedGroups`` are encrypted one by one into ``encryptedFeatures`` and
``encryptedSavedGroups``; ``features`` stays as an empty object, ``dateUpdated`` in the clear.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from flags.engine.privacy import ENCRYPTED, REMOTE, ClientPolicy, private_payload

__all__ = ["client_payload", "encrypt"]


def encrypt(plain: bytes, key: str) -> str:
    """``plain`` encrypted with the base64 AES key, in GrowthBook's ``iv.ciphertext`` form."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(iv).decode("ascii") + "." + base64.b64encode(sealed).decode("ascii")


def client_payload(payload: Mapping[str, Any], policy: ClientPolicy) -> bytes | None:
    """The body a client key is served; None when client keys evaluate remotely only."""
    if policy.mode == REMOTE:
        return None
    served = private_payload(payload, policy)
    if policy.mode != ENCRYPTED:
        return orjson.dumps(served)
    sealed: dict[str, Any] = {
        "features": {},
        "encryptedFeatures": encrypt(orjson.dumps(served.get("features") or {}), policy.decryption_key),
    }
    if served.get("savedGroups"):
        sealed["encryptedSavedGroups"] = encrypt(orjson.dumps(served["savedGroups"]), policy.decryption_key)
    if "dateUpdated" in served:
        sealed["dateUpdated"] = served["dateUpdated"]
    return orjson.dumps(sealed)
