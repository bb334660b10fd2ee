"""Placement: which node a pod goes to, as a pipeline of filters and scorers (after Nomad).

Filters rule nodes out and say why; scorers rank what is left. Everything here is a pure
function of the pod and a ``NodeFit`` per node, which the planner updates as it places
pods, so one round places many pods without any I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shoal.actors.scheduler.view import NodeView


@dataclass
class NodeFit:
    """A node's room for more pods, as the planner sees it during one round."""

    name: str
    ready: bool
    cpu_allocatable: int
    memory_allocatable: int
    cpu_requested: int = 0
    memory_requested: int = 0
    pods: int = 0
    schedulable: bool = True

    @classmethod
    def of(cls, view: NodeView) -> NodeFit:
        allocatable = view.node.allocatable
        return cls(
            view.node.name,
            view.ready,
            allocatable.cpu or 0,
            allocatable.memory or 0,
            schedulable=view.schedulable,
        )

    def add(self, cpu: int, memory: int) -> None:
        self.cpu_requested += cpu
        self.memory_requested += memory
        self.pods += 1


@dataclass(frozen=True)
class PodNeeds:
    cpu: int
    memory: int


Filter = Callable[[PodNeeds, NodeFit], str | None]
"""Returns None when the node can take the pod, else the reason it cannot."""

Scorer = Callable[[PodNeeds, NodeFit], float]
"""Higher is better; each scorer returns a value in [0, 1]."""


def node_ready(needs: PodNeeds, node: NodeFit) -> str | None:
    return None if node.ready else "node(s) were not ready"


def node_schedulable(needs: PodNeeds, node: NodeFit) -> str | None:
    return None if node.schedulable else "node(s) were unschedulable"


def enough_cpu(needs: PodNeeds, node: NodeFit) -> str | None:
    return None if node.cpu_requested + needs.cpu <= node.cpu_allocatable else "Insufficient cpu"


def enough_memory(needs: PodNeeds, node: NodeFit) -> str | None:
    return None if node.memory_requested + needs.memory <= node.memory_allocatable else "Insufficient memory"


def least_allocated(needs: PodNeeds, node: NodeFit) -> float:
    """Spread: prefer the node with the largest share of CPU and memory left after placing."""
    cpu_free = 1 - (node.cpu_requested + needs.cpu) / node.cpu_allocatable if node.cpu_allocatable else 0.0
    mem_free = (
        1 - (node.memory_requested + needs.memory) / node.memory_allocatable
        if node.memory_allocatable
        else 0.0
    )
    return (cpu_free + mem_free) / 2


FILTERS: tuple[Filter, ...] = (node_ready, node_schedulable, enough_cpu, enough_memory)
SCORERS: tuple[Scorer, ...] = (least_allocated,)


@dataclass(frozen=True)
class Placement:
    node: str | None
    reason: str = ""
    message: str = ""


def place(
    needs: PodNeeds,
    nodes: Iterable[NodeFit],
    filters: tuple[Filter, ...] = FILTERS,
    scorers: tuple[Scorer, ...] = SCORERS,
) -> Placement:
    """The best node for a pod, or why there is none (in kube-scheduler's words)."""
    best: NodeFit | None = None
    best_key: tuple[float, int, str] | None = None
    rejected: Counter[str] = Counter()
    total = 0
    for node in nodes:
        total += 1
        reason = next((r for f in filters if (r := f(needs, node)) is not None), None)
        if reason is not None:
            rejected[reason] += 1
            continue
        score = sum(scorer(needs, node) for scorer in scorers)
        # Ties go to the node with fewer pods, then by name, so placement is deterministic.
        key = (-score, node.pods, node.name)
        if best_key is None or key < best_key:
            best, best_key = node, key
    if best is not None:
        return Placement(best.name)
    if total == 0:
        return Placement(None, "Unschedulable", "0/0 nodes are available: no nodes are registered")
    details = ", ".join(f"{count} {reason}" for reason, count in sorted(rejected.items()))
    return Placement(None, "Unschedulable", f"0/{total} nodes are available: {details}.")
