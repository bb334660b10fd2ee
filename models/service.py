"""Services: stable names and ports in front of the Ready pods a selector picks.

A Service's ports are served on every node at a *node port* (allocated by the API from
30000-32767 unless the manifest sets ``nodePort``), by the node's proxy, which spreads
connections over the service's endpoints: ``hostIP:hostPort`` of each Ready pod, since pod
IPs are only reachable from their own host.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shoal.models.base import Labels, ObjectMeta, Record, ShoalModel

NODE_PORT_RANGE = (30000, 32767)

PortName = Annotated[str, Field(max_length=15)]


class ServicePort(ShoalModel):
    name: PortName | None = None
    port: int = Field(ge=1, le=65535)
    target_port: int | str | None = None
    """The pods' port: a number, or the name of a container port. Defaults to ``port``."""
    protocol: Literal["TCP", "UDP"] = "TCP"
    """UDP is served at the cluster IP (in the kernel); node ports serve TCP only."""
    app_protocol: str | None = None
    """Informational, as in Kubernetes (``http``, ``kubernetes.io/h2c``...)."""
    node_port: int | None = Field(default=None, ge=NODE_PORT_RANGE[0], le=NODE_PORT_RANGE[1])

    @field_validator("target_port")
    @classmethod
    def _port_in_range(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(f"must be a port from 1 to 65535 or a container port's name (got {value})")
        return value

    @property
    def key(self) -> str:
        return self.name or str(self.port)


class ClientIPConfig(ShoalModel):
    timeout_seconds: int = Field(default=10800, ge=1, le=86400)


class SessionAffinityConfig(ShoalModel):
    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")


class ServiceSpec(ShoalModel):
    selector: Labels = Field(default_factory=dict)
    """Pods it sends traffic to; a service without one has no endpoints (as in Kubernetes)."""
    ports: list[ServicePort] = Field(default_factory=list)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    """ClusterIP, NodePort and LoadBalancer are served alike, on every node at the node port;
    a LoadBalancer lists the nodes' addresses as its ingress (as k3s' ServiceLB does)."""
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    """The service's virtual IP, given by the API from the service range (or asked for);
    ``None`` (the string) makes the service headless: no cluster IP, no node port, no proxy."""
    cluster_ips: list[str] = Field(default_factory=list, alias="clusterIPs")
    external_name: str | None = None
    session_affinity: Literal["None", "ClientIP"] = "None"
    session_affinity_config: SessionAffinityConfig | None = None
    traffic_distribution: str | None = None
    """``PreferSameNode`` (or ``PreferClose``): cluster IP traffic goes to endpoints on the
    caller's node when there are any."""
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    internal_traffic_policy: Literal["Cluster", "Local"] | None = None
    publish_not_ready_addresses: bool = False
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_class: str | None = None
    allocate_load_balancer_node_ports: bool | None = None
    ip_families: list[str] = Field(default_factory=list)
    ip_family_policy: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> ServiceSpec:
        if self.type == "ExternalName":
            if not self.external_name:
                raise ValueError("a service of type ExternalName needs externalName")
            return self
        if not self.ports and not self.headless:
            raise ValueError("ports: a service needs at least one port (or clusterIP: None)")
        if self.headless and self.type != "ClusterIP":
            raise ValueError(f"a headless service (clusterIP: None) cannot be of type {self.type}")
        return self

    @field_validator("cluster_ip")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value in (None, "", "None"):
            return value or None
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"clusterIP must be an IPv4 address, None or left out (got {value!r})") from None
        return value

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def proxied(self) -> bool:
        """Served by every node's proxy at node ports (not headless, not ExternalName)."""
        return not self.headless and self.type != "ExternalName"


class Service(Record):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Service"] = "Service"
    metadata: ObjectMeta
    spec: ServiceSpec


class NodePortClaim(Record):
    """A node port held for a service, so two services applied at once cannot both take it."""

    namespace: str
    name: str
    claimed_at: float
    """When it was claimed (the claiming API's clock): an unused claim lapses after a while."""


class EndpointTarget(ShoalModel):
    pod: str
    node: str
    host: str
    """The node's address."""
    port: int
    """The host port the pod's container port is published on (0: not published)."""
    pod_ip: str = ""
    container_port: int = 0
    """The pod's port the service port targets."""


class EndpointPort(ShoalModel):
    name: str
    port: int
    node_port: int
    protocol: str = "TCP"
    targets: list[EndpointTarget] = Field(default_factory=list)


class Endpoints(Record):
    """Where a service's traffic goes now: kept by the service actor."""

    namespace: str
    name: str
    uid: str
    ports: list[EndpointPort] = Field(default_factory=list)
    not_ready: list[str] = Field(default_factory=list)
    """Pods the selector matches that are not Ready (or are stopping)."""

    @property
    def ready_pods(self) -> set[str]:
        return {target.pod for port in self.ports for target in port.targets}
