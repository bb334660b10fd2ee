"""Turning validated manifests into stored objects: what an apply changes, decided without I/O.

``kubectl apply`` semantics, simplified: the manifest replaces the stored spec, except that a
manifest without ``spec.replicas`` keeps the current count (so an autoscaler or ``shoal
scale`` is not undone by re-applying). Identity (uid, creation time) is kept; the
generation grows when the spec changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shoal.bus.kv import Entry
from shoal.models.workloads import Deployment

Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class PlannedWrite:
    key: str
    action: Action
    value: Deployment
    revision: int | None
    """Revision the write is checked against; None for a create."""


def plan_deployment(
    desired: Deployment, current: Entry[Deployment] | None, *, now: float, new_uid: str
) -> PlannedWrite:
    key = f"{desired.metadata.namespace}.{desired.metadata.name}"
    spec = desired.spec.model_copy(deep=True)
    if current is None:
        if spec.replicas is None:
            spec.replicas = 1
        metadata = desired.metadata.model_copy(
            update={"uid": new_uid, "generation": 1, "creation_timestamp": now}
        )
        return PlannedWrite(key, "created", Deployment(metadata=metadata, spec=spec), None)
    stored = current.value
    if spec.replicas is None:
        spec.replicas = stored.spec.desired_replicas
    spec_changed = spec.dump() != stored.spec.dump()
    meta_changed = (
        desired.metadata.labels != stored.metadata.labels
        or desired.metadata.annotations != stored.metadata.annotations
    )
    if not spec_changed and not meta_changed:
        return PlannedWrite(key, "unchanged", stored, current.revision)
    metadata = stored.metadata.model_copy(
        update={
            "labels": desired.metadata.labels,
            "annotations": desired.metadata.annotations,
            "generation": stored.metadata.generation + (1 if spec_changed else 0),
        }
    )
    return PlannedWrite(key, "configured", Deployment(metadata=metadata, spec=spec), current.revision)


def scaled(current: Deployment, replicas: int) -> Deployment:
    spec = current.spec.model_copy(update={"replicas": replicas})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec)
