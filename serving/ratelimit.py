"""Per-key token buckets for the SDK endpoints.

Each SDK key has a bucket holding up to ``RATE_LIMIT_BURST`` tokens, refilled at
``RATE_LIMIT_PER_SECOND``; a request takes one token or is refused with the whole seconds
until one is back (the ``Retry-After`` of a 429). Buckets live in the worker process, so the
limit a key sees across a server is the per-process rate times the number of workers; that
keeps the check free of network round trips. Only known keys get a bucket, so memory is
bounded by the number of environments.
"""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings

__all__ = ["TokenBucketLimiter", "limiter"]


class TokenBucketLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> (tokens, last refill on the monotonic clock)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, *, rate: float | None = None, burst: float | None = None) -> int:
        """Take one token for ``key``: 0 when allowed, else the seconds to wait (at least 1)."""
        rate = float(settings.RATE_LIMIT_PER_SECOND) if rate is None else rate
        if rate <= 0:
            return 0
        capacity = max(1.0, float(settings.RATE_LIMIT_BURST) if burst is None else burst)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / rate))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


limiter = TokenBucketLimiter()
