"""Several actors in one process, each still on its own: a connection, a lease, a restart of its own.

``shoal up`` hosts the control plane and its node actors this way to fit a small box: one
Python process instead of one per role. Sharing a process is not sharing a fate: each
actor has its own NATS connection (so its own reconnects, subscriptions and leases), and
one that fails is stopped and started again, with backoff, while the others carry on. The
roles still run alone as their own commands (``shoal scheduler``...), which is how they
are spread over hosts and replicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client

from shoal.actors.base import Actor, close_connection, steady_gc
from shoal.bus.connection import connect_actor
from shoal.security.access import Access

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0


@dataclass
class Hosted:
    """One actor of the host: how to make it (again), and how it fares."""

    name: str
    make: Callable[[Client], Awaitable[Actor]]
    group: str = "control"
    """Actors stop group by group, in the order the host is told (nodes before the control plane)."""
    access: Access | None = None
    """The identity it connects as (each actor its own, as if it ran alone)."""
    actor: Actor | None = None
    restarts: int = 0
    running: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str = ""
    """Why it last failed, for whoever reports on the host."""


class ActorHost:
    def __init__(
        self, url: str, actors: list[Hosted], *, on_restart: Callable[[Hosted, str], None] | None = None
    ):
        self.url = url
        self.actors = actors
        self.on_restart = on_restart
        self.stopping = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        for hosted in self.actors:
            self._tasks[hosted.name] = asyncio.create_task(
                self._supervise(hosted), name=f"host {hosted.name}"
            )

    async def wait_running(self) -> None:
        await asyncio.gather(*(hosted.running.wait() for hosted in self.actors))

    def first_failure(self) -> Hosted | None:
        return next((h for h in self.actors if h.failure and not h.running.is_set()), None)

    async def stop(self, order: list[str]) -> None:
        """Stop the actors group by group in ``order`` (groups not named go last)."""
        self.stopping.set()
        groups = [*order, *sorted({h.group for h in self.actors} - set(order))]
        for group in groups:
            names = [h.name for h in self.actors if h.group == group]
            tasks = [self._tasks[name] for name in names if name in self._tasks]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self, hosted: Hosted) -> None:
        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            nc: Client | None = None
            try:
                nc = await connect_actor(
                    self.url, f"shoal-{hosted.name.replace('/', '-')}", access=hosted.access
                )
                hosted.actor = await hosted.make(nc)
                await hosted.actor.start()
                hosted.running.set()
                steady_gc()
                hosted.failure = ""
                delay = BACKOFF_FIRST
                await hosted.actor.wait()
                why = repr(hosted.actor.failure) if hosted.actor.failure else "it stopped"
            except asyncio.CancelledError:
                await self._release(hosted, nc)
                raise
            except Exception as err:
                why = f"{type(err).__name__}: {err}"
                log.error(
                    "%s could not start: %s", hosted.name, why, exc_info=log.isEnabledFor(logging.DEBUG)
                )
            await self._release(hosted, nc)
            hosted.running.clear()
            hosted.failure = why
            hosted.restarts += 1
            if self.on_restart is not None:
                self.on_restart(hosted, why)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _release(self, hosted: Hosted, nc: Client | None) -> None:
        actor, hosted.actor = hosted.actor, None
        # Shielded: a stop asked for by the host must still let the actor stop cleanly.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            if actor is not None:
                await asyncio.shield(actor.stop(actor.stop_deadline()))
            if nc is not None:
                await asyncio.shield(close_connection(nc))
