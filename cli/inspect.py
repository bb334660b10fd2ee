"""Commands that show the cluster: get and describe."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shoal import keys
from shoal.bus import subjects
from shoal.cli import complete, refine
from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.listing import Listing, Scope, lister_of, pod_status_of
from shoal.cli.output import (
    OUTPUT_FORMATS,
    age,
    console,
    dump,
    errors,
    events_table,
    fields,
    table,
)
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, NotFound
from shoal.kinds import Kind, registry
from shoal.label_selectors import parse_selector
from shoal.manifests.render import list_object, pod_display_status
from shoal.models.quantity import format_cpu, format_memory, human_memory

if TYPE_CHECKING:
    from shoal.models.event import Event
    from shoal.models.node import Node, NodeCondition, NodeSpec
    from shoal.models.pod import Pod, PodStatus
    from shoal.models.service import Endpoints, Service
    from shoal.models.workloads import Deployment, DeploymentStatus

OutputOption = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help="table, wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=HEADER:PATH,...",
    ),
]
AllNamespacesOption = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Objects of every namespace.")
]
SelectorOption = Annotated[str | None, typer.Option("--selector", "-l", help="Label selector: key=value,...")]


def resolve_kind(kind: str) -> Kind:
    """A kind from what the command line says (``po``, ``deployments.apps``, ``cm``...)."""
    resolved = registry().resolve(kind)
    if resolved is None or resolved.handling == "ignored":
        raise InvalidManifest(
            [f"unknown resource type {kind!r}: shoal api-resources lists the kinds Shoal knows"]
        )
    return resolved


def get(
    kind: Annotated[
        str,
        typer.Argument(
            help="A kind: pods, deployments, services, configmaps... (api-resources)",
            autocompletion=complete.kinds,
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(help="Only this object.", autocompletion=complete.object_names)
    ] = None,
    namespace: NamespaceOption = "default",
    all_namespaces: AllNamespacesOption = False,
    output: OutputOption = "table",
    selector: SelectorOption = None,
    field_selector: Annotated[
        str | None,
        typer.Option("--field-selector", help="Fields of the objects: status.phase=Running,spec.nodeName!=a"),
    ] = None,
    sort_by: Annotated[
        str | None, typer.Option("--sort-by", help="Order by a JSONPath: .metadata.creationTimestamp")
    ] = None,
    show_labels: Annotated[bool, typer.Option("--show-labels", help="A LABELS column.")] = False,
    no_headers: Annotated[bool, typer.Option("--no-headers", help="Rows only, no header line.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After the table, a row for each object as it changes.")
    ] = False,
    server: ServerOption = None,
) -> None:
    """List objects as a table, or as Kubernetes-shaped JSON or YAML."""
    kind, _, slash_name = kind.partition("/")
    if slash_name and name:
        raise InvalidManifest([f"get {kind}/{slash_name}: {name!r} is one name too many"])
    name = slash_name or name
    resource = resolve_kind(kind)
    template_kind, _, template = output.partition("=")
    if template_kind in ("jsonpath", "custom-columns") and template:
        output = template_kind
    elif output not in OUTPUT_FORMATS:
        shown = ", ".join([*OUTPUT_FORMATS, "jsonpath=TEMPLATE", "custom-columns=SPEC"])
        raise InvalidManifest([f"--output: unknown format {output!r} (use {shown})"])
    if watch and output not in ("table", "wide"):
        raise InvalidManifest([f"--watch: shows tables; -o {output} is not one"])
    refine.parse_field_selector(field_selector)  # a bad selector is refused before connecting
    scope = Scope(resource, name, namespace, all_namespaces, parse_selector(selector), output, time.time())
    lister = lister_of(resource)

    def shaped(listing: Listing) -> Listing:
        columns, rows, objects = listing
        rows, objects = refine.refined(rows, objects, field_selector=field_selector, sort_by=sort_by)
        if show_labels:
            columns = [*columns, "LABELS"]
            rows = [[*row, refine.labels_cell(obj)] for row, obj in zip(rows, objects, strict=True)]
        return columns, rows, objects

    if watch:
        from shoal.cli.watching import follow

        with_client(server, lambda client: follow(client, lister, scope, shaped, headers=not no_headers))
        return
    data = with_client(server, lambda client: lister.gather(client, scope))
    columns, rows, objects = shaped(lister.show(data, scope))
    where = "" if not resource.namespaced or all_namespaces else f" in namespace {namespace}"
    if name is not None and not objects:
        raise NotFound(f'{resource.qualified_plural} "{name}" not found{where}')
    # Imported when asked for: only these outputs need the template languages' parsers.
    from shoal.cli.templates import custom_columns, jsonpath

    if output in ("json", "yaml"):
        dump(objects[0] if name is not None else list_object(objects), output)
    elif output == "jsonpath":
        # As written: rich would expand tabs, and kubectl adds no newline of its own.
        sys.stdout.write(jsonpath(template, objects[0] if name is not None else list_object(objects)))
    elif output == "custom-columns":
        table(*custom_columns(template, objects), headers=not no_headers)
    elif output == "name":
        for obj in objects:
            console.print(f"{resource.qualified}/{obj['metadata']['name']}")
    elif rows:
        table(columns, rows, headers=not no_headers)
    else:
        errors.print(f"No resources found{where}.")  # as kubectl: on stderr, so pipes read nothing


def api_resources() -> None:
    """The kinds Shoal knows, their short names, and what it does with each."""
    does = {"acted": "acts on it", "stored": "stores it", "observed": "keeps it", "ignored": "ignores it"}
    rows = [
        [
            k.plural,
            ",".join(k.short_names),
            k.api_version,
            str(k.namespaced).lower(),
            k.kind,
            does[k.handling],
        ]
        for k in sorted(registry().kinds, key=lambda k: k.plural)
    ]
    table(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "SHOAL"], rows)


# -- describe ---------------------------------------------------------------------------------


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


async def _collect_events(client: ShoalClient, subject: str) -> list[Event]:
    return [event async for event in client.events(follow=False, subject=subject)]


def describe(
    kind: Annotated[
        str,
        typer.Argument(
            help="A kind (pod, deployment, node...) or KIND/NAME", autocompletion=complete.kind_or_object
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(help="The object's name.", autocompletion=complete.object_names)
    ] = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Everything about one object, with its recent events."""
    kind, _, slash_name = kind.partition("/")
    if bool(slash_name) == bool(name):
        raise InvalidManifest([f"describe {kind}: give one name, as KIND NAME or KIND/NAME"])
    name = slash_name or name
    assert name is not None
    resource = resolve_kind(kind)
    scope = Scope(resource, name, namespace, False, {}, "table", time.time())
    lister = lister_of(resource)
    event_kind = "service" if resource.kind == "Endpoints" else resource.singular
    event_ns = namespace if resource.namespaced else ""

    async def gather(client: ShoalClient) -> dict[str, Any]:
        data = await lister.gather(client, scope)
        subject = subjects.event(event_kind, event_ns, keys.name_token(name), "*")
        data["events"] = await _collect_events(client, subject)
        if resource.kind == "Deployment":
            data["pods"] = await client.pods()
            data["pod_status"] = await client.pod_statuses()
        return data

    data = with_client(server, gather)
    where = f" in namespace {namespace}" if resource.namespaced else ""
    key = keys.object_key(event_ns, name)
    from shoal.cli import workloads  # Jobs, CronJobs, DaemonSets...: a module of their own

    describer = _DESCRIBERS.get(resource.kind) or workloads.DESCRIBERS.get(resource.kind, _describe_stored)
    found = describer(data, key, scope)
    if not found:
        raise NotFound(f'{resource.qualified_plural} "{name}" not found{where}')
    events_table(data["events"], scope.now)


