"""Turning validated manifests into stored objects: what an apply changes, decided without I/O.

``kubectl apply`` semantics, simplified: the manifest replaces the stored object, keeping
its identity (uid, creation time); the generation grows when anything but metadata
changes. A Deployment manifest without ``spec.replicas`` keeps the current count (so an
autoscaler or ``shoal scale`` is not undone by re-applying).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shoal.bus import kv
from shoal.bus.kv import BucketDef, Entry
from shoal.errors import InvalidManifest
from shoal.manifests.render import timestamp
from shoal.models.base import Record
from shoal.models.workloads import Deployment, PodTemplate

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CHANGE_CAUSE = "kubernetes.io/change-cause"

KINDS: dict[str, BucketDef] = {
    "Deployment": kv.DEPLOYMENTS,
    "PriorityClass": kv.PRIORITY_CLASSES,
    "Service": kv.SERVICES,
    "HorizontalPodAutoscaler": kv.HPAS,
}
"""Where each kind is stored. Cluster-scoped kinds are keyed by name alone."""

CLUSTER_SCOPED = {"PriorityClass"}


def object_key(kind: str, namespace: str, name: str) -> str:
    return name if kind in CLUSTER_SCOPED else f"{namespace}.{name}"


Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class PlannedWrite:
    key: str
    action: Action
    value: Any
    revision: int | None
    """Revision the write is checked against; None for a create."""
    new_template: bool = False
    """A Deployment whose pod template is new: a rollout revision to record."""


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
        return PlannedWrite(key, "created", Deployment(metadata=metadata, spec=spec, revision=1), None, True)
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
    new_template = spec.template.hash() != stored.spec.template.hash()
    revision = stored.revision + 1 if new_template else stored.revision
    deployment = Deployment(metadata=metadata, spec=spec, revision=revision)
    return PlannedWrite(key, "configured", deployment, current.revision, new_template)


def scaled(current: Deployment, replicas: int) -> Deployment:
    spec = current.spec.model_copy(update={"replicas": replicas})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec, revision=current.revision)


def with_template(current: Deployment, template: PodTemplate) -> Deployment:
    """A new pod template: a new generation and a new rollout revision."""
    spec = current.spec.model_copy(update={"template": template})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec, revision=current.revision + 1)


def with_paused(current: Deployment, paused: bool) -> Deployment:
    spec = current.spec.model_copy(update={"paused": paused})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec, revision=current.revision)


def with_images(current: Deployment, images: dict[str, str]) -> PodTemplate:
    """The template with some containers' images replaced; unknown names are an error."""
    names = {c.name for c in current.spec.template.spec.containers}
    unknown = sorted(set(images) - names)
    if unknown:
        raise InvalidManifest(
            [
                f"deployment {current.metadata.name} has no container {', '.join(unknown)}"
                f" (it has {', '.join(sorted(names))})"
            ]
        )
    containers = [
        c.model_copy(update={"image": images.get(c.name, c.image)})
        for c in current.spec.template.spec.containers
    ]
    spec = current.spec.template.spec.model_copy(update={"containers": containers})
    return current.spec.template.model_copy(update={"spec": spec})


def restarted(template: PodTemplate, now: float) -> PodTemplate:
    """``kubectl rollout restart``: an annotation that changes the template, so every pod is replaced."""
    annotations = {**template.metadata.annotations, RESTARTED_AT: timestamp(now)}
    return template.model_copy(
        update={"metadata": template.metadata.model_copy(update={"annotations": annotations})}
    )


def plan_object(desired: Record, current: Entry[Any] | None, *, now: float, new_uid: str) -> PlannedWrite:
    if isinstance(desired, Deployment):
        return plan_deployment(desired, current, now=now, new_uid=new_uid)
    return plan_replace(desired, current, now=now, new_uid=new_uid)


def plan_replace(desired: Record, current: Entry[Any] | None, *, now: float, new_uid: str) -> PlannedWrite:
    """The manifest replaces the stored object, identity kept."""
    meta = desired.metadata  # type: ignore[attr-defined]
    key = object_key(desired.kind, getattr(meta, "namespace", ""), meta.name)  # type: ignore[attr-defined]
    if current is None:
        metadata = meta.model_copy(update={"uid": new_uid, "generation": 1, "creation_timestamp": now})
        return PlannedWrite(key, "created", desired.model_copy(update={"metadata": metadata}), None)
    stored = current.value
    body_changed = desired.model_dump(exclude={"metadata"}) != stored.model_dump(exclude={"metadata"})
    meta_changed = meta.labels != stored.metadata.labels or meta.annotations != stored.metadata.annotations
    if not body_changed and not meta_changed:
        return PlannedWrite(key, "unchanged", stored, current.revision)
    metadata = stored.metadata.model_copy(
        update={
            "labels": meta.labels,
            "annotations": meta.annotations,
            "generation": stored.metadata.generation + (1 if body_changed else 0),
        }
    )
    return PlannedWrite(
        key, "configured", desired.model_copy(update={"metadata": metadata}), current.revision
    )
