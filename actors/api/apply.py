"""Turning validated manifests into stored objects: what an apply changes, decided without I/O.

``kubectl apply`` semantics, simplified: the manifest replaces the stored object, keeping
its identity (uid, creation time); the generation grows when anything but metadata
changes. A Deployment manifest without ``spec.replicas`` keeps the current count (so an
autoscaler or ``shoal scale`` is not undone by re-applying).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from shoal import keys
from shoal.bus import kv
from shoal.bus.kv import BucketDef, Entry
from shoal.errors import InvalidManifest
from shoal.kinds import Kind
from shoal.manifests.render import timestamp
from shoal.models.base import Record
from shoal.models.batch import Job
from shoal.models.core import SYSTEM_NAMESPACES, ConfigMap, Secret
from shoal.models.daemonset import DaemonSet
from shoal.models.pod import BarePod, Pod, PodMeta
from shoal.models.statefulset import StatefulSet
from shoal.models.workloads import Deployment, PodTemplate

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def bucket_of(info: Kind) -> BucketDef:
    """Where objects of a kind are stored: its own bucket, or the one of stored-only kinds."""
    return info.bucket if info.bucket is not None else kv.OBJECTS


def key_of(info: Kind, namespace: str, name: str) -> str:
    """The key of an object in ``bucket_of(info)``."""
    if info.bucket is None:
        return keys.stored_key(info.plural, namespace if info.namespaced else "", name)
    return keys.object_key(namespace if info.namespaced else "", name)


def key_filter(info: Kind, namespace: str) -> str:
    """The key filter matching every object of a kind in one namespace (``""``: of a
    cluster-scoped kind) in ``bucket_of(info)``."""
    if info.bucket is None:
        one = keys.stored_key(info.plural, namespace if info.namespaced else "", "x")
        return one.rpartition(".")[0] + ".*"
    return keys.in_namespace(namespace) if info.namespaced else ">"


def missing_namespaces(wanted: list[tuple[str, str]], existing: set[str], created: set[str]) -> list[str]:
    """Problems for objects (``where``, namespace) in namespaces that neither exist nor are
    created by the same apply (Kubernetes refuses those; Shoal also takes a Namespace later
    in the same file, since one apply is stored all at once)."""
    known = existing | created | set(SYSTEM_NAMESPACES)
    return [
        f"{where}: metadata.namespace: namespace {namespace!r} does not exist"
        " (create it first: kind Namespace, or shoal create namespace NAME)"
        for where, namespace in wanted
        if namespace not in known
    ]


def class_priority(class_name: str | None, classes: dict[str, Any]) -> int:
    """A bare pod's priority, as Kubernetes' Priority admission sets it: from its class, else
    from the global default class, else 0. An unknown class is refused."""
    if class_name:
        named = classes.get(class_name)
        if named is None:
            raise InvalidManifest([f'spec.priorityClassName: no priority class "{class_name}"'])
        return int(named.value)
    default = next((c for c in classes.values() if c.global_default), None)
    return int(default.value) if default is not None else 0


JOB_IMMUTABLE = ("template", "completions", "completion_mode")
"""What Kubernetes refuses to change in a Job once it exists (``field is immutable``)."""


def immutable_problem(desired: Record, current: Record | None) -> str | None:
    """ConfigMaps and Secrets marked immutable keep their data (and stay immutable); a Job keeps
    its pod template, completions and completion mode."""
    if isinstance(desired, Job) and isinstance(current, Job):
        for name in JOB_IMMUTABLE:
            if getattr(desired.spec, name) != getattr(current.spec, name):
                field = {"completion_mode": "completionMode"}.get(name, name)
                return f"spec.{field}: field is immutable (delete the job and apply it again)"
        return None
    if not isinstance(current, ConfigMap | Secret) or not current.immutable:
        return None
    assert isinstance(desired, ConfigMap | Secret)
    if desired.immutable is not True:
        return "immutable: cannot be unset once true (delete the object and apply it again)"
    fields = ("data", "binary_data") if isinstance(current, ConfigMap) else ("data",)
    if any(getattr(desired, f) != getattr(current, f) for f in fields):
        return "data: the object is immutable; its data cannot change (delete it and apply again)"
    return None


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
    key = keys.object_key(desired.metadata.namespace, desired.metadata.name)
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


def terminating(pod: Pod, now: float) -> Pod:
    """The pod marked for deletion: its node stops it within its grace period, then removes it."""
    return pod.model_copy(update={"metadata": pod.metadata.model_copy(update={"deletion_timestamp": now})})


def scaled(current: W, replicas: int) -> W:
    """A Deployment or StatefulSet with ``replicas``, in a new generation."""
    spec = current.spec.model_copy(update={"replicas": replicas})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return current.model_copy(update={"spec": spec, "metadata": metadata})


W = TypeVar("W", Deployment, StatefulSet)


def with_template(current: Deployment, template: PodTemplate) -> Deployment:
    """A new pod template: a new generation and a new rollout revision."""
    spec = current.spec.model_copy(update={"template": template})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec, revision=current.revision + 1)


def with_paused(current: Deployment, paused: bool) -> Deployment:
    spec = current.spec.model_copy(update={"paused": paused})
    metadata = current.metadata.model_copy(update={"generation": current.metadata.generation + 1})
    return Deployment(metadata=metadata, spec=spec, revision=current.revision)


def with_images(current: Deployment | DaemonSet | StatefulSet, images: dict[str, str]) -> PodTemplate:
    """The template with some containers' images replaced; unknown names are an error."""
    names = {c.name for c in current.spec.template.spec.containers}
    unknown = sorted(set(images) - names)
    if unknown:
        raise InvalidManifest(
            [
                f"{current.kind.lower()} {current.metadata.name} has no container {', '.join(unknown)}"
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


def plan_bare_pod(
    desired: BarePod, current: Entry[Pod] | None, *, now: float, new_uid: str, priority: int | None
) -> PlannedWrite:
    """A Pod manifest becomes a pod record; as in Kubernetes, only its labels and annotations
    may change afterwards."""
    meta = desired.metadata
    key = keys.object_key(meta.namespace, meta.name)
    spec = desired.spec if priority is None else desired.spec.model_copy(update={"priority": priority})
    if current is None:
        pod = Pod(
            metadata=PodMeta(
                name=meta.name,
                namespace=meta.namespace,
                labels=meta.labels,
                annotations=meta.annotations,
                uid=new_uid,
                generation=1,
                creation_timestamp=now,
                template_hash=PodTemplate(spec=desired.spec).hash(),
            ),
            spec=spec,
            node_name=desired.node_name,
        )
        return PlannedWrite(key, "created", pod, None)
    stored = current.value
    if stored.terminating:
        raise InvalidManifest(
            [f"pod {meta.namespace}/{meta.name} is being deleted; apply it again once gone"]
        )
    if stored.metadata.template_hash != PodTemplate(spec=desired.spec).hash() or (
        desired.node_name and desired.node_name != stored.node_name
    ):
        raise InvalidManifest(
            [
                f"pod {meta.namespace}/{meta.name}: spec: a pod's spec cannot change once created,"
                " only its labels and annotations (delete the pod and apply it again)"
            ]
        )
    if meta.labels == stored.metadata.labels and meta.annotations == stored.metadata.annotations:
        return PlannedWrite(key, "unchanged", stored, current.revision)
    metadata = stored.metadata.model_copy(update={"labels": meta.labels, "annotations": meta.annotations})
    return PlannedWrite(key, "configured", stored.model_copy(update={"metadata": metadata}), current.revision)


def plan_object(
    desired: Record, current: Entry[Any] | None, *, key: str, now: float, new_uid: str
) -> PlannedWrite:
    if isinstance(desired, Deployment):
        return plan_deployment(desired, current, now=now, new_uid=new_uid)
    if isinstance(desired, StatefulSet) and desired.spec.replicas is None:
        # Left out of the manifest: as with a Deployment, a stored (scaled) count is kept.
        replicas = current.value.spec.desired_replicas if current is not None else 1
        desired = desired.model_copy(update={"spec": desired.spec.model_copy(update={"replicas": replicas})})
    return plan_replace(desired, current, key=key, now=now, new_uid=new_uid)


def plan_replace(
    desired: Record, current: Entry[Any] | None, *, key: str, now: float, new_uid: str
) -> PlannedWrite:
    """The manifest replaces the stored object, identity kept."""
    meta = desired.metadata  # type: ignore[attr-defined]
    if isinstance(desired, Job):
        # Only the scheduler makes a Job owned (a CronJob's); an apply keeps what is stored.
        meta = meta.model_copy(update={"owner": current.value.metadata.owner if current else None})
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
