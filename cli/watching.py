"""``shoal get -w``: the table, then a row for each object whenever it changes.

It follows KV watches of the buckets a kind's listing is made from (its own and its status),
and after each burst of changes lists again and prints the rows of the objects that changed
or went away, aligned under the first table, as ``kubectl get -w`` does. No polling: an idle
cluster prints nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nats.js.errors import BucketNotFoundError, NotFoundError

from shoal.bus import kv
from shoal.bus.kv import SYNCED, Bucket, BucketDef
from shoal.kinds import Kind

if TYPE_CHECKING:
    from shoal.cli.listing import Lister, Listing, Scope
    from shoal.client import ShoalClient

SETTLE = 0.1
"""Seconds a burst of changes (a pod's record and its status) is let settle before listing."""

_ALSO = {
    "Pod": (kv.POD_STATUS,),
    "Deployment": (kv.DEPLOYMENT_STATUS,),
    "Job": (kv.JOB_STATUS,),
    "CronJob": (kv.CRONJOB_STATUS,),
    "DaemonSet": (kv.DAEMONSET_STATUS,),
    "StatefulSet": (kv.STATEFULSET_STATUS,),
    "PodDisruptionBudget": (kv.PDB_STATUS,),
    "HorizontalPodAutoscaler": (kv.HPA_STATUS,),
    "PersistentVolumeClaim": (kv.CLAIM_STATUS,),
    "Node": (kv.NODES, kv.NODE_STATUS, kv.NODE_SPECS),
    "Endpoints": (kv.ENDPOINTS,),
}
"""Buckets besides a kind's own whose changes change how it is listed."""


def watched_buckets(kind: Kind) -> list[BucketDef[Any]]:
    own = kind.bucket if kind.bucket is not None else kv.OBJECTS if kind.handling == "stored" else None
    return [*([own] if own is not None else []), *_ALSO.get(kind.kind, ())]


def aligned(widths: list[int], cells: list[str]) -> str:
    """One line of cells padded to the first table's columns (three spaces apart, as kubectl)."""
    padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
    return "   ".join([*padded, cells[-1]]).rstrip() if cells else ""


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


async def follow(
    client: ShoalClient,
    lister: Lister,
    scope: Scope,
    shape: Callable[[Listing], Listing],
    *,
    headers: bool,
) -> None:
    """Print the listing, then the rows of objects as they change, until cancelled."""
    changed = asyncio.Event()
    ready: list[asyncio.Event] = []

    async def watch(definition: BucketDef[Any], synced: asyncio.Event) -> None:
        try:
            bucket = await Bucket.open(client.js, definition)
        except (BucketNotFoundError, NotFoundError):
            synced.set()  # nothing of this kind was ever stored; the first apply makes the bucket
            return
        async for change in bucket.watch():
            if change is SYNCED:
                synced.set()
            elif synced.is_set():
                changed.set()

    tasks = []
    for definition in watched_buckets(scope.kind):
        synced = asyncio.Event()
        ready.append(synced)
        tasks.append(asyncio.create_task(watch(definition, synced)))
    try:
        await asyncio.gather(*(event.wait() for event in ready))
        columns, rows, objects = shape(lister.show(await lister.gather(client, scope), scope))
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        if headers:
            _print(aligned(widths, columns))
        for row in rows:
            _print(aligned(widths, row))
        last = {_identity(o): (o, row) for o, row in zip(objects, rows, strict=True)}
        while True:
            await changed.wait()
            await asyncio.sleep(SETTLE)
            changed.clear()
            _, rows, objects = shape(lister.show(await lister.gather(client, scope), scope))
            now = {_identity(o): (o, row) for o, row in zip(objects, rows, strict=True)}
            for identity, (obj, row) in now.items():
                before = last.get(identity)
                if before is None or before[0] != obj:
                    _print(aligned(widths, row))
            for identity in last.keys() - now.keys():
                _print(aligned(widths, last[identity][1]))  # gone: its last row, as kubectl
            last = now
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