def _meta_fields(meta: Any, now: float) -> list[tuple[str, str]]:
    pairs = [("Name", meta.name)]
    if getattr(meta, "namespace", ""):
        pairs.append(("Namespace", meta.namespace))
    pairs += [
        ("Labels", _labels(meta.labels)),
        ("Annotations", _labels(meta.annotations)),
        ("Created", age(meta.creation_timestamp, now) + " ago"),
    ]
    return pairs


def _describe_pods(data: dict[str, Any], key: str, scope: Scope) -> bool:
    pod = data["pods"].get(key)
    if pod is not None:
        _describe_pod(pod, pod_status_of(pod, data["status"]), scope.now)
    return pod is not None


def _describe_deployments(data: dict[str, Any], key: str, scope: Scope) -> bool:
    deployment = data["deployments"].get(key)
    if deployment is not None:
        status = data["status"].get(key)
        _describe_deployment(deployment, status, data["pods"], data["pod_status"], scope.now)
    return deployment is not None


def _describe_services(data: dict[str, Any], key: str, scope: Scope) -> bool:
    svc = data["services"].get(key)
    if svc is not None:
        _describe_service(svc, data["endpoints"].get(key), data["nodes"], scope.now)
    return svc is not None


def _describe_hpas(data: dict[str, Any], key: str, scope: Scope) -> bool:
    hpa = data["hpas"].get(key)
    if hpa is not None:
        from shoal.cli import autoscaling

        autoscaling.describe_hpa(hpa, data["status"].get(key), scope.now)
    return hpa is not None


def _describe_priority_classes(data: dict[str, Any], key: str, scope: Scope) -> bool:
    pc = data["classes"].get(key)
    if pc is not None:
        fields(
            [
                ("Name", pc.metadata.name),
                ("Value", str(pc.value)),
                ("GlobalDefault", str(pc.global_default)),
                ("PreemptionPolicy", pc.preemption_policy),
                ("Description", pc.description or "<none>"),
            ]
        )
    return pc is not None


def _describe_nodes(data: dict[str, Any], key: str, scope: Scope) -> bool:
    node = data["nodes"].get(key)
    if node is not None:
        pods = [p for p in data["pods"].values() if p.node_name == node.name]
        _describe_node(node, data["specs"].get(key), data["conditions"].get(key), pods, scope.now)
    return node is not None


