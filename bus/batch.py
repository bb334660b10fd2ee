"""KV writes in atomic batches: many writes per commit, and a leader's writes fenced by its term.

JetStream (2.12+) commits a batch of messages to one stream all or nothing, after checking
every message's ``Nats-Expected-Last-Subject-Sequence`` against the stream as it was
before the batch. Shoal uses that twice:

- **Throughput.** A ``BucketWriter`` gathers the writes its callers make at the same time
  into batches of up to ``max_batch`` (group commit): one commit, one fsync, one
  acknowledgement for hundreds of writes. Each write keeps its own compare-and-swap.
- **Fencing.** A fenced writer (a leader's) starts every batch with a check message that
  asserts the revision of its *fence* subject. A new leader moves the fence before it
  writes anything, so from then on every batch of the old one is refused by the server,
  whatever the old one's clock says. The fence and check subjects live in the bucket's
  stream outside ``$KV.<bucket>.>`` (``$KVFENCE.<bucket>.<role>...``), where no KV reader
  sees them.

On a replicated stream the server refuses a second in-flight check of one subject, so
writes are spread over *lanes*, each with its own fence subject and one batch in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from shoal.errors import Conflict, Deposed, TransientError

log = logging.getLogger(__name__)

H_BATCH_ID = "Nats-Batch-Id"
H_BATCH_SEQUENCE = "Nats-Batch-Sequence"
H_BATCH_COMMIT = "Nats-Batch-Commit"
H_EXPECTED_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
H_EXPECTED_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
H_KV_OPERATION = "KV-Operation"

WRONG_LAST_SEQUENCE = (10071, 10164)
"""JetStream's error codes for a failed expected-sequence check (with and without the number)."""

ATOMIC_DISABLED = 10174
RETRY_BATCH = (10176, 10210)
RETRIES = 6
"""Attempts at a batch the server lost track of, over about two seconds."""
"""A batch the server lost track of (incomplete) or had no room for (too many in flight)."""

MAX_BATCH = 500
"""Writes per batch (the server allows 1,000 messages)."""

RESOLVE_AT_ONCE = 64
"""Callers of one batch woken per turn of the event loop."""

LANES = 4
"""Batches in flight per writer: the server allows 50 per stream; replicated streams need a
fence subject per lane."""


def fence_subjects(bucket: str, role: str, lane: int) -> tuple[str, str]:
    """``(fence, check)`` subjects of one lane of ``role``'s fence in ``bucket``'s stream."""
    return f"$KVFENCE.{bucket}.{role}.fence.{lane}", f"$KVFENCE.{bucket}.{role}.check.{lane}"


def stream_subjects(bucket: str) -> list[str]:
    """The subjects a bucket's stream holds: its keys, and the fences of its writers."""
    return [f"$KV.{bucket}.>", f"$KVFENCE.{bucket}.>"]


STREAM_NAME_IN_USE = 10058


async def create_batched_stream(nc: Client, config: StreamConfig, extra_subjects: list[str]) -> None:
    """Create a stream that takes atomic batches, with ``extra_subjects`` too, in one request.

    Made complete from the start rather than created and then updated, because nats-server
    (2.15) can subscribe a stream twice to a subject added by updates that race (actors
    starting together all see a missing setting): every message to it is then stored twice,
    every atomic batch over it is refused as incomplete, until the server restarts.
    A stream that exists already is left as it is (another actor made it a moment ago).
    """
    assert config.name is not None
    body = config.as_dict()
    body["subjects"] = list(dict.fromkeys([*(config.subjects or []), *extra_subjects]))
    body["allow_atomic"] = True
    reply = json.loads(
        (await nc.request(f"$JS.API.STREAM.CREATE.{config.name}", json.dumps(body).encode(), timeout=5)).data
    )
    error = reply.get("error")
    if error and int(error.get("err_code") or 0) != STREAM_NAME_IN_USE:
        raise nats.js.errors.APIError.from_error(error)


MAKE_WAIT_LIMIT = 5.0
"""Longest pause, in seconds, between looks for a stream this process may not make itself."""


