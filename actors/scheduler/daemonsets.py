"""A DaemonSet's decisions, pure: which nodes get a pod, which pods go, how an update rolls.

Kubernetes' DaemonSet controller, one DaemonSet at a time:

- a node *should run* a daemon pod when it matches the template's ``nodeSelector`` and
  required node affinity, its NoSchedule and NoExecute taints are tolerated and it is Ready;
  a pod already there *may continue* while the selector, affinity and NoExecute taints still
  allow it (a NotReady node, or a NoSchedule taint added later, keeps its pod). Daemon pods
  get Kubernetes' tolerations for ``node.kubernetes.io/unschedulable`` (so cordoned and
  draining nodes keep and get them), ``not-ready``/``unreachable`` (NoExecute) and the
  pressure taints. A lost or deleted node loses its pod (the planner evicts it);
- each node that should run one and has none gets a pod, bound to it by the placer (which
  still checks room, and may leave it Pending with the reason); a node with a pod still
  terminating gets its new one once that is gone; extra pods on a node go, oldest kept;
- ``RollingUpdate``: with ``maxSurge`` 0, old pods are deleted while fewer than
  ``maxUnavailable`` nodes lack an available pod (unavailable old pods first, without
  counting); the new pod starts once the old one is gone. With ``maxSurge``, a new pod
  starts beside an old one on at most ``maxSurge`` nodes at once (at once where the old one
  is unavailable), and the old one goes when the new one is available. ``OnDelete``: new
  pods only replace old ones deleted by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shoal.actors.scheduler.filters import (
    matches_node_selector,
    matches_required_node_affinity,
    untolerated,
)
from shoal.actors.scheduler.prototype import pod_prototype
from shoal.bus.kv import Entry
from shoal.models.base import replace
from shoal.models.daemonset import REVISION_LABEL, DaemonSet, DaemonSetStatus
from shoal.models.pod import Pod
from shoal.models.scheduling import Taint, Toleration
from shoal.models.workloads import PodSpec

DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
"""What Kubernetes' DaemonSet controller adds to every daemon pod (operator Exists)."""


def daemon_spec(spec: PodSpec) -> PodSpec:
    """The template's pod spec with the daemon tolerations it lacks."""
    extra = [
        Toleration.model_construct(
            key=key, operator="Exists", value="", effect=effect, toleration_seconds=None
        )
        for key, effect in DAEMON_TOLERATIONS
        if not any(t.key == key and t.operator == "Exists" and t.effect == effect for t in spec.tolerations)
    ]
    return replace(spec, tolerations=[*spec.tolerations, *extra]) if extra else spec


@dataclass(frozen=True)
class DaemonNode:
    name: str
    labels: dict[str, str]
    taints: Sequence[Taint]
    ready: bool
    lost: bool = False


@dataclass(frozen=True)
class DaemonPod:
    entry: Entry[Pod]
    updated: bool
    """Of the current template."""
    ready: bool = False
    available: bool = False
    failed: bool = False

    @property
    def node(self) -> str:
        return self.entry.value.target_node

    @property
    def terminating(self) -> bool:
        return self.entry.value.terminating

    @property
    def created(self) -> float:
        return self.entry.value.metadata.creation_timestamp


@dataclass
class DaemonDecision:
    status: DaemonSetStatus
    create: list[str] = field(default_factory=list)
    """Nodes that get a new pod of the current template."""
    remove: list[tuple[Entry[Pod], str]] = field(default_factory=list)


def eligibility(spec: PodSpec, node: DaemonNode) -> tuple[bool, bool, str]:
    """(should run a pod, may keep one, why not): Kubernetes' NodeShouldRunDaemonPod."""
    if node.lost:
        return False, False, f"node {node.name} is lost"
    if matches_node_selector(spec, node.labels) or matches_required_node_affinity(spec, node.labels):
        return False, False, f"node {node.name} does not match the node selector or affinity"
    if untolerated(node.taints, spec.tolerations, ("NoExecute",)):
        return False, False, f"node {node.name} has a NoExecute taint the pod does not tolerate"
    if untolerated(node.taints, spec.tolerations, ("NoSchedule",)):
        return False, True, ""
    return node.ready, True, ""


