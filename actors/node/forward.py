"""The node's port-forward service: one TCP connection to a pod's port, for ``shoal port-forward``.

A session is an exec session's twin (``shoal.v1.exec.<node>.<id>``, so the same permissions
hold: an admin's alone): the client asks on ``shoal.v1.node.<node>.forward``, the node
connects to the pod's IP and port from this host, answers (an Ack, or an error naming the
problem), then relays: what the pod sends goes out as ExecChunk on the session subject,
ending with ``end``; what the client sends arrives as ExecInput on ``<session>.stdin``
(``eof``: the client closed its side). When the client's pings stop, the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shoal.actors.node.sessions import NodeSessions
from shoal.bus import subjects
from shoal.bus.codec import decode, encode
from shoal.errors import BadPayload, InvalidManifest, ShoalError
from shoal.models.api import Ack, ExecChunk, ExecInput, ForwardRequest

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 15.0
"""Seconds without a ping from the client after which the connection is closed."""
READ_SIZE = 32 * 1024


class ForwardService(NodeSessions):
    async def start(self) -> None:
        await self.serve(subjects.node_forward(self.node), ForwardRequest, self.handle)

    async def handle(self, request: ForwardRequest) -> Ack:
        if not request.stream.startswith(subjects.exec_stream(self.node, "")):
            under = subjects.exec_stream(self.node, "<id>")
            raise InvalidManifest([f"stream: a session of node {self.node} is under {under}"])
        self.check_here(request.namespace, request.pod)
        observed = await self.runtime.inspect_pod(request.namespace, request.pod)
        if observed is None or not observed.ip:
            raise ShoalError(f"pod {request.pod} has no address on node {self.node} yet")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(observed.ip, request.port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as err:
            raise ShoalError(
                f"pod {request.pod} port {request.port}: cannot connect ({err.strerror or err})"
                if isinstance(err, OSError)
                else f"pod {request.pod} port {request.port}: no answer in {CONNECT_TIMEOUT:g}s"
            ) from None
        # Listen before answering: the client sends as soon as it has the answer.
        session = _Session(request, reader, writer)
        session.subscriptions = [
            await self.nc.subscribe(subjects.exec_keepalive(request.stream), cb=session.pinged),
            await self.nc.subscribe(subjects.exec_input(request.stream), cb=session.received),
        ]
        self.begin(self._relay(session), f"forward {request.pod}")
        return Ack()

    async def _relay(self, session: _Session) -> None:
        request, reader, writer = session.request, session.reader, session.writer

        async def feed() -> None:
            with contextlib.suppress(ConnectionError):  # the pod closed its side
                while not (chunk := await session.inputs.get()).eof:
                    writer.write(chunk.data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()

        async def pump() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(READ_SIZE):
                    await self.nc.publish(request.stream, encode(ExecChunk(data=data)))

        async def watch_pings() -> None:
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - session.last_ping >= KEEPALIVE_TIMEOUT:
                    break
            log.info("port-forward to %s/%s: the client went quiet", request.namespace, request.pod)

        helpers = [asyncio.create_task(feed()), asyncio.create_task(watch_pings())]
        error = ""
        try:
            # The session ends when the pod closes its side, or the client goes quiet.
            pumping = asyncio.create_task(pump())
            helpers.append(pumping)
            await asyncio.wait([pumping, helpers[1]], return_when=asyncio.FIRST_COMPLETED)
            if pumping.done():
                pumping.result()
        except asyncio.CancelledError:
            error = f"node {self.node} is stopping"
        except Exception as err:
            error = str(err)
            log.warning("port-forward to %s/%s failed: %s", request.namespace, request.pod, err)
        finally:
            for helper in helpers:
                helper.cancel()
            for subscription in session.subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            writer.close()
            with contextlib.suppress(Exception):
                await self.nc.publish(request.stream, encode(ExecChunk(end=True, error=error)))


class _Session:
    """One forwarded connection: the pod's side, and what the client sent and when it last pinged."""

    def __init__(
        self, request: ForwardRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.request, self.reader, self.writer = request, reader, writer
        self.inputs: asyncio.Queue[ExecInput] = asyncio.Queue()
        self.last_ping = time.monotonic()
        self.subscriptions: list[Subscription] = []

    async def pinged(self, _: Msg) -> None:
        self.last_ping = time.monotonic()

    async def received(self, msg: Msg) -> None:
        try:
            self.inputs.put_nowait(decode(msg.data, ExecInput, what="forwarded data"))
        except BadPayload as err:
            log.warning("port-forward to %s/%s: %s", self.request.namespace, self.request.pod, err)
