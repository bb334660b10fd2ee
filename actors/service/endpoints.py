"""A service's endpoints from the pods it selects, decided without I/O.

A pod is an endpoint while it is Ready, not terminating, and on a Ready node; for each
service port, its target is the pod IP and container port (what the kernel path on the
pod's own host uses) and the node address and host port the container port is published on
(what other hosts and the node-port proxy use: pod IPs only reach from their own host).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shoal.bus.kv import Entry
from shoal.models.pod import Pod, PodStatus
from shoal.models.service import EndpointPort, Endpoints, EndpointTarget, Service, ServicePort


def container_port(pod: Pod, port: ServicePort) -> int | None:
    """The container port a service port targets in this pod (by number or by name)."""
    target = port.target_port if port.target_port is not None else port.port
    if isinstance(target, int):
        return target
    for container in pod.spec.containers:
        for declared in container.ports:
            if declared.name == target:
                return declared.container_port
    return None


def endpoints_for(
    service: Service,
    pods: Mapping[str, Entry[Pod]],
    statuses: Mapping[str, Entry[PodStatus]],
    node_ready: Callable[[str], bool],
) -> Endpoints:
    meta = service.metadata
    ports = [
        EndpointPort(name=port.key, port=port.port, node_port=port.node_port or 0, protocol=port.protocol)
        for port in service.spec.ports
    ]
    not_ready: list[str] = []
    # No selector, no endpoints: Kubernetes leaves those to whoever made the service.
    candidates = sorted(pods.values(), key=lambda e: e.key) if service.spec.selector else []
    for entry in candidates:
        pod = entry.value
        if pod.metadata.namespace != meta.namespace:
            continue
        labels = pod.metadata.labels
        if any(labels.get(key) != value for key, value in service.spec.selector.items()):
            continue
        status_entry = statuses.get(entry.key)
        status = status_entry.value if status_entry is not None else None
        serving = (
            status is not None
            and status.uid == pod.metadata.uid
            and status.node_name == pod.node_name
            and status.ready
            and not pod.terminating
            and node_ready(pod.node_name)
        )
        if not serving or status is None:
            not_ready.append(pod.metadata.name)
            continue
        for spec_port, endpoint_port in zip(service.spec.ports, ports, strict=True):
            number = container_port(pod, spec_port)
            if number is None:
                continue
            published = next(
                (p for p in status.ports if p.container_port == number and p.protocol == spec_port.protocol),
                None,
            )
            if published is None and not status.pod_ip:
                continue
            # Unpublished (the container does not declare the port), it is reached at the pod
            # IP only: through the cluster IP, not through node ports.
            endpoint_port.targets.append(
                EndpointTarget(
                    pod=pod.metadata.name,
                    node=pod.node_name,
                    host=status.host_ip,
                    port=published.host_port if published else 0,
                    pod_ip=status.pod_ip,
                    container_port=number,
                )
            )
    return Endpoints(namespace=meta.namespace, name=meta.name, uid=meta.uid, ports=ports, not_ready=not_ready)
