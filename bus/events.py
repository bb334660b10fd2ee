"""The event feed: publishing events, and reading them back from their stream.

Events go out as plain NATS publishes on ``shoal.v1.events...``; the SHOAL_EVENTS stream
captures them with bounded retention. Publishing does not wait for the stream's
acknowledgement: events describe changes whose truth is already stored in KV, and an
actor must never stall because the feed is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from shoal.bus import subjects
from shoal.bus.batch import BucketWriter, KVWrite, allow_batches, create_batched_stream, exists_or_made
from shoal.bus.codec import decode, encode_raw
from shoal.bus.kv import connection_of
from shoal.errors import BadPayload
from shoal.models.base import SCHEMA_VERSION
from shoal.models.event import Event

log = logging.getLogger(__name__)

RETENTION_SECONDS = 24 * 3600
PERSIST_MODE_FIXED = 10052
RETENTION_MESSAGES = 100_000
RETENTION_BYTES = 256 * 1024 * 1024


async def ensure_events_stream(js: JetStreamContext, replicas: int = 1) -> None:
    async def exists() -> bool:
        try:
            await js.stream_info(subjects.EVENTS_STREAM)
        except NotFoundError:
            return False
        return True

    await exists_or_made(exists, lambda: _create_events_stream(js, replicas), "the events stream")
    try:
        await allow_batches(connection_of(js), subjects.EVENTS_STREAM, [subjects.EVENTS_ALL])
    except nats.js.errors.APIError as err:
        if err.err_code != PERSIST_MODE_FIXED:
            raise
        # A stream made before (persisted asynchronously) keeps that: events go one by one.
        log.info("the events stream takes no batches (%s); events are stored one at a time", err.description)


async def _create_events_stream(js: JetStreamContext, replicas: int) -> None:
    config = StreamConfig(
        name=subjects.EVENTS_STREAM,
        description="Shoal events: every change to deployments, pods and nodes",
        subjects=[subjects.EVENTS_ALL],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=RETENTION_SECONDS,
        max_msgs=RETENTION_MESSAGES,
        max_bytes=RETENTION_BYTES,
        storage=StorageType.FILE,
        num_replicas=replicas,
    )
    await create_batched_stream(connection_of(js), config, [])


class EventPublisher:
    """Publishes events for one actor (``source``).

    ``emit`` never waits: events are queued and stored by a writer that batches them, waits
    for the stream's acknowledgement, and tries again while the server is away (a restart of
    nats-server loses none of them); beyond ``MAX_UNSENT`` waiting, new ones are dropped.
    """

    def __init__(self, nc: Client, source: str, writer: BucketWriter | None = None) -> None:
        """``writer``: shared by the publishers of one process (a fleet's nodes)."""
        self.nc = nc
        self.source = source
        self.owns_writer = writer is None
        self.writer = writer or events_writer(nc)
        self.unsent = 0

    async def emit(
        self,
        kind: str,
        namespace: str,
        name: str,
        reason: str,
        message: str = "",
        *,
        type: Literal["Normal", "Warning"] = "Normal",
        **fields: Any,
    ) -> None:
        self.send(kind, namespace, name, reason, message, type=type, **fields)

    def send(
        self,
        kind: str,
        namespace: str,
        name: str,
        reason: str,
        message: str = "",
        *,
        type: Literal["Normal", "Warning"] = "Normal",
        **fields: Any,
    ) -> None:
        """``emit`` from code that does not await (it never waits anyway)."""
        # The wire form of an Event, built directly: actors emit thousands in a busy second.
        event = {
            "schema": SCHEMA_VERSION,
            "id": uuid.uuid4().hex,
            "time": time.time(),
            "type": type,
            "reason": reason,
            "message": message,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "source": self.source,
            "fields": fields,
        }
        self._send(KVWrite(subjects.event(kind, namespace, name, reason), encode_raw(event)), 0)

    def _send(self, write: KVWrite, attempt: int) -> None:
        if self.unsent >= MAX_UNSENT:
            log.warning("%s: %d events unsent; dropping %s", self.source, self.unsent, write.key)
            return
        try:
            outcome = self.writer.submit(write)
        except RuntimeError:  # no running loop: shutting down
            return
        self.unsent += 1
        outcome.add_done_callback(lambda done: self._sent(done, write, attempt))

    def _sent(self, done: asyncio.Future[int], write: KVWrite, attempt: int) -> None:
        self.unsent -= 1
        if done.cancelled() or done.exception() is None:
            return
        if attempt == 0:
            log.info(
                "%s: could not store event %s yet (%s); trying again",
                self.source,
                write.key,
                done.exception(),
            )
        delay = min(0.2 * 2**attempt, 5.0)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(delay, self._send, write, attempt + 1)

    async def close(self) -> None:
        if self.owns_writer:
            await self.writer.close()


def events_writer(nc: Client) -> BucketWriter:
    return BucketWriter(nc, subjects.EVENTS_STREAM, stream=subjects.EVENTS_STREAM)


MAX_UNSENT = 10_000


async def read_events(
    js: JetStreamContext, *, follow: bool, last: int | None = None, subject: str = subjects.EVENTS_ALL
) -> AsyncIterator[Event]:
    """Events from the stream, oldest first (the newest ``last`` if given), then new ones if ``follow``.

    Following survives restarts of nats-server: consumers do not, so after every reconnect
    the stream is read again from the event after the last one seen (none lost, none twice).
    """
    info = await js.stream_info(subjects.EVENTS_STREAM)
    start = max(info.state.first_seq, 1)
    if last is not None:
        start = max(start, info.state.last_seq - last + 1)
    if not follow and info.state.messages == 0:
        return
    nc = connection_of(js)
    while True:
        reconnects = nc.stats["reconnects"]
        try:
            sub = await js.subscribe(
                subject,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
                stream=subjects.EVENTS_STREAM,
            )
        except Exception as err:
            if not follow:
                raise
            log.debug("following events: %s; trying again", err)
            await asyncio.sleep(0.5)
            continue
        try:
            while True:
                try:
                    # Without --watch, a quiet second means the stream holds nothing more for us.
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    if not follow:
                        return
                    if nc.stats["reconnects"] != reconnects:
                        break  # the server restarted: our consumer is gone with it
                    continue
                start = msg.metadata.sequence.stream + 1
                try:
                    yield decode(msg.data, Event, what=f"event on {msg.subject}")
                except BadPayload as err:
                    log.warning("skipping an undecodable event: %s", err)
                if not follow and msg.metadata.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
