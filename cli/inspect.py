"""Commands that show the cluster: get and describe."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Any, Protocol, TypeVar

import typer

from shoal.bus import subjects
from shoal.cli import autoscaling
from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.output import (
    OUTPUT_FORMATS,
    age,
    console,
    dump,
    events_table,
    fields,
    pod_display_status,
    table,
)
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, NotFound
from shoal.manifests.render import (
    deployment_object,
    endpoints_object,
    list_object,
    node_object,
    pod_object,
    service_object,
)
from shoal.models.event import Event
from shoal.models.node import Node, NodeCondition, NodeSpec
from shoal.models.pod import Pod, PodStatus, pod_key
from shoal.models.quantity import format_cpu, human_memory
from shoal.models.service import Endpoints, Service
from shoal.models.workloads import Deployment, DeploymentStatus, ObjectMeta, RollingUpdateSettings

KINDS = {
    "pod": "pods",
    "pods": "pods",
    "po": "pods",
    "deployment": "deployments",
    "deployments": "deployments",
    "deploy": "deployments",
    "node": "nodes",
    "nodes": "nodes",
    "no": "nodes",
    "priorityclass": "priorityclasses",
    "priorityclasses": "priorityclasses",
    "pc": "priorityclasses",
    "service": "services",
    "services": "services",
    "svc": "services",
    "endpoints": "endpoints",
    "ep": "endpoints",
    "horizontalpodautoscaler": "horizontalpodautoscalers",
    "horizontalpodautoscalers": "horizontalpodautoscalers",
    "hpa": "horizontalpodautoscalers",
}

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table, wide, json, yaml or name")]
AllNamespacesOption = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Objects of every namespace.")
]
SelectorOption = Annotated[str | None, typer.Option("--selector", "-l", help="Label selector: key=value,...")]


def resolve_kind(kind: str) -> str:
    resolved = KINDS.get(kind.lower())
    if resolved is None:
        raise InvalidManifest(
            [f"unknown resource type {kind!r}: Shoal knows {', '.join(sorted(set(KINDS.values())))}"]
        )
    return resolved


def parse_selector(selector: str | None) -> dict[str, str]:
    if not selector:
        return {}
    wanted = {}
    for part in selector.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidManifest([f"--selector: {part!r} is not key=value"])
        wanted[key.strip()] = value.strip().lstrip("=")
    return wanted


class _Namespaced(Protocol):
    @property
    def metadata(self) -> ObjectMeta: ...


Listed = TypeVar("Listed", bound=_Namespaced)


def selected(
    objects: Iterable[Listed], name: str | None, namespace: str, all_namespaces: bool, wanted: dict[str, str]
) -> list[Listed]:
    """The namespaced objects a listing shows: in scope, by name if given, matching the
    label selector; ordered by namespace and name."""
    return sorted(
        (
            o
            for o in objects
            if _in_scope(o.metadata.namespace, namespace, all_namespaces)
            and (name is None or o.metadata.name == name)
            and _matches(o.metadata.labels, wanted)
        ),
        key=lambda o: (o.metadata.namespace, o.metadata.name),
    )


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _in_scope(namespace: str, wanted: str, all_namespaces: bool) -> bool:
    return all_namespaces or namespace == wanted


async def _gather(client: ShoalClient, kind: str) -> dict[str, Any]:
    if kind == "pods":
        return {"pods": await client.pods(), "status": await client.pod_statuses()}
    if kind == "deployments":
        return {"deployments": await client.deployments(), "status": await client.deployment_statuses()}
    if kind == "priorityclasses":
        return {"classes": await client.priority_classes()}
    if kind in ("services", "endpoints"):
        return {"services": await client.services(), "endpoints": await client.endpoints()}
    if kind == "horizontalpodautoscalers":
        return {"hpas": await client.hpas(), "status": await client.hpa_statuses()}
    return {
        "nodes": await client.nodes(),
        "pods": await client.pods(),
        "specs": await client.node_specs(),
        "conditions": await client.node_conditions(),
    }


def _pod_status(pod: Pod, statuses: dict[str, PodStatus]) -> PodStatus | None:
    status = statuses.get(pod.key)
    return status if status is not None and status.uid == pod.metadata.uid else None


def get(
    kind: Annotated[
        str, typer.Argument(help="pods, deployments, nodes, services, endpoints, hpa, priorityclasses")
    ],
    name: Annotated[str | None, typer.Argument(help="Only this object.")] = None,
    namespace: NamespaceOption = "default",
    all_namespaces: AllNamespacesOption = False,
    output: OutputOption = "table",
    selector: SelectorOption = None,
    server: ServerOption = None,
) -> None:
    """List objects as a table, or as Kubernetes-shaped JSON or YAML."""
    resource = resolve_kind(kind)
    if output not in OUTPUT_FORMATS:
        raise InvalidManifest([f"--output: unknown format {output!r} (use {', '.join(OUTPUT_FORMATS)})"])
    data = with_client(server, lambda client: _gather(client, resource))
    wanted = parse_selector(selector)
    now = time.time()
    objects: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    columns: list[str]
    if resource == "pods":
        statuses: dict[str, PodStatus] = data["status"]
        pods = selected(data["pods"].values(), name, namespace, all_namespaces, wanted)
        columns = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]
        if output == "wide":
            columns += ["IP"]
        if all_namespaces:
            columns.insert(0, "NAMESPACE")
        for pod in pods:
            status = _pod_status(pod, statuses)
            objects.append(pod_object(pod, status))
            ready = sum(1 for c in status.container_statuses if c.ready) if status else 0
            row = [
                pod.metadata.name,
                f"{ready}/{len(pod.spec.containers)}",
                pod_display_status(pod, status),
                str(status.restarts if status else 0),
                age(pod.metadata.creation_timestamp, now),
                pod.node_name or "<none>",
            ]
            if output == "wide":
                row.append((status.pod_ip if status else "") or "<none>")
            if all_namespaces:
                row.insert(0, pod.metadata.namespace)
            rows.append(row)
    elif resource == "deployments":
        dep_status: dict[str, DeploymentStatus] = data["status"]
        deployments = selected(data["deployments"].values(), name, namespace, all_namespaces, wanted)
        columns = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        if output == "wide":
            columns += ["CONTAINERS", "IMAGES", "SELECTOR"]
        if all_namespaces:
            columns.insert(0, "NAMESPACE")
        for deployment in deployments:
            key = pod_key(deployment.metadata.namespace, deployment.metadata.name)
            status = dep_status.get(key)
            if status is not None and status.uid != deployment.metadata.uid:
                status = None
            objects.append(deployment_object(deployment, status))
            row = [
                deployment.metadata.name,
                f"{status.ready_replicas if status else 0}/{deployment.spec.desired_replicas}",
                str(status.updated_replicas if status else 0),
                str(status.available_replicas if status else 0),
                age(deployment.metadata.creation_timestamp, now),
            ]
            if output == "wide":
                containers = deployment.spec.template.spec.containers
                row += [
                    ",".join(c.name for c in containers),
                    ",".join(c.image for c in containers),
                    ",".join(f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items()),
                ]
            if all_namespaces:
                row.insert(0, deployment.metadata.namespace)
            rows.append(row)
    elif resource in ("services", "endpoints"):
        services = selected(data["services"].values(), name, namespace, all_namespaces, wanted)
        if resource == "services":
            columns = ["NAME", "TYPE", "PORT(S)", "SELECTOR", "ENDPOINTS", "AGE"]
        else:
            columns = ["NAME", "ENDPOINTS", "NOT-READY"]
        if all_namespaces:
            columns.insert(0, "NAMESPACE")
        for svc in services:
            endpoints = data["endpoints"].get(pod_key(svc.metadata.namespace, svc.metadata.name))
            if resource == "services":
                objects.append(service_object(svc))
                ports = ",".join(f"{p.port}:{p.node_port}/{p.protocol}" for p in svc.spec.ports)
                selector = ",".join(f"{k}={v}" for k, v in svc.spec.selector.items())
                ready = len(endpoints.ready_pods) if endpoints else 0
                row = [
                    svc.metadata.name,
                    svc.spec.type,
                    ports,
                    selector,
                    str(ready),
                    age(svc.metadata.creation_timestamp, now),
                ]
            else:
                if endpoints is None:
                    continue
                objects.append(endpoints_object(endpoints))
                targets = sorted({f"{t.host}:{t.port}" for p in endpoints.ports for t in p.targets})
                shown = ",".join(targets[:3]) + (f" + {len(targets) - 3} more" if len(targets) > 3 else "")
                row = [svc.metadata.name, shown or "<none>", str(len(endpoints.not_ready))]
            if all_namespaces:
                row.insert(0, svc.metadata.namespace)
            rows.append(row)
    elif resource == "horizontalpodautoscalers":
        hpas = selected(data["hpas"].values(), name, namespace, all_namespaces, wanted)
        columns, rows, objects = autoscaling.hpa_table(hpas, data["status"], all_namespaces, now)
    elif resource == "priorityclasses":
        columns = ["NAME", "VALUE", "GLOBAL-DEFAULT", "PREEMPTION", "AGE"]
        for pc in sorted(data["classes"].values(), key=lambda c: c.metadata.name):
            if name is not None and pc.metadata.name != name:
                continue
            objects.append(pc.dump() | {"metadata": pc.metadata.dump()})
            rows.append(
                [
                    pc.metadata.name,
                    str(pc.value),
                    str(pc.global_default).lower(),
                    pc.preemption_policy,
                    age(pc.metadata.creation_timestamp, now),
                ]
            )
    else:
        nodes = sorted(
            (
                n
                for n in data["nodes"].values()
                if (name is None or n.name == name) and _matches(_node_labels(n, data["specs"]), wanted)
            ),
            key=lambda n: n.name,
        )
        pods_per_node: dict[str, int] = {}
        for pod in data["pods"].values():
            if pod.node_name:
                pods_per_node[pod.node_name] = pods_per_node.get(pod.node_name, 0) + 1
        columns = ["NAME", "STATUS", "CPU", "MEMORY", "PODS", "AGE", "VERSION"]
        if output == "wide":
            columns += ["INTERNAL-IP", "OS", "ARCH"]
        specs = data["specs"]
        conditions: dict[str, NodeCondition] = data["conditions"]
        for node in nodes:
            condition = conditions.get(node.name)
            ready = condition is not None and condition.ready
            spec = specs.get(node.name)
            objects.append(node_object(node, condition, spec))
            state = "Ready" if ready else "NotReady"
            if spec is not None and (spec.unschedulable or spec.draining):
                state += ",SchedulingDisabled"
            row = [
                node.name,
                state,
                format_cpu(node.capacity.cpu or 0),
                human_memory(node.capacity.memory or 0),
                str(pods_per_node.get(node.name, 0)),
                age(node.started_at, now),
                node.runtime_version,
            ]
            if output == "wide":
                row += [node.address, node.os, node.architecture]
            rows.append(row)

    if name is not None and not objects:
        scope = "" if resource in ("nodes", "priorityclasses") else f" in namespace {namespace}"
        raise NotFound(f'{resource} "{name}" not found{scope}')
    if output in ("json", "yaml"):
        dump(objects[0] if name is not None else list_object(objects), output)
    elif output == "name":
        for obj in objects:
            console.print(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
    elif rows:
        table(columns, rows)
    else:
        scope = (
            "" if resource in ("nodes", "priorityclasses") or all_namespaces else f" in {namespace} namespace"
        )
        console.print(f"No {resource} found{scope}.")


# -- describe ---------------------------------------------------------------------------------


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


async def _collect_events(client: ShoalClient, subject: str) -> list[Event]:
    return [event async for event in client.events(follow=False, subject=subject)]


def describe(
    kind: Annotated[str, typer.Argument(help="pod, deployment, node, service, hpa or priorityclass")],
    name: Annotated[str, typer.Argument(help="The object's name.")],
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Everything about one object, with its recent events."""
    resource = resolve_kind(kind)
    now = time.time()

    async def gather(client: ShoalClient) -> dict[str, Any]:
        data = await _gather(client, resource)
        scope_kind = {
            "pods": "pod",
            "deployments": "deployment",
            "nodes": "node",
            "services": "service",
            "endpoints": "service",
            "horizontalpodautoscalers": "horizontalpodautoscaler",
        }.get(resource, "priorityclass")
        scope_ns = subjects.CLUSTER_SCOPE if resource in ("nodes", "priorityclasses") else namespace
        data["events"] = await _collect_events(
            client, f"{subjects.EVENTS_PREFIX}.{scope_kind}.{scope_ns}.{name}.*"
        )
        if resource == "deployments":
            data["pods"] = await client.pods()
            data["pod_status"] = await client.pod_statuses()
        return data

    data = with_client(server, gather)
    if resource == "pods":
        pod = data["pods"].get(pod_key(namespace, name))
        if pod is None:
            raise NotFound(f'pod "{name}" not found in namespace {namespace}')
        _describe_pod(pod, _pod_status(pod, data["status"]), now)
    elif resource == "deployments":
        deployment = data["deployments"].get(pod_key(namespace, name))
        if deployment is None:
            raise NotFound(f'deployment "{name}" not found in namespace {namespace}')
        status = data["status"].get(pod_key(namespace, name))
        _describe_deployment(deployment, status, data["pods"], data["pod_status"], now)
    elif resource in ("services", "endpoints"):
        svc = data["services"].get(pod_key(namespace, name))
        if svc is None:
            raise NotFound(f'service "{name}" not found in namespace {namespace}')
        _describe_service(svc, data["endpoints"].get(pod_key(namespace, name)), now)
    elif resource == "horizontalpodautoscalers":
        hpa = data["hpas"].get(pod_key(namespace, name))
        if hpa is None:
            raise NotFound(f'horizontalpodautoscaler "{name}" not found in namespace {namespace}')
        autoscaling.describe_hpa(hpa, data["status"].get(pod_key(namespace, name)), now)
    elif resource == "priorityclasses":
        pc = data["classes"].get(name)
        if pc is None:
            raise NotFound(f'priorityclass "{name}" not found')
        fields(
            [
                ("Name", pc.metadata.name),
                ("Value", str(pc.value)),
                ("GlobalDefault", str(pc.global_default)),
                ("PreemptionPolicy", pc.preemption_policy),
                ("Description", pc.description or "<none>"),
            ]
        )
    else:
        node = data["nodes"].get(name)
        if node is None:
            raise NotFound(f'node "{name}" not found')
        _describe_node(
            node,
            data["specs"].get(name),
            data["conditions"].get(name),
            [p for p in data["pods"].values() if p.node_name == name],
            now,
        )
    events_table(data["events"], now)


