"""What ``shoal get`` shows of each kind: what to read, and its table columns and objects.

A ``Lister`` per kind reads what it needs from the cluster (``gather``) and turns it into
table columns, rows and Kubernetes-shaped objects (``show``). Kinds without a lister of
their own (those Shoal only stores) are listed by name and age, as kubectl lists custom
resources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shoal import keys
from shoal.cli.output import age
from shoal.client import ShoalClient
from shoal.kinds import Kind
from shoal.label_selectors import Selector
from shoal.manifests.render import (
    claim_object,
    config_map_object,
    deployment_object,
    endpoints_object,
    namespace_object,
    node_object,
    pod_display_status,
    pod_object,
    sealed_secret_object,
    secret_object,
    service_object,
    stored_object,
)
from shoal.models.quantity import format_cpu, format_memory, human_memory

if TYPE_CHECKING:
    from shoal.models.node import Node, NodeCondition, NodeSpec
    from shoal.models.pod import Pod, PodStatus


@dataclass(frozen=True)
class Scope:
    """What a listing is asked for."""

    kind: Kind
    name: str | None
    namespace: str
    all_namespaces: bool
    selector: Selector
    output: str
    now: float

    @property
    def wide(self) -> bool:
        return self.output == "wide"

    @property
    def values(self) -> bool:
        """Whole objects wanted (``-o json|yaml``), not just a table."""
        return self.output in ("json", "yaml")


Listing = tuple[list[str], list[list[str]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Lister:
    gather: Callable[[ShoalClient, Scope], Awaitable[dict[str, Any]]]
    show: Callable[[dict[str, Any], Scope], Listing]


class _HasMeta(Protocol):
    @property
    def metadata(self) -> Any: ...


Listed = TypeVar("Listed", bound=_HasMeta)


def matches(labels: dict[str, str], wanted: Selector) -> bool:
    return wanted.matches(labels)


def selected(objects: Iterable[Listed], scope: Scope) -> list[Listed]:
    """The objects a listing shows: in scope, by name if given, matching the label selector;
    ordered by namespace and name."""
    namespaced = scope.kind.namespaced
    return sorted(
        (
            o
            for o in objects
            if (not namespaced or scope.all_namespaces or o.metadata.namespace == scope.namespace)
            and (scope.name is None or o.metadata.name == scope.name)
            and matches(o.metadata.labels, scope.selector)
        ),
        key=lambda o: (getattr(o.metadata, "namespace", ""), o.metadata.name),
    )


def _columns(scope: Scope, columns: list[str]) -> list[str]:
    return ["NAMESPACE", *columns] if scope.all_namespaces and scope.kind.namespaced else columns


def _row(scope: Scope, obj: Any, cells: list[str]) -> list[str]:
    return [obj.metadata.namespace, *cells] if scope.all_namespaces and scope.kind.namespaced else cells


def pod_status_of(pod: Pod, statuses: dict[str, PodStatus]) -> PodStatus | None:
    status = statuses.get(pod.key)
    return status if status is not None and status.uid == pod.metadata.uid else None


# -- pods and deployments ------------------------------------------------------------------------


async def together(**reads: Awaitable[Any]) -> dict[str, Any]:
    """Each read's result by its name, the reads made at once (one round trip, not one each)."""
    results = await asyncio.gather(*reads.values())
    return dict(zip(reads, results, strict=True))


