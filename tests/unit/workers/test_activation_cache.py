"""The activation cache: stable keys, byte bounds, TTL, counters, and a reader that runs one forward for misses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis
import torch

from workers.activation_cache import CACHE_FORMAT, MemoryActivationCache, RedisActivationCache, activation_key
from workers.cached_reader import CacheContext, cached_reader, decode_tensor, encode_tensor


def test_key_names_every_part_and_hashes_token_ids() -> None:
    key = activation_key("m", "rev", "float32", [1, 2, 3], "blocks.0.hook_resid_pre")
    parts = key.split(":")
    assert parts[:5] == ["act", f"v{CACHE_FORMAT}", "m", "rev", "float32"]
    assert len(parts[5]) == 64 and parts[6] == "blocks.0.hook_resid_pre"
    assert key != activation_key("m", "rev", "float32", [1, 2, 4], "blocks.0.hook_resid_pre")
    assert key == activation_key("m", "rev", "float32", (1, 2, 3), "blocks.0.hook_resid_pre")


def test_tensor_round_trip_is_exact() -> None:
    tensor = torch.randn(1, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(decode_tensor(encode_tensor(tensor)), tensor)


def test_memory_cache_bounds_bytes_lru_and_expires() -> None:
    cache = MemoryActivationCache(max_bytes=25, ttl_s=60)
    cache.put_many({"a": b"x" * 10, "b": b"y" * 10})
    assert cache.get_many(["a"]) == [b"x" * 10]  # a is now the most recent
    cache.put_many({"c": b"z" * 10})  # 30 bytes > 25: the least recent (b) goes
    assert cache.get_many(["a", "b", "c"]) == [b"x" * 10, None, b"z" * 10]
    totals = cache.totals()
    assert (totals["hits"], totals["misses"], totals["size_bytes"]) == (3, 1, 20)
    short = MemoryActivationCache(max_bytes=100, ttl_s=0.01)
    short.put_many({"k": b"v"})
    time.sleep(0.02)
    assert short.get_many(["k"]) == [None]


def test_redis_cache_evicts_oldest_over_the_bound() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/12", socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    cache = RedisActivationCache(client, prefix=prefix, max_bytes=25, ttl_s=60)
    try:
        cache.put_many({"a": b"x" * 10})
        cache.put_many({"b": b"y" * 10})
        cache.put_many({"c": b"z" * 10})
        assert cache.get_many(["a", "b", "c"]) == [None, b"y" * 10, b"z" * 10]
        totals = cache.totals()
        assert (totals["hits"], totals["misses"], totals["size_bytes"], totals["entries"]) == (2, 1, 20, 2)
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def test_cached_reader_runs_one_forward_for_the_misses_only() -> None:
    calls: list[list[str]] = []

    def forward(tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        calls.append(list(names))
        return {n: tokens.float().unsqueeze(-1) * (i + 1) for i, n in enumerate(names)}

    cache = MemoryActivationCache(max_bytes=10**6, ttl_s=60)
    tokens = torch.tensor([[5, 6, 7]])
    first = CacheContext("m", "r", "float32")
    read = cached_reader(cache, first, forward)
    a = read(tokens, ["h1"])
    assert calls == [["h1"]] and first.stats.forwards == 1 and first.stats.misses == 1
    second = CacheContext("m", "r", "float32")
    b = cached_reader(cache, second, forward)(tokens, ["h1", "h2"])
    assert calls == [["h1"], ["h2"]]  # h1 came from the cache
    assert (second.stats.hits, second.stats.misses, second.stats.forwards) == (1, 1, 1)
    assert torch.equal(b["h1"], a["h1"])
    third = CacheContext("m", "r", "float32")
    cached_reader(cache, third, forward)(tokens, ["h2", "h1"])
    assert len(calls) == 2 and third.stats.forwards == 0 and third.stats.hits == 2
    other_revision = CacheContext("m", "r2", "float32")
    cached_reader(cache, other_revision, forward)(tokens, ["h1"])
    assert other_revision.stats.forwards == 1


def test_an_unreachable_redis_is_all_misses_and_keeps_nothing() -> None:
    from tests.integration.conftest import free_port

    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    cache = RedisActivationCache(down, prefix="gone:", max_bytes=1 << 20, ttl_s=60)
    assert cache.get_many(["a", "b"]) == [None, None]
    cache.put_many({"a": b"x" * 10})  # no error: the job computes what it needs


def test_a_full_redis_keeps_nothing_and_raises_nothing(tmp_path: Path) -> None:
    """``noeviction`` at its memory bound refuses writes (OOM): the cache carries on without them."""
    from tests.integration.conftest import start_redis

    proc, url = start_redis(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        client.config_set("maxmemory", "2mb")
        client.config_set("maxmemory-policy", "noeviction")
        cache = RedisActivationCache(client, prefix="full:", max_bytes=1 << 30, ttl_s=60)
        cache.put_many({f"k{i}": b"x" * 500_000 for i in range(8)})  # 4 MB into 2 MB
        got = cache.get_many([f"k{i}" for i in range(8)])
        assert any(v is None for v in got)
        assert all(v is None or v == b"x" * 500_000 for v in got)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
