"""The rules of placement, each a small pure function (the filters and scorers of Nomad's stack).

Static filters depend only on the node and the pod's spec, so the placer runs them once per
kind of pod per round. Dynamic ones depend on what is already placed and run per pod.
Every filter returns None when the node is fine, else the reason it is not, in
kube-scheduler's words, so a Pending pod says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from shoal.models.scheduling import Taint, Toleration
from shoal.models.workloads import PodSpec

Strategy = Literal["spread", "binpack"]

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
TAINTS = "node(s) had untolerated taint(s)"
CPU = "Insufficient cpu"
MEMORY = "Insufficient memory"
TOO_MANY_PODS = "Too many pods"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
SPREAD = "node(s) didn't match pod topology spread constraints"


VOLUME_NODE = "node(s) didn't match the node of the pod's volume claims"


def pinned_elsewhere(pinned: str, node: str) -> str | None:
    """A pod whose claims are bound goes only where their volumes live."""
    return VOLUME_NODE if pinned and pinned != node else None


UNSCHEDULABLE_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")
"""What a cordoned node is to Kubernetes' scheduler: pods that tolerate it may still go there."""


def admits(spec: PodSpec, schedulable: bool, draining: bool, daemon: bool) -> str | None:
    """A cordoned node takes the pods that tolerate ``node.kubernetes.io/unschedulable`` (daemon
    pods do); a draining one only daemon pods, since the rest are being moved off it."""
    if schedulable:
        return None
    if draining and not daemon:
        return UNSCHEDULABLE
    return None if any(t.tolerates(UNSCHEDULABLE_TAINT) for t in spec.tolerations) else UNSCHEDULABLE


def matches_node_selector(spec: PodSpec, labels: Mapping[str, str]) -> str | None:
    if any(labels.get(key) != value for key, value in spec.node_selector.items()):
        return AFFINITY
    return None


def matches_required_node_affinity(spec: PodSpec, labels: Mapping[str, str]) -> str | None:
    node_affinity = spec.affinity.node_affinity if spec.affinity else None
    required = node_affinity.required_during_scheduling_ignored_during_execution if node_affinity else None
    if required is not None and not required.matches(dict(labels)):
        return AFFINITY
    return None


def untolerated(
    taints: Sequence[Taint], tolerations: Sequence[Toleration], effects: tuple[str, ...]
) -> list[Taint]:
    return [
        taint
        for taint in taints
        if taint.effect in effects and not any(toleration.tolerates(taint) for toleration in tolerations)
    ]


def tolerates_taints(spec: PodSpec, taints: Sequence[Taint]) -> str | None:
    """NoSchedule and NoExecute taints keep out pods that do not tolerate them."""
    return TAINTS if untolerated(taints, spec.tolerations, ("NoSchedule", "NoExecute")) else None


def fits(cpu: int, memory: int, free_cpu: int, free_memory: int, free_pods: int) -> str | None:
    if free_pods < 1:
        return TOO_MANY_PODS
    if cpu > free_cpu:
        return CPU
    if memory > free_memory:
        return MEMORY
    return None


def resource_score(
    strategy: Strategy,
    cpu: int,
    memory: int,
    used_cpu: int,
    used_memory: int,
    alloc_cpu: int,
    alloc_memory: int,
) -> float:
    """In [0, 1]: spread prefers the least allocated node, binpack the most allocated one."""
    cpu_share = (used_cpu + cpu) / alloc_cpu if alloc_cpu else 1.0
    memory_share = (used_memory + memory) / alloc_memory if alloc_memory else 1.0
    allocated = (cpu_share + memory_share) / 2
    return allocated if strategy == "binpack" else 1.0 - allocated


def preferred_node_affinity_score(spec: PodSpec, labels: Mapping[str, str]) -> float:
    """In [0, 1]: the weight of the preferred terms the node matches, over all their weight."""
    node_affinity = spec.affinity.node_affinity if spec.affinity else None
    terms = node_affinity.preferred_during_scheduling_ignored_during_execution if node_affinity else []
    total = sum(term.weight for term in terms)
    if not total:
        return 0.0
    return sum(term.weight for term in terms if term.preference.matches(dict(labels))) / total


def prefer_no_schedule_penalty(spec: PodSpec, taints: Sequence[Taint]) -> int:
    """How many PreferNoSchedule taints the pod would have to put up with there."""
    return len(untolerated(taints, spec.tolerations, ("PreferNoSchedule",)))


def static_score(spec: PodSpec, labels: Mapping[str, str], taints: Sequence[Taint]) -> float:
    """The part of a node's score that does not change as pods are placed (kube-scheduler
    weighs node affinity twice and taint toleration three times the resource score)."""
    return 2.0 * preferred_node_affinity_score(spec, labels) - 3.0 * prefer_no_schedule_penalty(spec, taints)
