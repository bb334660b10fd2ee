"""Request/reply over NATS: one way to serve a subject, one way to call it.

A handler gets a decoded request model and returns a reply model. Garbage on the subject,
a ShoalError or an unexpected crash all become an ``ErrorReply``; internal details stay in
the actor's log under an incident id and never travel to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import ormsgpack
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shoal.bus.codec import decode, encode
from shoal.bus.connection import denied_since
from shoal.bus.fair import FairQueue, sender_of
from shoal.errors import ClusterUnreachable, Forbidden, ShoalError, remote_error
from shoal.models.api import ErrorBody, ErrorReply
from shoal.models.base import Record
from shoal.retry import is_transient

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Record)
Rep = TypeVar("Rep", bound=Record)
T = TypeVar("T")


def error_reply(code: str, message: str, warnings: list[str] | None = None) -> ErrorReply:
    return ErrorReply(error=ErrorBody(code=code, message=message, warnings=warnings or []))


async def reply_to(msg: Msg, reply: Record) -> None:
    if not msg.reply:
        return
    try:
        await msg.respond(encode(reply))
    except Exception as err:  # the caller may have gone; nothing else to do
        log.debug("could not reply on %s: %s", msg.reply, err)


async def serve(
    nc: Client,
    subject: str,
    request_model: type[Req],
    handler: Callable[[Req], Awaitable[Record]],
    *,
    queue: str = "",
    owner: str = "actor",
    check: Callable[[str, Req], None] | None = None,
    at_once: int = 1,
) -> Subscription:
    """Answer ``subject`` with ``handler``. Requests are handled one at a time, each sender's
    in order and the senders in turn (``bus.fair``: a client with many requests in flight does
    not hold the others up), or up to ``at_once`` of them concurrently (for requests
    independent of each other).

    ``check`` sees the subject each request came on (``subject`` may have wildcards) and may
    refuse the request with a ShoalError before the handler runs.
    """

    async def answer(msg: Msg) -> None:
        reply: Record
        try:
            request = decode(msg.data, request_model, what=f"request on {subject}")
            if check is not None:
                check(msg.subject, request)
            reply = await handler(request)
        except ShoalError as err:
            reply = error_reply(err.code, err.message, err.warnings)
        except Exception as err:
            if is_transient(err):
                # NATS or JetStream too slow or away (a restart, say): the client may simply retry.
                why = type(err).__name__
                reply = error_reply(
                    "unavailable", f"the cluster's store did not answer in time ({why}); try again"
                )
            else:
                incident = uuid.uuid4().hex[:8]
                log.exception("handling %s failed (incident %s)", subject, incident)
                reply = error_reply(
                    "internal", f"internal error in {owner} (incident {incident}); see its log"
                )
        await reply_to(msg, reply)

    if at_once == 1:
        waiting: FairQueue[Msg] = FairQueue()
        worker: list[asyncio.Task[None]] = []

        async def drain() -> None:
            # Requests taken in before an unsubscribe are still answered; none once the
            # connection is closed (its actor has stopped).
            while not nc.is_closed and (msg := waiting.take()) is not None:
                await answer(msg)

        async def in_turn(msg: Msg) -> None:
            waiting.put(sender_of(msg.reply or ""), msg)
            # One worker at a time, there only while requests wait: it ends once the queue is
            # empty (nothing runs between its last take and its end), and the next comes with
            # the next request.
            if not worker or worker[0].done():
                worker[:] = [asyncio.create_task(drain())]

        return await nc.subscribe(subject, queue=queue, cb=in_turn)
    slots = asyncio.Semaphore(at_once)
    running: set[asyncio.Task[None]] = set()

    async def in_a_slot(msg: Msg) -> None:
        async with slots:
            await answer(msg)

    async def on_message(msg: Msg) -> None:
        # nats-py calls back one message at a time: each is answered in a task of its own.
        task = asyncio.create_task(in_a_slot(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    return await nc.subscribe(subject, queue=queue, cb=on_message)


DENIAL_CHECK = 0.05
"""Seconds between looks, while a request waits, at whether the server refused it."""


async def refusable(nc: Client, subject: str, request: Awaitable[T]) -> T:
    """What ``request`` gives; one the server refused (permissions on a subject that contains
    ``subject``) fails at once with Forbidden, instead of waiting out its timeout for a reply
    that cannot come."""
    since = time.monotonic()
    task = asyncio.ensure_future(request)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DENIAL_CHECK)
            if done:
                return task.result()
            why = denied_since(nc, since)
            if subject.lower() in why.lower():
                raise Forbidden(f"not allowed for these credentials: {why}")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def call(
    nc: Client, subject: str, request: Record, reply_model: type[Rep], *, timeout: float = 10.0
) -> Rep:
    """Send ``request`` and decode the reply; an ErrorReply becomes a RemoteError of its code's class."""
    try:
        msg = await refusable(nc, subject, nc.request(subject, encode(request), timeout=timeout))
    except nats.errors.NoRespondersError:
        raise ClusterUnreachable(
            f"nothing in the cluster answers on {subject}: is `shoal up` running?"
        ) from None
    except nats.errors.TimeoutError:
        raise ClusterUnreachable(f"no answer on {subject} within {timeout:.0f}s") from None
    except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
        # The server went away while the request was being made (and this connection does not
        # reconnect): the same as no answer, which the caller may retry on a new connection.
        raise ClusterUnreachable(f"the connection to NATS closed while asking on {subject}") from None
    try:
        raw = ormsgpack.unpackb(msg.data)
    except (ormsgpack.MsgpackDecodeError, ValueError):
        raw = None
    if isinstance(raw, dict) and isinstance(raw.get("error"), dict):
        error = decode(msg.data, ErrorReply, what=f"error reply on {subject}").error
        raise remote_error(error.code, error.message, error.warnings)
    return decode(msg.data, reply_model, what=f"reply on {subject}")
