"""The read-only picture of the cluster that scheduling decisions are made from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.actors.scheduler.index import NodeUsage
from shoal.bus.kv import Entry
from shoal.models.batch import CronJob, CronJobStatus, Job, JobStatus
from shoal.models.daemonset import DaemonSet, DaemonSetStatus
from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
from shoal.models.node import Node, NodeSpec
from shoal.models.pod import Pod, PodStatus
from shoal.models.scheduling import PriorityClass, Taint
from shoal.models.statefulset import StatefulSet, StatefulSetStatus
from shoal.models.workloads import Deployment, DeploymentStatus


@dataclass(frozen=True)
class NodeView:
    node: Node
    ready: bool
    """Judged by the scheduler from the node's heartbeats (``actors/health.py``)."""
    lost: bool = False
    """NotReady long enough, and allowed by the eviction rules, for its pods to be replaced."""
    lost_since: float | None = None
    """When it was judged lost (wall clock): pods tolerating the loss count from here."""
    spec: NodeSpec | None = None
    """What operators asked of the node (cordon, drain), if anything."""
    usage: NodeUsage | None = None
    """What its pods hold, from the scheduler's index; None: counted from the view's pods."""

    @property
    def schedulable(self) -> bool:
        return self.spec is None or not (self.spec.unschedulable or self.spec.draining)

    @property
    def draining(self) -> bool:
        return self.spec is not None and self.spec.draining

    @property
    def labels(self) -> dict[str, str]:
        """The operator's labels once set (``shoal label``), else those the node registered with."""
        return (
            self.spec.labels if self.spec is not None and self.spec.labels is not None else self.node.labels
        )

    @property
    def taints(self) -> list[Taint]:
        return (
            self.spec.taints if self.spec is not None and self.spec.taints is not None else self.node.taints
        )


@dataclass(frozen=True)
class ClusterView:
    """What a round looks at. The scheduler passes only what changed since its last round: the
    deployments to reconcile with all their pods, the pods of lost or NoExecute-tainted nodes,
    the pods waiting for a node; tests pass everything. Nothing here is changed by a round."""

    deployments: Mapping[str, Entry[Deployment]] = field(default_factory=dict)
    """The deployments to reconcile this round."""
    pods: Mapping[str, Entry[Pod]] = field(default_factory=dict)
    live_owners: frozenset[str] | None = None
    """The uids of every deployment, Job, DaemonSet, CronJob and StatefulSet that exists (None:
    those in this view)."""
    all_pods: Mapping[str, Entry[Pod]] | None = None
    """Every pod, for looking one up (a preemption's victims); None: ``pods`` holds them all."""
    pod_status: Mapping[str, Entry[PodStatus]] = field(default_factory=dict)
    deployment_status: Mapping[str, Entry[DeploymentStatus]] = field(default_factory=dict)
    nodes: Mapping[str, NodeView] = field(default_factory=dict)
    priority_classes: Mapping[str, PriorityClass] = field(default_factory=dict)
    ready_seen: Mapping[str, float] = field(default_factory=dict)
    """Pod key -> when the scheduler saw the pod turn Ready, by its own clock."""
    claims: frozenset[str] = frozenset()
    """Keys of the PersistentVolumeClaims that exist."""
    claim_nodes: Mapping[str, str] = field(default_factory=dict)
    """Claim key -> the node its volume lives on, once bound."""
    jobs: Mapping[str, Entry[Job]] = field(default_factory=dict)
    """The Jobs to reconcile this round, each with all its pods in ``pods``; with every Job of
    each CronJob in ``cronjobs``."""
    job_status: Mapping[str, Entry[JobStatus]] = field(default_factory=dict)
    cronjobs: Mapping[str, Entry[CronJob]] = field(default_factory=dict)
    cronjob_status: Mapping[str, Entry[CronJobStatus]] = field(default_factory=dict)
    daemonsets: Mapping[str, Entry[DaemonSet]] = field(default_factory=dict)
    daemonset_status: Mapping[str, Entry[DaemonSetStatus]] = field(default_factory=dict)
    statefulsets: Mapping[str, Entry[StatefulSet]] = field(default_factory=dict)
    statefulset_status: Mapping[str, Entry[StatefulSetStatus]] = field(default_factory=dict)
    pdbs: Mapping[str, Entry[PodDisruptionBudget]] = field(default_factory=dict)
    """Every PodDisruptionBudget (each round counts them all)."""
    pdb_status: Mapping[str, Entry[PodDisruptionBudgetStatus]] = field(default_factory=dict)
    scales: Mapping[str, int] = field(default_factory=dict)
    """Uid of every Deployment and StatefulSet -> the replicas it wants (a budget's expected pods)."""

    @property
    def owners(self) -> frozenset[str]:
        """The uids of every object that may own pods or Jobs (Deployments, Jobs, DaemonSets,
        CronJobs, StatefulSets): what is owned by anything else is an orphan."""
        if self.live_owners is not None:
            return self.live_owners
        return frozenset(
            entry.value.metadata.uid
            for objects in (self.deployments, self.jobs, self.daemonsets, self.cronjobs, self.statefulsets)
            for entry in objects.values()
        )

    def pod(self, key: str) -> Entry[Pod] | None:
        found = self.pods.get(key)
        if found is None and self.all_pods is not None:
            found = self.all_pods.get(key)
        return found

    def node_ready(self, name: str) -> bool:
        node = self.nodes.get(name)
        return node is not None and node.ready

    def status_of(self, pod: Pod) -> PodStatus | None:
        """The pod's status, if its node reported one for this very pod."""
        entry = self.pod_status.get(pod.key)
        if entry is None:
            return None
        status = entry.value
        if status.uid != pod.metadata.uid or status.node_name != pod.node_name:
            return None
        return status
