"""Batched and fenced KV writes against a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from shoal.bus import kv
from shoal.bus.batch import BucketWriter
from shoal.bus.codec import encode
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.errors import Conflict, Deposed
from shoal.models.node import LeaseRecord

BUCKET = kv.LEASES.name


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect_actor(nats_url, "batch-test")
    await kv.ensure_buckets(client.jetstream())
    try:
        yield client
    finally:
        await client.close()


def data(value: str) -> bytes:
    return value.encode()


async def test_writes_made_at_once_share_batches_and_each_gets_its_revision(nc: Client) -> None:
    writer = BucketWriter(nc, BUCKET)
    try:
        revisions = await asyncio.gather(*(writer.create(f"k{i}", data(str(i))) for i in range(1200)))
        store = await nc.jetstream().key_value(BUCKET)
        for i in (0, 599, 1199):
            entry = await store.get(f"k{i}")
            assert (entry.value, entry.revision) == (data(str(i)), revisions[i])
        assert len(set(revisions)) == 1200
        # A stale compare-and-swap fails alone; the writes batched with it land.
        results = await asyncio.gather(
            writer.update("k1", data("new"), revisions[1]),
            writer.update("k2", data("stale"), revisions[1]),
            writer.delete("k3", revisions[3]),
            writer.create("k4", data("exists")),
            return_exceptions=True,
        )
        assert isinstance(results[0], int) and isinstance(results[2], int)
        assert isinstance(results[1], Conflict) and isinstance(results[3], Conflict)
        assert (await store.get("k1")).value == data("new")
        assert (await store.get("k2")).value == data("2")
        with pytest.raises(Exception, match=r"not found|deleted"):
            await store.get("k3")
    finally:
        await writer.close()


async def test_a_deposed_writer_stores_nothing_once_a_new_term_began(nc: Client) -> None:
    old, new = BucketWriter(nc, BUCKET, role="leader"), BucketWriter(nc, BUCKET, role="leader")
    try:
        await old.take()
        assert await old.create("a", data("old"))
        await new.take()
        results = await asyncio.gather(
            *(old.create(f"late{i}", data("old")) for i in range(300)), return_exceptions=True
        )
        assert all(isinstance(r, Deposed) for r in results), {type(r).__name__ for r in results}
        with pytest.raises(Deposed):
            await old.put("a", data("again"))
        assert await new.put("a", data("new"))
        store = await nc.jetstream().key_value(BUCKET)
        assert (await store.get("a")).value == data("new")
        assert sorted(await store.keys()) == ["a"]  # no late write landed; fences are no keys
        # A writer that never began a term cannot write once anyone has.
        never = BucketWriter(nc, BUCKET, role="leader")
        try:
            with pytest.raises(Deposed):
                await never.create("b", data("never"))
        finally:
            await never.close()
    finally:
        await old.close()
        await new.close()


async def test_readers_never_see_fences_and_know_when_they_hold_everything(nc: Client) -> None:
    writer = BucketWriter(nc, BUCKET, role="leader")
    try:
        await writer.take()
        await asyncio.gather(
            *(
                writer.put(f"x{i}", encode(LeaseRecord(holder="h", term=i, renewed_at=0, ttl=1)))
                for i in range(3)
            )
        )
        await writer.take()  # the newest message of the stream is now a fence, not a key
        bucket = await Bucket.open(nc.jetstream(), kv.LEASES)
        assert sorted(await bucket.items()) == ["x0", "x1", "x2"]
    finally:
        await writer.close()


async def test_a_deleted_key_can_be_created_again(nc: Client) -> None:
    writer = BucketWriter(nc, BUCKET, role="leader")
    try:
        await writer.take()
        revision = await writer.create("k", data("one"))
        await writer.delete("k", revision)
        assert await writer.create("k", data("two"))
        with pytest.raises(Conflict):
            await writer.create("k", data("three"))  # it exists now
        store = await nc.jetstream().key_value(BUCKET)
        assert (await store.get("k")).value == data("two")
    finally:
        await writer.close()


async def test_actors_making_the_buckets_at_once_leave_every_fence_stored_once(nats_url: str) -> None:
    # Roles started together all find the buckets missing. Streams updated by several of them
    # at once could end up subscribed twice to the fence subjects: every fence stored twice and
    # every fenced batch refused as incomplete until nats-server restarts.
    clients = [await connect_actor(nats_url, f"starter-{i}") for i in range(6)]
    try:
        await asyncio.gather(*(kv.ensure_buckets(c.jetstream()) for c in clients))
        js = clients[0].jetstream()
        for bucket in kv.ALL_BUCKETS:
            stream = f"KV_{bucket.name}"
            before = (await js.stream_info(stream)).state.last_seq
            writer = BucketWriter(clients[0], bucket.name, role="starter", holder="starter-0")
            try:
                await writer.take()  # one fence message per lane
                stored = (await js.stream_info(stream)).state.last_seq - before
                assert stored == writer.lanes, f"{bucket.name}: {stored} messages for {writer.lanes} fences"
                await asyncio.gather(writer.put("a", data("1")), writer.put("b", data("2")))
            finally:
                await writer.close()
    finally:
        for client in clients:
            await client.close()
