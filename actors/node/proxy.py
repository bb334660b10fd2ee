"""The node's service proxy: every service's node port, spread over its Ready endpoints.

Like kube-proxy, every node runs one. For each port of each service it listens on the
node's addresses (its own, and the bridge gateway its containers can reach) at the node
port, and relays each connection to an endpoint, in turn (round robin) or to the one with
the fewest open connections. A target that refuses is skipped and the next one tried, so
a pod that has just stopped costs no failed request. Listeners use SO_REUSEPORT, so the
several node actors of one host (``shoal up --nodes 3``) share each port.

The relay works on the non-blocking sockets themselves with the event loop's reader and
writer callbacks (no task, transport or buffer objects per connection: this is the hot
path), passes half-closes on, and has backpressure both ways: a slow side pauses the
other's reading instead of buffering without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

from shoal.bus.cache import KVCache
from shoal.models.service import Endpoints, EndpointTarget, Service

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
CHUNK = 64 * 1024
NO_LINGER = struct.pack("ii", 1, 0)

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


class _Pipe:
    """One direction of a relayed connection: reads ``source``, writes ``sink``, with backpressure."""

    __slots__ = ("closed", "conn", "pending", "sink", "source")

    def __init__(self, conn: _Connection, source: socket.socket, sink: socket.socket) -> None:
        self.conn = conn
        self.source = source
        self.sink = sink
        self.pending = b""
        self.closed = False

    def readable(self) -> None:
        try:
            data = self.source.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.conn.close()
            return
        if not data:  # the source is done sending: pass the half-close on
            self.conn.loop.remove_reader(self.source.fileno())
            self.closed = True
            with contextlib.suppress(OSError):
                self.sink.shutdown(socket.SHUT_WR)
            self.conn.maybe_done()
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            sent = self.sink.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.conn.close()
            return
        if sent < len(data):
            # The sink is full: stop reading until it drains (no unbounded buffering).
            self.pending = data[sent:]
            self.conn.loop.remove_reader(self.source.fileno())
            self.conn.loop.add_writer(self.sink.fileno(), self.writable)

    def writable(self) -> None:
        data, self.pending = self.pending, b""
        self.conn.loop.remove_writer(self.sink.fileno())
        self._send(data)
        if not self.pending and not self.conn.done:
            self.conn.loop.add_reader(self.source.fileno(), self.readable)


class _Connection:
    """A client connection: connect to a target (the next one if it refuses), then relay both ways."""

    __slots__ = (
        "balancer",
        "client",
        "done",
        "loop",
        "pipes",
        "server",
        "target",
        "targets",
        "timer",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        balancer: Balancer | None,
    ) -> None:
        self.loop = loop
        self.client = client
        self.balancer = balancer
        self.targets = balancer.order() if balancer else []
        self.server: socket.socket | None = None
        self.target: tuple[str, int] | None = None
        self.pipes: tuple[_Pipe, _Pipe] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done = False
        self._try_next()

    def _try_next(self) -> None:
        while self.targets:
            target = self.targets.pop(0)
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setblocking(False)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = server.connect_ex((target.host, target.port))
            if code not in (0, errno.EINPROGRESS):
                server.close()
                continue  # refused at once: the next target
            self.server = server
            self.target = (target.host, target.port)
            self.loop.add_writer(server.fileno(), self._connected)
            self.timer = self.loop.call_later(CONNECT_TIMEOUT, self._give_up_on_target)
            return
        self.close()  # nobody could take it

    def _give_up_on_target(self) -> None:
        self._drop_server()
        self._try_next()

    def _drop_server(self) -> None:
        if self.server is not None:
            self.loop.remove_writer(self.server.fileno())
            self.server.close()
            self.server = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _connected(self) -> None:
        assert self.server is not None
        if self.server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            self._drop_server()
            self._try_next()
            return
        self.loop.remove_writer(self.server.fileno())
        if self.timer is not None:
            self.timer.cancel()
        if self.balancer is not None and self.target is not None:
            self.balancer.open[self.target] = self.balancer.open.get(self.target, 0) + 1
        up, down = _Pipe(self, self.client, self.server), _Pipe(self, self.server, self.client)
        self.pipes = (up, down)
        self.loop.add_reader(self.client.fileno(), up.readable)
        self.loop.add_reader(self.server.fileno(), down.readable)

    def maybe_done(self) -> None:
        if self.pipes is not None and all(pipe.closed for pipe in self.pipes):
            # Both sides said all they had to say. Closing without lingering spares the
            # client-facing socket a TIME_WAIT (we were first to close it): at thousands of
            # connections a second, clients reuse ports while those linger, and their SYNs
            # would wait a second for a retransmit.
            with contextlib.suppress(OSError):
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
            self.close()

    def close(self) -> None:
        if self.done:
            return
        self.done = True
        for sock in (self.client, self.server):
            if sock is None or sock.fileno() < 0:
                continue
            self.loop.remove_reader(sock.fileno())
            self.loop.remove_writer(sock.fileno())
            sock.close()
        if self.timer is not None:
            self.timer.cancel()
        if self.pipes is not None and self.balancer is not None and self.target is not None:
            self.balancer.open[self.target] = max(0, self.balancer.open.get(self.target, 1) - 1)


class _Listener:
    """A non-blocking listening socket; accepts whatever is waiting on each wake-up."""

    def __init__(self, proxy: ServiceProxy, node_port: int, address: str) -> None:
        self.proxy = proxy
        self.node_port = node_port
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.sock.bind((address, node_port))
            self.sock.listen(1024)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                log.debug("accept on node port %d: %s", self.node_port, err)
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _Connection(self.loop, client, self.proxy.balancers.get(self.node_port))

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


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
        self.servers: dict[int, dict[str, _Listener]] = {}

    async def sync(self) -> None:
        """Listeners for every node port, targets for every listener; nothing for what went."""
        wanted: dict[int, list[EndpointTarget]] = {}
        for key, entry in self.services.entries.items():
            endpoints = self.endpoints.get(key)
            by_name = {port.name: port for port in endpoints.value.ports} if endpoints else {}
            for port in entry.value.spec.ports:
                if port.node_port and port.protocol == "TCP":
                    found = by_name.get(port.key)
                    # Only published ports are reachable from any host at host:port.
                    wanted[port.node_port] = [t for t in found.targets if t.port] if found else []
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
        servers = self.servers.setdefault(node_port, {})
        for address in self.addresses:
            if address in servers:
                continue
            try:
                servers[address] = _Listener(self, node_port, address)
            except OSError as err:
                log.debug("cannot serve node port %d on %s yet: %s", node_port, address, err)

    async def close(self) -> None:
        for servers in self.servers.values():
            for server in servers.values():
                server.close()
        self.servers.clear()
