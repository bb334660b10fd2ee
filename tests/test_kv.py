"""KV reads against a real nats-server: a one-off read or a watch's first sync holds every key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.models.node import LeaseRecord


@pytest.fixture
async def leases(nats_url: str) -> AsyncIterator[Bucket[LeaseRecord]]:
    nc = await connect_actor(nats_url, "kv-test")
    await kv.ensure_buckets(nc.jetstream())
    try:
        yield await Bucket.open(nc.jetstream(), kv.LEASES)
    finally:
        await nc.close()


def lease(holder: str) -> LeaseRecord:
    return LeaseRecord(holder=holder, term=1, renewed_at=0.0, ttl=1.0)


async def test_every_read_of_a_small_bucket_holds_all_its_keys(leases: Bucket[LeaseRecord]) -> None:
    # One key is the hard case: its only value can reach the client before the consumer's
    # pending count is read, which used to end the read before the value arrived.
    assert await leases.items() == {}
    await leases.put("only", lease("a"))
    # Many reads at once keep the client busy, which widens that window.
    reads = await asyncio.gather(*(leases.items() for _ in range(100)))
    assert all(set(read) == {"only"} for read in reads), [sorted(r) for r in reads if set(r) != {"only"}][:3]
    await leases.put("second", lease("b"))
    await leases.delete("only")
    reads = await asyncio.gather(*(leases.items() for _ in range(100)))
    assert all(set(read) == {"second"} for read in reads)


async def test_a_filtered_read_holds_exactly_the_matching_keys(leases: Bucket[LeaseRecord]) -> None:
    for name in ("web.1", "web.2", "web.3", "api.1"):
        await leases.put(name, lease(name))
    await leases.delete("web.2")
    reads = await asyncio.gather(*(leases.items("web.*") for _ in range(100)))
    assert all(set(read) == {"web.1", "web.3"} for read in reads)
    assert await leases.items("none.*") == {}


async def test_a_cache_is_synced_only_once_it_holds_every_key(leases: Bucket[LeaseRecord]) -> None:
    await leases.put("k", lease("a"))
    for _ in range(50):
        cache: KVCache[LeaseRecord] = KVCache(leases)
        task = asyncio.create_task(cache.run())
        try:
            await cache.synced.wait()
            assert set(cache.entries) == {"k"}
        finally:
            task.cancel()
