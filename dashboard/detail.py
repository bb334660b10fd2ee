"""One object for its detail page: its YAML exactly as ``shoal get KIND NAME -o yaml`` prints it.

Rendered by ``manifests.render`` from the records the feed holds; the pages find the
object's pods and events in what the stream already gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from shoal import keys
from shoal.bus import kv
from shoal.manifests.render import deployment_object, hpa_object, node_object, pod_object, service_object

Get = Callable[[str, str], Any]
Values = Callable[[str], Iterator[Any]]

KINDS = ("pods", "deployments", "nodes", "services", "hpas")
"""The kinds a detail page shows, by the tables' names."""


def _same_uid(status: Any, uid: str) -> Any:
    return status if status is not None and status.uid == uid else None


def render(kind: str, namespace: str, name: str, get: Get, values: Values) -> dict[str, Any] | None:
    """The object as Kubernetes shapes it (None: no such object); ``namespace`` is ignored for nodes."""
    key = keys.object_key(namespace, name)
    if kind == "pods":
        pod = get(kv.PODS.name, key)
        return (
            None
            if pod is None
            else pod_object(pod, _same_uid(get(kv.POD_STATUS.name, key), pod.metadata.uid))
        )
    if kind == "deployments":
        deployment = get(kv.DEPLOYMENTS.name, key)
        return (
            None if deployment is None else deployment_object(deployment, get(kv.DEPLOYMENT_STATUS.name, key))
        )
    if kind == "nodes":
        node = get(kv.NODES.name, name)
        if node is None:
            return None
        return node_object(node, get(kv.NODE_STATUS.name, name), get(kv.NODE_SPECS.name, name))
    if kind == "services":
        service = get(kv.SERVICES.name, key)
        if service is None:
            return None
        external: list[str] = []
        if service.spec.type == "LoadBalancer":
            external = sorted({node.address for node in values(kv.NODES.name) if node.address})
        return service_object(service, external)
    if kind == "hpas":
        hpa = get(kv.HPAS.name, key)
        if hpa is None:
            return None
        return hpa_object(hpa, _same_uid(get(kv.HPA_STATUS.name, key), hpa.metadata.uid))
    return None


def as_yaml(obj: dict[str, Any]) -> str:
    """The text ``-o yaml`` prints."""
    return yaml.safe_dump(obj, sort_keys=False)
