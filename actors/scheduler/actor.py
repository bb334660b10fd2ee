"""The scheduler actor: watches desired and observed state, runs the planner, applies its commands.

Watches feed local caches and, change by change, the pod index (``index.py``) and a note of
what needs planning: the deployments whose objects, pods or pod status moved, the nodes
that flipped, whether waiting pods may fit now. A round plans only that, off the event
loop (in a worker thread, on copies), so a round of any size never stalls heartbeats,
leases or watches; each deployment's share of a round is bounded (``PlanPolicy.burst``),
and what is left is planned in the next round, which starts at once.

Any number of replicas may run: all keep their caches warm, one leads (``LeaderLease``).
The leader's writes go through fenced writers (``bus/batch.py``): when another replica
takes over, it moves the fences first, and the server refuses every later write of the
old leader, whatever the old leader's clock says.

The scheduler also judges nodes (``actors/health.py``) and decides when a silent node's
pods are replaced (``eviction.py``), recording each node's Ready condition in KV.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field

from nats.aio.client import Client

from shoal.actors.base import Actor, instance_name
from shoal.actors.health import NodeHealth
from shoal.actors.scheduler.commands import (
    BindClaim,
    BindPod,
    Command,
    CreateClaim,
    CreateJob,
    CreatePod,
    DeleteDeploymentStatus,
    DeleteJob,
    DeletePod,
    DeleteStatus,
    EvictPod,
    MarkUnschedulable,
    Note,
    TerminatePod,
    WriteDeploymentStatus,
    WriteStatus,
)
from shoal.actors.scheduler.eviction import (
    ZONE_LABEL,
    EvictionPolicy,
    NodeFacts,
    TokenBucket,
    forgotten_nodes,
    lost_nodes,
)
from shoal.actors.scheduler.filters import Strategy
from shoal.actors.scheduler.index import NodeUsage, PodIndex
from shoal.actors.scheduler.planner import IdSource, Plan, PlanPolicy, RandomIds, plan
from shoal.actors.scheduler.view import ClusterView, NodeView
from shoal.bus import kv
from shoal.bus.batch import BucketWriter, KVWrite
from shoal.bus.cache import KVCache
from shoal.bus.codec import encode
from shoal.bus.events import EventPublisher
from shoal.bus.kv import Bucket, Entry
from shoal.bus.lease import LeaderLease
from shoal.errors import Conflict, Deposed
from shoal.models.batch import Job
from shoal.models.node import Node, NodeCondition
from shoal.models.pod import Pod, PodStatus

log = logging.getLogger(__name__)

NODE_CHECK_SECONDS = 0.1


@dataclass
class SchedulerSettings:
    replicas: int = 1
    """JetStream replicas for the buckets and stream this actor creates."""
    lease_ttl: float = 0.6
    """Seconds a leader's lease lasts without renewal; a standby takes over after that. Rounds
    never hold the event loop, so renewals (every fifth of this) are never late."""
    eviction: EvictionPolicy = field(default_factory=EvictionPolicy)
    strategy: Strategy = "spread"
    """Node scoring: spread (least allocated first, the default) or binpack (most allocated first)."""
    burst: int = 2000
    """Pods one deployment may create or stop per round."""


@dataclass
class _Scope:
    """What the next round must look at."""

    everything: bool = True
    deployments: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    cronjobs: set[str] = field(default_factory=set)
    daemonsets: set[str] = field(default_factory=set)
    statefulsets: set[str] = field(default_factory=set)
    all_daemonsets: bool = False
    """A node changed: every DaemonSet looks again at where its pods belong."""
    placement: bool = True
    """Whether every waiting pod should be tried again (room may have appeared)."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """(owner kind, key) of workloads whose pods only reported on themselves (readiness, phase):
    planned again at most every ``REPORT_ROUNDS_EVERY``, so a flood of reports is planned in a
    few rounds."""

    @property
    def urgent(self) -> bool:
        return (
            self.everything
            or self.placement
            or self.all_daemonsets
            or bool(self.deployments or self.jobs or self.cronjobs or self.daemonsets or self.statefulsets)
        )

    def add(self, kind: str, key: str) -> None:
        """Plan one workload (by its kind) in the next round."""
        wanted = {"Deployment": self.deployments, "Job": self.jobs, "CronJob": self.cronjobs,
                  "DaemonSet": self.daemonsets, "StatefulSet": self.statefulsets}.get(kind)  # fmt: skip
        if wanted is None:
            self.everything = True
        else:
            wanted.add(key)

    def take_reports(self) -> None:
        for kind, key in self.reported:
            self.add(kind, key)
        self.reported.clear()


REPORT_ROUNDS_EVERY = 0.25


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
        self.policy = PlanPolicy(
            strategy=self.settings.strategy, burst=self.settings.burst, max_binds=self.settings.burst
        )
        self._wake: asyncio.TimerHandle | None = None
        self.dirty = asyncio.Event()
        self.scope = _Scope()
        self.index = PodIndex()
        self.health = NodeHealth(nc)
        self.ready: dict[str, bool] = {}
        self.lost: set[str] = set()
        self.lost_since: dict[str, float] = {}
        self.forgotten: set[str] = set()
        self._evicted: set[str] = set()
        self._limiters: dict[str, TokenBucket] = {}
        self.ready_seen: dict[str, float] = {}
        self.rounds = 0
        self.last_round: tuple[float, int] = (0.0, 0)
        """(seconds planning, commands) of the latest round."""
        self._own_write = False
        self._last_round_end = 0.0
        self._wakes: dict[tuple[str, str], float] = {}
        """(kind, key) of Jobs and CronJobs to look at again, and when."""
        self._wake_keys: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        # Rounds run in a worker thread; a short switch interval lets the event loop's thread
        # take the GIL back within a millisecond each time it has something to do.
        sys.setswitchinterval(0.001)
        self.js_replicas = self.settings.replicas
        await self.ensure_state()
        self.deployments = KVCache(await Bucket.open(self.js, kv.DEPLOYMENTS), self._deployment_changed)
        self.pods = KVCache(await Bucket.open(self.js, kv.PODS), self._pod_changed)
        self.pod_status = KVCache(await Bucket.open(self.js, kv.POD_STATUS), self._status_changed)
        self.deployment_status = KVCache(await Bucket.open(self.js, kv.DEPLOYMENT_STATUS))
        self.nodes = KVCache(await Bucket.open(self.js, kv.NODES), self._node_changed)
        self.node_specs = KVCache(await Bucket.open(self.js, kv.NODE_SPECS), self._node_spec_changed)
        self.node_status = KVCache(await Bucket.open(self.js, kv.NODE_STATUS))
        self.priority_classes = KVCache(await Bucket.open(self.js, kv.PRIORITY_CLASSES), self._changed_all)
        self.claims = KVCache(await Bucket.open(self.js, kv.CLAIMS), self._claim_changed)
        self.claim_status = KVCache(await Bucket.open(self.js, kv.CLAIM_STATUS), self._claim_changed)
        self.jobs = KVCache(await Bucket.open(self.js, kv.JOBS), self._job_changed)
        self.job_status = KVCache(await Bucket.open(self.js, kv.JOB_STATUS))
        self.cronjobs = KVCache(await Bucket.open(self.js, kv.CRONJOBS), self._workload_changed("CronJob"))
        self.cronjob_status = KVCache(await Bucket.open(self.js, kv.CRONJOB_STATUS))
        self.daemonsets = KVCache(
            await Bucket.open(self.js, kv.DAEMONSETS), self._workload_changed("DaemonSet")
        )
        self.daemonset_status = KVCache(await Bucket.open(self.js, kv.DAEMONSET_STATUS))
        self.statefulsets = KVCache(
            await Bucket.open(self.js, kv.STATEFULSETS), self._workload_changed("StatefulSet")
        )
        self.statefulset_status = KVCache(await Bucket.open(self.js, kv.STATEFULSET_STATUS))
        self.pdbs = KVCache(await Bucket.open(self.js, kv.PDBS), self._budget_changed)
        self.pdb_status = KVCache(await Bucket.open(self.js, kv.PDB_STATUS))
        caches: list[KVCache] = [
            self.deployments, self.pods, self.pod_status, self.deployment_status, self.nodes, self.node_specs,
            self.node_status, self.priority_classes, self.claims, self.claim_status, self.jobs,
            self.job_status, self.cronjobs, self.cronjob_status, self.daemonsets, self.daemonset_status,
            self.statefulsets, self.statefulset_status, self.pdbs, self.pdb_status,
        ]  # fmt: skip
        await self.health.start()
        for cache in caches:
            self.watch(cache)
        await asyncio.gather(*(cache.synced.wait() for cache in caches))
        self.writers = {
            bucket.name: BucketWriter(self.nc, bucket.name, role="scheduler", holder=self.name)
            for bucket in (
                kv.PODS,
                kv.DEPLOYMENT_STATUS,
                kv.NODE_STATUS,
                kv.NODES,
                kv.CLAIM_STATUS,
                kv.JOBS,
                kv.JOB_STATUS,
                kv.CRONJOB_STATUS,
                kv.DAEMONSET_STATUS,
                kv.STATEFULSET_STATUS,
                kv.PDB_STATUS,
                kv.CLAIMS,
            )
        }
        self.lease = LeaderLease(
            await Bucket.open(self.js, kv.LEASES),
            "scheduler",
            self.name,
            ttl=self.settings.lease_ttl,
            on_change=self._leadership_changed,
            prepare=self._take_term,
        )
        self.spawn(self.health.run(), "attentive clock")
        self.spawn(self.lease.run(), "lease")
        self.spawn(self._plan_loop(), "plan")
        self.spawn(self._node_monitor(), "node monitor")
        await super().start()

    async def on_stop(self) -> None:
        for timer in (self._wake, self._wake_keys):
            if timer is not None:
                timer.cancel()
        await self.health.stop()
        await self.lease.release()
        for writer in self.writers.values():
            await writer.close()

    async def _take_term(self) -> None:
        """A new term: move the fences, so the last leader's writes fail from now on."""
        await asyncio.gather(*(writer.take() for writer in self.writers.values()))

    def _leadership_changed(self, leading: bool) -> None:
        if leading:
            self._plan_everything()
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

    # -- what changed, and what that asks to plan ----------------------------------------------

    def _plan_everything(self) -> None:
        self.scope.everything = True
        self.scope.placement = True
        self.dirty.set()

    def _plan(self, deployment_key: str) -> None:
        self.scope.deployments.add(deployment_key)
        self.dirty.set()

    def _plan_placement(self) -> None:
        if self.index.unplaced:
            self.scope.placement = True
            self.dirty.set()

    def _plan_owner(self, pod: Pod) -> None:
        owner = pod.metadata.owner
        if owner is None:
            self._plan_placement()  # a bare pod: it only needs a node
            return
        key = f"{pod.metadata.namespace}.{owner.name}"
        caches = {
            "Deployment": self.deployments,
            "Job": self.jobs,
            "DaemonSet": self.daemonsets,
            "StatefulSet": self.statefulsets,
        }
        owners = caches.get(owner.kind)
        found = owners.get(key) if owners is not None else None
        if found is not None and found.value.metadata.uid == owner.uid:
            self.scope.add(owner.kind, key)
        else:
            self.scope.everything = True  # an orphan: the next round looks at every owner
        self.dirty.set()

    def _workload_changed(self, kind: str):  # type: ignore[no-untyped-def]
        """A watch callback for CronJobs or DaemonSets: plan that one (everything, once it is
        gone: its pods or Jobs are orphans)."""

        def changed(key: str, old: Entry | None, new: Entry | None) -> None:
            if new is None:
                self.scope.everything = True
            self.scope.add(kind, key)
            self.dirty.set()

        return changed

    def _job_changed(self, key: str, old: Entry[Job] | None, new: Entry[Job] | None) -> None:
        if self._own_write:
            return
        if new is None:
            self.scope.everything = True  # its pods are orphans now
        self.scope.jobs.add(key)
        changed = new or old
        self._plan_cronjob_of(changed.value if changed is not None else None)
        self.dirty.set()

    def _plan_cronjob_of(self, job: Job | None) -> None:
        """The CronJob owning ``job`` looks at its Jobs again."""
        owner = job.metadata.owner if job is not None else None
        if owner is not None:
            self.scope.cronjobs.add(f"{job.metadata.namespace}.{owner.name}")  # type: ignore[union-attr]
            self.dirty.set()

    def _budget_changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self._plan_everything()  # drains and rollouts waiting for it may go on, or must wait

    def _claim_changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if not self._own_write:
            self._plan_placement()  # pods waiting for the claim may go now

    def _plan_node(self, node: str) -> None:
        """Everything on a node that changed (readiness, taints, drain) is looked at again, and
        every DaemonSet (the node may now need its pod, or no longer)."""
        for entry in self.index.by_node.get(node, {}).values():
            self._plan_owner(entry.value)
        if self.daemonsets.entries:
            self.scope.all_daemonsets = True
            self.dirty.set()
        self._plan_placement()

    def _changed_all(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self._plan_everything()

    def _deployment_changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        log.debug("deployment %s changed", key)
        if new is None:
            self.scope.everything = True  # its pods are orphans now
            self.dirty.set()
        self._plan(key)

    def _pod_changed(self, key: str, old: Entry[Pod] | None, new: Entry[Pod] | None) -> None:
        status = self.pod_status.get(key)
        self.index.pod_changed(key, old, new, status.value if status else None)
        if self._own_write:
            return  # what this round decided: nothing more to plan
        for entry in (old, new):
            if entry is not None:
                self._plan_owner(entry.value)
        if old is not None and old.value.node_name and new is None:
            self._plan_placement()  # room freed

    def _status_changed(self, key: str, old: Entry[PodStatus] | None, new: Entry[PodStatus] | None) -> None:
        # When this scheduler saw each pod turn Ready, by its own clock (minReadySeconds):
        # the node's readySince is another host's clock. Pods already Ready when first seen
        # keep the node's figure, the best there is.
        if new is None or not new.value.ready:
            self.ready_seen.pop(key, None)
        elif old is not None and (not old.value.ready or old.value.uid != new.value.uid):
            self.ready_seen[key] = time.time()
        pod = self.pods.get(key)
        self.index.status_changed(key, pod, new.value if new else None)
        if pod is not None:
            owner = pod.value.metadata.owner
            if owner is not None and owner.kind in ("Deployment", "Job", "DaemonSet", "StatefulSet"):
                self.scope.reported.add((owner.kind, f"{pod.value.metadata.namespace}.{owner.name}"))
                self.dirty.set()
            else:
                self._plan_owner(pod.value)
            if new is not None and new.value.terminal:
                self._plan_placement()

    def _node_changed(self, key: str, old: Entry[Node] | None, new: Entry[Node] | None) -> None:
        if new is None:
            self.health.forget(key)
        else:
            self.health.know(key, new.value.lease_seconds)
        self._plan_node(key)

    def _node_spec_changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        self._plan_node(key)

    # -- nodes ----------------------------------------------------------------------------------

    def _facts(self, now: float) -> dict[str, NodeFacts]:
        facts = {}
        for name, entry in self.nodes.entries.items():
            judgment = self.health.judge(name, now)
            spec = self.node_specs.get(name)
            labels = (
                spec.value.labels
                if spec is not None and spec.value.labels is not None
                else entry.value.labels
            )
            facts[name] = NodeFacts(
                ready=judgment.ready,
                silent_for=judgment.silent_for,
                heard=judgment.heard,
                lease=entry.value.lease_seconds,
                zone=labels.get(ZONE_LABEL, ""),
            )
        return facts

    def check_nodes(self) -> None:
        """Readiness and losses from the latest heartbeats; plan what they change."""
        now = self.health.clock.read()
        all_ready = True
        for name in self.nodes.entries:
            ready = self.health.ready_now(name, now)
            all_ready = all_ready and ready
            if self.ready.get(name) != ready:
                self.ready[name] = ready
                self._plan_node(name)
        for name in [n for n in self.ready if n not in self.nodes.entries]:
            del self.ready[name]
        if all_ready and not self.lost:
            self._evicted.clear()
            return  # the usual case, at no cost
        facts = self._facts(now)
        lost = lost_nodes(
            facts,
            self.settings.eviction,
            clock=now,
            evicted=self._evicted,
            limiters=self._limiters,
        )
        for name in lost - self.lost:
            self.lost_since[name] = time.time()
            self._plan_node(name)
        for name in self.lost - lost:
            self.lost_since.pop(name, None)
        self.lost = lost
        self.forgotten = forgotten_nodes(facts, self.settings.eviction)

    async def _node_monitor(self) -> None:
        while True:
            self.check_nodes()
            if self.lease.is_leader:
                await self._record_conditions()
                await self._forget_nodes()
            await asyncio.sleep(NODE_CHECK_SECONDS)

    async def _record_conditions(self) -> None:
        """Each node's Ready condition in KV, written when it changes, with an event."""
        # A node not heard yet by a scheduler that just started keeps its recorded condition
        # through the startup grace: after a cold restart the nodes come back a little later.
        early = self.health.clock.read() < self.settings.eviction.startup_grace
        changed = [
            name
            for name, ready in self.ready.items()
            if ((stored := self.node_status.get(name)) is None or stored.value.ready != ready)
            and not (early and not ready and not self.health.judge(name).heard)
        ]
        await asyncio.gather(*(self._record_condition(name) for name in changed))
        writer = self.writers[kv.NODE_STATUS.name]
        for name, entry in list(self.node_status.entries.items()):
            if name not in self.nodes.entries:
                with contextlib.suppress(Exception):
                    await writer.delete(name, entry.revision)
                    self.node_status.note_deleted(name)

    async def _forget_nodes(self) -> None:
        """Registrations of nodes silent for good are deleted (with an event); they may register again."""
        for name in list(self.forgotten):
            entry = self.nodes.get(name)
            self.forgotten.discard(name)
            if entry is None:
                continue
            try:
                await self.writers[kv.NODES.name].delete(name, entry.revision)
            except Deposed:
                self.lease.step_down()
                return
            except Exception as err:
                log.debug("forgetting node %s: %s", name, err)
                continue
            self.nodes.note_deleted(name)
            silent = self.settings.eviction.forget_after
            self.events.send(
                "Node", "", name, "RemovingNode", f"node {name} was silent for {silent:.0f}s: forgotten"
            )

    async def _record_condition(self, name: str) -> None:
        ready = self.ready[name]
        stored = self.node_status.get(name)
        condition = NodeCondition(
            node=name,
            ready=ready,
            since=time.time(),
            reason="HeartbeatsArriving" if ready else "NodeStatusUnknown",
            message="heartbeats arrive" if ready else "no heartbeat within the node's lease",
        )
        writer = self.writers[kv.NODE_STATUS.name]
        try:
            data = encode(condition)
            if stored is None:
                revision = await writer.create(name, data)
            else:
                revision = await writer.update(name, data, stored.revision)
        except Deposed:
            self.lease.step_down()
            return
        except Exception as err:
            log.debug("recording the condition of node %s: %s", name, err)
            return
        self.node_status.note_written(name, condition, revision)
        if ready:
            await self.events.emit("Node", "", name, "NodeReady", f"node {name} is ready")
        elif stored is not None:
            await self.events.emit(
                "Node", "", name, "NodeNotReady", f"node {name} stopped sending heartbeats", type="Warning"
            )

    # -- rounds ---------------------------------------------------------------------------------

    def view(self, scope: _Scope | None = None) -> ClusterView:
        """A copy of what the round looks at, safe to read from another thread."""
        scope = scope or _Scope()

        def chosen(cache: KVCache, wanted: set[str], every: bool = False) -> dict[str, Entry]:
            entries = cache.entries
            if scope.everything or every:
                return dict(entries)
            return {k: entries[k] for k in wanted if k in entries}

        deployments = chosen(self.deployments, scope.deployments)
        cronjobs = chosen(self.cronjobs, scope.cronjobs)
        daemonsets = chosen(self.daemonsets, scope.daemonsets, scope.all_daemonsets)
        statefulsets = chosen(self.statefulsets, scope.statefulsets)
        jobs = chosen(self.jobs, scope.jobs)
        cron_uids = {entry.value.metadata.uid for entry in cronjobs.values()}
        for key, entry in self.jobs.entries.items() if cron_uids else ():
            owner = entry.value.metadata.owner
            if owner is not None and owner.uid in cron_uids:
                jobs[key] = entry  # a CronJob sees all its Jobs (each reconciled with all its pods)
        owners = (self.deployments, self.jobs, self.daemonsets, self.cronjobs, self.statefulsets)
        live = frozenset(entry.value.metadata.uid for cache in owners for entry in cache.entries.values())
        pods: dict[str, Entry[Pod]] = {}
        for chosen_owners in (deployments, jobs, daemonsets, statefulsets):
            for entry in chosen_owners.values():
                pods.update(self.index.by_owner.get(entry.value.metadata.uid, {}))
        for owner, owned in self.index.by_owner.items():
            if owner not in live:
                pods.update(owned)
        nodes = {}
        for name, entry in self.nodes.entries.items():
            spec = self.node_specs.get(name)
            node_view = NodeView(
                entry.value,
                self.ready.get(name, False),
                lost=name in self.lost,
                lost_since=self.lost_since.get(name),
                spec=spec.value if spec else None,
                usage=(self.index.usage[name].snapshot() if name in self.index.usage else NodeUsage()),
            )
            nodes[name] = node_view
            if node_view.lost or any(t.effect == "NoExecute" for t in node_view.taints):
                pods.update(self.index.by_node.get(name, {}))
        for name, on_node in self.index.by_node.items():
            if name not in nodes:
                pods.update(on_node)  # bound to a node that is gone
        if scope.placement or scope.everything:
            pods.update(self.index.unplaced)

        def statuses_of(cache: KVCache, objects: dict[str, Entry]) -> dict[str, Entry]:
            entries = cache.entries
            found = {k: entries[k] for k in objects if k in entries}
            found.update({k: e for k, e in entries.items() if e.value.uid not in live})
            return found

        return ClusterView(
            deployments=deployments,
            pods=pods,
            live_owners=live,
            all_pods=self.pods.entries,
            pod_status=self.pod_status.entries,
            deployment_status=statuses_of(self.deployment_status, deployments),
            nodes=nodes,
            ready_seen=dict(self.ready_seen),
            priority_classes={
                entry.value.metadata.name: entry.value for entry in self.priority_classes.entries.values()
            },
            claims=frozenset(self.claims.entries),
            claim_nodes={key: entry.value.node for key, entry in self.claim_status.entries.items()},
            jobs=jobs,
            job_status=statuses_of(self.job_status, jobs),
            cronjobs=cronjobs,
            cronjob_status=statuses_of(self.cronjob_status, cronjobs),
            daemonsets=daemonsets,
            daemonset_status=statuses_of(self.daemonset_status, daemonsets),
            statefulsets=statefulsets,
            statefulset_status=statuses_of(self.statefulset_status, statefulsets),
            pdbs=dict(self.pdbs.entries),
            pdb_status=dict(self.pdb_status.entries),
            scales={
                entry.value.metadata.uid: entry.value.spec.desired_replicas
                for cache in (self.deployments, self.statefulsets)
                for entry in cache.entries.values()
            }
            if self.pdbs.entries
            else {},
        )

    def _round(self, view: ClusterView, now: float) -> tuple[Plan, list[_Write]]:
        """One round's plan and the records it writes, encoded: pure work for a worker thread."""
        commands = plan(view, now, self.ids, self.policy)
        return commands, [_write_of(command, now) for command in commands]

    async def _plan_loop(self) -> None:
        pause = 0.0
        while True:
            await self.dirty.wait()
            await self.lease.elected.wait()
            if not self.scope.urgent:
                # Only reports: let more of them arrive, unless the last round was a while ago.
                wait = self._last_round_end + REPORT_ROUNDS_EVERY - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self.dirty.clear()
            scope, self.scope = self.scope, _Scope(everything=False, placement=False)
            scope.take_reports()
            started = time.monotonic()
            view = self.view(scope)
            commands, payloads = await asyncio.to_thread(self._round, view, time.time())
            self.rounds += 1
            self.last_round = (time.monotonic() - started, len(commands))
            if commands.wake_at is not None:
                # Nothing may change before a minReadySeconds or toleration ends: look again then.
                if self._wake is not None:
                    self._wake.cancel()
                delay = max(0.0, commands.wake_at - time.time())
                self._wake = asyncio.get_running_loop().call_later(delay, self._plan_everything)
            if commands.wake_keys:
                self._wake_later(commands.wake_keys)
            for key in commands.more:
                if key in self.deployments.entries:
                    self._plan(key)
                else:
                    self.scope.everything = True
                    self.dirty.set()
            if commands.more_placement:
                self._plan_placement()
            if commands and not self.lease.is_leader:
                # Deposed, or the lease's validity lapsed before this round's writes: plan again
                # once leading, rather than drop the round and wait for a change that may never come.
                self.scope.everything = True
                self.dirty.set()
                await asyncio.sleep(self.lease.renew_every)
                continue
            planned = time.monotonic()
            failures = await self._execute(commands, payloads) if commands else 0
            self._last_round_end = time.monotonic()
            log.debug(
                "round %d: %d deployment(s), %d pod(s) seen, %d command(s): planned %.3fs, written %.3fs",
                self.rounds,
                len(view.deployments),
                len(view.pods),
                len(commands),
                planned - started,
                time.monotonic() - planned,
            )
            # A round that could not write (NATS away, say) must not spin: back off.
            pause = min(max(pause * 2, 0.1), 2.0) if failures else 0.0
            if pause:
                await asyncio.sleep(pause)

    async def _execute(self, commands: list[Command], writes: list[_Write]) -> int:
        """Carry out a round: every write submitted at once (batched by the writers), then each
        outcome taken in turn, a slice per turn of the event loop."""
        if not self.lease.is_leader:
            self._plan_everything()  # deposed, or the lease lapsed, before the writes: plan afresh
            return 0
        outcomes = [self._submit(command, write) for command, write in zip(commands, writes, strict=True)]
        failures = 0
        deposed = False
        created: dict[tuple[str, str, str], int] = {}
        for index, (command, write, outcome) in enumerate(zip(commands, writes, outcomes, strict=True)):
            if index % 64 == 63:
                await asyncio.sleep(0)
            try:
                revision = await outcome
            except Conflict as err:
                log.debug("lost a race, planning again: %s", err)
                self._replan(command)
                continue
            except Deposed as err:
                if not deposed:
                    log.warning("%s: %s", self.name, err)
                    self.lease.step_down()
                deposed = True
                continue
            except Exception as err:
                log.warning("could not carry out %s: %s", type(command).__name__, err)
                failures += 1
                self._replan(command)
                continue
            await self._landed(command, write, revision)
            if isinstance(command, CreatePod) and command.pod.metadata.owner:
                ref = command.pod.metadata.owner
                owner = (ref.kind, command.pod.metadata.namespace, ref.name)
                created[owner] = created.get(owner, 0) + 1
        for (kind, namespace, name), count in created.items():
            await self.events.emit(
                kind, namespace, name, "PodsCreated", f"created {count} pod(s)", count=count
            )
        return failures

    def _wake_later(self, wakes: dict[tuple[str, str], float]) -> None:
        """Look at these Jobs and CronJobs again when their time comes (one timer for all)."""
        for item, at in wakes.items():
            self._wakes[item] = min(self._wakes.get(item, at), at)
        if not self._wakes:
            return
        if self._wake_keys is not None:
            self._wake_keys.cancel()
        delay = max(0.0, min(self._wakes.values()) - time.time())
        self._wake_keys = asyncio.get_running_loop().call_later(delay, self._woken)

    def _woken(self) -> None:
        self._wake_keys = None
        now = time.time()
        for item, at in list(self._wakes.items()):
            if at <= now + 0.001:
                del self._wakes[item]
                self.scope.add(*item)
                self.dirty.set()
        self._wake_later({})

    def _replan(self, command: Command) -> None:
        pod = getattr(command, "pod", None)
        if isinstance(pod, Pod):
            self._plan_owner(pod)
        elif isinstance(command, WriteDeploymentStatus | DeleteDeploymentStatus):
            self._plan(command.key)
        elif isinstance(command, CreateJob | DeleteJob):
            self.scope.jobs.add(command.key)
            self._plan_cronjob_of(command.job)
        elif isinstance(command, WriteStatus) and command.bucket != kv.JOB_STATUS.name:
            kinds = {
                kv.CRONJOB_STATUS.name: "CronJob",
                kv.STATEFULSET_STATUS.name: "StatefulSet",
                kv.PDB_STATUS.name: "PodDisruptionBudget",  # not a workload: everything
            }
            self.scope.add(kinds.get(command.bucket, "DaemonSet"), command.key)
            self.dirty.set()
        elif isinstance(command, CreateClaim):
            self._plan_everything()
        elif isinstance(command, WriteStatus):
            self.scope.jobs.add(command.key)
            self.dirty.set()
        else:
            self._plan_everything()

    def _noted(self, cache: KVCache, key: str, value: object | None, revision: int = 0) -> None:
        """Record our own write in the cache without planning it again."""
        self._own_write = True
        try:
            if value is None:
                cache.note_deleted(key)
            else:
                cache.note_written(key, value, revision)
        finally:
            self._own_write = False

    def _submit(self, command: Command, write: _Write) -> asyncio.Future[int]:
        pods, statuses = self.writers[kv.PODS.name], self.writers[kv.DEPLOYMENT_STATUS.name]
        match command:
            case BindClaim(key=key):
                return self.writers[kv.CLAIM_STATUS.name].submit(KVWrite(key, write.data, expect=0))
            case CreatePod(pod=pod):
                return pods.submit(KVWrite(pod.key, write.data, expect=0))
            case BindPod(key=key, revision=revision) | MarkUnschedulable(key=key, revision=revision):
                return pods.submit(KVWrite(key, write.data, expect=revision))
            case TerminatePod(key=key, revision=revision):
                return pods.submit(KVWrite(key, write.data, expect=revision))
            case DeletePod(key=key, revision=revision) | EvictPod(key=key, revision=revision):
                return pods.submit(KVWrite(key, expect=revision, delete=True))
            case DeleteDeploymentStatus(key=key, revision=revision):
                return statuses.submit(KVWrite(key, expect=revision, delete=True))
            case WriteDeploymentStatus(key=key, revision=revision):
                return statuses.submit(KVWrite(key, write.data, expect=0 if revision is None else revision))
            case WriteStatus(bucket=bucket, key=key, revision=revision):
                expect = 0 if revision is None else revision
                return self.writers[bucket].submit(KVWrite(key, write.data, expect=expect))
            case DeleteStatus(bucket=bucket, key=key, revision=revision):
                return self.writers[bucket].submit(KVWrite(key, expect=revision, delete=True))
            case CreateJob(key=key):
                return self.writers[kv.JOBS.name].submit(KVWrite(key, write.data, expect=0))
            case CreateClaim(key=key):
                return self.writers[kv.CLAIMS.name].submit(KVWrite(key, write.data, expect=0))
            case DeleteJob(key=key, revision=revision):
                return self.writers[kv.JOBS.name].submit(KVWrite(key, expect=revision, delete=True))
        raise AssertionError(f"no write for {command!r}")

    async def _landed(self, command: Command, write: _Write, revision: int) -> None:
        """A write landed: note it in the cache, and say so."""
        match command:
            case BindClaim(key=key, status=status):
                self._noted(self.claim_status, key, status, revision)
                await self.events.emit(
                    "PersistentVolumeClaim",
                    status.namespace,
                    status.name,
                    "Bound",
                    f"bound to node {status.node} (Podman volume {status.volume})",
                    node=status.node,
                )
            case CreatePod(pod=pod):
                self._noted(self.pods, pod.key, pod, revision)
                await self._pod_placed_event(pod)
            case BindPod(key=key, pod=pod) | MarkUnschedulable(key=key, pod=pod):
                self._noted(self.pods, key, pod, revision)
                await self._pod_placed_event(pod)
            case TerminatePod(key=key, pod=pod, reason=reason):
                self._noted(self.pods, key, write.record, revision)
                meta = pod.metadata
                await self.events.emit(
                    "Pod",
                    meta.namespace,
                    meta.name,
                    "Terminating",
                    f"stopping pod on {pod.node_name}: {reason}",
                    node=pod.node_name,
                )
            case DeletePod(key=key, pod=pod, reason=reason):
                self._noted(self.pods, key, None)
                meta = pod.metadata
                await self.events.emit("Pod", meta.namespace, meta.name, "Removed", f"pod removed: {reason}")
            case EvictPod(key=key, pod=pod, reason=reason):
                self._noted(self.pods, key, None)
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
            case DeleteDeploymentStatus(key=key):
                self.deployment_status.note_deleted(key)
            case WriteDeploymentStatus(key=key, status=status):
                self.deployment_status.note_written(key, status, revision)
            case WriteStatus(bucket=bucket, key=key, status=status, notes=notes):
                self._status_cache(bucket).note_written(key, status, revision)
                if bucket == kv.JOB_STATUS.name:
                    job = self.jobs.get(key)
                    self._plan_cronjob_of(job.value if job is not None else None)  # it may have finished
                await self._publish(notes)
            case DeleteStatus(bucket=bucket, key=key):
                self._status_cache(bucket).note_deleted(key)
            case CreateClaim(key=key, claim=claim, notes=notes):
                self._noted(self.claims, key, claim, revision)
                await self._publish(notes)
            case CreateJob(key=key, job=job, notes=notes):
                self._noted(self.jobs, key, job, revision)
                self.scope.jobs.add(key)  # its pods are made in the next round
                self._plan_cronjob_of(job)
                await self._publish(notes)
            case DeleteJob(key=key, job=job, reason=reason, notes=notes):
                self._noted(self.jobs, key, None)
                self.scope.everything = True  # its pods are orphans now
                self._plan_cronjob_of(job)
                meta = job.metadata
                await self.events.emit("Job", meta.namespace, meta.name, "Deleted", f"job deleted: {reason}")
                await self._publish(notes)

    def _status_cache(self, bucket: str) -> KVCache:
        return {
            kv.JOB_STATUS.name: self.job_status,
            kv.CRONJOB_STATUS.name: self.cronjob_status,
            kv.DAEMONSET_STATUS.name: self.daemonset_status,
            kv.STATEFULSET_STATUS.name: self.statefulset_status,
            kv.PDB_STATUS.name: self.pdb_status,
        }[bucket]

    async def _publish(self, notes: tuple[Note, ...]) -> None:
        for note in notes:
            await self.events.emit(
                note.kind, note.namespace, note.name, note.reason, note.message, type=note.type
            )

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


@dataclass(frozen=True, slots=True)
class _Write:
    """What a command stores: the record, and its bytes."""

    data: bytes = b""
    record: object | None = None


def _write_of(command: Command, now: float) -> _Write:
    """Encoded in the planning thread: at thousands of records a round, it is real CPU work."""
    match command:
        case CreatePod(pod=pod) | BindPod(pod=pod) | MarkUnschedulable(pod=pod):
            return _Write(encode(pod), pod)
        case TerminatePod(pod=pod):
            meta = pod.metadata.model_copy(update={"deletion_timestamp": now})
            terminating = pod.model_copy(update={"metadata": meta})
            return _Write(encode(terminating), terminating)
        case WriteDeploymentStatus(status=status) | BindClaim(status=status) | WriteStatus(status=status):
            return _Write(encode(status), status)
        case CreateJob(job=job):
            return _Write(encode(job), job)
        case CreateClaim(claim=claim):
            return _Write(encode(claim), claim)
    return _Write()