async def _gather_pods(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return await together(pods=client.pods(), status=client.pod_statuses())


def _show_pods(data: dict[str, Any], scope: Scope) -> Listing:
    statuses: dict[str, PodStatus] = data["status"]
    columns = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"] + (["IP"] if scope.wide else [])
    rows, objects = [], []
    for pod in selected(data["pods"].values(), scope):
        status = pod_status_of(pod, statuses)
        objects.append(pod_object(pod, status))
        ready = sum(1 for c in status.container_statuses if c.ready and not c.init) if status else 0
        cells = [
            pod.metadata.name,
            f"{ready}/{len(pod.spec.containers)}",
            pod_display_status(pod, status),
            str(status.restarts if status else 0),
            age(pod.metadata.creation_timestamp, scope.now),
            pod.node_name or "<none>",
        ]
        if scope.wide:
            cells.append((status.pod_ip if status else "") or "<none>")
        rows.append(_row(scope, pod, cells))
    return _columns(scope, columns), rows, objects


async def _gather_deployments(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return await together(deployments=client.deployments(), status=client.deployment_statuses())


def _show_deployments(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    if scope.wide:
        columns += ["CONTAINERS", "IMAGES", "SELECTOR"]
    rows, objects = [], []
    for deployment in selected(data["deployments"].values(), scope):
        meta = deployment.metadata
        status = data["status"].get(keys.object_key(meta.namespace, meta.name))
        if status is not None and status.uid != meta.uid:
            status = None
        objects.append(deployment_object(deployment, status))
        cells = [
            meta.name,
            f"{status.ready_replicas if status else 0}/{deployment.spec.desired_replicas}",
            str(status.updated_replicas if status else 0),
            str(status.available_replicas if status else 0),
            age(meta.creation_timestamp, scope.now),
        ]
        if scope.wide:
            containers = deployment.spec.template.spec.containers
            cells += [
                ",".join(c.name for c in containers),
                ",".join(c.image for c in containers),
                ",".join(f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items()),
            ]
        rows.append(_row(scope, deployment, cells))
    return _columns(scope, columns), rows, objects


# -- services ------------------------------------------------------------------------------------


async def _gather_services(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    services = await client.services()
    endpoints = await client.endpoints()
    nodes = await client.nodes() if any(s.spec.type == "LoadBalancer" for s in services.values()) else {}
    return {"services": services, "endpoints": endpoints, "nodes": nodes}


def service_ports(service: Any) -> str:
    if service.spec.cluster_ip == "None":
        return ",".join(f"{p.port}/{p.protocol}" for p in service.spec.ports)
    return ",".join(f"{p.port}:{p.node_port}/{p.protocol}" for p in service.spec.ports)


def _show_services(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "SELECTOR", "ENDPOINTS", "AGE"]
    addresses = sorted({node.address for node in data["nodes"].values() if node.address})
    rows, objects = [], []
    for svc in selected(data["services"].values(), scope):
        meta = svc.metadata
        endpoints = data["endpoints"].get(keys.object_key(meta.namespace, meta.name))
        external = addresses if svc.spec.type == "LoadBalancer" else []
        objects.append(service_object(svc, external))
        cells = [
            meta.name,
            svc.spec.type,
            svc.spec.cluster_ip or "<none>",
            ",".join(external) or ("<pending>" if svc.spec.type == "LoadBalancer" else "<none>"),
            service_ports(svc),
            ",".join(f"{k}={v}" for k, v in svc.spec.selector.items()) or "<none>",
            str(len(endpoints.ready_pods) if endpoints else 0),
            age(meta.creation_timestamp, scope.now),
        ]
        rows.append(_row(scope, svc, cells))
    return _columns(scope, columns), rows, objects


def _show_endpoints(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for svc in selected(data["services"].values(), scope):
        endpoints = data["endpoints"].get(keys.object_key(svc.metadata.namespace, svc.metadata.name))
        if endpoints is None:
            continue
        objects.append(endpoints_object(endpoints))
        targets = sorted({f"{t.host}:{t.port}" for p in endpoints.ports for t in p.targets})
        shown = ",".join(targets[:3]) + (f" + {len(targets) - 3} more" if len(targets) > 3 else "")
        rows.append(_row(scope, svc, [svc.metadata.name, shown or "<none>", str(len(endpoints.not_ready))]))
    return _columns(scope, ["NAME", "ENDPOINTS", "NOT-READY"]), rows, objects


# -- autoscalers, priority classes, nodes --------------------------------------------------------


async def _gather_hpas(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return await together(hpas=client.hpas(), status=client.hpa_statuses())


def _show_hpas(data: dict[str, Any], scope: Scope) -> Listing:
    from shoal.cli import autoscaling  # HPAs' columns live with the rest of their commands

    hpas = selected(data["hpas"].values(), scope)
    return autoscaling.hpa_table(hpas, data["status"], scope.all_namespaces, scope.now)


async def _gather_priority_classes(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return {"classes": await client.priority_classes()}


def _show_priority_classes(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for pc in selected(data["classes"].values(), scope):
        body = pc.dump()
        body.pop("schema", None)
        objects.append(body | {"metadata": pc.metadata.dump()})
        rows.append(
            [
                pc.metadata.name,
                str(pc.value),
                str(pc.global_default).lower(),
                pc.preemption_policy,
                age(pc.metadata.creation_timestamp, scope.now),
            ]
        )
    return ["NAME", "VALUE", "GLOBAL-DEFAULT", "PREEMPTION", "AGE"], rows, objects


async def _gather_nodes(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return {
        "nodes": await client.nodes(),
        "pods": await client.pods(),
        "specs": await client.node_specs(),
        "conditions": await client.node_conditions(),
    }


def node_labels(node: Node, specs: dict[str, NodeSpec]) -> dict[str, str]:
    """The operator's labels once set (``shoal label node``), else the node's own."""
    spec = specs.get(node.name)
    return spec.labels if spec is not None and spec.labels is not None else node.labels


def _show_nodes(data: dict[str, Any], scope: Scope) -> Listing:
    specs: dict[str, NodeSpec] = data["specs"]
    conditions: dict[str, NodeCondition] = data["conditions"]
    nodes = sorted(
        (
            n
            for n in data["nodes"].values()
            if (scope.name is None or n.name == scope.name) and matches(node_labels(n, specs), scope.selector)
        ),
        key=lambda n: n.name,
    )
    pods_per_node: dict[str, int] = {}
    for pod in data["pods"].values():
        if pod.node_name:
            pods_per_node[pod.node_name] = pods_per_node.get(pod.node_name, 0) + 1
    columns = ["NAME", "STATUS", "CPU", "MEMORY", "PODS", "AGE", "VERSION"]
    if scope.wide:
        columns += ["INTERNAL-IP", "OS", "ARCH"]
    rows, objects = [], []
    for node in nodes:
        condition = conditions.get(node.name)
        spec = specs.get(node.name)
        objects.append(node_object(node, condition, spec))
        state = "Ready" if condition is not None and condition.ready else "NotReady"
        if spec is not None and (spec.unschedulable or spec.draining):
            state += ",SchedulingDisabled"
        row = [
            node.name,
            state,
            format_cpu(node.capacity.cpu or 0),
            human_memory(node.capacity.memory or 0),
            str(pods_per_node.get(node.name, 0)),
            age(node.started_at, scope.now),
            node.runtime_version,
        ]
        if scope.wide:
            row += [node.address, node.os, node.architecture]
        rows.append(row)
    return columns, rows, objects


# -- namespaces, config maps, secrets, claims ----------------------------------------------------


async def _gather_namespaces(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return {"namespaces": await client.namespaces()}


def _show_namespaces(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for ns in selected(data["namespaces"].values(), scope):
        objects.append(namespace_object(ns))
        rows.append([ns.metadata.name, "Active", age(ns.metadata.creation_timestamp, scope.now)])
    return ["NAME", "STATUS", "AGE"], rows, objects


async def _gather_config_maps(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return {"config_maps": await client.config_maps()}


def _show_config_maps(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for cm in selected(data["config_maps"].values(), scope):
        objects.append(config_map_object(cm))
        count = len(cm.data) + len(cm.binary_data)
        rows.append(
            _row(scope, cm, [cm.metadata.name, str(count), age(cm.metadata.creation_timestamp, scope.now)])
        )
    return _columns(scope, ["NAME", "DATA", "AGE"]), rows, objects


async def _gather_secrets(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    sealed = await client.sealed_secrets()
    data: dict[str, Any] = {"sealed": sealed, "open": {}}
    if scope.values:
        # Values only when asked for whole objects, each unsealed by an API actor.
        for secret in selected(sealed.values(), scope):
            meta = secret.metadata
            data["open"][keys.object_key(meta.namespace, meta.name)] = await client.secret(
                meta.namespace, meta.name
            )
    return data


def _show_secrets(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for secret in selected(data["sealed"].values(), scope):
        meta = secret.metadata
        opened = data["open"].get(keys.object_key(meta.namespace, meta.name))
        objects.append(secret_object(opened) if opened is not None else sealed_secret_object(secret))
        rows.append(
            _row(
                scope,
                secret,
                [meta.name, secret.type, str(len(secret.sizes)), age(meta.creation_timestamp, scope.now)],
            )
        )
    return _columns(scope, ["NAME", "TYPE", "DATA", "AGE"]), rows, objects


async def _gather_claims(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return await together(claims=client.claims(), status=client.claim_statuses())


def _show_claims(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "NODE", "AGE"]
    modes = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    rows, objects = [], []
    for claim in selected(data["claims"].values(), scope):
        meta = claim.metadata
        status = data["status"].get(keys.object_key(meta.namespace, meta.name))
        status = status if status is not None and status.uid == meta.uid else None
        objects.append(claim_object(claim, status))
        storage = claim.spec.resources.requests.storage
        cells = [
            meta.name,
            "Bound" if status else "Pending",
            status.volume if status else "",
            format_memory(storage) if storage and status else "",
            ",".join(modes[m] for m in claim.spec.access_modes) if status else "",
            claim.spec.storage_class_name or "<unset>",
            status.node if status else "",
            age(meta.creation_timestamp, scope.now),
        ]
        rows.append(_row(scope, claim, cells))
    return _columns(scope, columns), rows, objects


# -- kinds Shoal only stores ---------------------------------------------------------------------


async def _gather_stored(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return {"objects": await client.stored_objects(scope.kind.plural)}


def _show_stored(data: dict[str, Any], scope: Scope) -> Listing:
    rows, objects = [], []
    for obj in selected(data["objects"].values(), scope):
        objects.append(stored_object(obj))
        rows.append(_row(scope, obj, [obj.metadata.name, age(obj.metadata.creation_timestamp, scope.now)]))
    return _columns(scope, ["NAME", "AGE"]), rows, objects


LISTERS: dict[str, Lister] = {
    "Pod": Lister(_gather_pods, _show_pods),
    "Deployment": Lister(_gather_deployments, _show_deployments),
    "Service": Lister(_gather_services, _show_services),
    "Endpoints": Lister(_gather_services, _show_endpoints),
    "HorizontalPodAutoscaler": Lister(_gather_hpas, _show_hpas),
    "PriorityClass": Lister(_gather_priority_classes, _show_priority_classes),
    "Node": Lister(_gather_nodes, _show_nodes),
    "Namespace": Lister(_gather_namespaces, _show_namespaces),
    "ConfigMap": Lister(_gather_config_maps, _show_config_maps),
    "Secret": Lister(_gather_secrets, _show_secrets),
    "PersistentVolumeClaim": Lister(_gather_claims, _show_claims),
}
STORED = Lister(_gather_stored, _show_stored)


def lister_of(kind: Kind) -> Lister:
    if kind.kind in LISTERS:
        return LISTERS[kind.kind]
    from shoal.cli import workloads  # Jobs, CronJobs and DaemonSets have a module of their own

    return workloads.LISTERS.get(kind.kind, STORED)
