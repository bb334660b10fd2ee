"""The scheduler's decisions: from a ClusterView to the list of commands that converge it.

Pure: no I/O, no clock, no randomness of its own (names and ids come from ``ids``), so
tests feed a view and compare command lists. One round:

1. evict the pods of lost nodes (NotReady for ``eviction_delay``, or gone): their records
   go, so they are replaced below; a lost node that returns removes its copies;
2. for each deployment, keep exactly ``replicas`` live pods of the current template:
   create the missing, terminate the surplus and those of an older template; pods on a
   draining node are replaced first and stop once enough replacements are Ready;
3. reconcile CronJobs, Jobs and DaemonSets (``controllers.py``), then terminate pods whose
   owner (deployment, Job, DaemonSet) is gone;
4. evict pods from nodes with NoExecute taints they do not tolerate (or tolerate for
   ``tolerationSeconds`` only, once that has passed);
5. place every pod without a node (new or still Pending), highest priority first, with
   the placer (``placement.py``), accounting for what this round already placed, and
   preempt lower-priority pods for those that fit nowhere;
6. record each deployment's status when it changed.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from shoal import keys
from shoal.actors.scheduler import controllers, disruption
from shoal.actors.scheduler.commands import (
    BindClaim,
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
from shoal.actors.scheduler.filters import Strategy, untolerated
from shoal.actors.scheduler.placement import NodeState, Placer, PodClass, Resident
from shoal.actors.scheduler.prototype import pod_prototype
from shoal.actors.scheduler.view import ClusterView
from shoal.bus.kv import Entry
from shoal.models.base import replace
from shoal.models.core import ClaimStatus, claim_volume_name
from shoal.models.pod import Pod, SchedulingState
from shoal.models.scheduling import Taint
from shoal.models.workloads import Deployment, DeploymentStatus, PodSpec

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TEMPLATE_HASH_LABEL = "pod-template-hash"
ORPHANS = "(orphans)"
"""What ``Plan.more`` names when pods of deleted deployments are left to stop."""


class IdSource(Protocol):
    def suffix(self) -> str: ...
    def uid(self) -> str: ...


class RandomIds:
    """Kubernetes-style 5-character pod name suffixes and random uids."""

    def suffix(self) -> str:
        return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))

    def uid(self) -> str:
        return uuid.uuid4().hex


@dataclass(frozen=True)
class PlanPolicy:
    strategy: Strategy = "spread"
    """How nodes are scored: spread (least allocated first) or binpack (most allocated first)."""
    burst: int = 2000
    """Pods one deployment may create, or stop, in one round. A big change goes in slices, and
    the other deployments get their turn between them (Kubernetes' ReplicaSets take 500)."""
    max_binds: int = 2000
    """Waiting pods placed in one round; the rest wait for the next."""


class Plan(list[Command]):
    """The commands of a round, and what the planner wants looked at again."""

    def __init__(self) -> None:
        super().__init__()
        self.wake_at: float | None = None
        """When to plan again even if nothing changes (a minReadySeconds or toleration ends)."""
        self.more: set[str] = set()
        """Deployments with work left beyond this round's burst: plan them again at once."""
        self.more_placement = False
        """Waiting pods left unplaced by ``max_binds``."""
        self.wake_keys: dict[tuple[str, str], float] = {}
        """(kind, key) -> when to look at that Job or CronJob again (a deadline, a TTL, a backoff,
        the next scheduled time), even if nothing changes."""


def resolve_priority(view: ClusterView, spec: PodSpec) -> tuple[int, bool, str]:
    """(priority, may preempt, problem): from the named class, else the global default, else 0."""
    if spec.priority_class_name:
        named = view.priority_classes.get(spec.priority_class_name)
        if named is None:
            return 0, False, f'priority class "{spec.priority_class_name}" not found'
        return named.value, named.preemption_policy == "PreemptLowerPriority", ""
    default = next((c for c in view.priority_classes.values() if c.global_default), None)
    if default is not None:
        return default.value, default.preemption_policy == "PreemptLowerPriority", ""
    return 0, False, ""


def new_pod(deployment: Deployment, template_hash: str, ids: IdSource, now: float, priority: int = 0) -> Pod:
    return pod_maker(deployment, template_hash, now, priority)(ids)


def pod_maker(
    deployment: Deployment, template_hash: str, now: float, priority: int = 0
) -> Callable[[IdSource], Pod]:
    """New pods of a deployment's template, each a copy of one prototype with its own name and
    uid: a round may create thousands, and validating each again would cost most of the round."""
    meta = deployment.metadata
    template = deployment.spec.template
    spec = template.spec if template.spec.priority == priority else replace(template.spec, priority=priority)
    prototype = pod_prototype(
        namespace=meta.namespace,
        labels={**template.metadata.labels, TEMPLATE_HASH_LABEL: template_hash},
        annotations=template.metadata.annotations,
        owner=("Deployment", meta.name, meta.uid),
        template_hash=template_hash,
        spec=spec,
        now=now,
    )
    # 63 characters at most: <name>-<10-char hash>-<5-char suffix>.
    prefix = f"{meta.name[:46].rstrip('-')}-{template_hash}-"

    def make(ids: IdSource) -> Pod:
        metadata = replace(prototype.metadata, name=prefix + ids.suffix(), uid=ids.uid())
        return replace(prototype, metadata=metadata)

    return make


@dataclass
class _Round:
    view: ClusterView
    now: float
    ids: IdSource
    policy: PlanPolicy
    commands: Plan
    nodes: dict[str, NodeState]
    removed: set[str]
    deployment: str = ""
    """The deployment being reconciled, whose removals count against its burst."""
    named: set[str] = field(default_factory=set)
    """Keys of the pods this round creates."""
    readiness: dict[int, bool] = field(default_factory=dict)
    """Pods (by identity) found Ready on Ready nodes so far: neither changes within a round."""
    draining_nodes: frozenset[str] = frozenset()
    ready_nodes: frozenset[str] = frozenset()
    removals_left: int = 0
    claim_nodes: dict[str, str] = field(default_factory=dict)
    """Claims this round binds: later pods using one follow it."""
    new_claims: set[str] = field(default_factory=set)
    """Keys of the claims this round creates (a StatefulSet's): its pods may use them at once."""
    budgets: list[disruption.Budget] | None = None
    """The PodDisruptionBudgets as counted at the start of the round (made when first needed)."""

    def ready(self, pod: Pod) -> bool:
        known = self.readiness.get(id(pod))
        if known is None:
            entry = self.view.pod_status.get(pod.key)
            status = entry.value if entry is not None else None
            node = pod.node_name
            known = (
                status is not None
                and status.ready
                and node in self.ready_nodes
                and status.node_name == node
                and status.uid == pod.metadata.uid
            )
            self.readiness[id(pod)] = known
        return known

    def available(self, pod: Pod, min_ready_seconds: int) -> bool:
        """Ready for at least minReadySeconds (Kubernetes' availability)."""
        if not self.ready(pod):
            return False
        if not min_ready_seconds:
            return True
        status = self.view.status_of(pod)
        since = self.view.ready_seen.get(pod.key) or (
            status.ready_since if status is not None and status.ready_since else self.now
        )
        if self.now - since >= min_ready_seconds:
            return True
        self.wake(since + min_ready_seconds + 0.01)
        return False

    def unique_pod(self, make: Callable[[IdSource], Pod]) -> Pod:
        """A new pod whose name no pod has yet: five random characters collide now and then
        among thousands of pods, and a collision would cost a failed write."""
        while True:
            pod = make(self.ids)
            if pod.key not in self.named and self.view.pod(pod.key) is None:
                self.named.add(pod.key)
                return pod

    def wake(self, at: float) -> None:
        """Ask to plan again at ``at`` even if nothing changes meanwhile."""
        plan_ = self.commands
        plan_.wake_at = at if plan_.wake_at is None else min(plan_.wake_at, at)

    def wake_key(self, kind: str, key: str, at: float) -> None:
        """Ask to look at one Job or CronJob again at ``at``."""
        wakes = self.commands.wake_keys
        wakes[(kind, key)] = min(wakes.get((kind, key), at), at)

    def priority(self, spec: PodSpec) -> int:
        return resolve_priority(self.view, spec)[0]

    def status_rank(self, entry: Entry[Pod]) -> tuple[int, int, int, int, float]:
        """Order pods by how little we lose removing them (Kubernetes' ActivePods order)."""
        pod = entry.value
        status = self.view.status_of(pod)
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.phase if status else "Pending", 2)
        return (
            1 if pod.node_name else 0,
            phase_rank,
            1 if self.ready(pod) else 0,
            -(status.restarts if status else 0),
            -pod.metadata.creation_timestamp,
        )

    def remove(self, entry: Entry[Pod], reason: str) -> None:
        if self.deployment:
            if self.removals_left <= 0:
                self.commands.more.add(self.deployment)  # the rest in the next round
                return
            self.removals_left -= 1
        self.removed.add(entry.key)
        if entry.value.node_name:
            self.commands.append(TerminatePod(entry.key, entry.revision, entry.value, reason))
        else:
            self.commands.append(DeletePod(entry.key, entry.revision, entry.value, reason))

    def budget_list(self) -> list[disruption.Budget]:
        if self.budgets is None:
            pods = self.view.all_pods if self.view.all_pods is not None else self.view.pods
            self.budgets = disruption.budgets(self.view.pdbs, pods.values(), self.ready, self.view.scales)
        return self.budgets

    def disrupt(self, entry: Entry[Pod], reason: str) -> bool:
        """A voluntary disruption (a drain, a rollout): the pod goes unless a disruption budget
        covering it forbids it now; whether it went."""
        if self.view.pdbs:
            pod = entry.value
            ready = self.ready(pod)
            found = self.budget_list()
            blocked = disruption.blocking(found, pod, ready)
            if blocked is not None:
                blocked.waiting.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
                return False
            disruption.take(found, pod, ready)
        self.remove(entry, reason)
        return True

    def lost(self, node_name: str) -> bool:
        node = self.view.nodes.get(node_name)
        return node is None or node.lost

    def draining(self, node_name: str) -> bool:
        return node_name in self.draining_nodes


