"""Fan-out to browsers: every patch is encoded once and queued for every connected browser.

Patches are gathered for ``flush_interval`` seconds and sent together (a rollout that
touches fifty pods is one message, not fifty). A browser that falls ``queue_limit`` messages
behind is cut off; its EventSource connects again and starts over from a fresh snapshot,
so a slow phone never holds memory or the server back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from shoal.dashboard.state import ClusterState, Patch, coalesce, encode

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
QUEUE_LIMIT = 256


@dataclass(eq=False)
class Subscriber:
    snapshot: str
    """The state when it subscribed, as JSON."""
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    """Encoded batches of patches; None: the stream is over (shutdown, or too far behind)."""


class Hub:
    def __init__(
        self, state: ClusterState, *, flush_interval: float = FLUSH_INTERVAL, queue_limit: int = QUEUE_LIMIT
    ) -> None:
        self.state = state
        self.flush_interval = flush_interval
        self.queue_limit = queue_limit
        self.subscribers: set[Subscriber] = set()
        self.pending: list[Patch] = []
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    def subscribe(self) -> Subscriber:
        """A new browser: the snapshot and its queue are taken together, so it misses nothing."""
        subscriber = Subscriber(self.state.snapshot_json())
        if self.closed:
            subscriber.queue.put_nowait(None)
        else:
            self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, patches: list[Patch]) -> None:
        if not patches or self.closed:
            return
        self.pending.extend(patches)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self.pending:
            return
        batch = coalesce(self.pending)
        self.pending = []
        if not self.subscribers:
            return
        message = encode(batch)
        for subscriber in list(self.subscribers):
            if subscriber.queue.qsize() >= self.queue_limit:
                log.info("a browser fell %d messages behind; it starts over", self.queue_limit)
                self.subscribers.discard(subscriber)
                subscriber.queue.put_nowait(None)
            else:
                subscriber.queue.put_nowait(message)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for subscriber in self.subscribers:
            subscriber.queue.put_nowait(None)
        self.subscribers.clear()
