"""Following the cluster: one watch per bucket and one reader of the event stream, per server.

Each bucket is copied by a ``KVCache`` (the informer the actors use), and each change it
reports derives the affected views again (``state.ClusterState.changed``) and hands the
patches to the hub. The caches also answer the detail pages (an object's YAML is rendered
from them), so no request ever reads NATS. Buckets that do not exist yet (a cluster still
starting) are waited for; after a reconnect every watch starts again with a replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.connection import connect_actor, on_reconnect
from shoal.bus.events import read_events
from shoal.bus.kv import Bucket, BucketDef, Entry
from shoal.dashboard.hub import Hub
from shoal.dashboard.state import TABLES
from shoal.dashboard.views import event_view
from shoal.security.access import Access

log = logging.getLogger(__name__)

BUCKETS: tuple[BucketDef, ...] = tuple(
    definition for definition in kv.ALL_BUCKETS if any(definition.name in b for b in TABLES.values())
)
"""The buckets the pages are drawn from: pods, nodes, deployments, services, HPAs and their status."""

RETRY = 0.5
"""Seconds between tries to open a bucket or the event stream that is not there yet."""


class Feed:
    def __init__(
        self, url: str, hub: Hub, *, connect_deadline: float = 60.0, access: Access | None = None
    ) -> None:
        self.url = url
        self.access = access
        self.hub = hub
        self.connect_deadline = connect_deadline
        self.nc: Client | None = None
        self.caches: dict[str, KVCache] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.events_seen = 0

    @property
    def synced(self) -> bool:
        """Every bucket's watch has delivered what the bucket held when it began."""
        return len(self.caches) == len(BUCKETS) and all(c.synced.is_set() for c in self.caches.values())

    def get(self, bucket: str, key: str) -> Any:
        """The record stored under ``key`` in ``bucket``, as last seen (None: none, or not read yet)."""
        cache = self.caches.get(bucket)
        entry = cache.get(key) if cache is not None else None
        return entry.value if entry is not None else None

    def values(self, bucket: str) -> Iterator[Any]:
        cache = self.caches.get(bucket)
        return cache.values() if cache is not None else iter(())

    async def start(self) -> None:
        self.nc = await connect_actor(
            self.url, "shoal-dashboard", deadline=self.connect_deadline, access=self.access
        )
        js = self.nc.jetstream(timeout=10)
        for definition in BUCKETS:
            self._spawn(self._follow_bucket(js, definition), f"watch {definition.name}")
        self._spawn(self._follow_events(js), "follow events")
        on_reconnect(self.nc, self._replay)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(work, name=f"dashboard: {what}")
        task.add_done_callback(lambda done: self._ended(done, what))
        self.tasks.append(task)

    @staticmethod
    def _ended(task: asyncio.Task[None], what: str) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("dashboard: %s failed: %s", what, task.exception(), exc_info=task.exception())

    def _replay(self) -> None:
        for cache in self.caches.values():
            cache.restart()

    async def _follow_bucket(self, js: JetStreamContext, definition: BucketDef) -> None:
        name = definition.name
        while True:
            try:
                bucket = await Bucket.open(js, definition)
                break
            except (BucketNotFoundError, NotFoundError):
                pass  # the cluster has not made it yet
            except Exception as err:  # disconnected, timed out: try again
                log.debug("dashboard: opening %s: %s", name, err)
            await asyncio.sleep(RETRY)

        def changed(key: str, _old: Entry | None, _new: Entry | None) -> None:
            self.hub.publish(self.hub.state.changed(name, key, self.get))

        cache: KVCache = KVCache(bucket, changed)
        self.caches[name] = cache
        await cache.run()

    async def _follow_events(self, js: JetStreamContext) -> None:
        kept = self.hub.state.events.maxlen
        while True:
            try:
                async for event in read_events(js, follow=True, last=kept):
                    self.events_seen += 1
                    self.hub.publish([self.hub.state.add_event(event_view(event))])
            except NotFoundError:
                pass  # no events stream yet
            except Exception as err:
                log.debug("dashboard: following events: %s", err)
            await asyncio.sleep(RETRY)
