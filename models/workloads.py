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
from pydantic import AfterValidator, Field, PlainValidator, field_validator, model_validator

from shoal.models.base import (
    INT32_MAX,
    Cpu,
    Labels,
    Memory,
    Name,
    ObjectMeta,
    Record,
    ShoalModel,
    SubdomainName,
)
from shoal.models.scheduling import Affinity, Toleration, TopologySpreadConstraint

"""Kubernetes' counts (replicas among them) are 32-bit integers."""

RestartPolicy = Literal["Always", "OnFailure", "Never"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


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


class KeySelector(ShoalModel):
    """One key of a ConfigMap or Secret."""

    name: SubdomainName
    key: str = Field(min_length=1)
    optional: bool = False


class ObjectFieldSelector(ShoalModel):
    field_path: str = Field(min_length=1)
    api_version: str = "v1"

    @field_validator("field_path")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value in POD_FIELDS or re.match(r"^metadata\.(labels|annotations)\['[^']+'\]$", value):
            return value
        raise ValueError(
            f"fieldPath {value!r} is not one Kubernetes offers (use {', '.join(POD_FIELDS)},"
            " metadata.labels['KEY'] or metadata.annotations['KEY'])"
        )


POD_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
"""What a ``fieldRef`` may name (Kubernetes' downward API)."""


class ResourceFieldSelector(ShoalModel):
    container_name: str | None = None
    resource: Literal[
        "limits.cpu", "limits.memory", "requests.cpu", "requests.memory",
        "limits.ephemeral-storage", "requests.ephemeral-storage",
    ]  # fmt: skip
    divisor: str = "1"


class EnvVarSource(ShoalModel):
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        given = [f for f in ("config_map_key_ref", "secret_key_ref", "field_ref", "resource_field_ref")
                 if getattr(self, f) is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "valueFrom needs exactly one of configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef"
            )
        return self


class EnvVar(ShoalModel):
    name: str = Field(min_length=1)
    value: str = ""
    value_from: EnvVarSource | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return "" if value is None else value

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value and self.value_from is not None:
            raise ValueError(f"env {self.name}: value and valueFrom cannot both be set")
        return self


class SourceRef(ShoalModel):
    name: SubdomainName
    optional: bool = False


class EnvFromSource(ShoalModel):
    prefix: str = ""
    config_map_ref: SourceRef | None = None
    secret_ref: SourceRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("envFrom needs exactly one of configMapRef or secretRef")
        return self


class VolumeMount(ShoalModel):
    name: str = Field(min_length=1)
    mount_path: str = Field(min_length=1)
    sub_path: str = ""
    read_only: bool = False

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"mountPath must be an absolute path (got {value!r})")
        return value

    @field_validator("sub_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"subPath must be a relative path without '..' (got {value!r})")
        return value


class ContainerPort(ShoalModel):
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str | None = None


class ExecAction(ShoalModel):
    command: list[str] = Field(min_length=1)


PortRef = Annotated[int, Field(ge=1, le=65535)] | Annotated[str, Field(min_length=1, max_length=15)]
"""A port number, or the name of one of the container's ports."""


class HTTPHeader(ShoalModel):
    name: str = Field(min_length=1)
    value: str = ""


class HTTPGetAction(ShoalModel):
    path: str = "/"
    port: PortRef
    host: str | None = None
    """Defaults to the pod's IP."""
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    """HTTPS does not verify the certificate, as in Kubernetes."""
    http_headers: list[HTTPHeader] = Field(default_factory=list)


class GRPCAction(ShoalModel):
    """The gRPC health checking protocol (grpc.health.v1.Health/Check) on ``port``."""

    port: Annotated[int, Field(ge=1, le=65535)]
    service: str = ""


class TCPSocketAction(ShoalModel):
    port: PortRef
    host: str | None = None


class Probe(ShoalModel):
    """A health check the node runs itself (Kubernetes semantics and defaults)."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        handlers = [h for h in (self.exec, self.http_get, self.tcp_socket, self.grpc) if h is not None]
        if len(handlers) != 1:
            raise ValueError("a probe needs exactly one of exec, httpGet, tcpSocket or grpc")
        return self


class SleepAction(ShoalModel):
    seconds: int = Field(ge=0)


class LifecycleHandler(ShoalModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    sleep: SleepAction | None = None
    tcp_socket: TCPSocketAction | None = None
    """Deprecated in Kubernetes and never run there; accepted, and not run here either."""

    @model_validator(mode="after")
    def _one_handler(self) -> LifecycleHandler:
        handlers = [h for h in (self.exec, self.http_get, self.sleep, self.tcp_socket) if h is not None]
        if len(handlers) != 1:
            raise ValueError("a lifecycle hook needs exactly one of exec, httpGet or sleep")
        return self


class Lifecycle(ShoalModel):
    post_start: LifecycleHandler | None = None
    """Run right after the container starts; if it fails, the container is killed and restarted."""
    pre_stop: LifecycleHandler | None = None
    """Run before the container is sent SIGTERM, within its grace period."""


class Capabilities(ShoalModel):
    add: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)


class SeccompProfile(ShoalModel):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None

    @model_validator(mode="after")
    def _profile_for_localhost(self) -> SeccompProfile:
        if (self.type == "Localhost") != bool(self.localhost_profile):
            raise ValueError("localhostProfile is needed with type Localhost, and only then")
        return self


def _refused(what: str) -> Any:
    """A restricting field Shoal cannot apply: refusing beats running with more privilege."""

    def check(value: Any) -> Any:
        if value is not None:
            raise ValueError(
                f"{what} is not supported by Shoal; the pod is refused rather than run without it"
            )
        return value

    return check


class AppArmorProfile(ShoalModel):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None


RefusedSELinux = Annotated[Any, AfterValidator(_refused("seLinuxOptions"))]


class SecurityContext(ShoalModel):
    """A container's security settings, each applied by Podman (none dropped)."""

    run_as_user: int | None = Field(default=None, ge=0, le=INT32_MAX)
    run_as_group: int | None = Field(default=None, ge=0, le=INT32_MAX)
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None
    se_linux_options: RefusedSELinux = None
    proc_mount: Literal["Default", "Unmasked"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SecurityContext:
        if self.privileged and self.allow_privilege_escalation is False:
            raise ValueError("allowPrivilegeEscalation cannot be false when privileged is true")
        if self.app_armor_profile is not None and self.app_armor_profile.type != "Unconfined":
            raise ValueError(
                "appArmorProfile is not supported by Shoal (Podman here runs without AppArmor);"
                " the pod is refused rather than run without it"
            )
        return self


class Sysctl(ShoalModel):
    name: str = Field(min_length=1)
    value: str


class PodSecurityContext(ShoalModel):
    """Pod-wide defaults for every container's security context, plus fsGroup."""

    run_as_user: int | None = Field(default=None, ge=0, le=INT32_MAX)
    run_as_group: int | None = Field(default=None, ge=0, le=INT32_MAX)
    run_as_non_root: bool | None = None
    fs_group: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """Volumes are made group-owned by it, and every container joins the group."""
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = None
    supplemental_groups: list[int] = Field(default_factory=list)
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None
    se_linux_options: RefusedSELinux = None
    sysctls: list[Sysctl] = Field(default_factory=list)

    @model_validator(mode="after")
    def _apparmor(self) -> PodSecurityContext:
        if self.app_armor_profile is not None and self.app_armor_profile.type != "Unconfined":
            raise ValueError(
                "appArmorProfile is not supported by Shoal (Podman here runs without AppArmor);"
                " the pod is refused rather than run without it"
            )
        return self


class KeyToPath(ShoalModel):
    key: str = Field(min_length=1)
    path: str = Field(min_length=1)
    mode: int | None = Field(default=None, ge=0, le=0o777)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"path must be relative without '..' (got {value!r})")
        return value


class ConfigMapVolume(ShoalModel):
    name: SubdomainName
    items: list[KeyToPath] = Field(default_factory=list)
    default_mode: int = Field(default=0o644, ge=0, le=0o777)
    optional: bool = False


class SecretVolume(ShoalModel):
    secret_name: SubdomainName
    items: list[KeyToPath] = Field(default_factory=list)
    default_mode: int = Field(default=0o644, ge=0, le=0o777)
    optional: bool = False


class EmptyDirVolume(ShoalModel):
    medium: Literal["", "Memory"] = ""
    size_limit: Memory | None = None


class HostPathVolume(ShoalModel):
    path: str = Field(min_length=1)
    type: Literal[
        "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"
    ] = ""

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"hostPath.path must be absolute (got {value!r})")
        return value


