"""KV reads against a real nats-server: a one-off read or a watch's first sync holds every key."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.models.node import LeaseRecord
from tests.harness import wait_for


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


async def test_statuses_kept_by_node_read_by_pod_key_newest_and_only_where_they_belong(
    nats_url: str,
) -> None:
    from shoal.models.pod import PodStatus

    def status(node: str, uid: str) -> PodStatus:
        return PodStatus(namespace="default", name="web-0", uid=uid, node_name=node)

    nc = await connect_actor(nats_url, "kv-test")
    try:
        await kv.ensure_buckets(nc.jetstream())
        statuses = await Bucket.open(nc.jetstream(), kv.POD_STATUS)
        seen: dict[str, str] = {}

        def changed(key: str, _old: object, new: object) -> None:
            seen[key] = new.value.node_name if new is not None else ""  # type: ignore[attr-defined]

        async def follows(node: str) -> None:
            await wait_for(lambda: seen.get("default.web-0") == node, timeout=5, interval=0.01, what=node)

        cache = KVCache(statuses, changed)
        watching = asyncio.create_task(cache.run())
        try:
            await cache.synced.wait()
            await statuses.put(kv.by_node_key("a", "default.web-0"), status("a", "u1"))
            # Moved: its new node writes later than its old node forgets.
            await statuses.put(kv.by_node_key("b", "default.web-0"), status("b", "u2"))
            # Written under c's name but naming b: not c's to write, not believed.
            await statuses.put(kv.by_node_key("c", "default.web-0"), status("b", "u3"))
            read = await statuses.items()
            assert list(read) == ["default.web-0"] and read["default.web-0"].value.uid == "u2"
            got = await statuses.get("default.web-0")
            assert got is not None and got.value.uid == "u2"
            await follows("b")
            # The new node's forgotten: the old one's is what is left.
            await statuses.delete(kv.by_node_key("b", "default.web-0"))
            got = await statuses.get("default.web-0")
            assert got is not None and got.value.uid == "u1"
            await follows("a")
            # Both gone: the pod has no status.
            await statuses.delete(kv.by_node_key("a", "default.web-0"))
            assert await statuses.get("default.web-0") is None
            assert await statuses.items() == {}
            await follows("")
            assert "default.web-0" not in cache.entries
            # A node's own, read under its name only.
            await statuses.put(kv.by_node_key("a", "default.api-0"), status("a", "u4"))
            await statuses.put(kv.by_node_key("b", "default.api-1"), status("b", "u5"))
            assert list(await statuses.items(kv.by_node_key("a", ">"))) == ["default.api-0"]
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    finally:
        await nc.close()
