"""The scheduler's indexes of pods, kept current change by change (kube-scheduler's cache).

A round plans only what changed: the deployments whose objects, pods or pod status moved,
the pods of nodes that were lost, and the pods still waiting for a node. To find those
without walking every pod, the scheduler keeps pods indexed by owner and by node, the
unplaced ones apart, and each node's residents (what its pods request) summed up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from shoal.actors.scheduler.placement import Resident
from shoal.bus.kv import Entry
from shoal.models.pod import Pod, PodStatus


@dataclass
class NodeUsage:
    """What the pods bound to one node request, as placement sees it."""

    cpu: int = 0
    memory: int = 0
    pods: int = 0
    residents: dict[str, Resident] = field(default_factory=dict)

    def add(self, resident: Resident) -> None:
        self.cpu += resident.cpu
        self.memory += resident.memory
        self.pods += 1
        self.residents[resident.key] = resident

    def remove(self, key: str) -> None:
        resident = self.residents.pop(key, None)
        if resident is not None:
            self.cpu -= resident.cpu
            self.memory -= resident.memory
            self.pods -= 1

    def snapshot(self) -> NodeUsage:
        return NodeUsage(self.cpu, self.memory, self.pods, dict(self.residents))


def owner_of(pod: Pod) -> str:
    return pod.metadata.owner.uid if pod.metadata.owner else ""


def resident_of(pod: Pod, status: PodStatus | None) -> Resident | None:
    """What a bound pod holds on its node; a finished pod holds nothing."""
    if not pod.node_name:
        return None
    if (
        status is not None
        and status.terminal
        and status.uid == pod.metadata.uid
        and status.node_name == pod.node_name
    ):
        return None
    cpu, memory = pod.spec.requested
    meta = pod.metadata
    return Resident(
        pod.key,
        meta.namespace,
        meta.labels,
        pod.spec.priority or 0,
        cpu,
        memory,
        meta.creation_timestamp,
        pod.terminating,
    )


class PodIndex:
    def __init__(self) -> None:
        self.by_owner: dict[str, dict[str, Entry[Pod]]] = defaultdict(dict)
        self.by_node: dict[str, dict[str, Entry[Pod]]] = defaultdict(dict)
        self.unplaced: dict[str, Entry[Pod]] = {}
        self.usage: dict[str, NodeUsage] = defaultdict(NodeUsage)

    def pod_changed(
        self, key: str, old: Entry[Pod] | None, new: Entry[Pod] | None, status: PodStatus | None
    ) -> None:
        if old is not None:
            self._drop(key, old.value)
        if new is not None:
            pod = new.value
            self.by_owner[owner_of(pod)][key] = new
            if pod.node_name:
                self.by_node[pod.node_name][key] = new
                resident = resident_of(pod, status)
                if resident is not None:
                    self.usage[pod.node_name].add(resident)
            else:
                self.unplaced[key] = new

    def status_changed(self, key: str, pod: Entry[Pod] | None, status: PodStatus | None) -> None:
        """A pod finishing (or its status going) changes what it holds on its node."""
        if pod is None or not pod.value.node_name:
            return
        usage = self.usage[pod.value.node_name]
        usage.remove(key)
        resident = resident_of(pod.value, status)
        if resident is not None:
            usage.add(resident)

    def _drop(self, key: str, pod: Pod) -> None:
        owned = self.by_owner.get(owner_of(pod))
        if owned is not None:
            owned.pop(key, None)
            if not owned:
                del self.by_owner[owner_of(pod)]
        if pod.node_name:
            on_node = self.by_node.get(pod.node_name)
            if on_node is not None:
                on_node.pop(key, None)
                if not on_node:
                    del self.by_node[pod.node_name]
            usage = self.usage.get(pod.node_name)
            if usage is not None:
                usage.remove(key)
        else:
            self.unplaced.pop(key, None)
