"""The shared rate limit runs on real Redis: two limiters on one key act as two workers."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from curation.drafting import NoRateLimit, RedisTokenBucket, TransportFailure


def test_burst_is_granted_then_the_next_token_must_wait(redis_client):
    bucket = RedisTokenBucket(redis_client, rate=2, burst=3, key=f"{redis_client.test_prefix}:a")
    assert [bucket.try_acquire() for _ in range(3)] == [0, 0, 0]
    wait = bucket.try_acquire()
    assert 0.3 < wait <= 0.5, "one token per 0.5 s"
    assert redis_client.pttl(bucket.key) > 0, "the bucket expires when idle"


def test_workers_share_one_bucket(redis_client):
    key = f"{redis_client.test_prefix}:shared"
    worker_a = RedisTokenBucket(redis_client, rate=1, burst=2, key=key)
    # a second process would have its own connection: build one from the same URL
    other = redis.Redis(connection_pool=redis.ConnectionPool(**pool_kwargs(redis_client)))
    worker_b = RedisTokenBucket(other, rate=1, burst=2, key=key)
    assert worker_a.try_acquire() == 0
    assert worker_b.try_acquire() == 0
    assert worker_a.try_acquire() > 0 and worker_b.try_acquire() > 0
    other.close()


def pool_kwargs(client):
    return dict(client.connection_pool.connection_kwargs)


def test_acquire_sleeps_until_a_token_is_free(redis_client):
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        time.sleep(seconds)

    bucket = RedisTokenBucket(
        redis_client, rate=20, burst=1, key=f"{redis_client.test_prefix}:b", sleep=sleep
    )
    assert bucket.acquire() == 0
    waited = bucket.acquire()
    assert 0 < waited <= 0.06 and sleeps


def test_the_rate_holds_across_threads(redis_client):
    """30 requests at 50/s with a burst of 5 take about (30 - 5) / 50 = 0.5 s."""
    bucket = RedisTokenBucket(redis_client, rate=50, burst=5, key=f"{redis_client.test_prefix}:c")
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [bucket.acquire() for _ in range(6)]) for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5


def test_waiting_too_long_is_a_transport_failure(redis_client):
    bucket = RedisTokenBucket(
        redis_client, rate=0.1, burst=1, key=f"{redis_client.test_prefix}:d", max_wait=1.0
    )
    bucket.acquire()
    with pytest.raises(TransportFailure, match="rate_limited"):
        bucket.acquire()


def test_redis_down_is_a_transport_failure():
    bucket = RedisTokenBucket("redis://127.0.0.1:9/0", rate=1)
    with pytest.raises(TransportFailure, match="rate_limiter"):
        bucket.acquire()


def test_no_rate_limit_never_waits():
    assert NoRateLimit().acquire() == 0.0


def test_rate_must_be_positive(redis_client):
    with pytest.raises(ValueError):
        RedisTokenBucket(redis_client, rate=0)