async def exists_or_made(
    exists: Callable[[], Awaitable[bool]], make: Callable[[], Awaitable[None]], what: str
) -> None:
    """Return once the stream ``what`` exists: made here if it is missing and this identity may
    make it; else (a node on a secure cluster may not, or another role is making it at the same
    moment) waited for, as a kubelet waits for its API server."""
    delay, said = 0.25, False
    while not await exists():
        try:
            await make()
            return
        except (nats.errors.TimeoutError, nats.js.errors.APIError) as err:
            if not said:
                log.info("%s is missing and was not made here (%s): waiting for the control plane", what, err)
                said = True
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAKE_WAIT_LIMIT)


async def allow_batches(nc: Client, stream: str, wanted: list[str]) -> None:
    """Atomic batches on for ``stream``, and ``wanted`` among its subjects.

    Done with the raw stream API so every other field of the server's config stays as it is.
    Only streams made by an older Shoal need it (``create_batched_stream`` makes them ready);
    ``shoal up`` does it once before its roles start, so they do not race to it.
    """
    info = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)).data)
    if "error" in info:
        raise nats.js.errors.APIError.from_error(info["error"])
    config = info["config"]
    if (
        config.get("allow_atomic")
        and all(subject in config["subjects"] for subject in wanted)
        and config.get("persist_mode") in (None, "default")
    ):
        return
    config["allow_atomic"] = True
    config["subjects"] = list(dict.fromkeys([*config["subjects"], *wanted]))
    config.pop("persist_mode", None)  # asynchronous persistence refuses atomic batches
    update = json.dumps(config).encode()
    reply = json.loads((await nc.request(f"$JS.API.STREAM.UPDATE.{stream}", update, timeout=5)).data)
    if "error" in reply:
        raise nats.js.errors.APIError.from_error(reply["error"])


@dataclass(frozen=True, slots=True)
class KVWrite:
    """One write: ``expect`` None writes whatever is there, 0 only a new key, N only over revision N."""

    key: str
    data: bytes = b""
    expect: int | None = None
    delete: bool = False


