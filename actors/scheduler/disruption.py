"""PodDisruptionBudgets, pure: how many of each budget's pods may go, and whether one may.

A *voluntary* disruption is one the cluster chooses: a drain moving a pod off its node, a
rollout replacing a pod by one of a new template. Before each, the planner asks the budgets
covering the pod (same namespace, selector matching its labels):

- a Ready pod may go while every covering budget allows a disruption: its Ready pods beyond
  ``desiredHealthy`` (``minAvailable``, or expected pods minus ``maxUnavailable``,
  percentages of the expected pods rounded up); each one that goes uses one;
- a pod that is not Ready takes nothing from a budget: it may go while the budget is healthy
  (``unhealthyPodEvictionPolicy: IfHealthyBudget``, the default) or always (``AlwaysAllow``).

The expected pods are the replicas their owners want (a Deployment's or StatefulSet's count,
once per owner), else the pods selected. A pod kept is listed in the budget's ``waiting``, so
``shoal drain`` can say why it waits. Deletions by hand, scale-downs and lost nodes are not
voluntary disruptions and never wait, as on Kubernetes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from shoal.bus.kv import Entry
from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
from shoal.models.pod import Pod


@dataclass
class Budget:
    key: str
    pdb: PodDisruptionBudget
    expected: int
    healthy: int
    desired: int
    used: int = 0
    waiting: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> int:
        return max(0, self.healthy - self.desired - self.used)

    def covers(self, pod: Pod) -> bool:
        meta = self.pdb.metadata
        return pod.metadata.namespace == meta.namespace and self.pdb.spec.selector.matches(
            pod.metadata.labels
        )

    def status(self) -> PodDisruptionBudgetStatus:
        meta = self.pdb.metadata
        return PodDisruptionBudgetStatus(
            namespace=meta.namespace,
            name=meta.name,
            uid=meta.uid,
            observed_generation=meta.generation,
            expected_pods=self.expected,
            current_healthy=self.healthy,
            desired_healthy=self.desired,
            disruptions_allowed=max(0, self.healthy - self.desired),
            waiting=sorted(self.waiting),
        )


def budgets(
    pdbs: Mapping[str, Entry[PodDisruptionBudget]],
    pods: Iterable[Entry[Pod]],
    ready: Callable[[Pod], bool],
    scales: Mapping[str, int],
) -> list[Budget]:
    """Each budget counted over ``pods``; ``scales``: owner uid -> the replicas it wants."""
    made = []
    live = [entry.value for entry in pods if not entry.value.terminating]
    for key, entry in sorted(pdbs.items()):
        pdb = entry.value
        probe = Budget(key, pdb, 0, 0, 0)
        selected = [pod for pod in live if probe.covers(pod)]
        owners: set[str] = set()
        expected = 0
        for pod in selected:
            owner = pod.metadata.owner
            if owner is not None and owner.uid in scales:
                if owner.uid not in owners:
                    owners.add(owner.uid)
                    expected += scales[owner.uid]
            else:
                expected += 1
        healthy = sum(1 for pod in selected if ready(pod))
        made.append(Budget(key, pdb, expected, healthy, pdb.spec.desired_healthy(expected)))
    return made


def blocking(found: list[Budget], pod: Pod, pod_ready: bool) -> Budget | None:
    """The first covering budget that does not let ``pod`` go now, if any."""
    for budget in found:
        if not budget.covers(pod):
            continue
        if pod_ready and budget.allowed <= 0:
            return budget
        always = budget.pdb.spec.unhealthy_pod_eviction_policy == "AlwaysAllow"
        if not pod_ready and not always and budget.healthy - budget.used < budget.desired:
            return budget
    return None


def take(found: list[Budget], pod: Pod, pod_ready: bool) -> None:
    """``pod`` goes: a Ready one uses a disruption of every budget covering it."""
    if pod_ready:
        for budget in found:
            if budget.covers(pod):
                budget.used += 1


def describe(budget: Budget) -> str:
    meta = budget.pdb.metadata
    return (
        f"the disruption budget {meta.namespace}/{meta.name} needs {budget.desired} healthy"
        f" and has {budget.healthy - budget.used}"
    )
