"""What the node's request services share (logs, exec, port-forward): a subject of the node's
own that clients ask on, the pods they may ask about (those that run here), and the sessions
each accepted request starts, which end with the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from shoal.bus.rpc import serve
from shoal.errors import NotFound
from shoal.models.api import Ack
from shoal.models.base import Record
from shoal.runtime.interface import Runtime


class NodeSessions:
    def __init__(
        self, nc: Client, runtime: Runtime, node: str, runs_here: Callable[[str, str], bool]
    ) -> None:
        self.nc = nc
        self.runtime = runtime
        self.node = node
        self.runs_here = runs_here
        self._subscription: Subscription | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def serve(self, subject: str, model: type[Record], handle: Callable[[Any], Awaitable[Ack]]) -> None:
        self._subscription = await serve(self.nc, subject, model, handle, owner=f"node {self.node}")

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        for task in list(self._sessions):
            task.cancel()

    def check_here(self, namespace: str, pod: str) -> None:
        if not self.runs_here(namespace, pod):
            raise NotFound(f"pod {namespace}/{pod} does not run on node {self.node}")

    def begin(self, session: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(session, name=name)
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)
