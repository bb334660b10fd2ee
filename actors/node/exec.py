"""The node's exec service: runs a command in a container of one of its pods for ``shoal exec``.

The client subscribes to a session subject of its own (``shoal.v1.exec.<node>.<id>``), then
asks on ``shoal.v1.node.<node>.exec``. The node answers (an Ack, or an error naming the
problem), starts the command through the runtime, and publishes ExecChunk messages (standard
output and error, in order) to the session subject, ending with one that carries the exit
code. Standard input arrives as ExecInput on ``<session>.stdin``; the client pings
``<session>.keepalive``, and when the pings stop the command is killed: a client that
vanished leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg

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
        self.begin(self._session(request, process), f"exec {request.pod}")
        return Ack()

    async def _session(self, request: ExecRequest, process: asyncio.subprocess.Process | Terminal) -> None:
        last_ping = time.monotonic()
        inputs: asyncio.Queue[ExecInput] = asyncio.Queue()

        async def pinged(_: Msg) -> None:
            nonlocal last_ping
            last_ping = time.monotonic()

        async def received(msg: Msg) -> None:
            try:
                given = decode(msg.data, ExecInput, what="exec input")
            except BadPayload as err:
                log.warning("exec of %s/%s: %s", request.namespace, request.pod, err)
                return
            if given.rows and given.columns:
                if isinstance(process, Terminal):
                    process.resize(given.rows, given.columns)
            elif request.stdin:
                inputs.put_nowait(given)

        async def feed() -> None:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the command ended
                while not (chunk := await inputs.get()).eof:
                    process.stdin.write(chunk.data)
                    await process.stdin.drain()
                process.stdin.close()

        async def pump(reader: asyncio.StreamReader | None, fd: int) -> None:
            while reader is not None and (data := await reader.read(READ_SIZE)):
                await self.nc.publish(request.stream, encode(ExecChunk(data=data, fd=fd)))  # type: ignore[arg-type]

        async def watch_pings() -> None:
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - last_ping >= KEEPALIVE_TIMEOUT:
                    break
            log.info("exec of %s/%s: the client went quiet; killing it", request.namespace, request.pod)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

        subscriptions = [await self.nc.subscribe(subjects.exec_keepalive(request.stream), cb=pinged)]
        helpers = [asyncio.create_task(watch_pings())]
        if request.stdin or request.tty:
            # A terminal's size changes come as input too, also without -i.
            subscriptions.append(await self.nc.subscribe(subjects.exec_input(request.stream), cb=received))
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
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(Exception):
                    await process.wait()
            with contextlib.suppress(Exception):
                end = ExecChunk(end=True, exit_code=code, error=error)
                await self.nc.publish(request.stream, encode(end))