def _node_states(view: ClusterView) -> dict[str, NodeState]:
    nodes = {
        name: NodeState(
            name=name,
            labels=node_view.labels,
            taints=node_view.taints,
            ready=node_view.ready,
            schedulable=node_view.schedulable,
            draining=node_view.draining,
            alloc_cpu=node_view.node.allocatable.cpu or 0,
            alloc_memory=node_view.node.allocatable.memory or 0,
            max_pods=node_view.node.max_pods,
        )
        for name, node_view in view.nodes.items()
    }
    if any(node_view.usage is not None for node_view in view.nodes.values()):
        # The scheduler's index already summed every pod of every node.
        for name, node_view in view.nodes.items():
            usage = node_view.usage
            if usage is not None:
                state = nodes[name]
                state.used_cpu, state.used_memory, state.pods = usage.cpu, usage.memory, usage.pods
                state.residents = list(usage.residents.values())
        return nodes
    for entry in view.pods.values():
        pod = entry.value
        node = nodes.get(pod.node_name) if pod.node_name else None
        if node is None:
            continue
        status = view.status_of(pod)
        if status is not None and status.terminal:
            continue  # finished pods hold no resources
        cpu, memory = pod.spec.requested
        meta = pod.metadata
        node.add(
            Resident(
                entry.key,
                meta.namespace,
                meta.labels,
                pod.spec.priority or 0,
                cpu,
                memory,
                meta.creation_timestamp,
                pod.terminating,
            )
        )
    return nodes


