"""Rate limits counted in Redis a block of requests at a time (serving/ratelimit.py)."""

from __future__ import annotations

import uuid
from typing import Any

from serving.ratelimit import limit_item, limiter, reserve_size


def remaining(rate: float, burst: float, key: str) -> int:
    _, _, strategy = limiter._limiter()
    return int(strategy.get_window_stats(limit_item(rate, burst), key).remaining)


def test_blocks__a_hundredth_of_the_limit_counted_per_redis_call(settings: Any) -> None:
    settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST = 1000.0, 2000
    key = f"blocks-{uuid.uuid4().hex}"
    assert reserve_size(limit_item(1000.0, 2000), 50) == 20
    assert limiter.take(key) == 0
    assert remaining(1000.0, 2000, key) == 2000 - 20  # the block is counted at once
    for _ in range(19):
        assert limiter.take(key) == 0
    assert remaining(1000.0, 2000, key) == 2000 - 20  # ... and served from this process
    assert limiter.take(key) == 0
    assert remaining(1000.0, 2000, key) == 2000 - 40


def test_blocks__never_more_admitted_than_the_limit(settings: Any) -> None:
    settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST = 1.0, 300  # 300 per 300 s: blocks of 3
    key = f"blocks-{uuid.uuid4().hex}"
    admitted = sum(1 for _ in range(400) if limiter.take(key) == 0)
    assert admitted == 300
    assert limiter.take(key) >= 1  # the wait in seconds


def test_blocks__small_limit_or_turned_off__every_request_counted(settings: Any) -> None:
    settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST = 1.0, 150
    key = f"blocks-{uuid.uuid4().hex}"
    assert limiter.take(key) == 0
    assert remaining(1.0, 150, key) == 149
    settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST, settings.RATE_LIMIT_RESERVE_MAX = 1000.0, 2000, 1
    other = f"blocks-{uuid.uuid4().hex}"
    assert limiter.take(other) == 0
    assert remaining(1000.0, 2000, other) == 1999
