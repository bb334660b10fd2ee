"""Desired state written by users: Deployments and the pod templates inside them.

These models accept the Kubernetes ``apps/v1`` YAML people already have; anything they do
not declare is reported as unsupported by ``shoal.manifests`` and otherwise ignored.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Annotated, Any, Literal

import ormsgpack
from pydantic import Field, PlainValidator, field_validator, model_validator

from shoal.models.base import Cpu, Labels, Memory, Name, Record, ShoalModel
from shoal.models.scheduling import Affinity, Toleration, TopologySpreadConstraint

INT32_MAX = 2**31 - 1
"""Kubernetes' counts (replicas among them) are 32-bit integers."""

RestartPolicy = Literal["Always", "OnFailure", "Never"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class ObjectMeta(ShoalModel):
    """Identity of a namespaced object. ``uid``, ``generation`` and ``creationTimestamp``
    are set by Shoal, never taken from manifests."""

    name: Name
    namespace: Name = "default"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    creation_timestamp: float = 0.0


class ResourceList(ShoalModel):
    cpu: Cpu | None = None
    memory: Memory | None = None

    @classmethod
    def of(cls, cpu_millis: int | None, memory_bytes: int | None) -> ResourceList:
        """From millicores and bytes (validation would read a plain number as whole CPUs)."""
        return cls.model_construct(cpu=cpu_millis, memory=memory_bytes)


class ResourceRequirements(ShoalModel):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)

    @model_validator(mode="after")
    def _requests_default_to_limits(self) -> ResourceRequirements:
        # Kubernetes: a resource with a limit and no request is requested at its limit.
        if self.requests.cpu is None and self.limits.cpu is not None:
            self.requests.cpu = self.limits.cpu
        if self.requests.memory is None and self.limits.memory is not None:
            self.requests.memory = self.limits.memory
        for field in ("cpu", "memory"):
            request, limit = getattr(self.requests, field), getattr(self.limits, field)
            if request is not None and limit is not None and request > limit:
                raise ValueError(f"requests.{field} must not exceed limits.{field}")
        return self


class EnvVar(ShoalModel):
    name: str = Field(min_length=1)
    value: str = ""

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return value


class ContainerPort(ShoalModel):
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str | None = None


class ExecAction(ShoalModel):
    command: list[str] = Field(min_length=1)


PortRef = Annotated[int, Field(ge=1, le=65535)] | Annotated[str, Field(min_length=1, max_length=15)]
"""A port number, or the name of one of the container's ports."""


class HTTPGetAction(ShoalModel):
    path: str = "/"
    port: PortRef
    host: str | None = None
    """Defaults to the pod's IP."""
    scheme: Literal["HTTP"] = "HTTP"


class TCPSocketAction(ShoalModel):
    port: PortRef
    host: str | None = None


