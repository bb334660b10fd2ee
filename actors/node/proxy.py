"""The node's service proxy: every service's node port, spread over its Ready endpoints.

Like kube-proxy, every node runs one. For each port of each service it listens on the
node's addresses (its own, and the bridge gateway its containers can reach) at the node
port, and relays each connection to an endpoint, in turn (round robin) or to the one with
the fewest open connections. A target that refuses is skipped and the next one tried, so
a pod that has just stopped costs no failed request. Listeners use SO_REUSEPORT, so the
several node actors of one host (``shoal up --nodes 3``) share each port.

The relay is two asyncio protocols writing into each other's transports, with flow
control both ways: a slow side pauses the other's reading instead of buffering without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from shoal.bus.cache import KVCache
from shoal.models.service import Endpoints, EndpointTarget, Service

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
HIGH_WATER = 256 * 1024

Balancing = Literal["round-robin", "least-connections"]


@dataclass
class Balancer:
    """The targets of one service port, and who is next."""

    balancing: Balancing = "round-robin"
    targets: list[EndpointTarget] = field(default_factory=list)
    next_index: int = 0
    open: dict[tuple[str, int], int] = field(default_factory=dict)

    def order(self) -> list[EndpointTarget]:
        """Every target once, the preferred first."""
        targets = self.targets
        if not targets:
            return []
        if self.balancing == "least-connections":
            return sorted(targets, key=lambda t: self.open.get((t.host, t.port), 0))
        start = self.next_index % len(targets)
        self.next_index = start + 1
        return targets[start:] + targets[:start]


class _Upstream(asyncio.Protocol):
    def __init__(self, downstream: _Downstream) -> None:
        self.downstream = downstream
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self.downstream.transport.write(data)

    def eof_received(self) -> bool:
        if self.downstream.transport.can_write_eof():
            self.downstream.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.downstream.upstream_lost()

    def pause_writing(self) -> None:
        self.downstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.downstream.transport.resume_reading()


class _Downstream(asyncio.Protocol):
    """One client connection: it waits, reading paused, until an upstream is connected."""

    def __init__(self, proxy: ServiceProxy, node_port: int) -> None:
        self.proxy = proxy
        self.node_port = node_port
        self.transport: asyncio.Transport
        self.upstream: _Upstream | None = None
        self.pending: list[bytes] = []
        self.target: tuple[str, int] | None = None
        self.client_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER)
        self.proxy.spawn(self._connect())

    async def _connect(self) -> None:
        balancer = self.proxy.balancers.get(self.node_port)
        loop = asyncio.get_running_loop()
        for target in balancer.order() if balancer else []:
            try:
                _, upstream = await asyncio.wait_for(
                    loop.create_connection(lambda: _Upstream(self), target.host, target.port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue  # gone or refusing: the next one
            if self.transport.is_closing():
                upstream.transport.close()  # type: ignore[union-attr]
                return
            self.upstream = upstream
            self.target = (target.host, target.port)
            assert balancer is not None
            balancer.open[self.target] = balancer.open.get(self.target, 0) + 1
            for chunk in self.pending:
                upstream.transport.write(chunk)  # type: ignore[union-attr]
            self.pending.clear()
            if self.client_eof and upstream.transport and upstream.transport.can_write_eof():
                upstream.transport.write_eof()
            return
        self.transport.abort()  # no endpoint could take it

    def data_received(self, data: bytes) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.client_eof = True
        upstream = self.upstream.transport if self.upstream else None
        if upstream is not None and upstream.can_write_eof():
            upstream.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()
        self._release()

    def upstream_lost(self) -> None:
        self.transport.close()
        self._release()

    def _release(self) -> None:
        balancer = self.proxy.balancers.get(self.node_port)
        if self.target is not None and balancer is not None:
            balancer.open[self.target] = max(0, balancer.open.get(self.target, 1) - 1)
        self.target = None


class ServiceProxy:
    """Keeps a listener per service node port, and each port's targets, current."""

    def __init__(
        self,
        addresses: list[str],
        services: KVCache[Service],
        endpoints: KVCache[Endpoints],
        *,
        balancing: Balancing = "round-robin",
    ) -> None:
        self.addresses = addresses
        self.services = services
        self.endpoints = endpoints
        self.balancing = balancing
        self.balancers: dict[int, Balancer] = {}
        self.servers: dict[int, dict[str, asyncio.Server]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self) -> None:
        """Listeners for every node port, targets for every listener; nothing for what went."""
        wanted: dict[int, list[EndpointTarget]] = {}
        for key, entry in self.services.entries.items():
            endpoints = self.endpoints.get(key)
            by_name = {port.name: port for port in endpoints.value.ports} if endpoints else {}
            for port in entry.value.spec.ports:
                if port.node_port:
                    found = by_name.get(port.key)
                    wanted[port.node_port] = list(found.targets) if found else []
        for node_port, targets in wanted.items():
            balancer = self.balancers.setdefault(node_port, Balancer(self.balancing))
            balancer.targets = targets
            await self._listen(node_port)
        for node_port in [p for p in self.servers if p not in wanted]:
            for server in self.servers.pop(node_port).values():
                server.close()
            self.balancers.pop(node_port, None)

    async def _listen(self, node_port: int) -> None:
        """Listen on every address not listened on yet (the bridge appears with the first container)."""
        loop = asyncio.get_running_loop()
        servers = self.servers.setdefault(node_port, {})
        for address in self.addresses:
            if address in servers:
                continue
            try:
                servers[address] = await loop.create_server(
                    lambda: _Downstream(self, node_port), address, node_port, reuse_port=True, backlog=1024
                )
            except OSError as err:
                log.debug("cannot serve node port %d on %s yet: %s", node_port, address, err)

    async def close(self) -> None:
        for servers in self.servers.values():
            for server in servers.values():
                server.close()
        self.servers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
