"""A local, watch-fed copy of a KV bucket: the informer of Shoal's actors.

Actors read from the cache and write to the bucket; the cache learns of every write
(its own and everyone else's) through the watch. A restarted watch replays the bucket,
and whatever the replay no longer holds is reported as deleted, so a cache never keeps a
key that vanished while it was not looking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from shoal.bus.kv import Bucket, Entry, Synced
from shoal.models.base import Record

log = logging.getLogger(__name__)

YIELD_EVERY = 64
"""Changes handled before a watch lets the event loop run something else."""

M = TypeVar("M", bound=Record)

ChangeHandler = Callable[[str, "Entry[M] | None", "Entry[M] | None"], None]


class KVCache(Generic[M]):
    def __init__(
        self,
        bucket: Bucket[M],
        on_change: Callable[[str, Entry[M] | None, Entry[M] | None], None] | None = None,
        *,
        keys: str = ">",
    ) -> None:
        self.bucket = bucket
        self.on_change = on_change
        self.keys = keys
        self.entries: dict[str, Entry[M]] = {}
        self.synced = asyncio.Event()
        self.replays = 0
        self._watch: asyncio.Task[None] | None = None
        self._restarting = False

    def _holds(self, key: str, revision: int) -> bool:
        current = self.entries.get(key)
        return current is not None and current.revision >= revision

    def get(self, key: str) -> Entry[M] | None:
        return self.entries.get(key)

    def values(self) -> Iterator[M]:
        return (entry.value for entry in self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def _set(self, key: str, new: Entry[M] | None) -> None:
        old = self.entries.get(key)
        if new is None:
            if old is None:
                return
            del self.entries[key]
        else:
            if old is not None and old.revision >= new.revision:
                return
            self.entries[key] = new
        if self.on_change is not None:
            self.on_change(key, old, new)

    def note_written(self, key: str, value: M, revision: int) -> None:
        """Record our own successful write before the watch echoes it back."""
        self._set(key, Entry(key, value, revision))

    def note_deleted(self, key: str) -> None:
        self._set(key, None)

    def restart(self) -> None:
        """Start the watch again with a replay (after a reconnect, say)."""
        if self._watch is not None and not self._watch.done():
            self._restarting = True
            self._watch.cancel()

    async def run(self) -> None:
        """Watch forever, restarting the watch (with a replay) whenever it fails or is told to."""
        delay = 0.2
        while True:
            self._watch = asyncio.create_task(self._watch_once())
            try:
                await self._watch
            except asyncio.CancelledError:
                if not self._restarting:
                    self._watch.cancel()
                    raise
                self._restarting = False
                self.replays += 1
                continue
            except Exception as err:
                name = self.bucket.definition.name
                log.warning("watch of %s failed (%s); replaying in %.1fs", name, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self.replays += 1
            else:
                delay = 0.2

    async def _watch_once(self) -> None:
        replayed: set[str] = set()
        highest = 0
        replaying = True
        count = 0
        async for change in self.bucket.watch(self.keys, known=self._holds):
            count += 1
            if count % YIELD_EVERY == 0:
                # A backlog of thousands is taken without waiting: let the rest of the actor
                # (heartbeats, leases, other watches) run between slices of it.
                await asyncio.sleep(0)
            if isinstance(change, Synced):
                if replaying:
                    # Keys we hold that the replay did not mention were deleted meanwhile,
                    # unless we wrote them ourselves after the replay's view was taken.
                    for key in [
                        k for k, e in self.entries.items() if k not in replayed and e.revision <= highest
                    ]:
                        self._set(key, None)
                    replaying = False
                    self.synced.set()
                continue
            if replaying:
                replayed.add(change.key)
                highest = max(highest, change.revision)
            if change.known:
                continue
            if change.value is None:
                current = self.entries.get(change.key)
                if current is None or current.revision < change.revision:
                    self._set(change.key, None)
            else:
                self._set(change.key, Entry(change.key, change.value, change.revision))
