"""Shoal's records as Kubernetes-shaped objects, for ``-o json`` and ``-o yaml``.

Output follows the shape kubectl prints (metadata/spec/status, RFC 3339 timestamps,
quantities as strings) for the fields Shoal has, so scripts written for kubectl output
can read Shoal's.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.models.quantity import format_cpu, format_memory

if TYPE_CHECKING:
    from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus
    from shoal.models.core import (
        ClaimStatus,
        ConfigMap,
        Namespace,
        PersistentVolumeClaim,
        SealedSecret,
        Secret,
        StoredObject,
    )
    from shoal.models.node import Node, NodeCondition, NodeSpec
    from shoal.models.pod import ContainerState, Pod, PodStatus
    from shoal.models.service import Endpoints, Service
    from shoal.models.workloads import Deployment, DeploymentStatus


def timestamp(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata(
    name: str,
    namespace: str | None,
    labels: dict[str, str],
    uid: str,
    created: float,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if uid:
        metadata["uid"] = uid
    if created:
        metadata["creationTimestamp"] = timestamp(created)
    return metadata


def object_metadata(meta: Any) -> dict[str, Any]:
    """Metadata of any Shoal object as kubectl prints it (no namespace for cluster-scoped ones)."""
    return _metadata(
        meta.name,
        getattr(meta, "namespace", None) or None,
        meta.labels,
        meta.uid,
        meta.creation_timestamp,
        meta.annotations,
    )


def _state(state: ContainerState) -> dict[str, Any]:
    if state.status == "running":
        return {"running": {"startedAt": timestamp(state.started_at)}}
    if state.status == "terminated":
        return {
            "terminated": {
                "exitCode": state.exit_code,
                "reason": state.reason,
                "startedAt": timestamp(state.started_at),
                "finishedAt": timestamp(state.finished_at),
            }
        }
    return {"waiting": {"reason": state.reason, "message": state.message}}


def pod_object(pod: Pod, status: PodStatus | None) -> dict[str, Any]:
    meta = pod.metadata
    metadata = object_metadata(meta)
    if meta.deletion_timestamp:
        metadata["deletionTimestamp"] = timestamp(meta.deletion_timestamp)
    if meta.owner:
        api_version = "batch/v1" if meta.owner.kind == "Job" else "apps/v1"
        metadata["ownerReferences"] = [
            {
                "apiVersion": api_version,
                "kind": meta.owner.kind,
                "name": meta.owner.name,
                "uid": meta.owner.uid,
            }
        ]
    spec = pod.spec.dump()
    spec["nodeName"] = pod.node_name or None
    conditions: list[dict[str, Any]] = [
        {"type": "PodScheduled", "status": "True" if pod.node_name else "False"}
        | (
            {"reason": pod.scheduling.reason, "message": pod.scheduling.message}
            if pod.scheduling and not pod.node_name
            else {}
        )
    ]
    body: dict[str, Any] = {"phase": "Pending", "conditions": conditions}
    if status is not None:
        conditions.append({"type": "Ready", "status": "True" if status.ready else "False"})
        body.update(
            {
                "phase": status.phase,
                "podIP": status.pod_ip or None,
                "hostIP": status.host_ip or None,
                "startTime": timestamp(status.start_time),
                "containerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "containerID": f"podman://{c.container_id}" if c.container_id else None,
                        "ready": c.ready,
                        "started": c.started,
                        "restartCount": c.restart_count,
                        "state": _state(c.state),
                        **({"lastState": _state(c.last_state)} if c.last_state else {}),
                    }
                    for c in status.container_statuses
                ],
            }
        )
        if status.reason:
            body["reason"] = status.reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": body}


def deployment_object(deployment: Deployment, status: DeploymentStatus | None) -> dict[str, Any]:
    meta = deployment.metadata
    metadata = object_metadata(meta)
    metadata["generation"] = meta.generation
    body: dict[str, Any] = {
        "observedGeneration": 0,
        "replicas": 0,
        "updatedReplicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
    }
    if status is not None and status.uid == meta.uid:
        body = {
            "observedGeneration": status.observed_generation,
            "replicas": status.replicas,
            "updatedReplicas": status.updated_replicas,
            "readyReplicas": status.ready_replicas,
            "availableReplicas": status.available_replicas,
            "unavailableReplicas": status.unavailable_replicas,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": deployment.spec.dump(),
        "status": body,
    }


def node_object(node: Node, condition: NodeCondition | None, spec: NodeSpec | None = None) -> dict[str, Any]:
    resources = {
        "cpu": format_cpu(node.capacity.cpu or 0),
        "memory": format_memory(node.capacity.memory or 0),
    }
    allocatable = {
        "cpu": format_cpu(node.allocatable.cpu or 0),
        "memory": format_memory(node.allocatable.memory or 0),
    }
    labels = spec.labels if spec is not None and spec.labels is not None else node.labels
    taints = spec.taints if spec is not None and spec.taints is not None else node.taints
    node_spec: dict[str, Any] = {}
    if spec is not None and (spec.unschedulable or spec.draining):
        node_spec["unschedulable"] = True
    if taints:
        node_spec["taints"] = [t.dump() for t in taints]
    if condition is None:
        ready = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated"}
    else:
        ready = {
            "type": "Ready",
            "status": "True" if condition.ready else "Unknown",
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": timestamp(condition.since),
        }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _metadata(node.name, None, labels, "", node.started_at),
        "spec": node_spec,
        "status": {
            "conditions": [ready],
            "capacity": resources,
            "allocatable": allocatable,
            "addresses": [{"type": "InternalIP", "address": node.address}],
            "nodeInfo": {
                "containerRuntimeVersion": node.runtime_version,
                "operatingSystem": node.os,
                "architecture": node.architecture,
            },
        },
    }


def list_object(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def service_object(service: Service, load_balancer: list[str] | None = None) -> dict[str, Any]:
    """``load_balancer``: the addresses a LoadBalancer service answers on (the nodes')."""
    meta = service.metadata
    status: dict[str, Any] = {"loadBalancer": {}}
    if service.spec.type == "LoadBalancer" and load_balancer:
        status["loadBalancer"] = {"ingress": [{"ip": address, "ipMode": "VIP"} for address in load_balancer]}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(meta),
        "spec": service.spec.dump(),
        "status": status,
    }


