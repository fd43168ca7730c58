"""Deterministic unit hashing, bit-compatible with GrowthBook's SDKs.

FNV-1a (32 bit) runs over the UTF-16 code units of a string, as JavaScript's
``charCodeAt`` sees them, so a unit id hashes the same here as in a browser.
Version 1 keeps three decimals of ``fnv(value + seed)``; version 2 hashes the
decimal digits of ``fnv(seed + value)`` a second time and keeps four decimals,
which spreads similar ids better.
"""

from __future__ import annotations

import sys
from functools import lru_cache

__all__ = ["FNV_OFFSET", "fnv1a32", "fnv1a32_continue", "gb_hash", "hash_v1", "hash_v2"]

FNV_OFFSET = 0x811C9DC5
# The loops below spell out the FNV prime (16777619) and the 32-bit mask as
# literals: constants load faster than module globals on this hot path.
# memoryview.cast("H") reads native-endian 16-bit words.
_UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def fnv1a32_continue(state: int, value: str) -> int:
    """Feed ``value`` into an FNV-1a state; ``fnv1a32(a + b)`` equals
    ``fnv1a32_continue(fnv1a32(a), b)``, which lets a fixed prefix be hashed once."""
    h = state
    if value.isascii():
        # ASCII: bytes, code points and UTF-16 code units coincide.
        for unit in value.encode("ascii"):
            h = ((h ^ unit) * 16777619) & 0xFFFFFFFF
        return h
    data = value.encode(_UTF16, "surrogatepass")
    for unit in memoryview(data).cast("H"):
        h = ((h ^ unit) * 16777619) & 0xFFFFFFFF
    return h


def fnv1a32(value: str) -> int:
    """FNV-1a 32-bit hash of ``value`` over its UTF-16 code units."""
    return fnv1a32_continue(FNV_OFFSET, value)


@lru_cache(maxsize=4096)
def _prefix_state(seed: str) -> int:
    return fnv1a32_continue(FNV_OFFSET, seed)


def hash_v1(seed: str, value: str) -> float:
    """Version 1: ``(fnv(value + seed) % 1000) / 1000``."""
    return (fnv1a32_continue(fnv1a32_continue(FNV_OFFSET, value), seed) % 1000) / 1000


def hash_v2(seed: str, value: str) -> float:
    """Version 2: ``(fnv(str(fnv(seed + value))) % 10000) / 10000``."""
    # Both passes are inlined: this runs once per unit and experiment.
    h = _prefix_state(seed)
    if value.isascii():
        for unit in value.encode("ascii"):
            h = ((h ^ unit) * 16777619) & 0xFFFFFFFF
    else:
        h = fnv1a32_continue(h, value)
    g = FNV_OFFSET
    for digit in b"%d" % h:
        g = ((g ^ digit) * 16777619) & 0xFFFFFFFF
    return (g % 10000) / 10000


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """Hash ``value`` into [0, 1) with ``seed``; ``None`` for an unknown version."""
    if version == 2:
        return hash_v2(seed, value)
    if version == 1:
        return hash_v1(seed, value)
    return None