class ClaimVolume(ShoalModel):
    claim_name: SubdomainName
    read_only: bool = False


class DownwardItem(ShoalModel):
    path: str = Field(min_length=1)
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = Field(default=None, ge=0, le=0o777)

    @model_validator(mode="after")
    def _one_source(self) -> DownwardItem:
        if (self.field_ref is None) == (self.resource_field_ref is None):
            raise ValueError("a downwardAPI item needs exactly one of fieldRef or resourceFieldRef")
        return self


class DownwardVolume(ShoalModel):
    items: list[DownwardItem] = Field(default_factory=list)
    default_mode: int = Field(default=0o644, ge=0, le=0o777)


class ProjectedConfigMap(ShoalModel):
    name: SubdomainName
    items: list[KeyToPath] = Field(default_factory=list)
    optional: bool = False


class ProjectedSecret(ShoalModel):
    name: SubdomainName
    items: list[KeyToPath] = Field(default_factory=list)
    optional: bool = False


class ProjectedDownward(ShoalModel):
    items: list[DownwardItem] = Field(default_factory=list)


class ServiceAccountToken(ShoalModel):
    path: str
    audience: str = ""
    expiration_seconds: int = 3600


class VolumeProjection(ShoalModel):
    config_map: ProjectedConfigMap | None = None
    secret: ProjectedSecret | None = None
    downward_api: ProjectedDownward | None = Field(default=None, alias="downwardAPI")
    service_account_token: ServiceAccountToken | None = None
    """Accepted; Shoal has no Kubernetes API, so the file holds no token."""


