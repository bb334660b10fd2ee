"""Which nodes are alive: heartbeats judged by the judge's own, attentive clock.

Every node publishes a heartbeat on ``shoal.v1.node.<node>.heartbeat`` (plain NATS: nothing
stored, nothing acknowledged). A judge (the scheduler, the service actor) notes when each
arrives and calls a node NotReady once it has been silent for longer than its lease.

Silence is measured on an *attentive* clock, which runs only while the judge can listen:
while its own event loop is stalled (a long round, a busy machine) or its connection to
NATS is down (a restart of nats-server), the clock stands still, so the judge never counts
its own deafness against the nodes. Each tick advances it by the time since the last tick,
but never by more than two ticks' worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shoal.bus import subjects
from shoal.bus.codec import decode
from shoal.errors import BadPayload
from shoal.models.base import check_dns_label
from shoal.models.node import NodeHeartbeat

log = logging.getLogger(__name__)

TICK = 0.1
"""Seconds between two advances of the attentive clock."""


class AttentiveClock:
    """Seconds of listening: advances by at most ``max_step`` per tick, and not at all while deaf."""

    def __init__(self, max_step: float = 2 * TICK, now: Callable[[], float] = time.monotonic) -> None:
        self.max_step = max_step
        self.now = now
        self.value = 0.0
        self._last = now()
        self._listening = True

    def tick(self, listening: bool = True) -> float:
        current = self.now()
        if self._listening:
            self.value += min(max(0.0, current - self._last), self.max_step)
        self._last = current
        self._listening = listening
        return self.value

    def read(self) -> float:
        """The clock now, between ticks."""
        if not self._listening:
            return self.value
        return self.value + min(max(0.0, self.now() - self._last), self.max_step)


@dataclass
class _Seen:
    at: float
    """Attentive time of the last heartbeat (or of when the node became known)."""
    lease: float
    heard: bool
    payload: bytes = b""
    started_at: float = 0.0


@dataclass(frozen=True)
class Judgment:
    ready: bool
    silent_for: float
    """Attentive seconds since the last heartbeat (or since the judge learnt of the node)."""
    heard: bool
    """Whether this judge has heard the node at all since it started."""


class NodeHealth:
    """Follows every node's heartbeats; ``judge`` says who is Ready now."""

    def __init__(self, nc: Client, clock: AttentiveClock | None = None) -> None:
        self.nc = nc
        self.clock = clock or AttentiveClock()
        self.seen: dict[str, _Seen] = {}
        self._subscription: Subscription | None = None
        self.on_heartbeat: Callable[[str, bool], None] | None = None
        """Called with (node, first heartbeat since silence) as heartbeats arrive."""

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(subjects.NODE_HEARTBEATS, cb=self._received)

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def run(self) -> None:
        """Advance the attentive clock forever (the owner runs this as a guarded task)."""
        while True:
            await asyncio.sleep(TICK)
            self.clock.tick(listening=self.nc.is_connected)

    def know(self, node: str, lease: float) -> None:
        """A registered node: judged from now on, silent until heard."""
        if node not in self.seen:
            self.seen[node] = _Seen(self.clock.read(), lease, heard=False)
        else:
            self.seen[node].lease = lease

    def forget(self, node: str) -> None:
        self.seen.pop(node, None)

    async def _received(self, msg: Msg) -> None:
        self.heard(msg.subject, msg.data)

    def heard(self, subject: str, payload: bytes) -> None:
        parts = subject.split(".")
        if len(parts) != 5:
            return
        node = parts[3]
        entry = self.seen.get(node)
        if entry is None or entry.payload != payload:
            # A node unknown so far, restarted, or with another lease: the one decode needed.
            try:
                check_dns_label(node)
                beat = decode(payload, NodeHeartbeat, what=f"heartbeat on {subject}")
            except (ValueError, BadPayload) as err:
                log.debug("ignoring a heartbeat: %s", err)
                return
            if beat.node != node:
                return
            if entry is None:
                entry = self.seen[node] = _Seen(0.0, beat.lease_seconds, heard=False)
            entry.payload, entry.lease, entry.started_at = payload, beat.lease_seconds, beat.started_at
        now = self.clock.read()
        revived = not entry.heard or now - entry.at > entry.lease
        entry.at, entry.heard = now, True
        if self.on_heartbeat is not None:
            self.on_heartbeat(node, revived)

    def ready_now(self, node: str, now: float) -> bool:
        """``judge(node, now).ready``, at no cost: a thousand nodes are looked at ten times a second."""
        entry = self.seen.get(node)
        return entry is not None and entry.heard and now - entry.at <= entry.lease

    def judge(self, node: str, now: float | None = None) -> Judgment:
        """``now``: the attentive clock, when judging many nodes at one moment."""
        entry = self.seen.get(node)
        if entry is None:
            return Judgment(ready=False, silent_for=0.0, heard=False)
        silent = max(0.0, (self.clock.read() if now is None else now) - entry.at)
        return Judgment(ready=entry.heard and silent <= entry.lease, silent_for=silent, heard=entry.heard)

    def judge_all(self) -> dict[str, Judgment]:
        now = self.clock.read()
        return {node: self.judge(node, now) for node in self.seen}
