"""The read-only picture of the cluster that scheduling decisions are made from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.bus.kv import Entry
from shoal.models.node import Node
from shoal.models.pod import Pod, PodStatus
from shoal.models.workloads import Deployment, DeploymentStatus


@dataclass(frozen=True)
class NodeView:
    node: Node
    ready: bool
    """Judged by the scheduler from when it last saw the node's lease renewed."""


@dataclass(frozen=True)
class ClusterView:
    deployments: Mapping[str, Entry[Deployment]] = field(default_factory=dict)
    pods: Mapping[str, Entry[Pod]] = field(default_factory=dict)
    pod_status: Mapping[str, Entry[PodStatus]] = field(default_factory=dict)
    deployment_status: Mapping[str, Entry[DeploymentStatus]] = field(default_factory=dict)
    nodes: Mapping[str, NodeView] = field(default_factory=dict)

    def status_of(self, pod: Pod) -> PodStatus | None:
        """The pod's status, if its node reported one for this very pod."""
        entry = self.pod_status.get(pod.key)
        if entry is None:
            return None
        status = entry.value
        if status.uid != pod.metadata.uid or status.node_name != pod.node_name:
            return None
        return status
