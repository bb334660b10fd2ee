"""A small, server-free stand-in for the cluster around the planner: it carries out a round's
commands on dicts and lets a test say what the nodes report, so Job, CronJob, DaemonSet and
StatefulSet decisions are tested over many rounds with a controlled clock."""

from __future__ import annotations

import itertools
from typing import Any

from shoal.actors.scheduler.commands import (
    BindPod,
    CreateClaim,
    CreateJob,
    CreatePod,
    DeleteJob,
    DeletePod,
    DeleteStatus,
    EvictPod,
    MarkUnschedulable,
    TerminatePod,
    WriteStatus,
)
from shoal.actors.scheduler.planner import Plan, plan
from shoal.actors.scheduler.view import ClusterView, NodeView
from shoal.bus import kv
from shoal.bus.codec import decode, encode
from shoal.bus.kv import Entry
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.base import replace
from shoal.models.core import PersistentVolumeClaim
from shoal.models.node import Node, NodeSpec
from shoal.models.pod import ContainerState, ContainerStatus, Pod, PodPhase, PodStatus
from shoal.models.workloads import ResourceList

NOW = 1_000_000.0


class CountingIds:
    def __init__(self) -> None:
        self.counter = itertools.count()

    def suffix(self) -> str:
        return f"s{next(self.counter):04d}"

    def uid(self) -> str:
        return f"uid{next(self.counter)}"


def model_of(text: str, uid: str = "obj-uid", created: float = NOW - 1000) -> Any:
    """A manifest's one object, validated, with the identity the API would give it."""
    [obj], _ = validate_documents(parse_documents(text, "t"))
    model = obj.model
    meta = model.metadata.model_copy(update={"uid": uid, "generation": 1, "creation_timestamp": created})
    return model.model_copy(update={"metadata": meta})


def node_view(name: str, *, ready: bool = True, lost: bool = False, spec: NodeSpec | None = None,
              labels: dict[str, str] | None = None, cpu: int = 4000) -> NodeView:  # fmt: skip
    resources = ResourceList.of(cpu, 8 * 2**30)
    node = Node(name=name, labels=labels or {}, capacity=resources, allocatable=resources)
    return NodeView(node, ready=ready, lost=lost, spec=spec)


def status_of(
    pod: Pod, phase: PodPhase, *, ready: bool = False, restarts: int = 0, at: float = NOW
) -> PodStatus:
    terminated = phase in ("Succeeded", "Failed")
    state = ContainerState(
        status="terminated" if terminated else "running",
        exit_code=(0 if phase == "Succeeded" else 1) if terminated else None,
        finished_at=at if terminated else None,
    )
    return PodStatus(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node_name=pod.node_name,
        phase=phase,
        ready=ready,
        container_statuses=[
            ContainerStatus(name="main", image="x", ready=ready, restart_count=restarts, state=state)
        ],
    )


