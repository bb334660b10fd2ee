"""What the planner asks the scheduler actor to do. Imperative; carried out with CAS writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shoal.models.base import Record
from shoal.models.batch import Job
from shoal.models.core import ClaimStatus, PersistentVolumeClaim
from shoal.models.pod import Pod, SchedulingState
from shoal.models.workloads import DeploymentStatus


@dataclass(frozen=True)
class CreatePod:
    """Store a new pod: bound to a node if one fits, else Pending with ``pod.scheduling``."""

    pod: Pod


@dataclass(frozen=True)
class BindPod:
    key: str
    revision: int
    pod: Pod
    node: str


@dataclass(frozen=True)
class MarkUnschedulable:
    key: str
    revision: int
    pod: Pod
    scheduling: SchedulingState


@dataclass(frozen=True)
class TerminatePod:
    """Ask the pod's node to stop it gracefully (sets deletionTimestamp)."""

    key: str
    revision: int
    pod: Pod
    reason: str


@dataclass(frozen=True)
class DeletePod:
    """Remove a pod record outright: it runs nowhere (unbound)."""

    key: str
    revision: int
    pod: Pod
    reason: str


@dataclass(frozen=True)
class EvictPod:
    """Forget a pod whose node is lost: its record goes, a replacement is created elsewhere.

    The node, if it comes back, finds the pod no longer bound to it and removes it.
    """

    key: str
    revision: int
    pod: Pod
    reason: str


@dataclass(frozen=True)
class WriteDeploymentStatus:
    key: str
    revision: int | None
    status: DeploymentStatus


@dataclass(frozen=True)
class DeleteDeploymentStatus:
    key: str
    revision: int


@dataclass(frozen=True)
class BindClaim:
    """Bind a claim to the node of the first pod that uses it (create-only: once, ever)."""

    key: str
    status: ClaimStatus


@dataclass(frozen=True)
class Note:
    """An event to publish once the write it comes with has landed."""

    kind: str
    namespace: str
    name: str
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True)
class WriteStatus:
    """Store the status of a Job, CronJob or DaemonSet (in ``bucket``), then publish ``notes``."""

    bucket: str
    key: str
    revision: int | None
    status: Record
    notes: tuple[Note, ...] = field(default=())


@dataclass(frozen=True)
class DeleteStatus:
    """Remove the status of an object that is gone."""

    bucket: str
    key: str
    revision: int


@dataclass(frozen=True)
class CreateJob:
    """Store a Job a CronJob starts (create-only: its name says which scheduled time it runs for)."""

    key: str
    job: Job
    notes: tuple[Note, ...] = field(default=())


@dataclass(frozen=True)
class DeleteJob:
    """Remove a Job (its pods follow): finished past its TTL, beyond a CronJob's history, replaced
    (concurrencyPolicy Replace), or its CronJob gone."""

    key: str
    revision: int
    job: Job
    reason: str
    notes: tuple[Note, ...] = field(default=())


@dataclass(frozen=True)
class CreateClaim:
    """Store the claim a StatefulSet's volume claim template gives one ordinal (create-only:
    one that exists is that ordinal's, and is kept)."""

    key: str
    claim: PersistentVolumeClaim
    notes: tuple[Note, ...] = field(default=())


Command = (
    DeleteDeploymentStatus
    | BindClaim
    | CreateClaim
    | CreatePod
    | BindPod
    | MarkUnschedulable
    | TerminatePod
    | DeletePod
    | WriteDeploymentStatus
    | WriteStatus
    | DeleteStatus
    | CreateJob
    | DeleteJob
)
