"""The node's exec service: runs a command in a container of one of its pods for ``shoal exec``.

The client subscribes to a session subject of its own (``shoal.v1.exec.<node>.<id>``), then
asks on ``shoal.v1.node.<node>.exec``. The node starts the command through the runtime,
subscribes to the client's input, answers (an Ack, or an error naming the problem), and
publishes ExecChunk messages (standard output and error, in order) to the session subject,
ending with one that carries the exit code. Standard input arrives as ExecInput on
``<session>.stdin``; the client pings ``<session>.keepalive``, and when the pings stop the
command is killed: a client that vanished leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shoal.actors.node.sessions import NodeSessions
from shoal.bus import subjects
from shoal.bus.codec import decode, encode
from shoal.errors import BadPayload, InvalidManifest
from shoal.models.api import Ack, ExecChunk, ExecInput, ExecRequest
from shoal.runtime.terminal import Terminal

log = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 15.0
"""Seconds without a ping from the client after which its command is killed."""
READ_SIZE = 32 * 1024


@dataclass
class _Session:
    """One running command and what the client sends it."""

    request: ExecRequest
    process: asyncio.subprocess.Process | Terminal
    last_ping: float = field(default_factory=time.monotonic)
    inputs: asyncio.Queue[ExecInput] = field(default_factory=asyncio.Queue)
    subscriptions: list[Subscription] = field(default_factory=list)

    async def pinged(self, _: Msg) -> None:
        self.last_ping = time.monotonic()

    async def received(self, msg: Msg) -> None:
        try:
            given = decode(msg.data, ExecInput, what="exec input")
        except BadPayload as err:
            log.warning("exec of %s/%s: %s", self.request.namespace, self.request.pod, err)
            return
        if given.rows and given.columns:
            if isinstance(self.process, Terminal):
                self.process.resize(given.rows, given.columns)
        elif self.request.stdin:
            self.inputs.put_nowait(given)


class ExecService(NodeSessions):
    async def start(self) -> None:
        await self.serve(subjects.node_exec(self.node), ExecRequest, self.handle)

    async def handle(self, request: ExecRequest) -> Ack:
        if not request.stream.startswith(subjects.exec_stream(self.node, "")):
            # Sessions of this node are under its name; anywhere else its output could go
            # to listeners that must not read it.
            under = subjects.exec_stream(self.node, "<id>")
            raise InvalidManifest([f"stream: an exec session of node {self.node} is under {under}"])
        self.check_here(request.namespace, request.pod)
        process = await self.runtime.open_exec(
            request.namespace,
            request.pod,
            request.container,
            request.command,
            stdin=request.stdin,
            tty=request.tty,
            size=(request.rows, request.columns),
        )
        session = _Session(request, process)
        try:
            # Listen before answering: the client sends its input as soon as it has the
            # answer, and what came before the subscription would be lost.
            keepalive = await self.nc.subscribe(subjects.exec_keepalive(request.stream), cb=session.pinged)
            session.subscriptions.append(keepalive)
            if request.stdin or request.tty:
                # A terminal's size changes come as input too, also without -i.
                given = await self.nc.subscribe(subjects.exec_input(request.stream), cb=session.received)
                session.subscriptions.append(given)
        except Exception:
            await self._end(session)
            raise
        self.begin(self._session(session), f"exec {request.pod}")
        return Ack()

    async def _session(self, session: _Session) -> None:
        request, process = session.request, session.process

        async def feed() -> None:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the command ended
                while not (chunk := await session.inputs.get()).eof:
                    process.stdin.write(chunk.data)
                    await process.stdin.drain()
                process.stdin.close()

        async def pump(reader: asyncio.StreamReader | None, fd: int) -> None:
            while reader is not None and (data := await reader.read(READ_SIZE)):
                await self.nc.publish(request.stream, encode(ExecChunk(data=data, fd=fd)))  # type: ignore[arg-type]

        async def watch_pings() -> None:
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - session.last_ping >= KEEPALIVE_TIMEOUT:
                    break
            log.info("exec of %s/%s: the client went quiet; killing it", request.namespace, request.pod)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

        helpers = [asyncio.create_task(watch_pings())]
        if request.stdin:
            helpers.append(asyncio.create_task(feed()))
        error, code = "", None
        try:
            await asyncio.gather(pump(process.stdout, 1), pump(process.stderr, 2))
            code = await process.wait()
        except (BrokenPipeError, ConnectionResetError):
            code = await process.wait()
        except asyncio.CancelledError:
            error = f"node {self.node} is stopping"
        except Exception as err:
            error = str(err)
            log.warning("exec of %s/%s failed: %s", request.namespace, request.pod, err)
        finally:
            for helper in helpers:
                helper.cancel()
            await self._end(session)
            with contextlib.suppress(Exception):
                end = ExecChunk(end=True, exit_code=code, error=error)
                await self.nc.publish(request.stream, encode(end))

    async def _end(self, session: _Session) -> None:
        """Stop listening to the client, and leave no process or terminal behind."""
        for subscription in session.subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        process = session.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await process.wait()
        if isinstance(process, Terminal):
            process.close()  # its end of the pseudo-terminal, also when the command was reaped early
