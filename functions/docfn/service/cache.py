"""The result cache: content-addressed keys, Redis when configured, a bounded LRU otherwise.

A cache failure never fails a request: reads miss and writes are dropped, and both are counted.

Redis's client and the circuit breaker (pybreaker, which imports redis, which imports OpenTelemetry's
metrics SDK: a quarter of the Lambda handler's import time, ``python -X importtime`` in the image) are
imported only when a Redis cache is built: a function without Redis never pays for them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from functools import cache
from typing import Any, Protocol

from ..core import metrics

log = logging.getLogger("docfn.cache")

KEY_PREFIX = "docfn:v1"


def options_hash(options: dict[str, Any]) -> str:
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def cache_key(input_sha256: str, task: str, pack_id: str, options: dict[str, Any]) -> str:
    """hash(input) + task + model pack version + hash(options): a new pack never serves old results."""
    return f"{KEY_PREFIX}:{task}:{pack_id}:{input_sha256}:{options_hash(options)}"


def input_key(input_sha256: str) -> str:
    """What the cache knows of an input besides its results: its page count and size, so a request
    that names the input by its sha256 alone (MinerU's ``sha256sum``) finds its results' keys."""
    return f"{KEY_PREFIX}:input:{input_sha256}"


class ResultCache(Protocol):
    kind: str

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None: ...


class MemoryCache:
    """Bounded in-process LRU with the same TTL as Redis, for the CLI and instances without Redis."""

    kind = "memory"

    def __init__(self, max_entries: int = 256) -> None:
        # key -> (monotonic expiry, JSON bytes): entries live as long as they would in Redis.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, raw = entry
            if time.monotonic() >= expires_at:  # expired, as Redis would have: a miss, and gone
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return json.loads(raw)

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        raw = json.dumps(value).encode()
        with self._lock:
            self._entries[key] = (time.monotonic() + max(1, ttl_seconds), raw)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


@cache
def _breaker_gauge() -> Any:
    """A listener that says in the metrics (and the log) when the breaker opens and closes."""
    import pybreaker

    class BreakerGauge(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
        def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
            metrics.CACHE_CIRCUIT_OPEN.set(1 if new_state.name == pybreaker.STATE_OPEN else 0)
            log.warning("cache circuit breaker %s -> %s", old_state.name, new_state.name)

    return BreakerGauge()


class RedisCache:
    """Redis/Valkey (ElastiCache) cache with short timeouts so an outage costs milliseconds.

    A circuit breaker (pybreaker) bounds what a slow or dead Redis costs: each call waits at most the
    socket timeout, and after ``breaker_failures`` consecutive failures Redis is skipped entirely
    (reads miss, writes are dropped) for ``breaker_reset_seconds``; then one trial call decides
    whether it is back. Recovery needs no restart.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        timeout_seconds: float = 0.5,
        breaker_failures: int = 5,
        breaker_reset_seconds: float = 10.0,
    ) -> None:
        import pybreaker
        import redis

        self._client = redis.Redis.from_url(
            url,
            password=password,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry_on_timeout=False,
            health_check_interval=30,
        )
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=breaker_failures,
            reset_timeout=breaker_reset_seconds,
            listeners=[_breaker_gauge()],
            name="redis-cache",
            throw_new_error_on_trip=False,
        )
        self.errors = 0

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._call("get", self._client.get, key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            # A damaged entry is a miss; the fresh result will overwrite it.
            return None

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self._call("set", self._client.set, key, json.dumps(value).encode(), ex=max(1, ttl_seconds))

    def ping(self) -> bool:
        import redis

        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def drop_connections(self) -> None:
        """Close the pool's connections; the next command opens a new one (SnapStart's hooks: a
        restored container must not share the snapshot's socket, nor its server-side client)."""
        self._client.connection_pool.disconnect()

    def _call(self, op: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """``function(...)`` through the breaker; a failure or an open circuit is None, counted."""
        import pybreaker
        import redis

        try:
            return self._breaker.call(function, *args, **kwargs)
        except pybreaker.CircuitBreakerError as exc:  # open: Redis was not called at all
            self._count(op, "circuit_open", exc)
        except redis.RedisError as exc:  # failed against Redis (the call that trips the breaker too)
            self._count(op, "error", exc)
        return None

    def _count(self, op: str, reason: str, exc: Exception) -> None:
        metrics.CACHE_FAILURES.labels(op, reason).inc()
        if reason == "error":
            self.errors += 1
            log.warning("cache %s failed, serving without cache: %s", op, exc)


def build_cache(
    redis_url: str | None,
    *,
    memory_entries: int = 256,
    password: str | None = None,
    timeout_seconds: float = 0.5,
    breaker_failures: int = 5,
    breaker_reset_seconds: float = 10.0,
) -> ResultCache:
    if redis_url:
        return RedisCache(
            redis_url,
            password=password,
            timeout_seconds=timeout_seconds,
            breaker_failures=breaker_failures,
            breaker_reset_seconds=breaker_reset_seconds,
        )
    return MemoryCache(memory_entries)
