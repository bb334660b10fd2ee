"""The scheduler actor: watches desired and observed state, runs the planner, applies its commands.

Watches feed local caches; any change marks the cluster dirty, and one loop re-plans the
whole cluster from the caches and carries out the commands with revision-checked writes,
many at once. A write that loses a race is simply planned again from fresher state.

The scheduler also judges node health: a node is Ready while the scheduler keeps seeing
its lease renewed (timed by the scheduler's own clock, so host clocks may disagree).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client

from shoal.actors.base import Actor
from shoal.actors.scheduler.commands import (
    BindPod,
    Command,
    CreatePod,
    DeleteDeploymentStatus,
    DeletePod,
    MarkUnschedulable,
    TerminatePod,
    WriteDeploymentStatus,
)
from shoal.actors.scheduler.planner import IdSource, RandomIds, plan
from shoal.actors.scheduler.view import ClusterView, NodeView
from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.events import EventPublisher, ensure_events_stream
from shoal.bus.kv import Bucket, Entry
from shoal.errors import Conflict
from shoal.models.node import Node
from shoal.models.pod import Pod
from shoal.models.workloads import DeploymentStatus

log = logging.getLogger(__name__)


@dataclass
class SchedulerSettings:
    replicas: int = 1
    """JetStream replicas for the buckets and stream this actor creates."""
    write_concurrency: int = 64
    """How many KV writes one planning round keeps in flight."""
    node_check_interval: float = 0.25


@dataclass
class _Lease:
    heartbeat_at: float
    seen: float
    """time.monotonic() when the scheduler saw this heartbeat arrive."""


class SchedulerActor(Actor):
    role = "scheduler"

    def __init__(
        self, nc: Client, settings: SchedulerSettings | None = None, ids: IdSource | None = None
    ) -> None:
        super().__init__(nc)
        self.settings = settings or SchedulerSettings()
        self.ids = ids or RandomIds()
        self.events = EventPublisher(nc, "scheduler")
        self.dirty = asyncio.Event()
        self.leases: dict[str, _Lease] = {}
        self.node_ready: dict[str, bool] = {}
        self.rounds = 0

    async def start(self) -> None:
        await kv.ensure_buckets(self.js, self.settings.replicas)
        await ensure_events_stream(self.js, self.settings.replicas)
        self.deployments = KVCache(await Bucket.open(self.js, kv.DEPLOYMENTS), self._changed)
        self.pods = KVCache(await Bucket.open(self.js, kv.PODS), self._changed)
        self.pod_status = KVCache(await Bucket.open(self.js, kv.POD_STATUS), self._changed)
        self.deployment_status = KVCache(await Bucket.open(self.js, kv.DEPLOYMENT_STATUS))
        self.nodes = KVCache(await Bucket.open(self.js, kv.NODES), self._node_changed)
        caches: list[KVCache] = [
            self.deployments,
            self.pods,
            self.pod_status,
            self.deployment_status,
            self.nodes,
        ]
        for cache in caches:
            self.spawn(cache.run(), f"watch {cache.bucket.definition.name}")
        await asyncio.gather(*(cache.synced.wait() for cache in caches))
        self.spawn(self._plan_loop(), "plan")
        self.spawn(self._node_monitor(), "node monitor")
        self.dirty.set()
        await super().start()

    def _changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self.dirty.set()

    def _node_changed(self, key: str, old: Entry[Node] | None, new: Entry[Node] | None) -> None:
        if new is None:
            self.leases.pop(key, None)
        else:
            lease = self.leases.get(key)
            if lease is None or lease.heartbeat_at != new.value.heartbeat_at:
                self.leases[key] = _Lease(new.value.heartbeat_at, time.monotonic())
        self._judge_nodes()
        self.dirty.set()

    def _judge_nodes(self) -> list[tuple[str, bool]]:
        """Update readiness from leases; returns the nodes whose readiness flipped."""
        now = time.monotonic()
        flipped = []
        for name, entry in self.nodes.entries.items():
            lease = self.leases.get(name)
            ready = lease is not None and now - lease.seen <= entry.value.lease_seconds
            if self.node_ready.get(name) != ready:
                flipped.append((name, ready))
                self.node_ready[name] = ready
        for name in [n for n in self.node_ready if n not in self.nodes.entries]:
            del self.node_ready[name]
        return flipped

    async def _node_monitor(self) -> None:
        announced: dict[str, bool] = {}
        while True:
            self._judge_nodes()
            for name, ready in list(self.node_ready.items()):
                if announced.get(name) == ready:
                    continue
                if ready:
                    await self.events.emit("Node", "", name, "NodeReady", f"node {name} is ready")
                elif name in announced:
                    await self.events.emit(
                        "Node",
                        "",
                        name,
                        "NodeNotReady",
                        f"node {name} stopped renewing its lease",
                        type="Warning",
                    )
                    self.dirty.set()
                announced[name] = ready
            await asyncio.sleep(self.settings.node_check_interval)

    def view(self) -> ClusterView:
        nodes = {
            name: NodeView(entry.value, self.node_ready.get(name, False))
            for name, entry in self.nodes.entries.items()
        }
        return ClusterView(
            deployments=self.deployments.entries,
            pods=self.pods.entries,
            pod_status=self.pod_status.entries,
            deployment_status=self.deployment_status.entries,
            nodes=nodes,
        )

    async def _plan_loop(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            commands = plan(self.view(), time.time(), self.ids)
            self.rounds += 1
            if commands:
                await self._execute(commands)

    async def _execute(self, commands: list[Command]) -> None:
        limit = asyncio.Semaphore(self.settings.write_concurrency)

        async def run(command: Command) -> None:
            async with limit:
                try:
                    await self._apply(command)
                except Conflict as err:
                    log.debug("lost a race, planning again: %s", err)
                    self.dirty.set()
                except Exception as err:
                    log.warning("could not carry out %s: %s", type(command).__name__, err)
                    self.dirty.set()

        await asyncio.gather(*(run(command) for command in commands))
        scaled: dict[tuple[str, str], int] = {}
        for command in commands:
            if isinstance(command, CreatePod) and command.pod.metadata.owner:
                owner = (command.pod.metadata.namespace, command.pod.metadata.owner.name)
                scaled[owner] = scaled.get(owner, 0) + 1
        for (namespace, name), count in scaled.items():
            await self.events.emit(
                "Deployment", namespace, name, "PodsCreated", f"created {count} pod(s)", count=count
            )

    async def _apply(self, command: Command) -> None:
        pods: Bucket[Pod] = self.pods.bucket
        match command:
            case CreatePod(pod=pod):
                revision = await pods.create(pod.key, pod)
                self.pods.note_written(pod.key, pod, revision)
                await self._pod_placed_event(pod)
            case BindPod(key=key, revision=revision, pod=pod):
                new_revision = await pods.update(key, pod, revision)
                self.pods.note_written(key, pod, new_revision)
                await self._pod_placed_event(pod)
            case MarkUnschedulable(key=key, revision=revision, pod=pod):
                new_revision = await pods.update(key, pod, revision)
                self.pods.note_written(key, pod, new_revision)
                await self._pod_placed_event(pod)
            case TerminatePod(key=key, revision=revision, pod=pod, reason=reason):
                meta = pod.metadata.model_copy(update={"deletion_timestamp": time.time()})
                terminating = pod.model_copy(update={"metadata": meta})
                new_revision = await pods.update(key, terminating, revision)
                self.pods.note_written(key, terminating, new_revision)
                await self.events.emit(
                    "Pod",
                    meta.namespace,
                    meta.name,
                    "Terminating",
                    f"stopping pod on {pod.node_name}: {reason}",
                    node=pod.node_name,
                )
            case DeletePod(key=key, revision=revision, pod=pod, reason=reason):
                await pods.delete(key, revision)
                self.pods.note_deleted(key)
                meta = pod.metadata
                await self.events.emit("Pod", meta.namespace, meta.name, "Removed", f"pod removed: {reason}")
            case DeleteDeploymentStatus(key=key, revision=revision):
                await self.deployment_status.bucket.delete(key, revision)
                self.deployment_status.note_deleted(key)
            case WriteDeploymentStatus(key=key, revision=revision, status=status):
                bucket: Bucket[DeploymentStatus] = self.deployment_status.bucket
                if revision is None:
                    new_revision = await bucket.create(key, status)
                else:
                    new_revision = await bucket.update(key, status, revision)
                self.deployment_status.note_written(key, status, new_revision)

    async def _pod_placed_event(self, pod: Pod) -> None:
        meta = pod.metadata
        if pod.node_name:
            await self.events.emit(
                "Pod",
                meta.namespace,
                meta.name,
                "Scheduled",
                f"assigned {meta.namespace}/{meta.name} to {pod.node_name}",
                node=pod.node_name,
            )
        elif pod.scheduling is not None:
            await self.events.emit(
                "Pod", meta.namespace, meta.name, "FailedScheduling", pod.scheduling.message, type="Warning"
            )
