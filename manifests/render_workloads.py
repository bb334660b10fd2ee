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


def daemonset_object(daemonset: DaemonSet, status: DaemonSetStatus | None) -> dict[str, Any]:
    meta = daemonset.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        body = {
            "currentNumberScheduled": status.current_number_scheduled,
            "desiredNumberScheduled": status.desired_number_scheduled,
            "numberAvailable": status.number_available,
            "numberMisscheduled": status.number_misscheduled,
            "numberReady": status.number_ready,
            "numberUnavailable": status.number_unavailable,
            "observedGeneration": status.observed_generation,
            "updatedNumberScheduled": status.updated_number_scheduled,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": daemonset.spec.dump(),
        "status": body,
    }


def statefulset_object(statefulset: StatefulSet, status: StatefulSetStatus | None) -> dict[str, Any]:
    meta = statefulset.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        body = {
            "availableReplicas": status.available_replicas,
            "currentReplicas": status.current_replicas,
            "currentRevision": f"{meta.name}-{status.current_revision}",
            "observedGeneration": status.observed_generation,
            "readyReplicas": status.ready_replicas,
            "replicas": status.replicas,
            "updateRevision": f"{meta.name}-{status.update_revision}",
            "updatedReplicas": status.updated_replicas,
        }
    spec = statefulset.spec.dump()
    spec["replicas"] = statefulset.spec.desired_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata,
        "spec": spec,
        "status": body,
    }


def pdb_object(pdb: PodDisruptionBudget, status: PodDisruptionBudgetStatus | None) -> dict[str, Any]:
    meta = pdb.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    body: dict[str, Any] = {}
    if status is not None and status.uid == meta.uid:
        body = {
            "currentHealthy": status.current_healthy,
            "desiredHealthy": status.desired_healthy,
            "disruptionsAllowed": status.disruptions_allowed,
            "expectedPods": status.expected_pods,
            "observedGeneration": status.observed_generation,
        }
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata,
            "spec": pdb.spec.dump(), "status": body}  # fmt: skip
