"""The scheduler actor: watches desired and observed state, runs the planner, applies its commands.

Watches feed local caches; any change marks the cluster dirty, and one loop re-plans the
whole cluster from the caches and carries out the commands with revision-checked writes,
many at once. A write that loses a race is simply planned again from fresher state.

Any number of replicas may run: all keep their caches warm, one leads (``LeaderLease``)
and only the leader plans and writes, so a standby takes over within the lease's TTL.

The scheduler also judges node health: a node is Ready while the scheduler keeps seeing
its lease renewed (timed by the scheduler's own clock, so host clocks may disagree).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client

from shoal.actors.base import Actor, instance_name
from shoal.actors.scheduler.commands import (
    BindPod,
    Command,
    CreatePod,
    DeleteDeploymentStatus,
    DeletePod,
    EvictPod,
    MarkUnschedulable,
    TerminatePod,
    WriteDeploymentStatus,
)
from shoal.actors.scheduler.filters import Strategy
from shoal.actors.scheduler.planner import IdSource, PlanPolicy, RandomIds, plan
from shoal.actors.scheduler.view import ClusterView, NodeView
from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.events import EventPublisher, ensure_events_stream
from shoal.bus.kv import Bucket, Entry
from shoal.bus.lease import LeaderLease
from shoal.errors import Conflict
from shoal.models.node import Node
from shoal.models.pod import Pod, PodStatus
from shoal.models.workloads import DeploymentStatus

log = logging.getLogger(__name__)


@dataclass
class SchedulerSettings:
    replicas: int = 1
    """JetStream replicas for the buckets and stream this actor creates."""
    write_concurrency: int = 64
    """How many KV writes one planning round keeps in flight."""
    node_check_interval: float = 0.1
    lease_ttl: float = 1.2
    """A standby leads this long after the leader's last renewal: failover in under 2 s
    even on a busy machine, and five missed renewals (every 0.24 s) before it happens."""
    """Seconds a leader's lease lasts without renewal; a standby takes over after that."""
    eviction_delay: float = 1.0
    """Seconds a node may stay NotReady before its pods are replaced elsewhere."""
    strategy: Strategy = "spread"
    """Node scoring: spread (least allocated first, the default) or binpack (most allocated first)."""


@dataclass
class _Heartbeat:
    heartbeat_at: float
    seen: float
    """time.monotonic() when the scheduler saw this heartbeat arrive."""