LOSS_TAINTS = (
    Taint(key="node.kubernetes.io/unreachable", effect="NoExecute"),
    Taint(key="node.kubernetes.io/not-ready", effect="NoExecute"),
)
"""What Kubernetes taints a lost node with: a pod's tolerations of them say how long it waits."""


def loss_evicts_at(pod: Pod, lost_since: float | None, now: float) -> float | None:
    """When a pod of a lost node is evicted and replaced: at once, unless it tolerates the loss
    (Kubernetes' ``node.kubernetes.io/unreachable`` or ``not-ready`` NoExecute taints) — then
    ``tolerationSeconds`` after the node was judged lost, or never without them (it waits for
    its node, as Nomad's ``disconnect { replace = false }``). DaemonSet pods, which tolerate it
    by default, go at once, as Shoal always did: no other node can run them anyway."""
    owner = pod.metadata.owner
    if owner is not None and owner.kind == "DaemonSet":
        return now
    matching = [t for t in pod.spec.tolerations if any(t.tolerates(taint) for taint in LOSS_TAINTS)]
    if not matching:
        return now
    if any(t.toleration_seconds is None for t in matching):
        return None
    return (lost_since if lost_since is not None else now) + max(t.toleration_seconds or 0 for t in matching)


def _evict_for_taints(round_: _Round) -> None:
    """NoExecute: pods that do not tolerate a node's taint leave it (after tolerationSeconds)."""
    if not any(t.effect == "NoExecute" for node in round_.view.nodes.values() for t in node.taints):
        return
    for entry in round_.view.pods.values():
        pod = entry.value
        node_view = round_.view.nodes.get(pod.node_name) if pod.node_name else None
        if node_view is None or pod.terminating or entry.key in round_.removed:
            continue
        taints = [t for t in node_view.taints if t.effect == "NoExecute"]
        if not taints:
            continue
        for taint in taints:
            matching = [t for t in pod.spec.tolerations if t.tolerates(taint)]
            if untolerated([taint], pod.spec.tolerations, ("NoExecute",)):
                round_.remove(entry, f"node {pod.node_name} has taint {taint} it does not tolerate")
                break
            limits = [t.toleration_seconds for t in matching]
            if any(limit is None for limit in limits):
                continue  # tolerated for good
            due = (taint.time_added or round_.now) + max(limit for limit in limits if limit is not None)
            if due <= round_.now:
                round_.remove(entry, f"tolerated taint {taint} for its tolerationSeconds")
                break
            round_.wake(due)


