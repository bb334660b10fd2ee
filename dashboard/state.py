"""The dashboard's picture of the cluster, and the patches that keep browsers' copies equal to it.

Pure: no I/O. Each table (pods, nodes, deployments, services, HPAs) maps a key to a view
(``views.py``) derived from one or more buckets under that same key: a pod from its record and
its status, a node from its registration, condition, spec and latest usage sample. A change
to any of those buckets derives the view again; only a view that differs makes a patch.

A browser takes a snapshot (``seq`` and every table) and then applies, in order, the
patches numbered after it; ``apply`` is that same rule, so tests can check that a snapshot
plus the patches since equals a later snapshot.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from shoal.bus import kv
from shoal.dashboard.views import View, deployment_view, hpa_view, node_view, pod_view, service_view

Patch = dict[str, Any]
"""``{"seq", "table", "key", "value"}`` (value None: gone), or ``{"seq", "event"}``."""

Lookup = Callable[[str, str], Any]
"""``(bucket name, key)`` -> the stored record, or None."""

TABLES: dict[str, tuple[str, ...]] = {
    "pods": (kv.PODS.name, kv.POD_STATUS.name),
    "nodes": (kv.NODES.name, kv.NODE_STATUS.name, kv.NODE_SPECS.name, kv.METRICS.name),
    "deployments": (kv.DEPLOYMENTS.name, kv.DEPLOYMENT_STATUS.name),
    "services": (kv.SERVICES.name, kv.ENDPOINTS.name),
    "hpas": (kv.HPAS.name, kv.HPA_STATUS.name),
}
"""Each table, and the buckets its views are made of (the first one says whether it exists)."""

TABLES_OF: dict[str, tuple[str, ...]] = {
    bucket: tuple(table for table, buckets in TABLES.items() if bucket in buckets)
    for bucket in {b for buckets in TABLES.values() for b in buckets}
}
"""The tables a change to each bucket may affect."""

EVENTS_KEPT = 1000


def derive(table: str, key: str, get: Lookup) -> View | None:
    """The view of ``key`` in ``table`` from what the buckets hold now (None: no such object)."""
    buckets = TABLES[table]
    main = get(buckets[0], key)
    if main is None:
        return None
    others = [get(bucket, key) for bucket in buckets[1:]]
    if table == "pods":
        return pod_view(main, *others)
    if table == "nodes":
        return node_view(main, *others)
    if table == "deployments":
        return deployment_view(main, *others)
    if table == "services":
        return service_view(main, *others)
    return hpa_view(main, *others)


class ClusterState:
    """Every table's views, the newest events, and the number of the last patch."""

    def __init__(self, events_kept: int = EVENTS_KEPT) -> None:
        self.tables: dict[str, dict[str, View]] = {table: {} for table in TABLES}
        self.events: deque[View] = deque(maxlen=events_kept)
        self.seq = 0

    def put(self, table: str, key: str, view: View | None) -> Patch | None:
        """Store ``view`` (None: remove the key); the patch that says so, or None if nothing changed."""
        rows = self.tables[table]
        if rows.get(key) == view:
            return None
        if view is None:
            del rows[key]
        else:
            rows[key] = view
        self.seq += 1
        return {"seq": self.seq, "table": table, "key": key, "value": view}

    def changed(self, bucket: str, key: str, get: Lookup) -> list[Patch]:
        """Derive again every view ``key`` of ``bucket`` is part of; the patches for those that changed."""
        patches = []
        for table in TABLES_OF.get(bucket, ()):
            patch = self.put(table, key, derive(table, key, get))
            if patch is not None:
                patches.append(patch)
        return patches

    def add_event(self, event: View) -> Patch:
        self.events.append(event)
        self.seq += 1
        return {"seq": self.seq, "event": event}

    def snapshot(self) -> dict[str, Any]:
        """Everything a new browser needs; views are never changed in place, so sharing them is safe."""
        return {
            "seq": self.seq,
            "tables": {table: dict(rows) for table, rows in self.tables.items()},
            "events": list(self.events),
        }

    def snapshot_json(self) -> str:
        return encode(self.snapshot())


def coalesce(patches: Iterable[Patch]) -> list[Patch]:
    """The same changes in fewer patches: only the last one of each table key, every event, in order."""
    last: dict[tuple[str, str], Patch] = {}
    events: list[Patch] = []
    for patch in patches:
        if "event" in patch:
            events.append(patch)
        else:
            last[(patch["table"], patch["key"])] = patch
    return sorted([*last.values(), *events], key=lambda p: p["seq"])


def apply(
    snapshot: dict[str, Any], patches: Iterable[Patch], events_kept: int = EVENTS_KEPT
) -> dict[str, Any]:
    """A snapshot with ``patches`` applied, as a browser applies them (patches it already has are skipped)."""
    result = copy.deepcopy(snapshot)
    events = deque(result["events"], maxlen=events_kept)
    for patch in patches:
        if patch["seq"] <= result["seq"]:
            continue
        result["seq"] = patch["seq"]
        if "event" in patch:
            events.append(patch["event"])
        elif patch["value"] is None:
            result["tables"][patch["table"]].pop(patch["key"], None)
        else:
            result["tables"][patch["table"]][patch["key"]] = patch["value"]
    result["events"] = list(events)
    return result


def encode(value: Any) -> str:
    """Compact JSON, one line (as server-sent events carry it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
