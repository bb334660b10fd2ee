"""The node's log service: streams a container's output to whoever asked, over NATS.

The client subscribes to a stream subject of its own, then asks on
``shoal.v1.node.<node>.logs``. The node answers (an Ack, or an error naming the problem)
and publishes LogChunk messages to the stream subject, ending with ``end: true``. A
following client pings a keepalive subject; when the pings stop, so does the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shoal.actors.node.sessions import NodeSessions
from shoal.bus import subjects
from shoal.bus.codec import encode
from shoal.models.api import Ack, LogChunk, LogsRequest

log = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 15.0
MAX_CHUNK = 64 * 1024


class LogService(NodeSessions):
    async def start(self) -> None:
        await self.serve(subjects.node_logs(self.node), LogsRequest, self.handle)

    async def handle(self, request: LogsRequest) -> Ack:
        self.check_here(request.namespace, request.pod)
        chunks = await self.runtime.logs(
            request.namespace,
            request.pod,
            request.container,
            follow=request.follow,
            tail=request.tail,
            since=request.since,
            previous=request.previous,
        )
        self.begin(self._stream(request, chunks), f"logs {request.pod}")
        return Ack()

    async def _stream(self, request: LogsRequest, chunks: AsyncIterator[bytes]) -> None:
        last_ping = time.monotonic()
        keepalive: Subscription | None = None
        watchdog: asyncio.Task[None] | None = None
        pump = asyncio.current_task()

        async def pinged(_: Msg) -> None:
            nonlocal last_ping
            last_ping = time.monotonic()

        async def watch_pings() -> None:
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - last_ping >= KEEPALIVE_TIMEOUT:
                    break
            if pump is not None:
                pump.cancel()

        error = ""
        try:
            if request.follow:
                keepalive = await self.nc.subscribe(subjects.logs_keepalive(request.stream), cb=pinged)
                watchdog = asyncio.create_task(watch_pings())
            async for chunk in chunks:
                for start in range(0, len(chunk), MAX_CHUNK):
                    await self.nc.publish(
                        request.stream, encode(LogChunk(data=chunk[start : start + MAX_CHUNK]))
                    )
        except asyncio.CancelledError:
            pass
        except Exception as err:
            error = str(err)
            log.warning("log stream of %s/%s failed: %s", request.namespace, request.pod, err)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if keepalive is not None:
                with contextlib.suppress(Exception):
                    await keepalive.unsubscribe()
            with contextlib.suppress(Exception):
                await chunks.aclose()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await self.nc.publish(request.stream, encode(LogChunk(end=True, error=error)))
