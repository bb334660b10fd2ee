"""Leader election over KV against a real nats-server: one leader, fast hand-over, no overlap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from shoal.bus import kv
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.bus.lease import LeaderLease
from shoal.errors import Conflict
from tests.harness import wait_for


@pytest.fixture
async def bucket(nats_url: str) -> AsyncIterator[Bucket]:
    nc = await connect_actor(nats_url, "lease-test")
    await kv.ensure_buckets(nc.jetstream())
    try:
        yield await Bucket.open(nc.jetstream(), kv.LEASES)
    finally:
        await nc.close()


async def run(lease: LeaderLease) -> asyncio.Task[None]:
    return asyncio.create_task(lease.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_one_leader_then_a_fast_takeover_when_it_dies(bucket: Bucket) -> None:
    leases = [LeaderLease(bucket, "role", f"c{i}", ttl=1.0) for i in range(3)]
    tasks = [await run(lease) for lease in leases]
    try:

        async def one_leader() -> LeaderLease | None:
            leaders = [lease for lease in leases if lease.is_leader]
            assert len(leaders) <= 1
            return leaders[0] if leaders else None

        first = await wait_for(one_leader, timeout=5, interval=0.02, what="a leader")
        index = leases.index(first)
        await stop(tasks[index])  # dies without a word, like SIGKILL
        died = time.monotonic()
        others = [lease for i, lease in enumerate(leases) if i != index]

        async def successor() -> LeaderLease | None:
            leaders = [lease for lease in others if lease.is_leader]
            assert len(leaders) <= 1
            return leaders[0] if leaders else None

        second = await wait_for(successor, timeout=5, interval=0.02, what="a new leader")
        assert 0.9 <= time.monotonic() - died < 1.5
        assert second.term == first.term + 1
        assert not first.is_leader  # its own clock ran out: it no longer acts
    finally:
        for task in tasks:
            await stop(task)


async def test_a_released_lease_is_taken_at_once(bucket: Bucket) -> None:
    a, b = LeaderLease(bucket, "role", "a", ttl=5.0), LeaderLease(bucket, "role", "b", ttl=5.0)
    task_a = await run(a)
    await asyncio.wait_for(a.elected.wait(), 5)
    task_b = await run(b)
    try:
        await stop(task_a)
        await a.release()
        released = time.monotonic()
        await asyncio.wait_for(b.elected.wait(), 5)
        assert time.monotonic() - released < 1.0  # not the 5 s TTL
    finally:
        await stop(task_b)


async def test_a_stale_leader_is_deposed_by_its_first_failed_renewal(bucket: Bucket) -> None:
    a = LeaderLease(bucket, "role", "a", ttl=30.0)
    task = await run(a)
    await asyncio.wait_for(a.elected.wait(), 5)
    await stop(task)

    async def usurped() -> bool:
        # someone else takes the key behind its back (again, should a renewal that was
        # under way when the task stopped land after our read)
        entry = await bucket.get("role")
        assert entry is not None
        try:
            await bucket.update(
                "role", entry.value.model_copy(update={"holder": "usurper", "term": 9}), entry.revision
            )
        except Conflict:
            return False
        return True

    await wait_for(usurped, timeout=5, what="the key taken over")
    task = await run(a)
    try:

        async def deposed() -> bool:
            return not a.is_leader

        await wait_for(deposed, timeout=10, interval=0.05, what="the stale leader to step down")
    finally:
        await stop(task)
