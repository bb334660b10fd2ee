"""Pods: the scheduler's record of each replica, and the node's report of how it runs.

A pod's record (``Pod``) is written by the scheduler: created from a deployment's template,
bound to a node, marked for deletion. Its status (``PodStatus``) is written only by the
node that runs it, under the same key in another bucket, so the two writers never race.

Pod lifecycle, as the scheduler and the node actor move it::

    created ──bind──▶ bound (nodeName set) ──node starts containers──▶ Running
       │                 │                                   │   ▲
       │ (no node fits:  │                          container│   │restart (policy, backoff)
       │  Pending with   │                            exits  ▼   │
       │  a reason)      │                                 Waiting/CrashLoopBackOff
       ▼                 ▼                                   │
    deleted ◀── unbound  terminating (deletionTimestamp) ──node stops & removes──▶ deleted
                                                        │
                                   Never/OnFailure: all exited ──▶ Succeeded / Failed
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.models.base import Record, ShoalModel
from shoal.models.workloads import ObjectMeta, PodSpec

PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]


class OwnerRef(ShoalModel):
    kind: str = "Deployment"
    name: str
    uid: str


class PodMeta(ObjectMeta):
    owner: OwnerRef | None = None
    template_hash: str = ""
    deletion_timestamp: float | None = None


class SchedulingState(ShoalModel):
    """Why a pod is not bound yet (Kubernetes' PodScheduled=False condition)."""

    reason: str
    message: str
    since: float


class Pod(Record):
    metadata: PodMeta
    spec: PodSpec
    node_name: str = ""
    scheduling: SchedulingState | None = None

    @property
    def key(self) -> str:
        return pod_key(self.metadata.namespace, self.metadata.name)

    @property
    def terminating(self) -> bool:
        return self.metadata.deletion_timestamp is not None


def pod_key(namespace: str, name: str) -> str:
    """KV key of a pod (and of its status): ``<namespace>.<name>``."""
    return f"{namespace}.{name}"


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition(".")
    return namespace, name


ContainerPhase = Literal["waiting", "running", "terminated"]


class ContainerState(ShoalModel):
    status: ContainerPhase
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None


class ContainerStatus(ShoalModel):
    name: str
    image: str
    container_id: str = ""
    ready: bool = False
    started: bool = False
    """Running, and past its startup probe if it has one."""
    restart_count: int = 0
    state: ContainerState
    last_state: ContainerState | None = None


class PodStatus(Record):
    """A node's report of one pod. Only the node in ``nodeName`` writes it."""

    namespace: str
    name: str
    uid: str
    node_name: str
    phase: PodPhase = "Pending"
    ready: bool = False
    reason: str = ""
    message: str = ""
    pod_ip: str = ""
    host_ip: str = ""
    start_time: float | None = None
    container_statuses: list[ContainerStatus] = Field(default_factory=list)

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in self.container_statuses)

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")