def reconcile(
    daemonset: DaemonSet, nodes: Sequence[DaemonNode], pods: Sequence[DaemonPod], spec: PodSpec
) -> DaemonDecision:
    """``spec``: the template's pod spec with the daemon tolerations (``daemon_spec``)."""
    meta = daemonset.metadata
    surge_allowed = daemonset.spec.update_strategy.type == "RollingUpdate"
    by_node: dict[str, list[DaemonPod]] = {}
    for pod in sorted(pods, key=lambda p: (p.created, p.entry.key)):
        by_node.setdefault(pod.node, []).append(pod)
    verdicts = {node.name: eligibility(spec, node) for node in nodes}
    desired = sum(1 for run, _, _ in verdicts.values() if run)
    max_surge, max_unavailable = daemonset.spec.update_strategy.limits(desired)
    surge_allowed = surge_allowed and max_surge > 0
    decision = DaemonDecision(DaemonSetStatus(namespace=meta.namespace, name=meta.name, uid=meta.uid))
    touched: set[str] = set()

    def remove(pod: DaemonPod, reason: str) -> None:
        decision.remove.append((pod.entry, reason))
        touched.add(pod.node)

    for name, here in by_node.items():
        if name not in verdicts:
            for pod in here:
                if not pod.terminating and not pod.entry.value.node_name:
                    remove(pod, f"node {name} is gone")
    for name in sorted(verdicts):
        run, keep, why = verdicts[name]
        here = by_node.get(name, [])
        if run and not here:
            decision.create.append(name)
            touched.add(name)
            continue
        alive = [p for p in here if not p.terminating]
        if not keep:
            for pod in alive:
                remove(pod, why)
            continue
        for pod in [p for p in alive if p.failed]:
            remove(pod, "the daemon pod failed")
        alive = [p for p in alive if not p.failed]
        if surge_allowed:
            extra = [p for p in alive if p.updated][1:] + [p for p in alive if not p.updated][1:]
        else:
            extra = alive[1:]
        for pod in extra:
            remove(pod, f"more than one daemon pod on node {name}")
    if daemonset.spec.update_strategy.type == "RollingUpdate":
        candidates = {
            n: by_node.get(n, []) for n, (_, keep, _) in verdicts.items() if keep and n not in touched
        }
        if surge_allowed:
            _surge(decision, candidates, verdicts, max_surge)
        else:
            _roll(decision, candidates, max_unavailable)
    _count(decision.status, verdicts, by_node, daemonset.metadata.generation)
    return decision


def _split(pods: list[DaemonPod]) -> tuple[DaemonPod | None, DaemonPod | None, bool]:
    """(new pod, old pod, consistent): at most one of each among the pods not terminating."""
    new = old = None
    for pod in pods:
        if pod.terminating:
            continue
        if pod.updated:
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _roll(decision: DaemonDecision, nodes: dict[str, list[DaemonPod]], max_unavailable: int) -> None:
    unavailable = 0
    replace_now: list[DaemonPod] = []
    candidates: list[DaemonPod] = []
    for name in sorted(nodes):
        new, old, consistent = _split(nodes[name])
        if not consistent or (old is None) == (new is None):
            unavailable += 1  # nothing there, or both: the manage step sorts it out
        elif new is not None:
            unavailable += 0 if new.available else 1
        elif old is not None and not old.available:
            replace_now.append(old)
        elif old is not None:
            candidates.append(old)
    budget = max(0, min(max_unavailable - unavailable, len(candidates)))
    for pod in [*replace_now, *candidates[:budget]]:
        decision.remove.append((pod.entry, "replaced by the new template"))


def _surge(
    decision: DaemonDecision,
    nodes: dict[str, list[DaemonPod]],
    verdicts: dict[str, tuple[bool, bool, str]],
    max_surge: int,
) -> None:
    surging = 0
    allowed: list[str] = []
    candidates: list[str] = []
    for name in sorted(nodes):
        new, old, consistent = _split(nodes[name])
        if not consistent:
            surging += 1
        elif old is None:
            continue
        elif new is None:
            if not old.available:
                if verdicts[name][0]:
                    allowed.append(name)
            elif surging < max_surge:
                candidates.append(name)
        elif not new.available:
            surging += 1
        else:
            decision.remove.append((old.entry, "its replacement of the new template is available"))
    room = max(0, min(max_surge - surging, len(candidates)))
    decision.create += [*allowed, *candidates[:room]]


def _count(
    status: DaemonSetStatus,
    verdicts: dict[str, tuple[bool, bool, str]],
    by_node: dict[str, list[DaemonPod]],
    generation: int,
) -> None:
    status.observed_generation = generation
    for name, (run, _, _) in verdicts.items():
        here = by_node.get(name, [])
        if run:
            status.desired_number_scheduled += 1
            if here:
                status.current_number_scheduled += 1
                oldest = here[0]
                status.number_ready += 1 if oldest.ready else 0
                status.number_available += 1 if oldest.available else 0
                status.updated_number_scheduled += 1 if oldest.updated else 0
        elif here:
            status.number_misscheduled += 1
    status.number_unavailable = status.desired_number_scheduled - status.number_available


def pod_maker(
    daemonset: DaemonSet, spec: PodSpec, template_hash: str, now: float, priority: int = 0
) -> Callable[[str, str, str], Pod]:
    """New daemon pods: ``make(node, suffix, uid)``, named ``<daemonset>-<suffix>`` as in Kubernetes."""
    meta = daemonset.metadata
    template = daemonset.spec.template
    spec = spec if spec.priority == priority else replace(spec, priority=priority)
    prototype = pod_prototype(
        namespace=meta.namespace,
        labels={**template.metadata.labels, REVISION_LABEL: template_hash},
        annotations=template.metadata.annotations,
        owner=("DaemonSet", meta.name, meta.uid),
        template_hash=template_hash,
        spec=spec,
        now=now,
    )
    prefix = f"{meta.name[:57].rstrip('-')}-"

    def make(node: str, suffix: str, uid: str) -> Pod:
        metadata = replace(prototype.metadata, name=prefix + suffix, uid=uid)
        return replace(prototype, metadata=metadata, required_node=node)

    return make