class Probe(ShoalModel):
    """A health check the node runs itself (Kubernetes semantics and defaults)."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        handlers = [h for h in (self.exec, self.http_get, self.tcp_socket) if h is not None]
        if len(handlers) != 1:
            raise ValueError("a probe needs exactly one of exec, httpGet or tcpSocket")
        return self


class LifecycleHandler(ShoalModel):
    exec: ExecAction


class Lifecycle(ShoalModel):
    pre_stop: LifecycleHandler | None = None
    """Run in the container before it is sent SIGTERM, within its grace period."""


class Container(ShoalModel):
    name: Name
    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    image_pull_policy: PullPolicy = "IfNotPresent"
    lifecycle: Lifecycle | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None

    @field_validator("image")
    @classmethod
    def _image_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("image must not be empty")
        return value.strip()


class PodSpec(ShoalModel):
    containers: list[Container] = Field(min_length=1)
    restart_policy: RestartPolicy = "Always"
    termination_grace_period_seconds: int = Field(default=30, ge=0)
    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: Affinity | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(default_factory=list)
    priority_class_name: str | None = None
    priority: int | None = None
    """Set by the scheduler from the priority class when it creates the pod."""

    @field_validator("containers")
    @classmethod
    def _unique_names(cls, containers: list[Container]) -> list[Container]:
        seen: set[str] = set()
        for container in containers:
            if container.name in seen:
                raise ValueError(f"container name {container.name!r} is used twice")
            seen.add(container.name)
        return containers

    @cached_property
    def requested(self) -> tuple[int, int]:
        """Total (cpu millicores, memory bytes) the pod asks the scheduler for."""
        cpu = sum(c.resources.requests.cpu or 0 for c in self.containers)
        memory = sum(c.resources.requests.memory or 0 for c in self.containers)
        return cpu, memory

    def requests(self) -> tuple[int, int]:
        return self.requested


class TemplateMeta(ShoalModel):
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplate(ShoalModel):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec

    def hash(self) -> str:
        """Stable short hash naming this template's pods (Kubernetes' pod-template-hash)."""
        packed = ormsgpack.packb(self.dump(), option=ormsgpack.OPT_SORT_KEYS)
        return hashlib.sha256(packed).hexdigest()[:10]


class LabelSelector(ShoalModel):
    match_labels: Labels = Field(min_length=1)

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items())


_PERCENT = re.compile(r"^(\d{1,3})%$")


def _int_or_percent(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"must be a number or a percentage like '25%' (got {value!r})")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative (got {value})")
        return value
    if isinstance(value, str) and _PERCENT.match(value.strip()):
        return value.strip()
    raise ValueError(f"must be a number or a percentage like '25%' (got {value!r})")


IntOrPercent = Annotated[int | str, PlainValidator(_int_or_percent)]


def scaled_value(value: int | str, total: int, *, round_up: bool) -> int:
    """A number, or a percentage of ``total`` (surge rounds up, unavailability down)."""
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * total
    return -(-share // 100) if round_up else share // 100


class RollingUpdateSettings(ShoalModel):
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    @model_validator(mode="after")
    def _unavailable_at_most_all(self) -> RollingUpdateSettings:
        value = self.max_unavailable
        if isinstance(value, str) and int(value.rstrip("%")) > 100:
            raise ValueError(f"maxUnavailable must not exceed 100% (got {value})")
        return self


class DeploymentStrategy(ShoalModel):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdateSettings | None = None

    def limits(self, replicas: int) -> tuple[int, int]:
        """(max surge, max unavailable) in pods, Kubernetes' rules: never both zero."""
        settings = self.rolling_update or RollingUpdateSettings()
        surge = scaled_value(settings.max_surge, replicas, round_up=True)
        unavailable = scaled_value(settings.max_unavailable, replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable


class DeploymentSpec(ShoalModel):
    replicas: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """``None`` only in a manifest that leaves replicas out; stored deployments always say."""
    selector: LabelSelector
    template: PodTemplate
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: int = Field(default=0, ge=0)
    progress_deadline_seconds: int = Field(default=600, ge=1)
    revision_history_limit: int = Field(default=10, ge=0)
    paused: bool = False

    @property
    def desired_replicas(self) -> int:
        return 1 if self.replicas is None else self.replicas


class Deployment(Record):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    metadata: ObjectMeta
    spec: DeploymentSpec
    revision: int = 0
    """The rollout revision of the current template (Kubernetes' deployment.kubernetes.io/revision)."""


class DeploymentStatus(Record):
    """Observed state of a deployment, kept by the scheduler."""

    namespace: str
    name: str
    uid: str
    observed_generation: int = 0
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    unavailable_replicas: int = 0
    revision: int = 0
    progressing: Literal["True", "False", "Unknown"] = "Unknown"
    progressing_reason: str = ""
    """NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded, DeploymentPaused."""
    progressing_message: str = ""
    progress_at: float = 0.0
    """When the rollout last made progress (ProgressDeadlineExceeded counts from here)."""

    @property
    def failed(self) -> bool:
        return self.progressing == "False" and self.progressing_reason == "ProgressDeadlineExceeded"


class DeploymentRevision(Record):
    """One template a deployment has had: what ``rollout history`` lists and ``undo`` goes back to."""

    namespace: str
    name: str
    revision: int
    template_hash: str
    template: PodTemplate
    created: float
    change_cause: str = ""
