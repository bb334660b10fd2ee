"""The placer: where each pod of a round goes, many pods per round and no I/O.

Pods that schedule alike (same namespace, template and priority: a *class*) share work:
the static filters (readiness, cordon, node selector, required node affinity, taints)
and the static part of the score run once per class. Then each pod is placed:

- **heap mode** (no soft pod-level preferences, at most one hard topology constraint):
  the candidates are grouped by the constraint's domain (one group without one), each
  group a heap of nodes by score, and the groups a heap by how many matching pods they
  hold. A pod goes to the best node of the least crowded domain that can take it; nodes
  that cannot (room, anti-affinity) drop out for the round. Keys only grow as pods land,
  so stale entries are found on pop and pushed again: a pod costs O(log n), not O(n).
- **scan mode** (soft anti-affinity, ScheduleAnyway spread, several hard constraints):
  every candidate is filtered and scored for every pod, as kube-scheduler does.

A pod that fits nowhere gets kube-scheduler's message (``0/5 nodes are available: 3
Insufficient cpu, 2 node(s) had untolerated taint(s).``) and, if its priority allows,
a preemption: the node where evicting the fewest, lowest-priority pods makes room.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shoal.actors.scheduler import filters
from shoal.actors.scheduler.filters import Strategy
from shoal.models.scheduling import PodAffinityTerm, Taint, TopologySpreadConstraint
from shoal.models.workloads import PodSpec


@dataclass(eq=False)
class Resident:
    """A pod already on a node, as far as placement cares."""

    key: str
    namespace: str
    labels: Mapping[str, str]
    priority: int
    cpu: int
    memory: int
    created: float
    terminating: bool = False


@dataclass(eq=False)
class NodeState:
    """A node's room and residents during one round (updated as pods are placed)."""

    name: str
    labels: Mapping[str, str]
    taints: Sequence[Taint]
    ready: bool
    schedulable: bool
    alloc_cpu: int
    alloc_memory: int
    max_pods: int = 110
    draining: bool = False
    used_cpu: int = 0
    used_memory: int = 0
    pods: int = 0
    version: int = 0
    residents: list[Resident] = field(default_factory=list)

    def add(self, resident: Resident) -> None:
        self.used_cpu += resident.cpu
        self.used_memory += resident.memory
        self.pods += 1
        self.version += 1
        self.residents.append(resident)

    def room(self, cpu: int, memory: int) -> str | None:
        return filters.fits(
            cpu,
            memory,
            self.alloc_cpu - self.used_cpu,
            self.alloc_memory - self.used_memory,
            self.max_pods - self.pods,
        )


@dataclass(frozen=True)
class PodClass:
    """What placement needs to know about a pod; pods with equal classes place alike."""

    namespace: str
    labels: Mapping[str, str]
    spec: PodSpec
    priority: int = 0
    preempts: bool = False
    """Whether it may evict lower-priority pods (its priority class allows it)."""
    pinned: str = ""
    """The only node it may go to (where its claims' volumes live, or its DaemonSet's node), if any."""
    daemon: bool = False
    """A DaemonSet's pod: pinned to its node, and admitted by draining nodes."""

    @property
    def cpu(self) -> int:
        return self.spec.requested[0]

    @property
    def memory(self) -> int:
        return self.spec.requested[1]


@dataclass
class Decision:
    node: str | None
    reason: str = ""
    message: str = ""
    victims: list[Resident] = field(default_factory=list)
    nominated: str = ""


def _message(total: int, reasons: Counter[str]) -> str:
    if total == 0:
        return "0/0 nodes are available: no nodes are registered"
    details = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"0/{total} nodes are available: {details}."