def _describe_pod(pod: Pod, status: PodStatus | None, now: float) -> None:
    meta = pod.metadata
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("Node", pod.node_name or "<none>"),
            (
                "Start Time",
                age(status.start_time, now) + " ago" if status and status.start_time else "<none>",
            ),
            ("Labels", _labels(meta.labels)),
            ("Status", pod_display_status(pod, status)),
            ("IP", (status.pod_ip if status else "") or "<none>"),
            ("Controlled By", f"Deployment/{meta.owner.name}" if meta.owner else "<none>"),
        ]
    )
    if pod.scheduling is not None and not pod.node_name:
        console.print("Conditions:")
        fields(
            [("PodScheduled", f"False ({pod.scheduling.reason}: {pod.scheduling.message})")],
            indent=2,
        )
    elif status is not None:
        console.print("Conditions:")
        fields([("PodScheduled", "True"), ("Ready", str(status.ready))], indent=2)
    console.print("Containers:")
    states = {c.name: c for c in status.container_statuses} if status else {}
    for container in pod.spec.containers:
        console.print(f"  {container.name}:")
        observed = states.get(container.name)
        requests = container.resources.requests
        limits = container.resources.limits
        pairs: list[tuple[str, Any]] = [
            ("Image", container.image),
            ("Command", " ".join(container.command) or "<image default>"),
            ("Args", " ".join(container.args) or "<none>"),
            ("Ports", ", ".join(f"{p.container_port}/{p.protocol}" for p in container.ports) or "<none>"),
            ("Requests", _resources(requests.cpu, requests.memory)),
            ("Limits", _resources(limits.cpu, limits.memory)),
        ]
        if observed is not None:
            state = observed.state
            detail = state.status.capitalize()
            if state.reason:
                detail += f" ({state.reason})"
            if state.exit_code is not None:
                detail += f", exit code {state.exit_code}"
            pairs += [
                ("State", detail),
                ("Ready", str(observed.ready)),
                ("Restart Count", str(observed.restart_count)),
            ]
            if observed.last_state is not None:
                last = observed.last_state
                pairs.append(("Last State", f"Terminated ({last.reason}), exit code {last.exit_code}"))
        fields(pairs, indent=4)