def _describe_namespaces(data: dict[str, Any], key: str, scope: Scope) -> bool:
    ns = data["namespaces"].get(key)
    if ns is not None:
        fields([*_meta_fields(ns.metadata, scope.now), ("Status", "Active")])
    return ns is not None


def _describe_config_maps(data: dict[str, Any], key: str, scope: Scope) -> bool:
    cm = data["config_maps"].get(key)
    if cm is None:
        return False
    fields([*_meta_fields(cm.metadata, scope.now), ("Immutable", str(bool(cm.immutable)))])
    console.print("Data\n====")
    for data_key, value in sorted(cm.data.items()):
        console.print(f"{data_key}:\n----\n{value}\n")
    if cm.binary_data:
        console.print("BinaryData\n====")
        for data_key, blob in sorted(cm.binary_data.items()):
            console.print(f"{data_key}: {len(blob)} bytes")
    return True


def _describe_secrets(data: dict[str, Any], key: str, scope: Scope) -> bool:
    secret = data["sealed"].get(key)
    if secret is None:
        return False
    fields([*_meta_fields(secret.metadata, scope.now), ("Type", secret.type)])
    console.print("Data\n====")
    for data_key, size in sorted(secret.sizes.items()):
        console.print(f"{data_key}:  {size} bytes")
    return True


def _describe_claims(data: dict[str, Any], key: str, scope: Scope) -> bool:
    claim = data["claims"].get(key)
    if claim is None:
        return False
    status = data["status"].get(key)
    status = status if status is not None and status.uid == claim.metadata.uid else None
    storage = claim.spec.resources.requests.storage
    fields(
        [
            *_meta_fields(claim.metadata, scope.now),
            ("StorageClass", claim.spec.storage_class_name or "<unset>"),
            ("Status", "Bound" if status else "Pending (binds to the node of the first pod using it)"),
            ("Volume", f"{status.volume} (Podman volume on node {status.node})" if status else "<none>"),
            ("Capacity", format_memory(storage) if storage else "<unset>"),
            ("Access Modes", ",".join(claim.spec.access_modes)),
        ]
    )
    return True


def _describe_stored(data: dict[str, Any], key: str, scope: Scope) -> bool:
    wanted = keys.stored_key(
        scope.kind.plural, key.partition(".")[0] if scope.kind.namespaced else "", scope.name or ""
    )
    obj = data["objects"].get(wanted)
    if obj is None:
        return False
    fields([*_meta_fields(obj.metadata, scope.now), ("Shoal", scope.kind.note or "stored")])
    if obj.body:
        dump(obj.body, "yaml")
    return True


_DESCRIBERS: dict[str, Callable[[dict[str, Any], str, Scope], bool]] = {
    "Pod": _describe_pods,
    "Deployment": _describe_deployments,
    "Service": _describe_services,
    "Endpoints": _describe_services,
    "HorizontalPodAutoscaler": _describe_hpas,
    "PriorityClass": _describe_priority_classes,
    "Node": _describe_nodes,
    "Namespace": _describe_namespaces,
    "ConfigMap": _describe_config_maps,
    "Secret": _describe_secrets,
    "PersistentVolumeClaim": _describe_claims,
}


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
            ("Controlled By", f"{meta.owner.kind}/{meta.owner.name}" if meta.owner else "<none>"),
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
    from shoal.models.workloads import RollingUpdateSettings

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
                [
                    p.metadata.name,
                    pod_display_status(p, pod_status_of(p, pod_status)),
                    p.node_name or "<none>",
                ]
                for p in owned
            ],
        )


def _describe_service(svc: Service, endpoints: Endpoints | None, nodes: dict[str, Node], now: float) -> None:
    pairs = [
        ("Name", svc.metadata.name),
        ("Namespace", svc.metadata.namespace),
        ("Labels", _labels(svc.metadata.labels)),
        ("Selector", _labels(svc.spec.selector)),
        ("Type", svc.spec.type),
        ("Created", age(svc.metadata.creation_timestamp, now) + " ago"),
    ]
    if svc.spec.type == "LoadBalancer":
        addresses = sorted({n.address for n in nodes.values() if n.address})
        pairs.append(("LoadBalancer Ingress", ", ".join(addresses) or "<pending>"))
    if svc.spec.cluster_ip == "None":
        pairs.append(("ClusterIP", "None (headless)"))
    elif svc.spec.cluster_ip:
        domain = "svc.cluster.local"
        pairs.append(("ClusterIP", svc.spec.cluster_ip))
        pairs.append(("DNS", f"{svc.metadata.name}.{svc.metadata.namespace}.{domain}"))
    fields(pairs)
    console.print("Ports:")
    for port in svc.spec.ports:
        target = port.target_port if port.target_port is not None else port.port
        found = next((p for p in endpoints.ports if p.name == port.key), None) if endpoints else None
        targets = (
            ", ".join(f"{t.pod_ip}:{t.container_port} on {t.node} ({t.pod})" for t in found.targets)
            if found
            else ""
        )
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