def plan(view: ClusterView, now: float, ids: IdSource, policy: PlanPolicy | None = None) -> Plan:
    round_ = _Round(view, now, ids, policy or PlanPolicy(), Plan(), _node_states(view), set())
    round_.draining_nodes = frozenset(name for name, node in view.nodes.items() if node.draining)
    round_.ready_nodes = frozenset(name for name, node in view.nodes.items() if node.ready)

    for entry in view.pods.values():
        pod = entry.value
        if pod.node_name and round_.lost(pod.node_name):
            node_view = view.nodes.get(pod.node_name)
            due = loss_evicts_at(pod, node_view.lost_since if node_view else None, now)
            if due is None:
                continue  # it tolerates the loss for good: it stays, and is not replaced
            if due > now:
                round_.wake(due)
                continue
            round_.removed.add(entry.key)
            round_.commands.append(EvictPod(entry.key, entry.revision, pod, f"node {pod.node_name} is lost"))

    _evict_for_taints(round_)

    owned: dict[str, list[Entry[Pod]]] = defaultdict(list)
    for entry in view.pods.values():
        if entry.key in round_.removed:
            continue
        owner = entry.value.metadata.owner
        owned[owner.uid if owner else ""].append(entry)

    to_place: list[tuple[Pod, Entry[Pod] | None]] = []
    live_deployments = view.owners
    for dep_entry in view.deployments.values():
        deployment = dep_entry.value
        pods = owned.get(deployment.metadata.uid, [])
        template_hash = deployment.spec.template.hash()
        round_.deployment, round_.removals_left = dep_entry.key, round_.policy.burst
        to_place += _keep_replicas(round_, dep_entry.key, deployment, pods, template_hash)
        round_.deployment = ""
        status = _deployment_status(round_, dep_entry, pods, template_hash)
        if status is not None:
            round_.commands.append(status)

    deleted_jobs = controllers.plan_cronjobs(round_)
    to_place += controllers.plan_jobs(round_, owned, deleted_jobs)
    to_place += controllers.plan_daemonsets(round_, owned)
    to_place += controllers.plan_statefulsets(round_, owned)

    round_.deployment, round_.removals_left = ORPHANS, round_.policy.burst
    for uid, pods in owned.items():
        if uid in live_deployments or uid == "":
            continue  # "": bare pods, which nothing owns and nothing replaces
        for entry in pods:
            owner = entry.value.metadata.owner
            if not entry.value.terminating:
                round_.remove(entry, f"its {owner.kind.lower() if owner else 'owner'} was deleted")
    round_.deployment = ""

    for entry in view.pods.values():
        pod = entry.value
        if pod.node_name or entry.key in round_.removed:
            continue
        if pod.terminating:
            round_.commands.append(
                DeletePod(entry.key, entry.revision, pod, "deleted before it was scheduled")
            )
        elif pod.metadata.owner is None or pod.metadata.owner.uid in live_deployments:
            to_place.append((pod, entry))

    for key, entry in view.deployment_status.items():
        if key not in view.deployments and entry.value.uid not in live_deployments:
            round_.commands.append(DeleteDeploymentStatus(key, entry.revision))
    controllers.forget_statuses(round_, live_deployments)
    controllers.budget_statuses(round_)

    _place_all(round_, to_place)
    return round_.commands


