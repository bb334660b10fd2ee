"""The service actor: each service's endpoints kept current in KV, and discovery over NATS.

Replicas share the work: one leads (``LeaderLease``) and writes endpoints whenever pods,
their status, nodes or services change; every replica answers ``shoal.v1.api.resolve``
from its warm caches. Endpoint changes are published as events. The traffic itself goes
through the proxy every node runs (``actors/node/proxy.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from shoal.actors.base import Actor, instance_name
from shoal.actors.health import NodeHealth
from shoal.actors.service.endpoints import endpoints_for
from shoal.bus import kv, subjects
from shoal.bus.batch import BucketWriter
from shoal.bus.cache import KVCache
from shoal.bus.codec import encode
from shoal.bus.events import EventPublisher
from shoal.bus.kv import Bucket, Entry
from shoal.bus.lease import LeaderLease
from shoal.bus.rpc import serve
from shoal.errors import Conflict, Deposed, NotFound
from shoal.models.api import ResolveRequest
from shoal.models.node import Node
from shoal.models.service import Endpoints

log = logging.getLogger(__name__)

NODE_RECHECK_SECONDS = 0.1
"""How often node leases are looked at again: a node that stops renewing drops its endpoints."""


class ServiceActor(Actor):
    role = "service"

    def __init__(self, nc: Client, *, replicas: int = 1, lease_ttl: float = 1.5) -> None:
        super().__init__(nc)
        self.replicas = replicas
        self.name = instance_name("service")
        self.events = EventPublisher(nc, self.name)
        self.lease_ttl = lease_ttl
        self.dirty = asyncio.Event()
        self._subscription: Subscription | None = None
        self.health = NodeHealth(nc)
        self._all_silent = False

    async def start(self) -> None:
        self.js_replicas = self.replicas
        await self.ensure_state()
        changed = self._changed
        self.services = self.watch(KVCache(await Bucket.open(self.js, kv.SERVICES), changed))
        self.pods = self.watch(KVCache(await Bucket.open(self.js, kv.PODS), changed))
        self.statuses = self.watch(KVCache(await Bucket.open(self.js, kv.POD_STATUS), changed))
        await self.health.start()
        self.nodes = self.watch(KVCache(await Bucket.open(self.js, kv.NODES), self._node_changed))
        self.endpoints = self.watch(KVCache(await Bucket.open(self.js, kv.ENDPOINTS)))
        await asyncio.gather(*(cache.synced.wait() for cache in self.caches))
        self.writer = BucketWriter(self.nc, kv.ENDPOINTS.name, role="service", holder=self.name)
        self.lease = LeaderLease(
            await Bucket.open(self.js, kv.LEASES),
            "service",
            self.name,
            ttl=self.lease_ttl,
            on_change=lambda leading: self.dirty.set() if leading else None,
            prepare=self.writer.take,
        )
        self.spawn(self.health.run(), "attentive clock")
        self.spawn(self.lease.run(), "lease")
        self.spawn(self._loop(), "endpoints")
        self.spawn(self._recheck_nodes(), "node leases")
        self._subscription = await serve(
            self.nc,
            subjects.API_RESOLVE,
            ResolveRequest,
            self.resolve,
            queue=subjects.SERVICE_QUEUE,
            owner="the service actor",
        )
        self.dirty.set()
        await super().start()

    async def on_stop(self) -> None:
        await self.health.stop()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        await self.lease.release()
        await self.writer.close()

    def _changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self.dirty.set()

    def _node_changed(self, key: str, old: Entry[Node] | None, new: Entry[Node] | None) -> None:
        if new is None:
            self.health.forget(key)
        else:
            self.health.know(key, new.value.lease_seconds)
        self.dirty.set()

    def _node_ready(self, name: str) -> bool:
        # Judged from heartbeats by this actor's own attentive clock, as the scheduler does.
        # When no node at all is heard, the fault is most likely ours or the network's:
        # endpoints stay as they were rather than empty every service.
        return self.health.judge(name).ready or self._all_silent

    async def _recheck_nodes(self) -> None:
        ready: dict[str, bool] = {}
        while True:
            judged = {name: self.health.judge(name).ready for name in self.nodes.entries}
            self._all_silent = bool(judged) and not any(judged.values())
            now = {name: self._node_ready(name) for name in judged}
            if now != ready:
                ready = now
                self.dirty.set()
            await asyncio.sleep(NODE_RECHECK_SECONDS)

    def compute(self) -> dict[str, Endpoints]:
        return {
            key: endpoints_for(entry.value, self.pods.entries, self.statuses.entries, self._node_ready)
            for key, entry in self.services.entries.items()
        }

    async def _loop(self) -> None:
        while True:
            await self.dirty.wait()
            await self.lease.elected.wait()
            self.dirty.clear()
            try:
                await self._write(self.compute())
            except Conflict:
                self.dirty.set()
            except Exception as err:
                log.warning("could not write endpoints: %s", err)
                await asyncio.sleep(0.5)
                self.dirty.set()

    async def _write(self, wanted: dict[str, Endpoints]) -> None:
        changed = {
            key: endpoints
            for key, endpoints in wanted.items()
            if (current := self.endpoints.get(key)) is None or current.value != endpoints
        }
        gone = {key: entry for key, entry in self.endpoints.entries.items() if key not in wanted}
        results = await asyncio.gather(
            *(self._write_one(key, endpoints) for key, endpoints in changed.items()),
            *(self.writer.delete(key, entry.revision) for key, entry in gone.items()),
            return_exceptions=True,
        )
        for key in gone:
            self.endpoints.note_deleted(key)
        for result in results:
            if isinstance(result, Deposed):
                log.warning("%s: %s", self.name, result)
                self.lease.step_down()
                return
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _write_one(self, key: str, endpoints: Endpoints) -> None:
        current = self.endpoints.get(key)
        if current is None:
            revision = await self.writer.create(key, encode(endpoints))
        else:
            revision = await self.writer.update(key, encode(endpoints), current.revision)
        self.endpoints.note_written(key, endpoints, revision)
        before = current.value.ready_pods if current is not None else set()
        after = endpoints.ready_pods
        await self.events.emit(
            "Service",
            endpoints.namespace,
            endpoints.name,
            "EndpointsUpdated",
            f"{len(after)} ready endpoint(s), {len(endpoints.not_ready)} not ready"
            f" (+{len(after - before)} -{len(before - after)})",
            ready=sorted(after),
            added=sorted(after - before),
            removed=sorted(before - after),
        )

    async def resolve(self, request: ResolveRequest) -> Endpoints:
        key = f"{request.namespace}.{request.name}"
        service = self.services.get(key)
        if service is None:
            raise NotFound(f'service "{request.name}" not found in namespace {request.namespace}')
        return endpoints_for(service.value, self.pods.entries, self.statuses.entries, self._node_ready)
