"""Service names inside pods: each node answers DNS for its pods, from what it already knows.

``records`` (pure) turns services and endpoints into names: ``NAME.NS.svc.DOMAIN`` is the
service's cluster IP, or the Ready pods' IPs for a headless service, whose pods are also
``POD.NAME.NS.svc.DOMAIN`` (a pod's ``hostname``, when it sets one with ``subdomain``, else
its name). Pods resolve short names (``backend``, ``backend.shop``) through the search path
Kubernetes gives them (``NS.svc.DOMAIN svc.DOMAIN DOMAIN``, ``ndots:5``). ``answer`` (pure)
answers one query from those records: a name in the cluster domain that is not there is
NXDOMAIN; anything else goes to the host's own resolvers. Wire format is dnslib's.

``DnsServer`` serves UDP and TCP on the node's bridge address, port 53. It answers from the
node's caches, so a node cut off from NATS keeps answering with what it last knew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from shoal.models.service import Endpoints, Service

log = logging.getLogger(__name__)

TTL = 5
"""Seconds a client may keep an answer: short, since endpoints move."""

FORWARD_TIMEOUT = 2.0

Records = dict[str, list[str]]
"""Lower-case fully qualified name (with the final dot) -> IPv4 addresses."""


def records(services: Iterable[Service], endpoints: dict[tuple[str, str], Endpoints], domain: str) -> Records:
    found: Records = {}
    for service in services:
        meta, spec = service.metadata, service.spec
        name = f"{meta.name}.{meta.namespace}.svc.{domain}.".lower()
        if spec.headless:
            ready = endpoints.get((meta.namespace, meta.name))
            addresses: dict[str, str] = {}
            if ready is not None:
                for port in ready.ports:
                    for target in port.targets:
                        if target.pod_ip:
                            addresses[target.pod] = target.pod_ip
            found[name] = sorted(set(addresses.values()))
            for pod, address in addresses.items():
                found[f"{pod}.{name}".lower()] = [address]
        elif spec.cluster_ip and spec.cluster_ip != "None":
            found[name] = [spec.cluster_ip]
    return found


def answer(query: DNSRecord, known: Records, domain: str) -> DNSRecord | None:
    """The reply to ``query`` from ``known``; None when it is not for the cluster (forward it)."""
    question = query.q
    name = str(question.qname).lower()
    suffix = f".{domain}.".lower()
    if not (name.endswith(suffix) or name == suffix[1:]):
        return None
    reply = query.reply()
    reply.header.aa = 1
    addresses = known.get(name)
    if addresses is None:
        if not any(other.endswith("." + name) for other in known):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply
    if question.qtype in (QTYPE.A, QTYPE.ANY):
        for address in addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL))
    # AAAA and other types: the name exists, with no such record (NOERROR, empty).
    return reply


def host_resolvers(path: Path = Path("/etc/resolv.conf"), exclude: Iterable[str] = ()) -> list[str]:
    """The nameservers the host itself uses (never this node's own address)."""
    skip = set(exclude)
    servers = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in skip:
                servers.append(parts[1])
    return servers or ["127.0.0.53"]


class DnsServer:
    """UDP and TCP on ``address``:``port``; several nodes of one host may share it (SO_REUSEPORT)."""

    def __init__(
        self,
        address: str,
        known: Callable[[], Records],
        domain: str,
        upstream: list[str],
        port: int = 53,
    ) -> None:
        self.address = address
        self.port = port
        self.known = known
        self.domain = domain
        self.upstream = upstream
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        return self._udp is not None

    async def start(self) -> None:
        """Listen, also before the address exists: the bridge appears with the first pod."""
        loop = asyncio.get_running_loop()
        server = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                task = loop.create_task(server._reply_udp(self.transport, data, addr))  # type: ignore[arg-type]
                server._pending.add(task)
                task.add_done_callback(server._pending.discard)

        udp = _bound(socket.SOCK_DGRAM, self.address, self.port)
        tcp = _bound(socket.SOCK_STREAM, self.address, self.port)
        transport, _ = await loop.create_datagram_endpoint(Protocol, sock=udp)
        try:
            tcp.listen(64)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        except OSError:
            transport.close()
            tcp.close()
            raise
        self._udp = transport  # type: ignore[assignment]
        log.info("answering DNS for pods on %s:%d", self.address, self.port)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in self._pending:
            task.cancel()

    async def resolve(self, data: bytes, tcp: bool) -> bytes | None:
        try:
            query = DNSRecord.parse(data)
        except Exception:  # garbage on the port: no answer, as a resolver would
            return None
        try:
            reply = answer(query, self.known(), self.domain)
        except Exception as err:
            log.warning("DNS answer for %s failed: %s", query.q.qname, err)
            reply = query.reply()
            reply.header.rcode = RCODE.SERVFAIL
        if reply is not None:
            return reply.pack()
        forwarded = await self._forward(data, tcp)
        if forwarded is not None:
            return forwarded
        failed = query.reply()
        failed.header.rcode = RCODE.SERVFAIL
        return failed.pack()

    async def _forward(self, data: bytes, tcp: bool) -> bytes | None:
        for upstream in self.upstream:
            server, _, port_text = upstream.partition(":")
            port = int(port_text or 53)
            try:
                if tcp:
                    return await asyncio.wait_for(_tcp_query(server, port, data), FORWARD_TIMEOUT)
                return await asyncio.wait_for(_udp_query(server, port, data), FORWARD_TIMEOUT)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
                log.debug("forwarding to %s failed: %s", server, err)
        return None

    async def _reply_udp(
        self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]
    ) -> None:
        reply = await self.resolve(data, tcp=False)
        if reply is not None and not transport.is_closing():
            transport.sendto(reply, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                reply = await self.resolve(await reader.readexactly(size), tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


IP_FREEBIND = 15
"""Linux: bind to an address this host does not have yet (the bridge's, before it exists)."""


def _bound(kind: int, address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # nodes sharing a host share it
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.setblocking(False)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _udp_query(server: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: tuple[str, int]) -> None:
            if not done.done():
                done.set_result(reply)

        def error_received(self, exc: Exception) -> None:
            if not done.done():
                done.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(
        Protocol, remote_addr=(server, port), family=socket.AF_INET
    )
    try:
        transport.sendto(data)
        return await done
    finally:
        transport.close()


async def _tcp_query(server: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()
