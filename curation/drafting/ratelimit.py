"""A request rate shared by every drafting worker, kept in Redis.

Each worker process limits its own concurrency with a semaphore, but only a shared counter stops
N workers from sending N times the rate the LLM server (or the provider's quota) allows. The
token bucket lives in one Redis hash and is updated by a Lua script, so a refill and a take are
one atomic step, and the clock is Redis's own (`TIME`), so workers on different machines agree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import redis

from .errors import TransportFailure

log = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV rate (tokens per second), burst (bucket size).
# Returns the seconds to wait as a string ("0" = granted); Redis would truncate a Lua float.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Block until one request may go; return the seconds waited."""
        ...


class NoRateLimit:
    """For a single worker or a server without quotas."""

    def acquire(self) -> float:
        return 0.0


class RedisTokenBucket:
    """`rate` requests per second on average, up to `burst` at once, across all workers."""

    def __init__(
        self,
        redis_client: redis.Redis | str,
        *,
        rate: float,
        burst: int | None = None,
        key: str = "drafting:ratelimit",
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if isinstance(redis_client, str):
            redis_client = redis.Redis.from_url(redis_client, socket_timeout=5)
        self.redis = redis_client
        self.rate = float(rate)
        self.burst = int(burst if burst is not None else max(1, round(rate)))
        self.key = key
        self.max_wait = max_wait
        self.sleep = sleep
        self._script = self.redis.register_script(TOKEN_BUCKET)

    def try_acquire(self) -> float:
        """Take a token if there is one (returns 0), else return how long until there is."""
        try:
            return float(self._script(keys=[self.key], args=[self.rate, self.burst]))
        except redis.RedisError as e:
            raise TransportFailure("rate_limiter", f"Redis: {e}") from e

    def acquire(self) -> float:
        waited = 0.0
        while (wait := self.try_acquire()) > 0:
            if waited + wait > self.max_wait:
                raise TransportFailure("rate_limited", f"waited {waited:.1f}s for a token")
            self.sleep(wait)
            waited += wait
        if waited:
            log.debug("rate limiter %s: waited %.3fs", self.key, waited)
        return waited
