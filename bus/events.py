"""The event feed: publishing events, and reading them back from their stream.

Events go out as plain NATS publishes on ``shoal.v1.events...``; the SHOAL_EVENTS stream
captures them with bounded retention. Publishing does not wait for the stream's
acknowledgement: events describe changes whose truth is already stored in KV, and an
actor must never stall because the feed is slow.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PersistMode,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from shoal.bus import subjects
from shoal.bus.codec import decode, encode_raw
from shoal.errors import BadPayload
from shoal.models.base import SCHEMA_VERSION
from shoal.models.event import Event

log = logging.getLogger(__name__)

RETENTION_SECONDS = 24 * 3600
RETENTION_MESSAGES = 100_000
RETENTION_BYTES = 256 * 1024 * 1024


async def ensure_events_stream(js: JetStreamContext, replicas: int = 1) -> None:
    try:
        await js.stream_info(subjects.EVENTS_STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
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
                # The feed describes changes already stored (with fsync) in KV: it need not
                # fsync every event too, which would double the disk work of every change.
                persist_mode=PersistMode.ASYNC if replicas == 1 else None,
            )
        )


class EventPublisher:
    """Publishes events for one actor (``source``)."""

    def __init__(self, nc: Client, source: str) -> None:
        self.nc = nc
        self.source = source

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
        try:
            await self.nc.publish(subjects.event(kind, namespace, name, reason), encode_raw(event))
        except Exception as err:  # the feed is best effort; the state change is already stored
            log.warning("could not publish event %s %s/%s: %s", reason, kind, name, err)


async def read_events(
    js: JetStreamContext, *, follow: bool, last: int | None = None, subject: str = subjects.EVENTS_ALL
) -> AsyncIterator[Event]:
    """Events from the stream, oldest first (the newest ``last`` if given), then new ones if ``follow``."""
    info = await js.stream_info(subjects.EVENTS_STREAM)
    start = max(info.state.first_seq, 1)
    if last is not None:
        start = max(start, info.state.last_seq - last + 1)
    if not follow and info.state.messages == 0:
        return
    sub = await js.subscribe(
        subject,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
        stream=subjects.EVENTS_STREAM,
    )
    try:
        while True:
            try:
                # Without --watch, a quiet second means the stream holds nothing more for us.
                msg = await sub.next_msg(timeout=None if follow else 1.0)
            except nats.errors.TimeoutError:
                if follow:
                    continue
                return
            try:
                yield decode(msg.data, Event, what=f"event on {msg.subject}")
            except BadPayload as err:
                log.warning("skipping an undecodable event: %s", err)
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
