"""The result cache against a real redis-server, and the in-process LRU."""

from __future__ import annotations

import time
from pathlib import Path

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.service.cache import MemoryCache, RedisCache, cache_key
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import RedisServer


def test_key_is_content_addressed() -> None:
    base = cache_key("ab" * 32, "ocr", "ocr-ppocrv6-tiny@1", {"min_confidence": 0.5, "pages": [0]})
    assert base == cache_key("ab" * 32, "ocr", "ocr-ppocrv6-tiny@1", {"pages": [0], "min_confidence": 0.5})
    assert base != cache_key("ab" * 32, "ocr", "ocr-ppocrv6-tiny@2", {"min_confidence": 0.5, "pages": [0]})
    assert base != cache_key("cd" * 32, "ocr", "ocr-ppocrv6-tiny@1", {"min_confidence": 0.5, "pages": [0]})
    assert base != cache_key("ab" * 32, "layout", "ocr-ppocrv6-tiny@1", {"min_confidence": 0.5, "pages": [0]})
    assert base != cache_key("ab" * 32, "ocr", "ocr-ppocrv6-tiny@1", {"min_confidence": 0.6, "pages": [0]})


def test_redis_roundtrip_and_ttl(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url)
    cache.set("docfn:v1:test:a", {"text": "héllo", "n": [1, 2]}, ttl_seconds=1)
    assert cache.get("docfn:v1:test:a") == {"text": "héllo", "n": [1, 2]}
    assert cache.get("docfn:v1:test:missing") is None
    time.sleep(1.6)
    assert cache.get("docfn:v1:test:a") is None


def test_memory_cache_honours_ttl() -> None:
    """A long-lived instance without Redis must not serve a result past its TTL (issue 17)."""
    cache = MemoryCache(max_entries=4)
    cache.set("short", {"v": 1}, ttl_seconds=1)
    cache.set("long", {"v": 2}, ttl_seconds=60)
    assert cache.get("short") == {"v": 1}
    time.sleep(1.2)
    assert cache.get("short") is None and cache.get("long") == {"v": 2}


def test_redis_outage_degrades_to_misses(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, timeout_seconds=0.2)
    cache.set("k", {"v": 1}, 60)
    redis_server.stop()
    started = time.perf_counter()
    assert cache.get("k") is None
    cache.set("k", {"v": 2}, 60)  # dropped, not raised
    assert time.perf_counter() - started < 2
    assert cache.errors == 2
    assert cache.ping() is False


def test_unreachable_redis_from_the_start(model_store: Path) -> None:
    settings = Settings(tasks=["ocr"], model_store=model_store, redis_url="redis://127.0.0.1:1/0")
    service = build_service(settings)
    outcome = service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    assert not outcome.cached and "RaggedRight" in outcome.result["text"]


def test_service_caches_in_redis(model_store: Path, redis_server: RedisServer) -> None:
    settings = Settings(tasks=["ocr"], model_store=model_store, redis_url=redis_server.url)
    data = SAMPLE_PAGE.read_bytes()
    first = build_service(settings).run("ocr", data, "image/png")
    second = build_service(settings).run("ocr", data, "image/png")  # another instance, same cache
    assert (first.cached, second.cached) == (False, True)
    assert first.cache_key == second.cache_key
    assert second.result == first.result


def test_memory_cache_is_bounded_lru() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set("a", {"v": "a"}, 60)
    cache.set("b", {"v": "b"}, 60)
    assert cache.get("a") == {"v": "a"}  # a is now most recent
    cache.set("c", {"v": "c"}, 60)
    assert cache.get("b") is None
    assert cache.get("a") == {"v": "a"} and cache.get("c") == {"v": "c"}
