"""Jobs, CronJobs, DaemonSets, StatefulSets and PodDisruptionBudgets as Kubernetes-shaped
objects, for ``-o json`` and ``-o yaml``.

The same shape kubectl prints (``manifests/render.py`` holds the other kinds): metadata, the
spec as applied, and the status the scheduler keeps, with RFC 3339 timestamps.
"""

from __future__ import annotations

from typing import Any

from shoal.manifests.render import object_metadata, timestamp
from shoal.models.batch import CronJob, CronJobStatus, Job, JobStatus
from shoal.models.daemonset import DaemonSet, DaemonSetStatus
from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
from shoal.models.statefulset import StatefulSet, StatefulSetStatus


def _drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v not in (None, "", [])}


def job_object(job: Job, status: JobStatus | None) -> dict[str, Any]:
    meta = job.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    if meta.owner is not None:
        owner = meta.owner
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": owner.kind,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
            }
        ]
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        body = _drop_empty(
            {
                "startTime": timestamp(status.start_time),
                "completionTime": timestamp(status.completion_time),
                "active": status.active or None,
                "ready": status.ready,
                "terminating": status.terminating,
                "succeeded": status.succeeded or None,
                "failed": status.failed or None,
                "completedIndexes": status.completed_indexes,
                "conditions": [
                    _drop_empty(
                        {
                            "type": c.type,
                            "status": c.status,
                            "reason": c.reason,
                            "message": c.message,
                            "lastTransitionTime": timestamp(c.last_transition_time),
                        }
                    )
                    for c in status.conditions
                ],
            }
        )
    spec = job.spec.dump()
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta.uid}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec, "status": body}


def cronjob_object(cronjob: CronJob, status: CronJobStatus | None) -> dict[str, Any]:
    meta = cronjob.metadata
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        body = _drop_empty(
            {
                "active": [
                    {"apiVersion": "batch/v1", "kind": "Job", "name": ref.name, "namespace": meta.namespace,
                     "uid": ref.uid}
                    for ref in status.active
                ],
                "lastScheduleTime": timestamp(status.last_schedule_time),
                "lastSuccessfulTime": timestamp(status.last_successful_time),
            }
        )  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": object_metadata(meta),
        "spec": cronjob.spec.dump(),
        "status": body,
    }


_OWN_FIELDS = {"schema", "namespace", "name", "uid"}
"""Fields of a status record that say whose it is, not what it counts."""


def _counted_object(
    obj: DaemonSet | StatefulSet | PodDisruptionBudget,
    status: DaemonSetStatus | StatefulSetStatus | PodDisruptionBudgetStatus | None,
    spec: dict[str, Any],
    *,
    hidden: frozenset[str] = frozenset(),
    shown: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An object whose status is the scheduler's counts, as kubectl shows it: the status
    record's own fields (camelCase, sorted), less ``hidden``, with ``shown`` replacing some."""
    meta = obj.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        counts = {k: v for k, v in status.dump().items() if k not in _OWN_FIELDS | hidden}
        body = dict(sorted({**counts, **(shown or {})}.items()))
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": metadata,
        "spec": spec,
        "status": body,
    }


def daemonset_object(daemonset: DaemonSet, status: DaemonSetStatus | None) -> dict[str, Any]:
    return _counted_object(daemonset, status, daemonset.spec.dump())


def statefulset_object(statefulset: StatefulSet, status: StatefulSetStatus | None) -> dict[str, Any]:
    spec = statefulset.spec.dump()
    spec["replicas"] = statefulset.spec.desired_replicas
    name = statefulset.metadata.name
    revisions = (
        {
            "currentRevision": f"{name}-{status.current_revision}",
            "updateRevision": f"{name}-{status.update_revision}",
        }
        if status is not None
        else {}
    )
    return _counted_object(statefulset, status, spec, hidden=frozenset({"current"}), shown=revisions)


def pdb_object(pdb: PodDisruptionBudget, status: PodDisruptionBudgetStatus | None) -> dict[str, Any]:
    return _counted_object(pdb, status, pdb.spec.dump(), hidden=frozenset({"waiting"}))