def _resources(cpu: int | None, memory: int | None) -> str:
    parts = []
    if cpu is not None:
        parts.append(f"cpu={format_cpu(cpu)}")
    if memory is not None:
        parts.append(f"memory={human_memory(memory)}")
    return ", ".join(parts) or "<none>"


def _strategy(deployment: Deployment) -> str:
    """``RollingUpdate (25% max unavailable, 25% max surge)`` as kubectl shows it."""
    strategy = deployment.spec.strategy
    if strategy.type == "Recreate":
        return "Recreate"
    settings = strategy.rolling_update or RollingUpdateSettings()
    return f"RollingUpdate ({settings.max_unavailable} max unavailable, {settings.max_surge} max surge)"


def _describe_deployment(
    deployment: Deployment,
    status: DeploymentStatus | None,
    pods: dict[str, Pod],
    pod_status: dict[str, PodStatus],
    now: float,
) -> None:
    meta = deployment.metadata
    if status is not None and status.uid != meta.uid:
        status = None
    want = deployment.spec.desired_replicas
    summary = (
        f"{want} desired | {status.updated_replicas} updated | {status.replicas} total |"
        f" {status.available_replicas} available | {status.unavailable_replicas} unavailable"
        if status
        else f"{want} desired | no status yet"
    )
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("CreationTimestamp", age(meta.creation_timestamp, now) + " ago"),
            ("Labels", _labels(meta.labels)),
            ("Selector", _labels(deployment.spec.selector.match_labels)),
            ("Generation", str(meta.generation)),
            ("Revision", str(deployment.revision) + (" (paused)" if deployment.spec.paused else "")),
            ("Replicas", summary),
            ("StrategyType", _strategy(deployment)),
            ("MinReadySeconds", str(deployment.spec.min_ready_seconds)),
            ("ProgressDeadline", f"{deployment.spec.progress_deadline_seconds}s"),
            ("Template hash", deployment.spec.template.hash()),
        ]
    )
    console.print("Containers:")
    for container in deployment.spec.template.spec.containers:
        console.print(f"  {container.name}: {container.image}")
    owned = sorted(
        (p for p in pods.values() if p.metadata.owner and p.metadata.owner.uid == meta.uid),
        key=lambda p: p.metadata.name,
    )
    console.print("Pods:" + ("          <none>" if not owned else ""))
    if owned:
        table(
            ["NAME", "STATUS", "NODE"],
            [
                [p.metadata.name, pod_display_status(p, _pod_status(p, pod_status)), p.node_name or "<none>"]
                for p in owned
            ],
        )