def _keep_replicas(
    round_: _Round, key: str, deployment: Deployment, pods: list[Entry[Pod]], template_hash: str
) -> list[tuple[Pod, None]]:
    """Terminate what is too much or outdated; return the new pods to create (a burst at most)."""
    current: list[Entry[Pod]] = []
    old: list[Entry[Pod]] = []
    stopping_old = False
    for entry in pods:
        meta = entry.value.metadata
        if meta.template_hash == template_hash:
            if meta.deletion_timestamp is None:
                current.append(entry)
        elif meta.deletion_timestamp is None:
            old.append(entry)
        else:
            stopping_old = True
    want = deployment.spec.desired_replicas
    # Recreate waits for old pods still stopping, too: they are not live, but not gone either.
    recreating = deployment.spec.strategy.type == "Recreate" and (bool(old) or stopping_old)
    rolling = old or recreating
    count = _roll(round_, deployment, pods, current, old, want) if rolling else _steady(round_, current, want)
    if count > round_.policy.burst:
        count = round_.policy.burst
        round_.commands.more.add(key)
    priority, _, _ = resolve_priority(round_.view, deployment.spec.template.spec)
    make = pod_maker(deployment, template_hash, round_.now, priority)
    return [(round_.unique_pod(make), None) for _ in range(count)]


def _steady(round_: _Round, current: list[Entry[Pod]], want: int) -> int:
    """One template: scale, and move pods off draining nodes. Returns how many to create."""
    if round_.draining_nodes:
        staying = [e for e in current if not round_.draining(e.value.node_name)]
        moving = [e for e in current if round_.draining(e.value.node_name)]
    else:
        staying, moving = current, []
    if len(staying) > want:
        for entry in sorted(staying, key=round_.status_rank)[: len(staying) - want]:
            round_.remove(entry, f"deployment scaled to {want}")
        staying = [e for e in staying if e.key not in round_.removed]
    if moving:
        # Drain: keep a pod on a draining node until enough replacements are Ready, unless
        # replacements cannot be placed at all (then waiting would never end).
        ready_elsewhere = sum(1 for e in staying if round_.ready(e.value))
        stuck = any(not e.value.node_name and e.value.scheduling is not None for e in staying)
        excess = len(moving) if stuck else ready_elsewhere + len(moving) - want
        for entry in sorted(moving, key=round_.status_rank)[: max(0, excess)]:
            round_.disrupt(entry, f"node {entry.value.node_name} is being drained")
    return max(0, want - len(staying))


def _roll(
    round_: _Round,
    deployment: Deployment,
    pods: list[Entry[Pod]],
    current: list[Entry[Pod]],
    old: list[Entry[Pod]],
    want: int,
) -> int:
    """A template change in progress. Returns how many pods of the new template to create.

    RollingUpdate follows Kubernetes' arithmetic: never more than replicas + maxSurge pods,
    never fewer than replicas - maxUnavailable available ones; unavailable old pods go
    first. Recreate stops every old pod, and starts new ones once they are all gone. A
    paused deployment only scales.
    """
    spec = deployment.spec
    min_ready = spec.min_ready_seconds
    if spec.paused:
        total = len(current) + len(old)
        for entry in sorted(old, key=round_.status_rank)[: max(0, total - want)]:
            round_.remove(entry, f"deployment scaled to {want}")
        return max(0, want - total)
    if spec.strategy.type == "Recreate":
        for entry in old:
            round_.disrupt(entry, "the pod template changed (Recreate)")
        old_left = any(e.value.metadata.template_hash != current_hash(deployment) for e in pods)
        return 0 if old_left else max(0, want - len(current))
    surge, unavailable = spec.strategy.limits(want)
    if len(current) > want:
        for entry in sorted(current, key=round_.status_rank)[: len(current) - want]:
            round_.remove(entry, f"deployment scaled to {want}")
        current = [e for e in current if e.key not in round_.removed]
    total = len(current) + len(old)
    new_available = sum(1 for e in current if round_.available(e.value, min_ready))
    old_available = [e for e in old if round_.available(e.value, min_ready)]
    old_unavailable = [e for e in old if not round_.available(e.value, min_ready)]
    # How far the pod count may drop without going under replicas - maxUnavailable available.
    budget = total - (want - unavailable) - (len(current) - new_available)
    for entry in sorted(old_unavailable, key=round_.status_rank)[: max(0, budget)]:
        if round_.disrupt(entry, "replaced by the new template"):
            budget -= 1
    spare = new_available + len(old_available) - (want - unavailable)
    for entry in sorted(old_available, key=round_.status_rank)[: max(0, min(budget, spare))]:
        round_.disrupt(entry, "replaced by the new template")
    return max(0, min(want - len(current), want + surge - total))