class ProjectedVolume(ShoalModel):
    sources: list[VolumeProjection] = Field(default_factory=list)
    default_mode: int = Field(default=0o644, ge=0, le=0o777)


class Volume(ShoalModel):
    name: Name
    empty_dir: EmptyDirVolume | None = None
    config_map: ConfigMapVolume | None = None
    secret: SecretVolume | None = None
    host_path: HostPathVolume | None = None
    persistent_volume_claim: ClaimVolume | None = None
    downward_api: DownwardVolume | None = Field(default=None, alias="downwardAPI")
    projected: ProjectedVolume | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        given = [f for f in VOLUME_SOURCES if getattr(self, f) is not None]
        if len(given) != 1:
            names = "emptyDir, configMap, secret, hostPath, persistentVolumeClaim, downwardAPI or projected"
            raise ValueError(f"volume {self.name!r} needs exactly one source: {names}")
        return self

    @property
    def source(self) -> str:
        return next(f for f in VOLUME_SOURCES if getattr(self, f) is not None)


VOLUME_SOURCES = (
    "empty_dir", "config_map", "secret", "host_path", "persistent_volume_claim", "downward_api", "projected"
)  # fmt: skip


class LocalObjectReference(ShoalModel):
    name: str = ""


class DNSConfigOption(ShoalModel):
    name: str = Field(min_length=1)
    value: str | None = None


class PodDNSConfig(ShoalModel):
    nameservers: list[str] = Field(default_factory=list, max_length=3)
    searches: list[str] = Field(default_factory=list, max_length=32)
    options: list[DNSConfigOption] = Field(default_factory=list)

    def option_texts(self) -> list[str]:
        return [o.name if o.value is None else f"{o.name}:{o.value}" for o in self.options]


class HostAlias(ShoalModel):
    ip: str
    hostnames: list[str] = Field(default_factory=list)


class Container(ShoalModel):
    name: Name
    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[EnvFromSource] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    volume_mounts: list[VolumeMount] = Field(default_factory=list)
    image_pull_policy: PullPolicy = "IfNotPresent"
    lifecycle: Lifecycle | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    security_context: SecurityContext | None = None
    restart_policy: Literal["Always"] | None = None
    """Only for init containers: ``Always`` makes one a sidecar, running for the pod's life."""
    stdin: bool = False
    tty: bool = False
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] = "File"

    @field_validator("image")
    @classmethod
    def _image_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("image must not be empty")
        return value.strip()


