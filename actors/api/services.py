"""Node ports for services: kept across re-applies, unique across services, decided without I/O.

Two API replicas applying two new services at once could each find the same port free in
the services they read; so a port is also *claimed* (``shoal_node_ports``, created with
compare-and-swap) before the service using it is written, and a claim counts as taken
while its service uses the port or, for a claim whose service is not written yet, for
``CLAIM_GRACE_SECONDS`` (an API that died between the two writes frees it then).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from shoal.errors import InvalidManifest
from shoal.models.service import NODE_PORT_RANGE, NodePortClaim, Service

CLAIM_GRACE_SECONDS = 60.0


def owner(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def claims_in_force(
    claims: Mapping[int, NodePortClaim], services: Mapping[str, Service], now: float
) -> dict[int, str]:
    """Port -> ``namespace/name`` of the claims that still hold their port."""
    using = {
        port.node_port: owner(s.metadata.namespace, s.metadata.name)
        for s in services.values()
        for port in s.spec.ports
        if port.node_port
    }
    return {
        port: owner(claim.namespace, claim.name)
        for port, claim in claims.items()
        if using.get(port) == owner(claim.namespace, claim.name)
        or now - claim.claimed_at < CLAIM_GRACE_SECONDS
    }


def assign_node_ports(service: Service, stored: Service | None, taken: dict[int, str]) -> Service:
    """``service`` with a node port on every port: the manifest's, else the one it had, else a free one.

    ``taken`` maps the node ports of every *other* service to its name.
    """
    if not service.spec.proxied:
        # Headless and ExternalName services are not proxied: no node ports for them.
        ports = [port.model_copy(update={"node_port": None}) for port in service.spec.ports]
        return service.model_copy(update={"spec": service.spec.model_copy(update={"ports": ports})})
    kept = {port.key: port.node_port for port in stored.spec.ports} if stored else {}
    used = set(taken)
    ports = []
    problems = []
    for index, port in enumerate(service.spec.ports):
        node_port = port.node_port or kept.get(port.key)
        if node_port is not None and node_port in taken:
            problems.append(
                f"spec.ports[{index}].nodePort: {node_port} is already used by service {taken[node_port]}"
            )
            continue
        if node_port is None:
            node_port = next(
                (p for p in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1) if p not in used), None
            )
            if node_port is None:
                problems.append(
                    f"spec.ports[{index}]: no node port left in {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"
                )
                continue
        used.add(node_port)
        ports.append(port.model_copy(update={"node_port": node_port}))
    if problems:
        where = f'Service "{service.metadata.name}"'
        raise InvalidManifest([f"{where}: {problem}" for problem in problems])
    return service.model_copy(update={"spec": service.spec.model_copy(update={"ports": ports})})


DEFAULT_SERVICE_RANGE = "10.96.0.0/16"
FIRST_HOST = 10
"""Addresses below ``network + FIRST_HOST`` are kept back (Kubernetes gives .1 to its API
and .10 to DNS by convention; Shoal starts handing out at .10)."""


def cluster_ips_in_force(
    claims: Mapping[str, NodePortClaim], services: Mapping[str, Service], now: float
) -> dict[str, str]:
    """Address -> ``namespace/name`` of the cluster IP claims that still hold their address."""
    using = {
        s.spec.cluster_ip: owner(s.metadata.namespace, s.metadata.name)
        for s in services.values()
        if s.spec.cluster_ip and s.spec.cluster_ip != "None"
    }
    return {
        address: owner(claim.namespace, claim.name)
        for address, claim in claims.items()
        if using.get(address) == owner(claim.namespace, claim.name)
        or now - claim.claimed_at < CLAIM_GRACE_SECONDS
    }


def assign_cluster_ip(
    service: Service, stored: Service | None, taken: Mapping[str, str], service_range: str
) -> Service:
    """``service`` with its cluster IP: the one it asks for, else the one it had, else the lowest
    free one of ``service_range``. Headless and ExternalName services get none. ``taken`` maps
    the addresses of every *other* service to its name. As in Kubernetes, the address cannot
    change once given."""
    where = f'Service "{service.metadata.name}"'
    spec = service.spec
    if spec.headless or spec.type == "ExternalName":
        return service.model_copy(update={"spec": spec.model_copy(update={"cluster_ips": []})})
    network = ipaddress.IPv4Network(service_range)
    had = stored.spec.cluster_ip if stored is not None and stored.spec.cluster_ip != "None" else None
    asked = spec.cluster_ip
    if asked and had and asked != had:
        raise InvalidManifest([f"{where}: spec.clusterIP: field is immutable (it is {had})"])
    address = asked or had
    if address is not None:
        if ipaddress.IPv4Address(address) not in network:
            raise InvalidManifest(
                [f"{where}: spec.clusterIP: {address} is not in the service range {network}"]
            )
        if address in taken:
            raise InvalidManifest(
                [f"{where}: spec.clusterIP: {address} is already used by service {taken[address]}"]
            )
    else:
        address = next(
            (
                str(a)
                for index, a in enumerate(network.hosts())
                if index + 1 >= FIRST_HOST and str(a) not in taken
            ),
            None,
        )
        if address is None:
            raise InvalidManifest([f"{where}: no cluster IP left in the service range {network}"])
    return service.model_copy(
        update={"spec": spec.model_copy(update={"cluster_ip": address, "cluster_ips": [address]})}
    )
