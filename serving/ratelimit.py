"""Per-key rate limits of the SDK endpoints, shared by every process and replica.

Every SDK endpoint (OFREP single and bulk, `/api/v1/evaluate`, the GrowthBook payload, the events
API) takes one request from its key's limit in `serving.request.authenticate`. A key (an
environment's client key or its server key) may make `RATE_LIMIT_PER_SECOND` requests per second
on average with bursts up to `RATE_LIMIT_BURST`: the `limits` library counts, in a window of
`ceil(burst / rate)` seconds (at least 1), up to `round(rate × window)` requests (at least 1),
with the strategy `RATE_LIMIT_STRATEGY` (default the sliding window counter, one Redis script
call). A request over the limit is refused with the whole seconds until the window frees one
(the `Retry-After` of a 429).

One Redis call need not count one request: a process counts a block of requests for a key at
once, a hundredth of the key's limit and at most `RATE_LIMIT_RESERVE_MAX` (50 by default), and
serves that many from memory within the next second; a block it has not used up by then is
dropped, still counted. With a limit under 200 requests per window every request is counted on
its own. So no process ever lets more through than Redis counted, and a key near its limit
loses at most a hundredth of it per process to blocks left unused. When a block no longer fits
under the limit the process counts single requests again.

The counters live in `RATE_LIMIT_STORAGE_URL` (default `REDIS_URL`, itself defaulting to a
Redis broker's URL), under keys prefixed with `RATE_LIMIT_KEY_PREFIX` and named by environment
id and key kind (never by the secret key itself), so every worker process and replica counts
against the same limit. Without Redis (`memory://`) each process counts on its own.

When Redis cannot be reached within `RATE_LIMIT_REDIS_TIMEOUT` seconds the limiter fails open:
requests are served without a limit, the failure is logged once, Redis is tried again after
`RATE_LIMIT_RETRY_INTERVAL` seconds, and `/readyz` reports it (`checks.rate_limits`) without
declaring the service unready.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RESERVE_SECONDS", "RESERVE_SHARE", "STRATEGIES", "SharedRateLimiter", "limit_item", "limiter",
           "reserve_size"]

logger = logging.getLogger(__name__)

STRATEGIES: dict[str, type[RateLimiter]] = {
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
}


# A process counts up to a hundredth of a key's limit in Redis at once (at most
# RATE_LIMIT_RESERVE_MAX requests) and serves them over the next second; what it has not served
# by then is dropped (it stays counted).
RESERVE_SHARE = 100
RESERVE_SECONDS = 1.0


@lru_cache(maxsize=64)
def limit_item(rate: float, burst: float) -> RateLimitItem:
    """The counted limit for an average `rate` per second and a `burst`."""
    window = max(1, math.ceil(max(1.0, burst) / rate))
    return RateLimitItemPerSecond(max(1, round(rate * window)), window)


def reserve_size(item: RateLimitItem, most: int) -> int:
    """How many requests one Redis call counts ahead for this process: a hundredth of the
    limit, at most ``most`` (1: every request is counted on its own)."""
    return max(1, min(most, item.amount // RESERVE_SHARE))


@dataclass(frozen=True)
class _Config:
    url: str
    prefix: str
    strategy: str
    timeout: float


def _config() -> _Config:
    strategy = str(settings.RATE_LIMIT_STRATEGY)
    if strategy not in STRATEGIES:
        raise ValueError(f"RATE_LIMIT_STRATEGY must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    return _Config(url=str(settings.RATE_LIMIT_STORAGE_URL), prefix=str(settings.RATE_LIMIT_KEY_PREFIX),
                   strategy=strategy, timeout=float(settings.RATE_LIMIT_REDIS_TIMEOUT))


def _storage(config: _Config) -> Storage:
    if config.url.startswith("memory://"):
        return MemoryStorage(config.url)
    # Short timeouts and no retries: a request never waits long on the limiter.
    pool = redis.ConnectionPool.from_url(
        config.url, socket_connect_timeout=config.timeout, socket_timeout=config.timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return RedisStorage(config.url, connection_pool=pool, key_prefix=config.prefix, wrap_exceptions=True)


class SharedRateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[_Config, Storage, RateLimiter] | None = None
        self._down_until = 0.0  # monotonic time before which Redis is not tried again
        self._down_since: float | None = None  # wall-clock time of the first failure in a row
        self._error = ""
        # key -> [requests already counted in Redis and not served yet, usable until, limit]
        self._held: dict[str, list[Any]] = {}

    def _limiter(self) -> tuple[_Config, Storage, RateLimiter]:
        config = _config()
        built = self._built
        if built is None or built[0] != config:
            with self._lock:
                built = self._built
                if built is None or built[0] != config:
                    storage = _storage(config)
                    built = (config, storage, STRATEGIES[config.strategy](storage))
                    self._built = built
        return built

    def take(self, key: str, *, rate: float | None = None, burst: float | None = None) -> int:
        """Count one request for `key`: 0 when allowed, else the seconds to wait (at least 1)."""
        rate = float(settings.RATE_LIMIT_PER_SECOND) if rate is None else rate
        if rate <= 0:
            return 0
        item = limit_item(rate, float(settings.RATE_LIMIT_BURST) if burst is None else burst)
        now = time.monotonic()
        if self._down_until and now < self._down_until:
            return 0  # fail open until the next try
        block = reserve_size(item, int(settings.RATE_LIMIT_RESERVE_MAX))
        if block > 1:
            with self._lock:
                held = self._held.get(key)
                if held is not None and held[0] > 0 and now < held[1] and held[2] is item:
                    held[0] -= 1
                    return 0
        _, _, strategy = self._limiter()
        try:
            if block > 1 and strategy.hit(item, key, cost=block):
                # Counted in Redis now; served from this process over the next moments.
                with self._lock:
                    self._held[key] = [block - 1, now + min(RESERVE_SECONDS, item.get_expiry()), item]
                self._up()
                return 0
            if strategy.hit(item, key):
                self._up()
                return 0
            stats = strategy.get_window_stats(item, key)
        except StorageError as exc:
            self._down(exc.storage_error)
            return 0
        self._up()
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _up(self) -> None:
        if self._down_until:
            logger.warning("Rate limits are counted again after %.1f s without them.",
                           time.time() - (self._down_since or time.time()))
            self._down_until = 0.0
            self._down_since = None
            self._error = ""

    def _down(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.time()
            logger.error("Rate limit storage unreachable (%s): SDK requests are served without rate limits "
                         "until it answers again.", type(exc).__name__)
        self._error = type(exc).__name__
        self._down_until = time.monotonic() + float(settings.RATE_LIMIT_RETRY_INTERVAL)

    def status(self, *, probe: bool = False) -> dict[str, Any]:
        """What `/readyz` shows: `state` is `shared` (counted in Redis), `per_process` (memory
        storage), `off` (RATE_LIMIT_PER_SECOND=0) or `unavailable` (Redis unreachable: requests
        are not limited). `probe` pings Redis first."""
        if float(settings.RATE_LIMIT_PER_SECOND) <= 0:
            return {"state": "off"}
        config, storage, _ = self._limiter()
        if isinstance(storage, MemoryStorage):
            return {"state": "per_process", "strategy": config.strategy}
        if probe:
            if storage.check():
                self._up()
            else:
                self._down(ConnectionError("no answer to PING"))
        if self._down_since is not None:
            return {"state": "unavailable", "fail_open": True, "error": self._error,
                    "since": round(self._down_since, 3), "strategy": config.strategy}
        return {"state": "shared", "strategy": config.strategy}

    def reset(self) -> None:
        """Forget every counter under this service's key prefix (tests) and any failure."""
        _, storage, _ = self._limiter()
        with contextlib.suppress(StorageError):
            storage.reset()
        self._down_until = 0.0
        self._down_since = None
        self._error = ""
        with self._lock:
            self._held.clear()


limiter = SharedRateLimiter()
