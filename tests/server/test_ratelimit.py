"""Rate limits: the in-process token bucket on a fake clock, and the Redis one against a real
redis-server started for the test, shared by two app instances."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dari.app import Dari
from dari.config import Settings
from dari.errors import BackendError, RateLimited
from dari.server.app import create_app
from dari.server.ratelimit import RedisBuckets, TokenBuckets, rate_limits, redact

KeyMaker = Callable[..., Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def waits(buckets: TokenBuckets | RedisBuckets, key: str) -> float | None:
    """None when the request is allowed, else the seconds it was told to wait."""
    try:
        buckets.take(key)
    except RateLimited as exc:
        return exc.retry_after
    return None


# --- in this process ---------------------------------------------------------------------------


def test_burst_then_limited_with_the_seconds_to_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_minute=60, burst=3, clock=clock)
    assert [waits(buckets, "a") for _ in range(3)] == [None, None, None]
    assert waits(buckets, "a") == pytest.approx(1.0)  # 60/min: one token a second
    clock.now += 0.25
    assert waits(buckets, "a") == pytest.approx(0.75)  # a refused request spends nothing
    assert waits(buckets, "b") is None  # each key has its own bucket


def test_refill_at_the_rate_and_never_above_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_minute=30, burst=2, clock=clock)
    assert [waits(buckets, "a") for _ in range(3)] == [None, None, pytest.approx(2.0)]
    clock.now += 2.0
    assert waits(buckets, "a") is None
    assert waits(buckets, "a") == pytest.approx(2.0)
    clock.now += 3600  # an hour idle: still only `burst` at once
    assert [waits(buckets, "a") for _ in range(3)] == [None, None, pytest.approx(2.0)]


def test_waiting_retry_after_is_enough() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_minute=7, burst=1, clock=clock)
    buckets.take("a")
    wait = waits(buckets, "a")
    assert wait is not None
    clock.now += wait
    assert waits(buckets, "a") is None


def test_retry_after_header_rounds_up(client: TestClient, make_key: KeyMaker) -> None:
    client.app.state.limits = TokenBuckets(60 / 1.4, 1, clock=Clock())  # type: ignore[attr-defined]
    _, headers = make_key(client)
    assert client.get("/api/collections", headers=headers).status_code == 200
    r = client.get("/api/collections", headers=headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"  # 1.4 s: 1 would be early
    assert r.json()["error"]["type"] == "rate_limited"


def test_in_process_unless_a_redis_url_is_set() -> None:
    assert isinstance(rate_limits(Settings().server), TokenBuckets)


# --- in Redis ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_buckets_limit_like_the_in_process_ones(redis_url: str) -> None:
    buckets = RedisBuckets(redis_url, rate_per_minute=60, burst=3)
    assert [waits(buckets, "a") for _ in range(3)] == [None, None, None]
    wait = waits(buckets, "a")
    assert wait is not None and 0.9 < wait <= 1.0
    assert waits(buckets, "b") is None
    buckets.close()


def test_redis_bucket_refills_and_expires(redis_url: str) -> None:
    import redis

    buckets = RedisBuckets(redis_url, rate_per_minute=600, burst=2)  # a token per 0.1 s
    assert [waits(buckets, "a") for _ in range(2)] == [None, None]
    wait = waits(buckets, "a")
    assert wait is not None and 0 < wait <= 0.1
    time.sleep(wait)  # the contract: after Retry-After seconds, one request is allowed
    assert waits(buckets, "a") is None
    ttl_ms = redis.Redis.from_url(redis_url).pttl("dari:ratelimit:a")
    assert 0 < ttl_ms <= 1000 + 200  # gone once it would be full again (0.2 s) plus a margin
    buckets.close()


def test_two_processes_share_one_budget(redis_url: str) -> None:
    one = RedisBuckets(redis_url, rate_per_minute=60, burst=4)
    two = RedisBuckets(redis_url, rate_per_minute=60, burst=4)
    results = [waits(b, "k") for b in (one, two, one, two, one)]
    assert results[:4] == [None] * 4 and results[4] is not None
    assert waits(two, "k") is not None
    one.close()
    two.close()


def test_two_app_instances_share_a_keys_budget(
    redis_url: str, app_dari: Dari, make_key: KeyMaker
) -> None:
    server = app_dari.settings.server.model_copy(update={"redis_url": redis_url, "burst": 3})
    settings = app_dari.settings.model_copy(update={"server": server})
    first, second = create_app(settings, app_dari), create_app(settings, app_dari)
    assert isinstance(first.state.limits, RedisBuckets)
    with TestClient(first) as a, TestClient(second) as b:
        _, headers = make_key(a)  # one store: the key is valid on both
        codes = [c.get("/api/collections", headers=headers).status_code for c in (a, b, a, b)]
        assert codes == [200, 200, 200, 429]
        limited = a.get("/api/collections", headers=headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        _, other = make_key(b)
        assert b.get("/api/collections", headers=other).status_code == 200


def test_unreachable_redis_is_a_clear_error_at_startup(app_dari: Dari) -> None:
    pytest.importorskip("redis")
    url = f"redis://:s3cret@127.0.0.1:{_free_port()}/0"  # nothing listens there
    server = app_dari.settings.server.model_copy(update={"redis_url": url})
    settings = app_dari.settings.model_copy(update={"server": server})
    with pytest.raises(BackendError) as info:
        create_app(settings, app_dari)
    assert f"127.0.0.1:{url.rsplit(':', 1)[1]}" in info.value.message
    assert "s3cret" not in info.value.message
    assert "server.redis_url" in info.value.hint and "DARI_SERVER__REDIS_URL" in info.value.hint


def test_redact_hides_only_the_password() -> None:
    assert redact("redis://:pw@cache:6380/1") == "redis://:***@cache:6380/1"
    assert redact("rediss://user:pw@cache/0") == "rediss://user:***@cache/0"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