class Cluster:
    """Buckets as dicts; each ``round`` plans and carries out every command at once."""

    def __init__(self, nodes: list[NodeView] | None = None) -> None:
        self.nodes = {n.node.name: n for n in (nodes if nodes is not None else [node_view("a")])}
        self.objects: dict[str, dict[str, Entry[Any]]] = {
            "deployments": {}, "jobs": {}, "cronjobs": {}, "daemonsets": {}, "statefulsets": {}, "pdbs": {},
        }  # fmt: skip
        self.statuses: dict[str, dict[str, Entry[Any]]] = {
            kv.JOB_STATUS.name: {}, kv.CRONJOB_STATUS.name: {}, kv.DAEMONSET_STATUS.name: {},
            kv.STATEFULSET_STATUS.name: {}, kv.PDB_STATUS.name: {},
        }  # fmt: skip
        self.claims: dict[str, PersistentVolumeClaim] = {}
        self.pods: dict[str, Entry[Pod]] = {}
        self.pod_status: dict[str, Entry[PodStatus]] = {}
        self.ids = CountingIds()
        self.revision = itertools.count(100)
        self.log: list[Plan] = []

    def add(self, kind: str, obj: Any) -> None:
        key = f"{obj.metadata.namespace}.{obj.metadata.name}"
        self.objects[kind][key] = Entry(key, obj, next(self.revision))

    def view(self) -> ClusterView:
        return ClusterView(
            deployments=self.objects["deployments"],
            pods=dict(self.pods),
            pod_status=dict(self.pod_status),
            nodes=self.nodes,
            jobs=dict(self.objects["jobs"]),
            job_status=dict(self.statuses[kv.JOB_STATUS.name]),
            cronjobs=dict(self.objects["cronjobs"]),
            cronjob_status=dict(self.statuses[kv.CRONJOB_STATUS.name]),
            daemonsets=dict(self.objects["daemonsets"]),
            daemonset_status=dict(self.statuses[kv.DAEMONSET_STATUS.name]),
            statefulsets=dict(self.objects["statefulsets"]),
            statefulset_status=dict(self.statuses[kv.STATEFULSET_STATUS.name]),
            claims=frozenset(self.claims),
            pdbs=dict(self.objects["pdbs"]),
            pdb_status=dict(self.statuses[kv.PDB_STATUS.name]),
            scales={
                entry.value.metadata.uid: entry.value.spec.desired_replicas
                for kind in ("deployments", "statefulsets")
                for entry in self.objects[kind].values()
            },
        )

    def round(self, now: float = NOW) -> Plan:
        commands = plan(self.view(), now, self.ids)
        for command in commands:
            self._carry_out(command, now)
        self.log.append(commands)
        return commands

    def _carry_out(self, command: object, now: float) -> None:
        match command:
            case CreatePod(pod=pod):
                self.pods[pod.key] = Entry(pod.key, pod, next(self.revision))
            case BindPod(key=key, pod=pod) | MarkUnschedulable(key=key, pod=pod):
                self.pods[key] = Entry(key, pod, next(self.revision))
            case TerminatePod(key=key, pod=pod):
                meta = replace(pod.metadata, deletion_timestamp=now)
                self.pods[key] = Entry(key, replace(pod, metadata=meta), next(self.revision))
            case DeletePod(key=key) | EvictPod(key=key):
                self.pods.pop(key, None)
                self.pod_status.pop(key, None)
            case WriteStatus(bucket=bucket, key=key, status=status):
                # Stored as readers will decode it: what does not survive the wire is lost here too.
                stored = decode(encode(status), type(status))
                self.statuses[bucket][key] = Entry(key, stored, next(self.revision))
            case DeleteStatus(bucket=bucket, key=key):
                self.statuses[bucket].pop(key, None)
            case CreateClaim(key=key, claim=claim):
                self.claims.setdefault(key, claim)
            case CreateJob(key=key, job=job):
                self.objects["jobs"][key] = Entry(key, job, next(self.revision))
            case DeleteJob(key=key):
                self.objects["jobs"].pop(key, None)

    # -- what nodes do ------------------------------------------------------------------------

    def report(self, pod: Pod, phase: PodPhase, **kwargs: Any) -> None:
        self.pod_status[pod.key] = Entry(pod.key, status_of(pod, phase, **kwargs), next(self.revision))

    def stop_terminating(self) -> None:
        """Nodes remove the pods marked for deletion, and their status."""
        for key in [k for k, e in self.pods.items() if e.value.terminating]:
            del self.pods[key]
            self.pod_status.pop(key, None)

    def owned(self, uid: str) -> list[Pod]:
        return sorted(
            (
                e.value
                for e in self.pods.values()
                if e.value.metadata.owner and e.value.metadata.owner.uid == uid
            ),
            key=lambda p: p.metadata.name,
        )

    def live(self, uid: str) -> list[Pod]:
        """Pods of ``uid`` not finished and not terminating."""
        return [
            p
            for p in self.owned(uid)
            if not p.terminating
            and (p.key not in self.pod_status or not self.pod_status[p.key].value.terminal)
        ]

    def status(self, bucket: str, key: str = "default.work") -> Any:
        entry = self.statuses[bucket].get(key)
        return entry.value if entry else None

    def notes(self) -> list[str]:
        """Every event reason the rounds so far carried."""
        found = []
        for commands in self.log:
            for command in commands:
                found += [n.reason for n in getattr(command, "notes", ())]
        return found
