"""Leader election over a KV key: one leader among any number of replicas of an actor.

The leader renews the key with compare-and-swap every ``ttl / 5``. Followers poll it; when
its revision has not moved for ``ttl`` seconds by their own clock, one of them takes it
(again with compare-and-swap, so exactly one wins). The leader acts only while less than
``ttl`` has passed since the start of its last successful renewal, also by its own clock,
so an old leader stops before a new one can start; a renewal that loses a race deposes it
at once. A leader that stops cleanly deletes the key, and a follower takes over at its next
poll instead of waiting for the lease to lapse.

The clock rule keeps two leaders apart in the usual case; ``prepare`` makes it hold by
construction: a new leader runs it (moving the fences of its writers, ``bus/batch.py``)
before it leads, so whatever a deposed leader still sends is refused by the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from shoal.bus.kv import Bucket
from shoal.errors import Conflict
from shoal.models.node import LeaseRecord

log = logging.getLogger(__name__)


class LeaderLease:
    def __init__(
        self,
        bucket: Bucket[LeaseRecord],
        key: str,
        holder: str,
        *,
        ttl: float = 1.5,
        on_change: Callable[[bool], None] | None = None,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.holder = holder
        self.ttl = ttl
        self.renew_every = ttl / 5
        self.poll_every = min(0.1, ttl / 10)
        self.on_change = on_change
        self.prepare = prepare
        """Run once a term is won, before leading: it must succeed, or the term is not taken."""
        self.term = 0
        self._revision = 0
        self._valid_until = 0.0
        self._leading = False
        self.elected = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading and time.monotonic() < self._valid_until

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self.elected.set()
        else:
            self.elected.clear()
        log.info(
            "%s %s leadership of %s (term %d)",
            self.holder,
            "took" if leading else "lost",
            self.key,
            self.term,
        )
        if self.on_change is not None:
            self.on_change(leading)

    async def run(self) -> None:
        seen_revision = -1
        seen_at = time.monotonic()
        while True:
            if self._leading:
                await self._renew()
                await asyncio.sleep(self.renew_every)
                continue
            try:
                entry = await self.bucket.get(self.key)
            except Exception as err:
                log.debug("reading lease %s: %s", self.key, err)
                await asyncio.sleep(self.poll_every)
                continue
            now = time.monotonic()
            if entry is None:
                await self._take(None, 0)
            elif entry.revision != seen_revision:
                seen_revision, seen_at = entry.revision, now
                self.term = max(self.term, entry.value.term)
            elif now - seen_at > entry.value.ttl:
                await self._take(entry.revision, entry.value.term)
            if not self._leading:
                await asyncio.sleep(self.poll_every)

    def _record(self, term: int) -> LeaseRecord:
        return LeaseRecord(holder=self.holder, term=term, renewed_at=time.time(), ttl=self.ttl)

    async def _take(self, revision: int | None, term: int) -> None:
        started = time.monotonic()
        record = self._record(term + 1)
        try:
            if revision is None:
                self._revision = await self.bucket.create(self.key, record)
            else:
                self._revision = await self.bucket.update(self.key, record, revision)
        except Conflict:
            return  # another candidate won
        except Exception as err:
            log.debug("taking lease %s: %s", self.key, err)
            return
        self.term = record.term
        if self.prepare is not None:
            try:
                await self.prepare()
            except Exception as err:
                log.warning(
                    "%s won %s (term %d) but could not prepare to lead: %s",
                    self.holder,
                    self.key,
                    self.term,
                    err,
                )
                return
        self._valid_until = started + self.ttl
        self._set_leading(True)

    async def _renew(self) -> None:
        started = time.monotonic()
        try:
            self._revision = await self.bucket.update(self.key, self._record(self.term), self._revision)
            self._valid_until = started + self.ttl
        except Conflict:
            self._set_leading(False)  # someone took it: we are not leader any more
        except Exception as err:
            log.warning("could not renew lease %s: %s", self.key, err)
            if time.monotonic() >= self._valid_until:
                self._set_leading(False)

    def step_down(self) -> None:
        """Stop leading at once: a write showed that a newer term has begun."""
        self._set_leading(False)

    async def release(self) -> None:
        """Give the lease up so a follower takes over at once."""
        if self._leading:
            self._leading = False
            self.elected.clear()
            if not self.bucket.connected:
                return  # nobody to tell: the lease lapses by itself
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    # Re-read: a renewal cut short by shutdown may have landed after all.
                    entry = await self.bucket.get(self.key)
                    if entry is not None and entry.value.holder == self.holder:
                        await self.bucket.delete(self.key, entry.revision)