def current_hash(deployment: Deployment) -> str:
    return deployment.spec.template.hash()


def _place_all(round_: _Round, to_place: list[tuple[Pod, Entry[Pod] | None]]) -> None:
    """Highest priority first; within a priority, pods of one class together, Pending before new."""

    def order(item: tuple[Pod, Entry[Pod] | None]) -> tuple[int, str, str, bool, float]:
        pod = item[0]
        return (
            -(pod.spec.priority or 0),
            pod.metadata.namespace,
            pod.metadata.template_hash,
            item[1] is None,
            pod.metadata.creation_timestamp,
        )

    placer = Placer(round_.nodes, round_.policy.strategy)
    waiting_left = round_.policy.max_binds
    for pod, entry in sorted(to_place, key=order):
        if entry is not None:
            # A pod already stored and waiting: placed (or told why not) within the round's share.
            if waiting_left <= 0:
                round_.commands.more_placement = True
                continue
            waiting_left -= 1
        priority, preempts, problem = resolve_priority(round_.view, pod.spec)
        pinned, unbound, claim_problem = _claims_of(round_, pod)
        daemon = bool(pod.required_node)
        if daemon and pinned and pinned != pod.required_node:
            claim_problem = f"its claims are bound to node {pinned}, not to its node {pod.required_node}"
        pinned = pod.required_node or pinned
        if problem or claim_problem:
            _unschedulable(round_, pod, entry, "Unschedulable", problem or claim_problem)
            continue
        cls = PodClass(
            pod.metadata.namespace, pod.metadata.labels, pod.spec, priority, preempts, pinned, daemon
        )
        run = placer.run_for(
            (pod.metadata.namespace, pod.metadata.template_hash, priority, preempts, pinned, daemon), cls
        )
        decision = run.place(entry.key if entry else pod.key, pod.metadata.creation_timestamp)
        if decision.node is not None:
            for claim in unbound:
                namespace, name = keys.split_key(claim)
                round_.claim_nodes[claim] = decision.node
                round_.commands.append(
                    BindClaim(
                        claim,
                        ClaimStatus(
                            namespace=namespace,
                            name=name,
                            uid="",
                            node=decision.node,
                            volume=claim_volume_name(namespace, name),
                            bound_at=round_.now,
                        ),
                    )
                )
            if entry is None:
                round_.commands.append(CreatePod(replace(pod, node_name=decision.node)))
            else:
                bound = replace(pod, node_name=decision.node, scheduling=None)
                round_.commands.append(BindPod(entry.key, entry.revision, bound, decision.node))
            continue
        message = decision.message
        if decision.victims:
            for victim in decision.victims:
                victim_entry = round_.view.pod(victim.key)
                if victim_entry is not None and victim.key not in round_.removed:
                    round_.remove(victim_entry, f"preempted by {pod.metadata.name} (priority {priority})")
                    victim.terminating = True  # still holds its room until it is gone
            message += f" Preempting {len(decision.victims)} pod(s) on {decision.nominated}."
        _unschedulable(round_, pod, entry, decision.reason, message, decision.nominated)


