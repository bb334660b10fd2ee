"""Node ports for services: kept across re-applies, unique across services, decided without I/O."""

from __future__ import annotations

from shoal.errors import InvalidManifest
from shoal.models.service import NODE_PORT_RANGE, Service


def assign_node_ports(service: Service, stored: Service | None, taken: dict[int, str]) -> Service:
    """``service`` with a node port on every port: the manifest's, else the one it had, else a free one.

    ``taken`` maps the node ports of every *other* service to its name.
    """
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
