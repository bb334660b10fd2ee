"""What the browser is told about each object: small JSON views, built from the stored records.

A view holds only what the pages draw, so that most writes to a bucket (a pod status
rewritten with nothing new in it, say) change no view and reach no browser. Every view is
a plain dict of JSON values; two views are equal exactly when the pages would look the same.
"""

from __future__ import annotations

from typing import Any

from shoal.manifests.render import pod_display_status
from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus
from shoal.models.event import Event
from shoal.models.metrics import NodeMetrics
from shoal.models.node import Node, NodeCondition, NodeSpec
from shoal.models.pod import Pod, PodStatus
from shoal.models.service import Endpoints, Service
from shoal.models.workloads import Deployment, DeploymentStatus

View = dict[str, Any]


def pod_tone(pod: Pod, status: PodStatus | None) -> str:
    """The colour a pod is drawn in: ready, starting, pending, failed, done or stopping."""
    if pod.terminating:
        return "stopping"
    if status is None:
        return "pending" if not pod.node_name else "starting"
    if status.phase == "Succeeded":
        return "done"
    if status.phase == "Failed" or any(
        c.state.status == "waiting" and c.state.reason in ("CrashLoopBackOff", "Error", "ErrImagePull")
        for c in status.container_statuses
    ):
        return "failed"
    if status.ready:
        return "ready"
    return "starting"


def pod_view(pod: Pod, status: PodStatus | None) -> View:
    """``status`` only when it is this pod's (same uid), as ``shoal get pods`` takes it."""
    if status is not None and status.uid != pod.metadata.uid:
        status = None
    meta = pod.metadata
    cpu, memory = pod.spec.requested
    ready = sum(1 for c in status.container_statuses if c.ready and not c.init) if status else 0
    return {
        "namespace": meta.namespace,
        "name": meta.name,
        "node": pod.node_name,
        "status": pod_display_status(pod, status),
        "tone": pod_tone(pod, status),
        "ready": f"{ready}/{len(pod.spec.containers)}",
        "containers": [c.name for c in pod.spec.containers],
        "restarts": status.restarts if status else 0,
        "owner": {"kind": meta.owner.kind, "name": meta.owner.name} if meta.owner else None,
        "labels": dict(meta.labels),
        "ip": (status.pod_ip if status else "") or "",
        "created": meta.creation_timestamp,
        "requests": {"cpu": cpu, "memory": memory},
        "message": pod.scheduling.message if pod.scheduling and not pod.node_name else "",
    }


def node_view(
    node: Node,
    condition: NodeCondition | None,
    spec: NodeSpec | None,
    metrics: NodeMetrics | None,
) -> View:
    capacity_cpu = node.allocatable.cpu or node.capacity.cpu or 0
    capacity_memory = node.allocatable.memory or node.capacity.memory or 0
    usage = None
    if metrics is not None:
        usage = {
            "cpu": metrics.cpu_millis,
            "memory": metrics.memory_bytes,
            "capacityCpu": metrics.capacity_cpu_millis or capacity_cpu,
            "capacityMemory": metrics.capacity_memory_bytes or capacity_memory,
            "at": metrics.timestamp,
        }
    labels = spec.labels if spec is not None and spec.labels is not None else node.labels
    return {
        "name": node.name,
        "ready": condition.ready if condition is not None else None,
        "reason": condition.reason if condition is not None else "NodeStatusNeverUpdated",
        "since": condition.since if condition is not None else None,
        "cordoned": bool(spec is not None and (spec.unschedulable or spec.draining)),
        "draining": bool(spec is not None and spec.draining),
        "address": node.address,
        "capacity": {"cpu": capacity_cpu, "memory": capacity_memory, "pods": node.max_pods},
        "usage": usage,
        "labels": dict(labels),
        "runtime": node.runtime_version,
        "started": node.started_at,
    }


def deployment_view(deployment: Deployment, status: DeploymentStatus | None) -> View:
    meta = deployment.metadata
    if status is not None and status.uid != meta.uid:
        status = None
    return {
        "namespace": meta.namespace,
        "name": meta.name,
        "desired": deployment.spec.desired_replicas,
        "replicas": status.replicas if status else 0,
        "updated": status.updated_replicas if status else 0,
        "ready": status.ready_replicas if status else 0,
        "available": status.available_replicas if status else 0,
        "revision": deployment.revision,
        "paused": deployment.spec.paused,
        "progressing": status.progressing if status else "Unknown",
        "progressingReason": status.progressing_reason if status else "",
        "progressingMessage": status.progressing_message if status else "",
        "selector": dict(deployment.spec.selector.match_labels),
        "images": [c.image for c in deployment.spec.template.spec.containers],
        "created": meta.creation_timestamp,
    }


def service_view(service: Service, endpoints: Endpoints | None) -> View:
    meta = service.metadata
    spec = service.spec
    return {
        "namespace": meta.namespace,
        "name": meta.name,
        "type": spec.type,
        "clusterIP": spec.cluster_ip or "",
        "ports": [{"name": p.name or "", "port": p.port, "nodePort": p.node_port} for p in spec.ports],
        "selector": dict(spec.selector),
        "ready": sorted(endpoints.ready_pods) if endpoints else [],
        "notReady": sorted(endpoints.not_ready) if endpoints else [],
        "created": meta.creation_timestamp,
    }


def hpa_view(hpa: HorizontalPodAutoscaler, status: HPAStatus | None) -> View:
    meta = hpa.metadata
    if status is not None and status.uid != meta.uid:
        status = None
    target = hpa.spec.scale_target_ref
    return {
        "namespace": meta.namespace,
        "name": meta.name,
        "target": {"kind": target.kind, "name": target.name},
        "min": hpa.spec.min_replicas,
        "max": hpa.spec.max_replicas,
        "current": status.current_replicas if status else None,
        "desired": status.desired_replicas if status else None,
        "message": status.message if status else "",
        "lastScaleTime": status.last_scale_time if status else None,
        "readings": [
            {"metric": r.metric, "current": r.shown_current, "target": r.shown_target, "replicas": r.replicas}
            for r in (status.readings if status else [])
        ],
        "decisions": [
            {"at": d.at, "from": d.from_replicas, "to": d.to_replicas, "reason": d.reason}
            for d in (status.decisions if status else [])
        ],
        "recommendations": [
            {"at": r.at, "replicas": r.replicas} for r in (status.recommendations if status else [])
        ],
        "created": meta.creation_timestamp,
    }


def event_view(event: Event) -> View:
    return {
        "id": event.id,
        "time": event.time,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "kind": event.kind,
        "namespace": event.namespace,
        "name": event.name,
        "source": event.source,
    }
