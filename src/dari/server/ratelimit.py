"""Per-key rate limits: a token bucket per API key, in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dari.errors import RateLimited


class TokenBuckets:
    """`rate_per_minute` sustained, up to `burst` at once; `take` raises RateLimited with the
    seconds until the next request would be allowed."""

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self._rate)
            self._buckets[key] = (tokens - 1.0, now)