class _DomainCounts:
    """Pods matching a selector, per value of a topology key, with the minimum kept current."""

    def __init__(
        self,
        key: str,
        selector_matches,
        namespaces: set[str],
        nodes: Sequence[NodeState],
        eligible: Sequence[NodeState],
    ) -> None:  # type: ignore[no-untyped-def]
        self.key = key
        self.selector_matches = selector_matches
        self.namespaces = namespaces
        self.counts: Counter[str] = Counter()
        for node in nodes:
            value = node.labels.get(key)
            if value is None:
                continue
            for resident in node.residents:
                if (
                    not resident.terminating
                    and resident.namespace in namespaces
                    and selector_matches(resident.labels)
                ):
                    self.counts[value] += 1
        self.domains = {value for node in eligible if (value := node.labels.get(key)) is not None}
        self.frequency: Counter[int] = Counter(self.counts[value] for value in self.domains)
        self.minimum = min(self.frequency) if self.frequency else 0

    def count(self, node: NodeState) -> int:
        value = node.labels.get(self.key)
        return self.counts[value] if value is not None else 0

    def landed(self, node: NodeState, labels: Mapping[str, str], namespace: str) -> None:
        value = node.labels.get(self.key)
        if value is None or namespace not in self.namespaces or not self.selector_matches(labels):
            return
        before = self.counts[value]
        self.counts[value] = before + 1
        if value in self.domains:
            self.frequency[before] -= 1
            self.frequency[before + 1] += 1
            if self.frequency[before] == 0:
                del self.frequency[before]
                if before == self.minimum:
                    self.minimum = min(self.frequency)


class _Spread:
    def __init__(
        self,
        constraint: TopologySpreadConstraint,
        cls: PodClass,
        nodes: Sequence[NodeState],
        eligible: Sequence[NodeState],
    ) -> None:
        self.constraint = constraint
        self.domains = _DomainCounts(
            constraint.topology_key, constraint.label_selector.matches, {cls.namespace}, nodes, eligible
        )

    def allows(self, node: NodeState) -> bool:
        if node.labels.get(self.constraint.topology_key) is None:
            return False
        return self.domains.count(node) + 1 - self.domains.minimum <= self.constraint.max_skew


class _AntiAffinity:
    def __init__(self, term: PodAffinityTerm, cls: PodClass, nodes: Sequence[NodeState]) -> None:
        namespaces = set(term.namespaces) or {cls.namespace}
        self.domains = _DomainCounts(term.topology_key, term.label_selector.matches, namespaces, nodes, nodes)
        self.key = term.topology_key

    def blocks(self, node: NodeState) -> bool:
        return node.labels.get(self.key) is not None and self.domains.count(node) > 0