def _describe_service(svc: Service, endpoints: Endpoints | None, now: float) -> None:
    fields(
        [
            ("Name", svc.metadata.name),
            ("Namespace", svc.metadata.namespace),
            ("Labels", _labels(svc.metadata.labels)),
            ("Selector", _labels(svc.spec.selector)),
            ("Type", svc.spec.type),
            ("Created", age(svc.metadata.creation_timestamp, now) + " ago"),
        ]
    )
    console.print("Ports:")
    for port in svc.spec.ports:
        target = port.target_port if port.target_port is not None else port.port
        found = next((p for p in endpoints.ports if p.name == port.key), None) if endpoints else None
        targets = ", ".join(f"{t.host}:{t.port} ({t.pod})" for t in found.targets) if found else ""
        fields(
            [
                ("Port", f"{port.name or '<unset>'} {port.port}/{port.protocol} -> target port {target}"),
                ("NodePort", f"{port.node_port} (served on every node)"),
                ("Endpoints", targets or "<none>"),
            ],
            indent=2,
        )
    if endpoints is not None and endpoints.not_ready:
        fields([("Not ready", ", ".join(endpoints.not_ready))])


def _node_labels(node: Node, specs: dict[str, NodeSpec]) -> dict[str, str]:
    """The operator's labels once set (``shoal label node``), else the node's own."""
    spec = specs.get(node.name)
    return spec.labels if spec is not None and spec.labels is not None else node.labels