def _claims_of(round_: _Round, pod: Pod) -> tuple[str, list[str], str]:
    """(the node its bound claims pin it to, its claims not bound yet, why it cannot go at all)."""
    namespace = pod.metadata.namespace
    nodes: set[str] = set()
    unbound: list[str] = []
    for name in sorted(pod.spec.claims()):
        key = keys.object_key(namespace, name)
        if key not in round_.view.claims and key not in round_.new_claims:
            return "", [], f'persistentvolumeclaim "{name}" not found'
        node = round_.claim_nodes.get(key) or round_.view.claim_nodes.get(key)
        if node:
            nodes.add(node)
        else:
            unbound.append(key)
    if len(nodes) > 1:
        return "", [], f"its claims are bound to different nodes ({', '.join(sorted(nodes))})"
    return (next(iter(nodes)) if nodes else ""), unbound, ""


def _unschedulable(
    round_: _Round, pod: Pod, entry: Entry[Pod] | None, reason: str, message: str, nominated: str = ""
) -> None:
    previous = pod.scheduling
    if previous is not None and previous.message == message and previous.nominated_node == nominated:
        return  # already says so
    scheduling = SchedulingState(reason=reason, message=message, since=round_.now, nominated_node=nominated)
    if entry is None:
        round_.commands.append(CreatePod(replace(pod, scheduling=scheduling)))
    else:
        round_.commands.append(
            MarkUnschedulable(entry.key, entry.revision, replace(pod, scheduling=scheduling), scheduling)
        )


def _deployment_status(
    round_: _Round, dep_entry: Entry[Deployment], pods: list[Entry[Pod]], template_hash: str
) -> WriteDeploymentStatus | None:
    """The deployment's status, if it differs from what is stored."""
    deployment = dep_entry.value
    spec = deployment.spec
    # One tight pass: a big deployment has tens of thousands of pods, looked at every round.
    live = ready = available = updated = 0
    min_ready = spec.min_ready_seconds
    is_ready = round_.ready
    for entry in pods:
        pod = entry.value
        meta = pod.metadata
        if meta.deletion_timestamp is not None:
            continue
        live += 1
        if meta.template_hash == template_hash:
            updated += 1
        if is_ready(pod):
            ready += 1
            if not min_ready or round_.available(pod, min_ready):
                available += 1
    want = spec.desired_replicas
    stored_entry = round_.view.deployment_status.get(dep_entry.key)
    stored = (
        stored_entry.value
        if stored_entry is not None and stored_entry.value.uid == deployment.metadata.uid
        else None
    )
    counts = (deployment.metadata.generation, live, updated, ready, available)
    moved = stored is None or counts != (
        stored.observed_generation,
        stored.replicas,
        stored.updated_replicas,
        stored.ready_replicas,
        stored.available_replicas,
    )
    progress_at = round_.now if moved or stored is None else stored.progress_at
    complete = updated == want and available >= want and live == want
    if spec.paused:
        progressing, reason, message = "Unknown", "DeploymentPaused", "the deployment is paused"
    elif complete:
        progressing, reason, message = (
            "True",
            "NewReplicaSetAvailable",
            f"revision {deployment.revision} is available",
        )
    elif round_.now - progress_at > spec.progress_deadline_seconds:
        progressing, reason = "False", "ProgressDeadlineExceeded"
        message = f"no progress for {spec.progress_deadline_seconds}s"
        message += f" ({available}/{want} available, {updated} updated)"
    else:
        progressing, reason, message = (
            "True",
            "ReplicaSetUpdated",
            f"rolling out revision {deployment.revision}",
        )
        round_.wake(progress_at + spec.progress_deadline_seconds + 0.01)
    status = DeploymentStatus(
        namespace=deployment.metadata.namespace,
        name=deployment.metadata.name,
        uid=deployment.metadata.uid,
        observed_generation=deployment.metadata.generation,
        replicas=live,
        updated_replicas=updated,
        ready_replicas=ready,
        available_replicas=available,
        unavailable_replicas=max(want - available, 0),
        revision=deployment.revision,
        progressing=progressing,  # type: ignore[arg-type]
        progressing_reason=reason,
        progressing_message=message,
        progress_at=progress_at,
    )
    if stored_entry is not None and stored_entry.value == status:
        return None
    return WriteDeploymentStatus(dep_entry.key, stored_entry.revision if stored_entry else None, status)