class SchedulerActor(Actor):
    role = "scheduler"

    def __init__(
        self,
        nc: Client,
        settings: SchedulerSettings | None = None,
        ids: IdSource | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(nc)
        self.settings = settings or SchedulerSettings()
        self.ids = ids or RandomIds()
        self.name = name or instance_name("scheduler")
        self.events = EventPublisher(nc, self.name)
        self.policy = PlanPolicy(eviction_delay=self.settings.eviction_delay, strategy=self.settings.strategy)
        self._wake: asyncio.TimerHandle | None = None
        self.dirty = asyncio.Event()
        self.heartbeats: dict[str, _Heartbeat] = {}
        self.node_ready: dict[str, bool] = {}
        self.unready_since: dict[str, float] = {}
        self.ready_seen: dict[str, float] = {}
        self.rounds = 0

    async def start(self) -> None:
        await kv.ensure_buckets(self.js, self.settings.replicas)
        await ensure_events_stream(self.js, self.settings.replicas)
        self.deployments = KVCache(await Bucket.open(self.js, kv.DEPLOYMENTS), self._changed)
        self.pods = KVCache(await Bucket.open(self.js, kv.PODS), self._changed)
        self.pod_status = KVCache(await Bucket.open(self.js, kv.POD_STATUS), self._status_changed)
        self.deployment_status = KVCache(await Bucket.open(self.js, kv.DEPLOYMENT_STATUS))
        self.nodes = KVCache(await Bucket.open(self.js, kv.NODES), self._node_changed)
        self.node_specs = KVCache(await Bucket.open(self.js, kv.NODE_SPECS), self._changed)
        self.priority_classes = KVCache(await Bucket.open(self.js, kv.PRIORITY_CLASSES), self._changed)
        caches: list[KVCache] = [
            self.deployments, self.pods, self.pod_status, self.deployment_status, self.nodes, self.node_specs,
            self.priority_classes,
        ]  # fmt: skip
        for cache in caches:
            self.watch(cache)
        await asyncio.gather(*(cache.synced.wait() for cache in caches))
        self.lease = LeaderLease(
            await Bucket.open(self.js, kv.LEASES),
            "scheduler",
            self.name,
            ttl=self.settings.lease_ttl,
            on_change=self._leadership_changed,
        )
        self.spawn(self.lease.run(), "lease")
        self.spawn(self._plan_loop(), "plan")
        self.spawn(self._node_monitor(), "node monitor")
        await super().start()

    async def on_stop(self) -> None:
        await self.lease.release()

    def _leadership_changed(self, leading: bool) -> None:
        if leading:
            self.dirty.set()
            self.run_soon(
                self.events.emit(
                    "Scheduler",
                    "",
                    self.name,
                    "LeaderElected",
                    f"{self.name} leads (term {self.lease.term})",
                    term=self.lease.term,
                ),
                "leader event",
            )

    def _changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self.dirty.set()

    def _status_changed(self, key: str, old: Entry[PodStatus] | None, new: Entry[PodStatus] | None) -> None:
        # When this scheduler saw each pod turn Ready, by its own clock (minReadySeconds):
        # the node's readySince is another host's clock. Pods already Ready when first seen
        # keep the node's figure, the best there is.
        if new is None or not new.value.ready:
            self.ready_seen.pop(key, None)
        elif old is not None and (not old.value.ready or old.value.uid != new.value.uid):
            self.ready_seen[key] = time.time()
        self.dirty.set()

    def _node_changed(self, key: str, old: Entry[Node] | None, new: Entry[Node] | None) -> None:
        if new is None:
            self.heartbeats.pop(key, None)
            self.dirty.set()
            return
        beat = self.heartbeats.get(key)
        if beat is None or beat.heartbeat_at != new.value.heartbeat_at:
            self.heartbeats[key] = _Heartbeat(new.value.heartbeat_at, time.monotonic())
        flipped = self._judge(key, new.value, time.monotonic())
        # A renewed lease alone changes no decision: only a new node, a flip or new facts do.
        if (
            flipped
            or old is None
            or old.value.model_copy(update={"heartbeat_at": 0.0})
            != new.value.model_copy(update={"heartbeat_at": 0.0})
        ):
            self.dirty.set()

    def _judge(self, name: str, node: Node, now: float) -> bool:
        beat = self.heartbeats.get(name)
        ready = beat is not None and now - beat.seen <= node.lease_seconds
        if self.node_ready.get(name) == ready:
            return False
        self.node_ready[name] = ready
        if ready:
            self.unready_since.pop(name, None)
        else:
            self.unready_since[name] = now
        return True

    def _judge_nodes(self) -> list[tuple[str, bool]]:
        """Update readiness from heartbeats; returns the nodes whose readiness flipped."""
        now = time.monotonic()
        flipped = []
        for name, entry in self.nodes.entries.items():
            if self._judge(name, entry.value, now):
                flipped.append((name, self.node_ready[name]))
        for name in [n for n in self.node_ready if n not in self.nodes.entries]:
            del self.node_ready[name]
            self.unready_since.pop(name, None)
        return flipped

    async def _node_monitor(self) -> None:
        announced: dict[str, bool] = {}
        pending_eviction: set[str] = set()
        while True:
            if self._judge_nodes():
                self.dirty.set()
            now = time.monotonic()
            for name, since in self.unready_since.items():
                # Wake the planner when a node's eviction delay runs out.
                due = now - since >= self.settings.eviction_delay
                if due and name not in pending_eviction:
                    pending_eviction.add(name)
                    self.dirty.set()
            pending_eviction &= set(self.unready_since)
            if self.lease.is_leader:
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
                    announced[name] = ready
            await asyncio.sleep(self.settings.node_check_interval)

    def view(self) -> ClusterView:
        now = time.monotonic()
        nodes = {}
        for name, entry in self.nodes.entries.items():
            since = self.unready_since.get(name)
            spec = self.node_specs.get(name)
            nodes[name] = NodeView(
                entry.value,
                self.node_ready.get(name, False),
                unready_for=0.0 if since is None else now - since,
                spec=spec.value if spec else None,
            )
        return ClusterView(
            deployments=self.deployments.entries,
            pods=self.pods.entries,
            pod_status=self.pod_status.entries,
            deployment_status=self.deployment_status.entries,
            nodes=nodes,
            ready_seen=self.ready_seen,
            priority_classes={
                entry.value.metadata.name: entry.value for entry in self.priority_classes.entries.values()
            },
        )

    async def _plan_loop(self) -> None:
        pause = 0.0
        while True:
            await self.dirty.wait()
            await self.lease.elected.wait()
            self.dirty.clear()
            commands = plan(self.view(), time.time(), self.ids, self.policy)
            self.rounds += 1
            if commands.wake_at is not None:
                # Nothing may change before a toleration runs out: look again then.
                if self._wake is not None:
                    self._wake.cancel()
                delay = max(0.0, commands.wake_at - time.time())
                self._wake = asyncio.get_running_loop().call_later(delay, self.dirty.set)
            if commands and not self.lease.is_leader:
                # Still the holder, but the lease's validity lapsed before this round's writes
                # (a busy moment delayed a renewal): plan again once it is renewed, rather than
                # drop the round and wait for a change that may never come.
                self.dirty.set()
                await asyncio.sleep(self.lease.renew_every)
                continue
            failures = await self._execute(commands) if commands else 0
            # A round that could not write (NATS away, say) must not spin: back off.
            pause = min(max(pause * 2, 0.1), 2.0) if failures else 0.0
            if pause:
                await asyncio.sleep(pause)

    async def _execute(self, commands: list[Command]) -> int:
        limit = asyncio.Semaphore(self.settings.write_concurrency)
        failures = 0

        async def run(command: Command) -> None:
            nonlocal failures
            async with limit:
                if not self.lease.is_leader:
                    self.dirty.set()  # deposed, or the lease lapsed, mid-round: plan afresh
                    return
                try:
                    await self._apply(command)
                except Conflict as err:
                    log.debug("lost a race, planning again: %s", err)
                    self.dirty.set()
                except Exception as err:
                    log.warning("could not carry out %s: %s", type(command).__name__, err)
                    failures += 1
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
        return failures

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
            case EvictPod(key=key, revision=revision, pod=pod, reason=reason):
                await pods.delete(key, revision)
                self.pods.note_deleted(key)
                meta = pod.metadata
                await self.events.emit(
                    "Pod",
                    meta.namespace,
                    meta.name,
                    "Evicted",
                    f"replacing the pod elsewhere: {reason}",
                    type="Warning",
                    node=pod.node_name,
                )
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