class PodSpec(ShoalModel):
    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] = Field(default_factory=list)
    """Run in order, each to completion, before the containers start; those with
    ``restartPolicy: Always`` are sidecars: started in order, then kept running."""
    volumes: list[Volume] = Field(default_factory=list)
    security_context: PodSecurityContext | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    """Kubernetes' deprecated spelling of serviceAccountName."""
    automount_service_account_token: bool | None = None
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list)
    """Accepted; pulls use the node's own registry credentials."""
    host_aliases: list[HostAlias] = Field(default_factory=list)
    hostname: str | None = None
    subdomain: str | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] = "ClusterFirst"
    dns_config: PodDNSConfig | None = None
    scheduler_name: str = "default-scheduler"
    enable_service_links: bool | None = None
    restart_policy: RestartPolicy = "Always"
    termination_grace_period_seconds: int = Field(default=30, ge=0)
    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: Affinity | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(default_factory=list)
    priority_class_name: str | None = None
    priority: int | None = None
    """Set by the scheduler from the priority class when it creates the pod."""

    @model_validator(mode="after")
    def _consistent(self) -> PodSpec:
        seen: set[str] = set()
        for container in [*self.init_containers, *self.containers]:
            if container.name in seen:
                raise ValueError(f"container name {container.name!r} is used twice")
            seen.add(container.name)
        for container in self.containers:
            if container.restart_policy is not None:
                raise ValueError(f"container {container.name!r}: restartPolicy is only for init containers")
        volumes = [v.name for v in self.volumes]
        if len(set(volumes)) != len(volumes):
            raise ValueError("volume names must be unique")
        for container in [*self.init_containers, *self.containers]:
            for mount in container.volume_mounts:
                if mount.name not in volumes:
                    raise ValueError(
                        f"container {container.name!r} mounts {mount.name!r}, which is not a volume"
                    )
        return self

    def all_containers(self) -> list[Container]:
        """Init containers (sidecars among them), then the app containers."""
        return [*self.init_containers, *self.containers]

    def referenced(self, kind: Literal["configMap", "secret"]) -> set[str]:
        """Names of the ConfigMaps or Secrets the pod reads (env, envFrom, volumes)."""
        names: set[str] = set()
        for container in self.all_containers():
            for env in container.env:
                source = env.value_from
                ref = (
                    None
                    if source is None
                    else (source.config_map_key_ref if kind == "configMap" else source.secret_key_ref)
                )
                if ref is not None:
                    names.add(ref.name)
            for env_from in container.env_from:
                ref_ = env_from.config_map_ref if kind == "configMap" else env_from.secret_ref
                if ref_ is not None:
                    names.add(ref_.name)
        for volume in self.volumes:
            if kind == "configMap" and volume.config_map is not None:
                names.add(volume.config_map.name)
            if kind == "secret" and volume.secret is not None:
                names.add(volume.secret.secret_name)
            for projection in volume.projected.sources if volume.projected else []:
                projected = projection.config_map if kind == "configMap" else projection.secret
                if projected is not None:
                    names.add(projected.name)
        return names

    def claims(self) -> set[str]:
        """Names of the PersistentVolumeClaims the pod mounts."""
        return {v.persistent_volume_claim.claim_name for v in self.volumes if v.persistent_volume_claim}

    @cached_property
    def requested(self) -> tuple[int, int]:
        """Total (cpu millicores, memory bytes) the pod asks the scheduler for.

        Kubernetes' rule: the app containers and sidecars together, or the largest init
        container (with the sidecars started before it) if that is more."""
        sidecars = [c for c in self.init_containers if c.restart_policy == "Always"]
        cpu = sum(c.resources.requests.cpu or 0 for c in [*self.containers, *sidecars])
        memory = sum(c.resources.requests.memory or 0 for c in [*self.containers, *sidecars])
        before = [0, 0]
        for init in self.init_containers:
            request = init.resources.requests
            if init.restart_policy == "Always":
                before = [before[0] + (request.cpu or 0), before[1] + (request.memory or 0)]
                continue
            cpu = max(cpu, before[0] + (request.cpu or 0))
            memory = max(memory, before[1] + (request.memory or 0))
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
