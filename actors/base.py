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
import gc
import itertools
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Coroutine
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from shoal.bus import subjects
from shoal.bus.cache import KVCache
from shoal.bus.codec import encode
from shoal.bus.connection import on_reconnect, replicas_for
from shoal.models.api import ProcessStats

log = logging.getLogger(__name__)

STOP_DEADLINE = 3.0
"""Seconds an actor has to stop once told to; what is not done by then is abandoned."""


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
        self.js_replicas = 0
        """JetStream replicas of the buckets and streams this actor makes when they are missing
        (0: as many as the NATS cluster allows, ``replicas_for``)."""
        self.owns_state = True
        """False for actors whose host (a fleet) sees to the buckets for them."""
        on_reconnect(nc, self._replay_watches)

    def watch(self, cache: KVCache) -> KVCache:
        """Keep ``cache`` current for the actor's life, replaying it after every reconnect."""
        self.caches.append(cache)
        self.spawn(cache.run(), f"watch {cache.bucket.definition.name}")
        return cache

    def _replay_watches(self) -> None:
        self.run_soon(self._after_reconnect(), "after reconnect")

    async def _after_reconnect(self) -> None:
        # A restarted nats-server may have lost what it kept in memory (the metrics bucket):
        # make it again before replaying the watches that read it.
        if self.owns_state:
            try:
                await self.ensure_state(deadline=30.0)
            except Exception as err:
                log.warning("could not make sure of the buckets after a reconnect: %s", err)
        for cache in self.caches:
            cache.restart()

    async def ensure_state(self, deadline: float = 60.0) -> None:
        """The buckets, the event stream and the image store, made if missing (``js_replicas`` copies).

        A cluster of servers still forming answers with errors for a while (no JetStream
        leader yet, or fewer servers up than the replicas asked for): tried again until
        ``deadline`` seconds have passed.
        """
        from shoal.bus.state import ensure_state

        give_up = time.monotonic() + deadline
        for attempt in itertools.count():
            try:
                await ensure_state(self.js, self.js_replicas or replicas_for(self.nc))
                return
            except Exception as err:
                if time.monotonic() > give_up:
                    raise
                level = logging.WARNING if attempt and attempt % 10 == 0 else logging.DEBUG
                log.log(level, "JetStream not ready for the buckets yet (%s); trying again", err)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

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

    def stop_deadline(self) -> float:
        """Seconds this actor gets to stop when its process is told to."""
        return STOP_DEADLINE

    async def stop(self, deadline: float = STOP_DEADLINE) -> None:
        """Cancel every task and release what the actor holds, within ``deadline`` seconds.

        Whatever does not finish in time (a request to a NATS server that is gone, say) is
        abandoned: an actor told to stop always stops.
        """
        if self.state in (ActorState.STOPPING, ActorState.STOPPED):
            return
        failed = self.state == ActorState.FAILED
        self.state = ActorState.STOPPING
        tasks = list(self._tasks) + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, until - loop.time()))
            if pending:
                log.warning("%s: %d task(s) did not stop in time", self.role, len(pending))
        try:
            async with asyncio.timeout_at(until):
                await self.on_stop()
                events = getattr(self, "events", None)
                if events is not None:
                    await events.close()
        except TimeoutError:
            log.warning(
                "%s: releasing what it holds took longer than %.0fs; stopping anyway", self.role, deadline
            )
        except Exception as err:
            log.warning("%s: stopping: %s", self.role, err)
        self.state = ActorState.FAILED if failed else ActorState.STOPPED
        self._done.set()

    async def on_stop(self) -> None:
        """Subclasses release what they hold (subscriptions, runtimes) here, after the tasks stopped."""


async def close_connection(nc: Client, timeout: float = 1.0) -> None:
    """Drain the connection if the server is there, else just close it; never wait long."""
    try:
        async with asyncio.timeout(timeout):
            if nc.is_connected:
                await nc.drain()
            else:
                await nc.close()
    except Exception as err:
        log.debug("closing the NATS connection: %s", err)
        with contextlib.suppress(Exception):
            await nc.close()


async def run_until_signalled(actor: Actor) -> int:
    """Start ``actor``, run until SIGINT/SIGTERM or failure, stop it; the process exit code.

    A role stops within ``STOP_DEADLINE`` (plus a second to close its connection) of the
    signal, whether NATS is up, down or unreachable, mid-round or idle; a second signal
    ends the process at once.
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()

    def requested() -> None:
        if stop_requested.is_set():
            os._exit(130)  # asked twice: no more waiting
        stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, requested)
    watch = LoopWatch(actor.nc, instance_name(actor.role), [actor.role])
    await watch.start()
    starting = asyncio.create_task(actor.start())
    stopper = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is None:
        steady_gc()  # the caches are loaded: what is alive now lives long
        waiter = asyncio.create_task(actor.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    elif not starting.done():
        starting.cancel()  # stopped while starting (NATS away, say)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
    else:
        log.error("%s could not start: %s", actor.role, starting.exception())
        actor.fail(starting.exception() or RuntimeError("start failed"))
    stopper.cancel()
    failed = actor.failure is not None
    await actor.stop(actor.stop_deadline())
    await watch.stop()
    log.info("longest event-loop stall: %.0f ms", watch.max_stall * 1000)
    await close_connection(actor.nc)
    return 1 if failed else 0


STALL_PROBE_SECONDS = 0.05
STALL_REPORTED = 0.1
"""An event-loop stall longer than this is counted (and logged once it passes a second)."""


def steady_gc() -> None:
    """Keep Python's full garbage collections short however big the caches grow.

    A full collection walks every live object: with a cache of tens of thousands of records
    it held the event loop for 200-450 ms at a time and found almost nothing to free
    (records are freed by reference counting; they hold no cycles). After each full
    collection the survivors are frozen (``gc.freeze``), so the next one walks only what was
    made since; cycles among new objects are still collected.
    """
    if any(getattr(cb, "__name__", "") == "_freeze_survivors" for cb in gc.callbacks):
        return

    def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.set_threshold(5_000, 5, 1)
    gc.collect()
    gc.freeze()
    gc.callbacks.append(_freeze_survivors)


class LoopWatch:
    """Measures how long the event loop is kept from running (a loop-lag probe) and answers
    ``shoal.v1.debug.stats`` with it, so benchmarks and operators can see every process's
    longest stall."""

    def __init__(self, nc: Client, name: str, roles: list[str]) -> None:
        self.nc = nc
        self.name = name
        self.roles = roles
        self.max_stall = 0.0
        self.stalls = 0
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._probe(), name="loop watch")
        self._subscription = await self.nc.subscribe(subjects.PROCESS_STATS, cb=self._answer)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    def stats(self) -> ProcessStats:
        return ProcessStats(
            name=self.name,
            roles=self.roles,
            pid=os.getpid(),
            uptime=time.monotonic() - self.started,
            max_stall=self.max_stall,
            stalls=self.stalls,
        )

    async def _answer(self, msg: Msg) -> None:
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(encode(self.stats()))

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(STALL_PROBE_SECONDS)
            stall = loop.time() - before - STALL_PROBE_SECONDS
            self.max_stall = max(self.max_stall, stall)
            if stall > STALL_REPORTED:
                self.stalls += 1
                if stall > 1.0:
                    log.warning("the event loop was held for %.1fs", stall)
