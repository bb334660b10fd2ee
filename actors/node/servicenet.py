"""Cluster IPs in the kernel: an nftables table that DNATs a service's virtual IP and port to
one of its Ready endpoints, as kube-proxy's nftables mode does.

``ruleset`` is pure: services and endpoints in, the text of the cluster's table out. A
connection to ``clusterIP:port`` (from a pod through the bridge, or from the host itself) is
sent, by a random pick among the endpoints, to the pod's IP and port when the pod runs on
this host (its bridge), else to its node's address and the host port it is published on.
Connections Shoal translated are masqueraded, so replies come back through this host
whatever the path (a pod calling a pod on its own bridge included). A service without
endpoints is refused at once (ICMP port unreachable), as Kubernetes does. Rewriting the
table does not disturb established connections: their translation lives in conntrack.

``KernelServices`` writes the table with ``nft -f`` (one atomic transaction) when it
changed, and finds out at start whether this host lets it (``nft`` present, CAP_NET_ADMIN).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shoal.models.service import Endpoints, EndpointTarget, Service, ServicePort
from shoal.runtime import labels

log = logging.getLogger(__name__)

TABLE = "shoal"


def table_name(cluster: str) -> str:
    """The table of one cluster's services: another cluster's nodes on the same host keep theirs."""
    return f"{TABLE}_{labels.short(cluster)}" if cluster else TABLE


MARK = "0x5348"
"""Connection mark of what Shoal translated (``SH``): masqueraded on the way out."""


@dataclass(frozen=True)
class Backend:
    address: str
    port: int
    remote: bool = False
    """On another host (its node's address and host port): replies must come back through us."""


def backends(
    targets: Iterable[EndpointTarget],
    node: str,
    local_addresses: frozenset[str],
    local_only: bool,
    prefer_local: bool = False,
) -> list[Backend]:
    """Where each endpoint is reached from this host."""
    targets = list(targets)
    if prefer_local and any(t.node == node for t in targets):
        local_only = True  # trafficDistribution: PreferSameNode, and this node has some
    found = []
    for target in targets:
        here = target.node == node or target.host in local_addresses or _loopback(target.host)
        if local_only and target.node != node:
            continue  # internalTrafficPolicy: Local
        if here and target.pod_ip and target.container_port:
            found.append(Backend(target.pod_ip, target.container_port))
        elif not here and target.port:
            found.append(Backend(target.host, target.port, remote=True))
    return sorted(set(found), key=lambda b: (b.address, b.port))


def _affinity_seconds(service: Service) -> int:
    spec = service.spec
    if spec.session_affinity != "ClientIP":
        return 0
    config = spec.session_affinity_config
    return config.client_ip.timeout_seconds if config and config.client_ip else 10800


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _served(
    services: Iterable[Service],
    endpoints: dict[tuple[str, str], Endpoints],
    node: str,
    local_addresses: frozenset[str],
) -> Iterator[tuple[Service, ServicePort, list[Backend]]]:
    """Each port of each service with a cluster IP, and the backends this host sends it to."""
    for service in sorted(services, key=lambda s: (s.metadata.namespace, s.metadata.name)):
        spec = service.spec
        if not spec.cluster_ip or spec.cluster_ip == "None" or not spec.proxied:
            continue
        found = endpoints.get((service.metadata.namespace, service.metadata.name))
        by_name = {port.name: port for port in found.ports} if found else {}
        for port in spec.ports:
            endpoint_port = by_name.get(port.key)
            targets = endpoint_port.targets if endpoint_port else []
            chosen = backends(
                targets,
                node,
                local_addresses,
                spec.internal_traffic_policy == "Local",
                prefer_local=spec.traffic_distribution in ("PreferSameNode", "PreferClose"),
            )
            yield service, port, chosen


UdpTranslation = tuple[str, int, str, int]
"""(cluster IP, port, backend address, backend port) of a UDP service port."""


def udp_translations(
    services: Iterable[Service],
    endpoints: dict[tuple[str, str], Endpoints],
    node: str,
    local_addresses: frozenset[str] = frozenset(),
) -> frozenset[UdpTranslation]:
    """Where this host's table sends each UDP service port. One that goes away leaves the
    kernel's translations of it behind (conntrack keeps a UDP flow for 30-180 s after its last
    datagram), and a client reusing its socket would keep talking to an endpoint that is gone:
    they are deleted, as kube-proxy does (``KernelServices.forget``)."""
    return frozenset(
        (service.spec.cluster_ip, port.port, backend.address, backend.port)
        for service, port, chosen in _served(services, endpoints, node, local_addresses)
        if port.protocol == "UDP"
        for backend in chosen
    )


def ruleset(
    services: Iterable[Service],
    endpoints: dict[tuple[str, str], Endpoints],
    node: str,
    local_addresses: frozenset[str] = frozenset(),
    *,
    bridge_filtered: bool = False,
    table: str = TABLE,
) -> str:
    """The whole table, ready for ``nft -f`` (deleting the old one in the same transaction).

    ``bridge_filtered``: bridged traffic passes the host's netfilter (br_netfilter with
    bridge-nf-call-iptables), so a pod's reply to a pod on its own bridge is translated back
    without masquerading; then only connections to other hosts are masqueraded, and pods see
    their callers' own addresses."""
    elements: list[str] = []
    refused: list[str] = []
    chains: list[str] = []
    for service, port, chosen in _served(services, endpoints, node, local_addresses):
        spec = service.spec
        protocol = port.protocol.lower()
        match = f"{spec.cluster_ip} . {protocol} . {port.port}"
        if not chosen:
            refused.append(match)
            continue
        chain = f"svc-{len(chains)}"
        affinity = _affinity_seconds(service)
        lines = [f"  chain {chain} {{"]
        if affinity:
            # ClientIP: a client seen lately goes back to the endpoint it had (kube-proxy's way).
            lines += [f"    ip saddr @{chain}-{i}-clients goto {chain}-{i}" for i in range(len(chosen))]
        picks = ", ".join(f"{i} : goto {chain}-{i}" for i in range(len(chosen)))
        lines += [f"    numgen random mod {len(chosen)} vmap {{ {picks} }}", "  }"]
        for index, backend in enumerate(chosen):
            target = f"{backend.address}:{backend.port}"
            if affinity:
                lines += [
                    f"  set {chain}-{index}-clients {{",
                    "    type ipv4_addr; flags dynamic,timeout;",
                    f"    timeout {affinity}s",
                    "  }",
                ]
            remember = f"update @{chain}-{index}-clients {{ ip saddr }} " if affinity else ""
            mark = f"ct mark set {MARK} " if backend.remote or not bridge_filtered else ""
            lines += [
                f"  chain {chain}-{index} {{",
                f"    {remember}meta l4proto {protocol} {mark}dnat to {target}",
                "  }",
            ]
        chains.append("\n".join(lines))
        elements.append(f"{match} : goto {chain}")
    return "\n".join(
        [
            f"table ip {table} {{}}",
            f"delete table ip {table}",
            f"table ip {table} {{",
            "  map services {",
            "    type ipv4_addr . inet_proto . inet_service : verdict",
            *([f"    elements = {{ {', '.join(elements)} }}"] if elements else []),
            "  }",
            "  set refused {",
            "    type ipv4_addr . inet_proto . inet_service",
            *([f"    elements = {{ {', '.join(refused)} }}"] if refused else []),
            "  }",
            "  chain prerouting {",
            "    type nat hook prerouting priority -100; policy accept;",
            "    ip daddr . meta l4proto . th dport vmap @services",
            "  }",
            "  chain output {",
            "    type nat hook output priority -100; policy accept;",
            "    ip daddr . meta l4proto . th dport vmap @services",
            "  }",
            "  chain postrouting {",
            "    type nat hook postrouting priority 100; policy accept;",
            f"    ct mark {MARK} masquerade",
            "  }",
            "  chain forward {",
            "    type filter hook forward priority -10; policy accept;",
            "    ip daddr . meta l4proto . th dport @refused reject",
            "  }",
            "  chain local {",
            "    type filter hook output priority -10; policy accept;",
            "    ip daddr . meta l4proto . th dport @refused reject",
            "  }",
            *chains,
            "}",
            "",
        ]
    )


def bridge_filtered(path: str = "/proc/sys/net/bridge/bridge-nf-call-iptables") -> bool:
    """Whether bridged IPv4 traffic passes the host's netfilter hooks (br_netfilter)."""
    try:
        with open(path) as setting:
            return setting.read().strip() == "1"
    except OSError:
        return False


class KernelServices:
    """Keeps the cluster's table (``table ip shoal_<cluster>``) as ``ruleset`` says, when this
    host allows it."""

    def __init__(self, table: str = TABLE) -> None:
        self.table = table
        self.available: bool | None = None
        self.why_not = ""
        self.written = ""
        self.bridge_filtered = bridge_filtered()
        self._said_no_conntrack = False

    async def check(self) -> bool:
        """Whether nftables can be used here (checked once)."""
        if self.available is None:
            if shutil.which("nft") is None:
                self.available, self.why_not = False, "the nft command is not installed"
            else:
                code, err = await _nft(f"table ip {self.table} {{}}\n", check_only=True)
                self.available, self.why_not = code == 0, err.strip()
        return self.available

    async def write(self, text: str) -> bool:
        """Write the table if it changed (or is gone); True when it now differs from before."""
        if not await self.check():
            return False
        if text == self.written and await self._present():
            return False
        code, err = await _nft(text)
        if code != 0:
            log.warning("could not write the service table: %s", err.strip())
            return False
        changed, self.written = text != self.written, text
        return changed

    async def _present(self) -> bool:
        # Another node on this host may have removed it as it stopped: write it again then.
        process = await asyncio.create_subprocess_exec(
            "nft",
            "list",
            "table",
            "ip",
            self.table,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await process.wait() == 0

    async def forget(self, gone: Iterable[UdpTranslation]) -> None:
        """Delete the kernel's UDP translations to backends the table no longer has (with the
        conntrack tool; where it is missing, they linger until they time out, as said once)."""
        gone = sorted(gone)
        if not gone:
            return
        if shutil.which("conntrack") is None:
            if not self._said_no_conntrack:
                self._said_no_conntrack = True
                log.warning(
                    "no conntrack here: UDP clients of a gone endpoint wait for their flows to expire"
                )
            return
        for cluster_ip, port, address, backend_port in gone:
            argv = ["conntrack", "-D", "-p", "udp", "--orig-dst", cluster_ip, "--orig-port-dst", str(port)]
            argv += ["--reply-src", address, "--reply-port-src", str(backend_port)]
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            await process.wait()  # 1 when there was nothing to delete: as good

    async def remove(self) -> None:
        if self.available:
            await _nft(f"table ip {self.table} {{}}\ndelete table ip {self.table}\n")
            self.written = ""


async def _nft(text: str, *, check_only: bool = False) -> tuple[int, str]:
    args = ["nft", *(["-c"] if check_only else []), "-f", "-"]
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        return 1, str(err)
    _, err = await process.communicate(text.encode())
    return process.returncode or 0, err.decode(errors="replace")
