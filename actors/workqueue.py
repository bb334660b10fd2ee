"""A queue of keys to sync, in the manner of Kubernetes controllers.

Only keys are queued: each sync re-reads desired and actual state, so a key added ten
times while busy is synced once more, not ten times, and never by two workers at once.
Failed keys come back after an exponential delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.1, max_delay: float = 30.0) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: str) -> None:
        if key in self._queued:
            return
        if key in self._active:
            self._again.add(key)
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        """Add ``key`` in ``delay`` seconds (an earlier pending add wins)."""
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        due = loop.time() + delay
        if timer is not None and not timer.cancelled() and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry_later(self, key: str) -> float:
        """Requeue a key whose sync failed, backing off exponentially; returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.base_delay * 2 ** (failures - 1), self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key synced fine: its next failure starts the backoff afresh."""
        self._failures.pop(key, None)

    async def _get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def _done(self, key: str) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    async def worker(self, sync: Callable[[str], Awaitable[None]]) -> None:
        """Sync keys forever. ``sync`` raising requeues the key with backoff."""
        while True:
            key = await self._get()
            try:
                await sync(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                delay = self.retry_later(key)
                log.warning(
                    "sync of %s failed (%s); retrying in %.1fs",
                    key,
                    err,
                    delay,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            else:
                self.forget(key)
            finally:
                self._done(key)
