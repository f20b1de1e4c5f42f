"""Per-key rate limits: a token bucket per API key, kept in this process (`TokenBuckets`) or in
Redis (`RedisBuckets`), so that several server processes share one budget per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from dari.errors import BackendError, MissingExtra, RateLimited

if TYPE_CHECKING:
    from dari.config import ServerSettings


# Float slack: a caller who waits exactly the seconds it was told must not be refused again.
_SLACK = 1e-9


class Limits(Protocol):
    def take(self, key: str) -> None:
        """Spend one request of `key`'s budget, or raise RateLimited with the seconds to wait."""


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
            if tokens < 1.0 - _SLACK:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self._rate)
            self._buckets[key] = (tokens - 1.0, now)


# The same bucket as TokenBuckets, read and written in one step inside Redis, with Redis's clock
# (one clock for every process, whatever their hosts' clocks say). A bucket left alone until it
# is full again is the same as no bucket, so it expires then. Returns the wait as a string: Redis
# turns Lua numbers into integers.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens < 1 - 1e-9 then
  wait = (1 - tokens) / rate
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """TokenBuckets whose state lives in Redis (a hash per key, with a TTL), so every process
    pointed at the same Redis shares each key's budget."""

    def __init__(
        self, url: str, rate_per_minute: float, burst: int, prefix: str = "dari:ratelimit:"
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingExtra("redis", "server") from exc
        self._url = url
        self._rate = rate_per_minute / 60.0
        self._burst = burst
        self._prefix = prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=2
            )
            self._client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise BackendError(
                f"cannot reach Redis at {redact(url)} for rate limits: {exc}",
                "start Redis there, correct server.redis_url (DARI_SERVER__REDIS_URL), "
                'or set it to "" to keep rate limits in this process',
            ) from exc
        self._script = self._client.register_script(_TAKE)

    def take(self, key: str) -> None:
        try:
            wait = float(self._script(keys=[self._prefix + key], args=[self._rate, self._burst]))
        except self._errors as exc:
            raise BackendError(
                f"the rate-limit store at {redact(self._url)} failed: {exc}",
                "check that Redis is running; requests are refused until it answers",
            ) from exc
        if wait > 0:
            raise RateLimited(wait)

    def close(self) -> None:
        self._client.close()


def rate_limits(server: ServerSettings) -> Limits:
    """Redis-backed limits when `server.redis_url` is set, else in this process."""
    if server.redis_url:
        return RedisBuckets(server.redis_url, server.rate_per_minute, server.burst)
    return TokenBuckets(server.rate_per_minute, server.burst)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