class ClassRun:
    """Placing the pods of one class, one after another, within a round."""

    def __init__(self, nodes: Sequence[NodeState], cls: PodClass, strategy: Strategy) -> None:
        self.cls = cls
        self.strategy = strategy
        self.total = len(nodes)
        self.static_reasons: Counter[str] = Counter()
        self.candidates: list[NodeState] = []
        spec = cls.spec
        considered: Sequence[NodeState] = nodes
        if cls.pinned:
            # One node may take it: the others are not even looked at (a DaemonSet over a
            # thousand nodes places a thousand pinned pods).
            pinned_reason = filters.AFFINITY if cls.daemon else filters.VOLUME_NODE
            considered = [node for node in nodes if node.name == cls.pinned]
            self.static_reasons[pinned_reason] += len(nodes) - len(considered)
        for node in considered:
            reason = (
                filters.pinned_elsewhere(cls.pinned, node.name)
                or (None if node.ready else filters.NOT_READY)
                or filters.admits(spec, node.schedulable, node.draining, cls.daemon)
                or filters.matches_node_selector(spec, node.labels)
                or filters.matches_required_node_affinity(spec, node.labels)
                or filters.tolerates_taints(spec, node.taints)
            )
            if reason:
                self.static_reasons[reason] += 1
            else:
                self.candidates.append(node)
        self.static = {
            node.name: filters.static_score(spec, node.labels, node.taints) for node in self.candidates
        }
        hard = [c for c in spec.topology_spread_constraints if c.when_unsatisfiable == "DoNotSchedule"]
        soft = [c for c in spec.topology_spread_constraints if c.when_unsatisfiable == "ScheduleAnyway"]
        self.hard = [_Spread(c, cls, nodes, self.candidates) for c in hard]
        self.soft = [_Spread(c, cls, nodes, self.candidates) for c in soft]
        anti = spec.affinity.pod_anti_affinity if spec.affinity else None
        required = anti.required_during_scheduling_ignored_during_execution if anti else []
        self.preferred = anti.preferred_during_scheduling_ignored_during_execution if anti else []
        self.anti = [_AntiAffinity(term, cls, nodes) for term in required]
        self.soft_anti = [(w.weight, _AntiAffinity(w.pod_affinity_term, cls, nodes)) for w in self.preferred]
        self.heap_mode = len(self.hard) <= 1 and not self.soft and not self.soft_anti
        self.dropped: Counter[str] = Counter()
        # Heap mode: the candidates grouped by the hard constraint's domain (one group when
        # there is none), a heap of nodes by score in each, and a heap of domains by count.
        self.domain_nodes: dict[str, list[tuple[float, int, str, int, NodeState]]] = {}
        self.domain_order: list[tuple[int, str]] = []
        if self.heap_mode:
            for node in self.candidates:
                domain = self._domain(node)
                if domain is None:
                    self.dropped[filters.SPREAD] += 1
                    continue
                self.domain_nodes.setdefault(domain, []).append(self._entry(node))
            for domain, entries in self.domain_nodes.items():
                heapq.heapify(entries)
                self.domain_order.append((self._domain_count(domain), domain))
            heapq.heapify(self.domain_order)

    def _domain(self, node: NodeState) -> str | None:
        return node.labels.get(self.hard[0].constraint.topology_key) if self.hard else ""

    def _domain_count(self, domain: str) -> int:
        return self.hard[0].domains.counts[domain] if self.hard else 0

    def _score(self, node: NodeState) -> float:
        cls = self.cls
        resource = filters.resource_score(
            self.strategy,
            cls.cpu,
            cls.memory,
            node.used_cpu,
            node.used_memory,
            node.alloc_cpu,
            node.alloc_memory,
        )
        return resource + self.static[node.name]

    def _entry(self, node: NodeState) -> tuple[float, int, str, int, NodeState]:
        # The version tells a stale entry: the node changed since its score was computed.
        return (-self._score(node), node.pods, node.name, node.version, node)

    def _land(self, node: NodeState, key: str, created: float) -> None:
        cls = self.cls
        node.add(Resident(key, cls.namespace, cls.labels, cls.priority, cls.cpu, cls.memory, created))
        for rule in [*self.hard, *self.soft]:
            rule.domains.landed(node, cls.labels, cls.namespace)
        for rule in [*self.anti, *(a for _, a in self.soft_anti)]:
            rule.domains.landed(node, cls.labels, cls.namespace)

    def place(self, key: str, created: float) -> Decision:
        decision = self._place_heap(key, created) if self.heap_mode else self._place_scan(key, created)
        if decision.node is None and self.cls.preempts:
            preemption = self._preemption()
            if preemption is not None:
                node, victims = preemption
                decision.victims = victims
                decision.nominated = node.name
        return decision

    def _place_heap(self, key: str, created: float) -> Decision:
        order = self.domain_order
        while order:
            count, domain = order[0]
            current = self._domain_count(domain)
            if count != current:
                heapq.heapreplace(order, (current, domain))  # counts only grow: re-sort lazily
                continue
            if self.hard and current + 1 - self.hard[0].domains.minimum > self.hard[0].constraint.max_skew:
                # The least crowded domain left is too crowded already: so is every other.
                waiting = sum(len(self.domain_nodes[d]) for _, d in order)
                reasons = self.static_reasons + self.dropped + Counter({filters.SPREAD: waiting})
                return Decision(None, "Unschedulable", _message(self.total, reasons))
            node = self._best_in(self.domain_nodes[domain])
            if node is None:
                heapq.heappop(order)  # nothing fits in this domain any more this round
                continue
            self._land(node, key, created)
            heapq.heapreplace(self.domain_nodes[domain], self._entry(node))
            heapq.heapreplace(order, (self._domain_count(domain), domain))
            return Decision(node.name)
        return Decision(None, "Unschedulable", _message(self.total, self.static_reasons + self.dropped))

    def _best_in(self, heap: list[tuple[float, int, str, int, NodeState]]) -> NodeState | None:
        """The best node of a domain that can take the pod; nodes that cannot are dropped
        (room and anti-affinity only get worse within a round)."""
        cls = self.cls
        while heap:
            entry = heap[0]
            node = entry[4]
            if entry[3] != node.version:
                heapq.heapreplace(heap, self._entry(node))
                continue
            reason = node.room(cls.cpu, cls.memory) or (
                filters.ANTI_AFFINITY if any(rule.blocks(node) for rule in self.anti) else None
            )
            if reason is None:
                return node
            heapq.heappop(heap)
            self.dropped[reason] += 1
        return None

    def _place_scan(self, key: str, created: float) -> Decision:
        cls = self.cls
        reasons = Counter(self.static_reasons)
        best: NodeState | None = None
        best_key: tuple[float, int, str] | None = None
        for node in self.candidates:
            reason = (
                node.room(cls.cpu, cls.memory)
                or (filters.ANTI_AFFINITY if any(rule.blocks(node) for rule in self.anti) else None)
                or (filters.SPREAD if not all(rule.allows(node) for rule in self.hard) else None)
            )
            if reason:
                reasons[reason] += 1
                continue
            score = self._score(node)
            for rule in self.soft:
                # Prefer domains closer to the least crowded one.
                score -= (rule.domains.count(node) - rule.domains.minimum) / (rule.constraint.max_skew + 1)
            for weight, rule in self.soft_anti:
                if rule.blocks(node):
                    score -= weight / 100
            candidate_key = (-score, node.pods, node.name)
            if best_key is None or candidate_key < best_key:
                best, best_key = node, candidate_key
        if best is None:
            return Decision(None, "Unschedulable", _message(self.total, reasons))
        self._land(best, key, created)
        return Decision(best.name)

    def _preemption(self) -> tuple[NodeState, list[Resident]] | None:
        """The node where evicting the fewest, least important pods makes room (resources only)."""
        cls = self.cls
        best: tuple[tuple[int, int, str], NodeState, list[Resident]] | None = None
        for node in self.candidates:
            if node.room(cls.cpu, cls.memory) is None:
                continue  # room is not what keeps the pod out of this node
            if any(r.terminating and r.priority < cls.priority for r in node.residents):
                continue  # an earlier preemption is still making room here
            lower = sorted(
                (r for r in node.residents if not r.terminating and r.priority < cls.priority),
                key=lambda r: (r.priority, -r.created),
            )
            free_cpu = node.alloc_cpu - node.used_cpu
            free_memory = node.alloc_memory - node.used_memory
            free_pods = node.max_pods - node.pods
            victims: list[Resident] = []
            for resident in lower:
                if filters.fits(cls.cpu, cls.memory, free_cpu, free_memory, free_pods) is None:
                    break
                victims.append(resident)
                free_cpu += resident.cpu
                free_memory += resident.memory
                free_pods += 1
            if not victims or filters.fits(cls.cpu, cls.memory, free_cpu, free_memory, free_pods) is not None:
                continue
            rank = (max(v.priority for v in victims), len(victims), node.name)
            if best is None or rank < best[0]:
                best = (rank, node, victims)
        return (best[1], best[2]) if best else None


class Placer:
    """One round's placement over a fixed set of nodes."""

    def __init__(self, nodes: Mapping[str, NodeState], strategy: Strategy = "spread") -> None:
        self.nodes = nodes
        self.strategy = strategy
        self._runs: dict[object, ClassRun] = {}

    def run_for(self, class_key: object, cls: PodClass) -> ClassRun:
        run = self._runs.get(class_key)
        if run is None:
            # Rebuilt per class: other classes' placements since then are in the node states.
            self._runs.clear()
            run = self._runs[class_key] = ClassRun(list(self.nodes.values()), cls, self.strategy)
        return run