def endpoints_object(endpoints: Endpoints) -> dict[str, Any]:
    """As a Kubernetes Endpoints object; each target is its own subset (ports differ per host)."""
    subsets = [
        {
            "addresses": [{"ip": t.host, "nodeName": t.node, "targetRef": {"kind": "Pod", "name": t.pod}}],
            "ports": [{"name": port.name, "port": t.port, "protocol": "TCP"}],
        }
        for port in endpoints.ports
        for t in port.targets
    ]
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": endpoints.name, "namespace": endpoints.namespace},
        "subsets": subsets,
    }


def namespace_object(namespace: Namespace) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_metadata(namespace.metadata),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def config_map_object(config_map: ConfigMap) -> dict[str, Any]:
    body = config_map.dump()
    body.pop("schema", None)
    body["metadata"] = object_metadata(config_map.metadata)
    for empty in ("binaryData", "immutable"):
        if not body.get(empty):
            body.pop(empty, None)
    return body


def secret_object(secret: Secret) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_metadata(secret.metadata),
        "type": secret.type,
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(secret.data.items())},
    }
    if secret.immutable is not None:
        body["immutable"] = secret.immutable
    return body


def sealed_secret_object(secret: SealedSecret) -> dict[str, Any]:
    """A Secret as listed without its values (``-o name``, and listings that do not unseal)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_metadata(secret.metadata),
        "type": secret.type,
    }


def claim_object(claim: PersistentVolumeClaim, status: ClaimStatus | None) -> dict[str, Any]:
    spec = claim.spec.dump()
    body: dict[str, Any] = {"phase": "Pending"}
    if status is not None and status.uid == claim.metadata.uid:
        body = {
            "phase": "Bound",
            "accessModes": spec["accessModes"],
            "capacity": {"storage": spec["resources"]["requests"].get("storage")},
        }
        spec["volumeName"] = status.volume
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_metadata(claim.metadata),
        "spec": spec,
        "status": body,
    }


def stored_object(obj: StoredObject) -> dict[str, Any]:
    body = obj.manifest()
    body["metadata"] = object_metadata(obj.metadata)
    return body


def pod_display_status(pod: Pod, status: PodStatus | None) -> str:
    """What kubectl's STATUS column says of a pod (``shoal get pods``, the web view)."""
    if pod.terminating:
        return "Terminating"
    if not pod.node_name:
        return "Pending"
    if status is None:
        return "ContainerCreating"
    if status.terminal:
        reasons = {c.state.reason for c in status.container_statuses if c.state.reason}
        return "Completed" if status.phase == "Succeeded" else (sorted(reasons)[0] if reasons else "Failed")
    for container in status.container_statuses:
        if container.state.status == "waiting" and container.state.reason:
            return container.state.reason
    return status.phase


def hpa_object(hpa: HorizontalPodAutoscaler, status: HPAStatus | None) -> dict[str, Any]:
    """An HPA as ``shoal get hpa -o yaml`` prints it: as applied, with the autoscaler's status."""
    obj = hpa.dump()
    obj.pop("schema", None)
    if status is not None:
        obj["status"] = {
            "currentReplicas": status.current_replicas,
            "desiredReplicas": status.desired_replicas,
            "lastScaleTime": status.last_scale_time,
            "currentMetrics": [r.dump() for r in status.readings],
        }
    return obj
