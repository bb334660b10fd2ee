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

from typing import Annotated, Any, Literal

import ormsgpack
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator, model_validator

from shoal.models.base import ObjectMeta, Record, ShoalModel
from shoal.models.workloads import PodSpec

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
    nominated_node: str = ""
    """Where the pod will go once the pods it preempted are gone."""


_SHARED_SPECS: dict[bytes, PodSpec] = {}
_SHARED_SPECS_MAX = 4096


def _shared_spec(value: Any, handler: ValidatorFunctionWrapHandler) -> PodSpec:
    """Pods of one template carry equal specs: decode each distinct one once, share it.

    Specs are never changed in place (changes make copies), so sharing is safe; it spares
    the bulk of decoding thousands of pods.
    """
    if not isinstance(value, dict):
        return handler(value)
    key = ormsgpack.packb(value, option=ormsgpack.OPT_SORT_KEYS)
    spec = _SHARED_SPECS.get(key)
    if spec is None:
        spec = handler(value)
        if len(_SHARED_SPECS) >= _SHARED_SPECS_MAX:
            _SHARED_SPECS.clear()
        _SHARED_SPECS[key] = spec
    return spec


class Pod(Record):
    metadata: PodMeta
    spec: Annotated[PodSpec, WrapValidator(_shared_spec)]
    node_name: str = ""
    scheduling: SchedulingState | None = None
    required_node: str = ""
    """The only node the pod may be placed on: a DaemonSet's pod (Kubernetes' required node
    affinity on ``metadata.name``)."""

    @property
    def key(self) -> str:
        return pod_key(self.metadata.namespace, self.metadata.name)

    @property
    def target_node(self) -> str:
        """Where the pod is, or the one node it may go to."""
        return self.node_name or self.required_node

    @property
    def terminating(self) -> bool:
        return self.metadata.deletion_timestamp is not None


class BarePod(Record):
    """A ``v1`` Pod manifest: a pod nobody owns. The scheduler places it (unless ``nodeName``
    is set, as in Kubernetes); nothing replaces it when it is gone."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    metadata: ObjectMeta
    spec: PodSpec
    node_name: str = ""
    """``spec.nodeName``: the node the pod must run on, bypassing the scheduler."""

    @model_validator(mode="before")
    @classmethod
    def _node_name_from_spec(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("spec"), dict) and "nodeName" in value["spec"]:
            spec = dict(value["spec"])
            node_name = spec.pop("nodeName")
            value = {**value, "spec": spec, "nodeName": node_name or ""}
        return value


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
    init: bool = False
    """An init container (or a sidecar): listed under initContainerStatuses."""
    container_id: str = ""
    ready: bool = False
    started: bool = False
    """Running, and past its startup probe if it has one."""
    restart_count: int = 0
    state: ContainerState
    last_state: ContainerState | None = None


class HostPort(ShoalModel):
    container: str
    container_port: int
    host_port: int
    protocol: str = "TCP"
    name: str = ""


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
    ready_since: float | None = None
    """When the pod last became Ready (minReadySeconds count from here)."""
    ports: list[HostPort] = Field(default_factory=list)
    """Where each container port is published on the node's address, for services."""
    container_statuses: list[ContainerStatus] = Field(default_factory=list)

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in self.container_statuses)

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")