class _Rejected(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _headers(write: KVWrite) -> dict[str, str]:
    headers: dict[str, str] = {}
    if write.expect is not None:
        headers[H_EXPECTED_SUBJECT_SEQUENCE] = str(write.expect)
    if write.delete:
        headers[H_KV_OPERATION] = "DEL"
    return headers


async def _reply(nc: Client, subject: str, data: bytes, headers: dict[str, str], timeout: float) -> dict:
    try:
        msg = await nc.request(subject, data, headers=headers, timeout=timeout)
    except nats.errors.TimeoutError:
        raise TransientError(f"no acknowledgement for a write to {subject} within {timeout:g}s") from None
    except nats.errors.NoRespondersError:
        raise TransientError(f"no stream stores {subject} (is JetStream up?)") from None
    response = json.loads(msg.data)
    error = response.get("error")
    if error:
        raise _Rejected(int(error.get("err_code") or 0), str(error.get("description") or error))
    return response


async def commit(nc: Client, messages: list[tuple[str, bytes, dict[str, str]]], timeout: float) -> int:
    """Store ``messages`` in one atomic batch; the sequence of the last one."""
    batch = uuid.uuid4().hex
    count = len(messages)
    for index, (subject, data, headers) in enumerate(messages[:-1], start=1):
        # Staged without a reply: one connection keeps order, and any loss fails the commit.
        await nc.publish(subject, data, headers={**headers, H_BATCH_ID: batch, H_BATCH_SEQUENCE: str(index)})
    subject, data, headers = messages[-1]
    last = {**headers, H_BATCH_ID: batch, H_BATCH_SEQUENCE: str(count), H_BATCH_COMMIT: "1"}
    response = await _reply(nc, subject, data, last, timeout)
    return int(response["seq"])


@dataclass
class _Pending:
    write: KVWrite
    future: asyncio.Future[int]


class BucketWriter:
    """Group-committed writes to one bucket, fenced by ``role``'s term when ``role`` is given.

    ``write`` returns the new revision, or raises Conflict (a compare-and-swap lost),
    Deposed (a fenced writer whose fence moved: another leader's term began) or a
    TransientError (the server did not answer; the write may or may not have landed).
    """

    def __init__(
        self,
        nc: Client,
        bucket: str,
        *,
        role: str | None = None,
        holder: str = "",
        lanes: int = LANES,
        max_batch: int = MAX_BATCH,
        timeout: float = 10.0,
        stream: str | None = None,
    ) -> None:
        """``stream``: write to a plain stream of that name instead, a write's key being its
        whole subject (the event stream, say)."""
        self.nc = nc
        self.bucket = bucket
        self.stream = stream or f"KV_{bucket}"
        self.prefix = "" if stream else f"$KV.{bucket}."
        self.role = role
        self.holder = holder.encode()
        """Who writes (kept in each check message, so the stream shows whose term a batch was)."""
        self.lanes = lanes
        self.max_batch = max_batch
        self.timeout = timeout
        self.fences: list[int] = [0] * lanes
        """The fence revision this writer holds, per lane (fenced writers only)."""
        self.deposed: Deposed | None = None
        self.atomic = True
        """Whether the stream takes atomic batches (an events stream kept from before may not)."""
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def fenced(self) -> bool:
        return self.role is not None

    async def take(self) -> None:
        """Begin a term: move every lane's fence, so the previous holder's batches fail from now."""
        assert self.role is not None, "only a fenced writer takes a term"
        for lane in range(self.lanes):
            fence, _ = fence_subjects(self.bucket, self.role, lane)
            for attempt in range(50):
                try:
                    response = await _reply(self.nc, fence, b"", {}, self.timeout)
                    break
                except _Rejected as err:
                    if err.code not in WRONG_LAST_SEQUENCE or attempt == 49:
                        raise TransientError(f"moving the fence {fence}: {err.description}") from None
                    # A replicated stream refuses it while a deposed writer's check is in flight.
                    await asyncio.sleep(0.01)
            self.fences[lane] = int(response["seq"])
        self.deposed = None

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._lane(lane), name=f"writer {self.bucket} lane {lane}")
                for lane in range(self.lanes)
            ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(TransientError(f"the writer of {self.bucket} stopped"))

    async def write(self, write: KVWrite) -> int:
        return await self.submit(write)

    def submit(self, write: KVWrite) -> asyncio.Future[int]:
        """Queue ``write`` and return what its outcome will be, without a task per write."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self.deposed is not None:
            future.set_exception(self.deposed)
            return future
        self._start()
        self._queue.put_nowait(_Pending(write, future))
        return future

    async def create(self, key: str, data: bytes) -> int:
        return await self.write(KVWrite(key, data, expect=0))

    async def update(self, key: str, data: bytes, revision: int) -> int:
        return await self.write(KVWrite(key, data, expect=revision))

    async def put(self, key: str, data: bytes) -> int:
        return await self.write(KVWrite(key, data))

    async def delete(self, key: str, revision: int | None = None) -> int:
        return await self.write(KVWrite(key, expect=revision, delete=True))

    async def _lane(self, lane: int) -> None:
        carried: list[_Pending] = []
        while True:
            group = carried or [await self._queue.get()]
            carried = []
            keys = {group[0].write.key}
            while len(group) < self.max_batch and not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending.write.key in keys:
                    carried.append(pending)  # one key twice in a batch is refused: the next batch
                    continue
                keys.add(pending.write.key)
                group.append(pending)
            try:
                await self._send(lane, group)
            except asyncio.CancelledError:
                for pending in group + carried:
                    if not pending.future.done():
                        pending.future.set_exception(TransientError(f"the writer of {self.bucket} stopped"))
                raise

    async def _send(self, lane: int, group: list[_Pending], attempt: int = 0) -> None:
        group = [p for p in group if not p.future.done()]  # callers that gave up
        if not group:
            return
        if self.deposed is not None:
            _fail(group, self.deposed)
            return
        started = time.monotonic()
        if not self.atomic and len(group) > 1:
            # A stream that takes no atomic batches: each write on its own, all at once.
            await asyncio.gather(*(self._send(lane, [pending]) for pending in group))
            return
        try:
            revisions = await self._commit(lane, [p.write for p in group])
            log.debug(
                "%s lane %d: %d write(s) committed in %.3fs",
                self.bucket,
                lane,
                len(group),
                time.monotonic() - started,
            )
        except _Rejected as err:
            if err.code == ATOMIC_DISABLED and not self.fenced:
                log.info("%s takes no atomic batches: writing one message at a time", self.stream)
                self.atomic = False
                await self._send(lane, group, attempt)
                return
            if err.code in RETRY_BATCH and attempt < RETRIES:
                # Staged messages lost, or too many batches open at the server: try it afresh.
                log.info("%s lane %d: batch of %d refused (%s, code %d); sending it again", self.bucket, lane,
                         len(group), err.description, err.code)  # fmt: skip
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                await self._send(lane, group, attempt + 1)
                return
            if err.code not in WRONG_LAST_SEQUENCE:
                _fail(group, TransientError(f"writing to {self.bucket}: {err.description} (code {err.code})"))
                return
            if self.fenced and await self._fence_moved(lane):
                self.deposed = Deposed(f"{self.role}'s fence in {self.bucket} moved: a newer term has begun")
                _fail(group, self.deposed)
                return
            if len(group) == 1:
                write = group[0].write
                marker = await self._deletion_marker(write) if write.expect == 0 else None
                if marker is not None:
                    # A key deleted before may be created again: over its deletion marker.
                    group[0].write = KVWrite(write.key, write.data, expect=marker, delete=write.delete)
                    await self._send(lane, group)
                    return
                _fail(group, Conflict(f"{self.bucket}/{write.key} changed since revision {write.expect}"))
                return
            # Find the writes whose checks failed by halving: a few conflicts among hundreds
            # of writes cost a few more batches, not one batch per write.
            half = len(group) // 2
            await self._send(lane, group[:half])
            await self._send(lane, group[half:])
            return
        except Exception as err:
            _fail(group, err if isinstance(err, TransientError) else TransientError(str(err)))
            return
        for index, (pending, revision) in enumerate(zip(group, revisions, strict=True)):
            if not pending.future.done():
                pending.future.set_result(revision)
            if index % RESOLVE_AT_ONCE == RESOLVE_AT_ONCE - 1:
                # Each caller carries on when its write lands; hundreds at once would hold the
                # event loop for as long as all of them take.
                await asyncio.sleep(0)

    async def _commit(self, lane: int, writes: list[KVWrite]) -> list[int]:
        messages = [(self.prefix + w.key, w.data, _headers(w)) for w in writes]
        if not self.fenced and len(messages) == 1:
            # Alone, a plain publish is cheaper than a batch of one.
            subject, data, headers = messages[0]
            return [int((await _reply(self.nc, subject, data, headers, self.timeout))["seq"])]
        if self.fenced:
            assert self.role is not None
            fence, check = fence_subjects(self.bucket, self.role, lane)
            guard = {H_EXPECTED_SUBJECT_SEQUENCE: str(self.fences[lane]), H_EXPECTED_SUBJECT: fence}
            messages.insert(0, (check, self.holder, guard))
        last = await commit(self.nc, messages, self.timeout)
        first = last - len(messages) + 1
        offset = 1 if self.fenced else 0
        return [first + offset + index for index in range(len(writes))]

    async def _deletion_marker(self, write: KVWrite) -> int | None:
        """The revision of the key's deletion marker, if deleting it was the last thing done to it."""
        try:
            message = await self.nc.jetstream().get_msg(self.stream, subject=self.prefix + write.key)
        except Exception:
            return None
        operation = (message.headers or {}).get(H_KV_OPERATION)
        return message.seq if operation in ("DEL", "PURGE") else None

    async def _fence_moved(self, lane: int) -> bool:
        assert self.role is not None
        fence, _ = fence_subjects(self.bucket, self.role, lane)
        try:
            message = await self.nc.jetstream().get_msg(self.stream, subject=fence)
        except NotFoundError:
            return True
        except Exception as err:
            log.debug("reading fence %s: %s", fence, err)
            return False
        return message.seq != self.fences[lane]


def _fail(group: Iterable[_Pending], error: BaseException) -> None:
    for pending in group:
        if not pending.future.done():
            pending.future.set_exception(error)
