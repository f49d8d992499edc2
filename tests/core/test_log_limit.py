"""LogLimiter: once per key and interval, a count of what was left out, a global budget, bounded memory."""

from __future__ import annotations

import time

from qilu_hub.log_limit import LogLimiter


def test_once_per_key_then_the_count() -> None:
    limiter = LogLimiter(interval=0.2)
    assert limiter.allow("a") == 0
    assert [limiter.allow("a") for _ in range(9)] == [None] * 9
    assert limiter.allow("b") == 0  # another key is not held back by the first
    time.sleep(0.25)
    assert limiter.allow("a") == 9


def test_global_budget_holds_against_forged_keys() -> None:
    limiter = LogLimiter(interval=60, max_per_interval=3)
    allowed = [limiter.allow(i) for i in range(100)]
    assert allowed[:3] == [0, 0, 0] and allowed[3:] == [None] * 97


def test_memory_is_bounded() -> None:
    limiter = LogLimiter(interval=60, max_per_interval=10**9, max_keys=50)
    for i in range(10_000):
        limiter.allow(i)
    assert len(limiter._keys) <= 50
