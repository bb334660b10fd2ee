"""Node ports for services: kept across re-applies, unique across services, decided without I/O.

Two API replicas applying two new services at once could each find the same port free in
the services they read; so a port is also *claimed* (``shoal_node_ports``, created with
compare-and-swap) before the service using it is written, and a claim counts as taken
while its service uses the port or, for a claim whose service is not written yet, for
``CLAIM_GRACE_SECONDS`` (an API that died between the two writes frees it then).
"""

from __future__ import annotations

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
