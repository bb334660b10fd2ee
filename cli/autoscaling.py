"""Autoscaling on the command line: ``get hpa``, ``describe hpa`` and ``top pods|nodes``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.output import age, console, fields, table
from shoal.errors import InvalidManifest
from shoal.manifests.render import hpa_object
from shoal.models.pod import pod_key
from shoal.models.quantity import format_cpu, human_memory

if TYPE_CHECKING:
    from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus
    from shoal.models.metrics import NodeMetrics


def _targets(hpa: HorizontalPodAutoscaler, status: HPAStatus | None) -> str:
    readings = {r.metric: r for r in status.readings} if status else {}
    shown = []
    for metric in hpa.spec.metrics:
        reading = readings.get(metric.label)
        current = reading.shown_current if reading else "<unknown>"
        shown.append(f"{metric.label}: {current}/{metric.show(metric.target.amount)}")
    return ", ".join(shown)


def hpa_table(
    hpas: list[HorizontalPodAutoscaler], statuses: dict[str, HPAStatus], all_namespaces: bool, now: float
) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Columns, rows and objects of ``shoal get hpa`` for the HPAs the listing selected."""
    columns = ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    rows, objects = [], []
    for hpa in hpas:
        meta = hpa.metadata
        status = statuses.get(pod_key(meta.namespace, meta.name))
        status = status if status is not None and status.uid == meta.uid else None
        objects.append(hpa_object(hpa, status))
        row = [
            meta.name,
            f"{hpa.spec.scale_target_ref.kind}/{hpa.spec.scale_target_ref.name}",
            _targets(hpa, status),
            str(hpa.spec.min_replicas),
            str(hpa.spec.max_replicas),
            str(status.current_replicas) if status else "<unknown>",
            age(meta.creation_timestamp, now),
        ]
        if all_namespaces:
            row.insert(0, meta.namespace)
        rows.append(row)
    return columns, rows, objects


def describe_hpa(hpa: HorizontalPodAutoscaler, status: HPAStatus | None, now: float) -> None:
    meta, spec = hpa.metadata, hpa.spec
    if status is not None and status.uid != meta.uid:
        status = None
    up, down = spec.behavior.up(), spec.behavior.down()

    def rules(kind: str, r: Any) -> str:
        policies = "; ".join(f"{p.value} {p.type.lower()} per {p.period_seconds}s" for p in r.policies or [])
        window = r.stabilization_window_seconds
        return f"{kind}: window {window}s, select {r.select_policy}, {policies or 'none'}"

    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("Reference", f"{spec.scale_target_ref.kind}/{spec.scale_target_ref.name}"),
            ("Min replicas", str(spec.min_replicas)),
            ("Max replicas", str(spec.max_replicas)),
            ("Behavior", rules("scale up", up)),
            ("", rules("scale down", down)),
            ("Created", age(meta.creation_timestamp, now) + " ago"),
        ]
    )
    readings = {r.metric: r for r in status.readings} if status else {}
    console.print("Metrics:")
    table(
        ["METRIC", "CURRENT", "TARGET", "WANTS"],
        [
            [
                m.label,
                readings[m.label].shown_current if m.label in readings else "<unknown>",
                f"{m.show(m.target.amount)} ({m.target.type})",
                str(readings[m.label].replicas)
                if m.label in readings and readings[m.label].replicas is not None
                else "-",
            ]
            for m in spec.metrics
        ],
    )
    if status is None:
        console.print("Status:        not evaluated yet")
        return
    fields(
        [
            ("Replicas", f"{status.current_replicas} current / {status.desired_replicas} desired"),
            ("Last scale", age(status.last_scale_time, now) + " ago" if status.last_scale_time else "never"),
            ("Status", status.message or "-"),
        ]
    )
    if status.decisions:
        console.print("Recent decisions:")
        table(
            ["AGE", "FROM", "TO", "READINGS", "WHY"],
            [
                [
                    age(d.at, now),
                    str(d.from_replicas),
                    str(d.to_replicas),
                    ", ".join(f"{r.metric} {r.shown_current}/{r.shown_target}" for r in d.readings),
                    d.reason,
                ]
                for d in reversed(status.decisions)
            ],
        )


def _fresh(samples: dict[str, NodeMetrics], now: float) -> list[NodeMetrics]:
    return [s for s in samples.values() if now - s.timestamp <= max(3 * s.window, 15.0)]


def top(
    kind: Annotated[str, typer.Argument(help="pods or nodes")],
    namespace: NamespaceOption = "default",
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Pods of every namespace.")
    ] = False,
    containers: Annotated[bool, typer.Option("--containers", help="One line per container.")] = False,
    server: ServerOption = None,
) -> None:
    """CPU and memory in use, from the nodes' latest samples (like kubectl top)."""
    resource = {
        "pod": "pods",
        "pods": "pods",
        "po": "pods",
        "node": "nodes",
        "nodes": "nodes",
        "no": "nodes",
    }.get(kind.lower())
    if resource is None:
        raise InvalidManifest([f"top: unknown resource type {kind!r} (use pods or nodes)"])
    samples = with_client(server, lambda client: client.node_metrics())
    now = time.time()
    fresh = sorted(_fresh(samples, now), key=lambda s: s.node)
    if not fresh:
        console.print("No metrics yet: node actors publish a sample every few seconds.")
        raise typer.Exit(1)
    if resource == "nodes":
        rows = []
        for s in fresh:
            cpu_share = f"{s.cpu_millis * 100 // s.capacity_cpu_millis}%" if s.capacity_cpu_millis else "-"
            mem_share = (
                f"{s.memory_bytes * 100 // s.capacity_memory_bytes}%" if s.capacity_memory_bytes else "-"
            )
            rows.append(
                [
                    s.node,
                    format_cpu(s.cpu_millis),
                    cpu_share,
                    human_memory(s.memory_bytes),
                    mem_share,
                    str(len(s.pods)),
                ]
            )
        table(["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%", "PODS"], rows)
        return
    pods = sorted(
        ((s.node, p) for s in fresh for p in s.pods if all_namespaces or p.namespace == namespace),
        key=lambda item: pod_key(item[1].namespace, item[1].name),
    )
    columns = ["NAME", "CPU(cores)", "MEMORY(bytes)", "NODE"]
    if containers:
        columns.insert(1, "CONTAINER")
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    rows = []
    for node, pod in pods:
        lines = (
            [[c.name, format_cpu(c.cpu_millis), human_memory(c.memory_bytes)] for c in pod.containers]
            if containers
            else [[format_cpu(pod.cpu_millis), human_memory(pod.memory_bytes)]]
        )
        for line in lines:
            row = [pod.name, *line, node]
            if all_namespaces:
                row.insert(0, pod.namespace)
            rows.append(row)
    if not rows:
        console.print(f"No pod metrics in {'any namespace' if all_namespaces else namespace + ' namespace'}.")
        return
    table(columns, rows)