def _describe_node(
    node: Node, spec: NodeSpec | None, condition: NodeCondition | None, pods: list[Pod], now: float
) -> None:
    if condition is None:
        ready = "Unknown (no scheduler has judged it yet)"
    else:
        since = age(condition.since, now)
        ready = f"{condition.ready} ({condition.message} for {since}, lease {node.lease_seconds:g}s)"
    cpu_requested = sum(p.spec.requests()[0] for p in pods)
    memory_requested = sum(p.spec.requests()[1] for p in pods)
    fields(
        [
            ("Name", node.name),
            ("Labels", _labels(spec.labels if spec is not None and spec.labels is not None else node.labels)),
            (
                "Taints",
                ", ".join(map(str, spec.taints if spec and spec.taints is not None else node.taints))
                or "<none>",
            ),
            ("Unschedulable", str(spec is not None and (spec.unschedulable or spec.draining))),
            ("Draining", str(spec is not None and spec.draining)),
            ("Ready", ready),
            ("Address", node.address),
            ("Runtime", node.runtime_version),
            ("OS / Arch", f"{node.os} / {node.architecture}"),
            ("Capacity", _resources(node.capacity.cpu, node.capacity.memory)),
            ("Allocatable", _resources(node.allocatable.cpu, node.allocatable.memory)),
            ("Requested", _resources(cpu_requested, memory_requested)),
            ("Pods", str(len(pods))),
        ]
    )
