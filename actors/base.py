"""What every actor shares: a visible lifecycle, guarded background tasks, signal handling.

An actor owns no shared memory: it reacts to messages and KV watches and keeps its state
in NATS. A background task that crashes is logged and fails the whole actor, whose
process then exits non-zero; whoever supervises it (``shoal up``, systemd, a container
runtime) starts it again, and it rebuilds everything from KV.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import signal
import socket
from collections.abc import Coroutine
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from shoal.bus.cache import KVCache
from shoal.bus.connection import on_reconnect

log = logging.getLogger(__name__)


def instance_name(role: str) -> str:
    """``<role>-<host>-<pid>`` as one DNS label: who holds a lease, in events and logs."""
    host = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().split(".")[0].lower()).strip("-")[:30] or "host"
    return f"{role}-{host}-{os.getpid()}"


class ActorState(enum.StrEnum):
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"


class Actor:
    role = "actor"

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=10)
        self.state = ActorState.STARTING
        self._tasks: set[asyncio.Task[Any]] = set()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._done = asyncio.Event()
        self.failure: BaseException | None = None
        self.caches: list[KVCache] = []
        on_reconnect(nc, self._replay_watches)

    def watch(self, cache: KVCache) -> KVCache:
        """Keep ``cache`` current for the actor's life, replaying it after every reconnect."""
        self.caches.append(cache)
        self.spawn(cache.run(), f"watch {cache.bucket.definition.name}")
        return cache

    def _replay_watches(self) -> None:
        for cache in self.caches:
            cache.restart()

    async def start(self) -> None:
        """Set up subscriptions and tasks; subclasses call this last."""
        self.state = ActorState.RUNNING
        log.info("%s running", self.role)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; if it ever fails, the actor fails."""
        task = asyncio.create_task(coro, name=f"{self.role}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def run_soon(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """A one-off side job (publish an event, kill a container): its failure is logged, not fatal."""

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: %s failed", self.role, name)

        task = asyncio.create_task(guarded(), name=f"{self.role}:{name}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self.state in (ActorState.STOPPING, ActorState.STOPPED):
            return
        error = task.exception()
        if error is None:
            log.error("%s: background task %s ended unexpectedly", self.role, task.get_name())
            error = RuntimeError(f"task {task.get_name()} ended")
        else:
            log.error("%s: background task %s crashed", self.role, task.get_name(), exc_info=error)
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        self.state = ActorState.FAILED
        self._done.set()

    async def wait(self) -> None:
        """Until the actor is stopped or fails."""
        await self._done.wait()

    async def stop(self) -> None:
        if self.state in (ActorState.STOPPING, ActorState.STOPPED):
            return
        failed = self.state == ActorState.FAILED
        self.state = ActorState.STOPPING
        tasks = list(self._tasks) + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.on_stop()
        self.state = ActorState.FAILED if failed else ActorState.STOPPED
        self._done.set()

    async def on_stop(self) -> None:
        """Subclasses release what they hold (subscriptions, runtimes) here, after the tasks stopped."""


async def run_until_signalled(actor: Actor) -> int:
    """Start ``actor``, run until SIGINT/SIGTERM or failure, stop it; the process exit code."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    await actor.start()
    waiter = asyncio.create_task(actor.wait())
    stopper = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    stopper.cancel()
    failed = actor.failure is not None
    await actor.stop()
    try:
        await asyncio.wait_for(actor.nc.drain(), timeout=5)
    except Exception as err:
        log.debug("closing the NATS connection: %s", err)
    return 1 if failed else 0
