"""How many replicas each metric asks for: Kubernetes' replica calculator, without I/O.

``desired = ceil(current * currentMetric / target)`` with a tolerance (10%) inside which
nothing changes. For Resource metrics the rules for incomplete data are Kubernetes' own:

- terminating and failed pods are ignored; Pending pods (not placed or not started) are
  set aside like not-Ready ones below;
- a pod without a sample yet (*missing*) counts as using 100% of its request (or exactly
  the target, for AverageValue) when the others ask to scale down, and 0 when they ask to
  scale up, so missing data can only dampen a change;
- for CPU, a pod that is not Ready counts as using 0 when scaling up (a starting pod's
  burst is not load);
- if filling in those pods reverses the direction or lands within the tolerance, nothing
  changes.

External ``jetstream_consumer_pending`` with AverageValue asks for
``ceil(pending / averageValue)``, which works from zero replicas; with Value,
``ceil(Ready pods * pending / value)``, and ``ceil(pending / value)`` from zero replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoal.models.autoscaling import ExternalMetricSource, ResourceMetricSource

TOLERANCE = 0.1


@dataclass(frozen=True)
class TargetPod:
    """One pod of the scaled deployment, as the calculator needs it."""

    name: str
    ready: bool
    cpu_request: int
    """Millicores requested by its containers together."""
    memory_request: int
    cpu: int | None = None
    """Millicores used (None: no sample yet)."""
    memory: int | None = None
    pending: bool = False
    """Not placed or not started yet: set aside like a not-Ready pod, for every resource."""


@dataclass(frozen=True)
class Proposal:
    replicas: int | None
    """What the metric asks for; None when it cannot tell (``problem`` says why)."""
    current: float | None
    """The metric now: utilization percent, average per pod, or value (target's units)."""
    problem: str = ""


def _usage(pod: TargetPod, name: str) -> float | None:
    """Usage in the target's base units: CPU in cores, memory in bytes."""
    if name == "cpu":
        return None if pod.cpu is None else pod.cpu / 1000
    return None if pod.memory is None else float(pod.memory)


def _request(pod: TargetPod, name: str) -> float:
    return pod.cpu_request / 1000 if name == "cpu" else float(pod.memory_request)


def resource_replicas(
    source: ResourceMetricSource, pods: list[TargetPod], current: int, tolerance: float = TOLERANCE
) -> Proposal:
    name, target = source.resource_name, source.target
    utilization = target.type == "Utilization"
    if not pods:
        return Proposal(None, None, "the deployment has no pods to measure")
    if utilization and any(_request(pod, name) <= 0 for pod in pods):
        return Proposal(None, None, f"some pods have no {name} request: utilization is undefined")
    measured: dict[str, float] = {}
    missing: list[TargetPod] = []
    unready: list[TargetPod] = []
    for pod in pods:
        usage = _usage(pod, name)
        if pod.pending:
            unready.append(pod)
        elif usage is None:
            missing.append(pod)
        elif name == "cpu" and not pod.ready:
            unready.append(pod)
        else:
            measured[pod.name] = usage
    if not measured:
        return Proposal(None, None, f"no {name} samples yet from the deployment's pods")
    by_name = {pod.name: pod for pod in pods}

    def ratio(values: dict[str, float]) -> tuple[float, float]:
        """(usage ratio, the metric's current value)"""
        if utilization:
            requested = sum(_request(by_name[n], name) for n in values)
            percent = sum(values.values()) * 100 / requested
            return percent / target.amount, percent
        average = sum(values.values()) / len(values)
        return average / target.amount, average

    usage_ratio, shown = ratio(measured)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - usage_ratio) <= tolerance:
            return Proposal(current, shown)
        return Proposal(math.ceil(usage_ratio * len(measured)), shown)
    filled = dict(measured)
    for pod in missing:
        if usage_ratio < 1.0:
            filled[pod.name] = _request(pod, name) if utilization else target.amount
        else:
            filled[pod.name] = 0.0
    if scale_up_with_unready:
        for pod in unready:
            filled[pod.name] = 0.0
    new_ratio, _ = ratio(filled)
    if (
        abs(1.0 - new_ratio) <= tolerance
        or (usage_ratio < 1.0 < new_ratio)
        or (usage_ratio > 1.0 > new_ratio)
    ):
        return Proposal(current, shown)
    replicas = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Proposal(current, shown)
    return Proposal(replicas, shown)


def external_replicas(
    source: ExternalMetricSource, value: float, current: int, ready: int, tolerance: float = TOLERANCE
) -> Proposal:
    target = source.target
    if target.type == "AverageValue":
        per_pod = value / current if current else value
        if current == 0:
            return Proposal(math.ceil(value / target.amount), per_pod)
        usage_ratio = value / (target.amount * current)
        if abs(1.0 - usage_ratio) <= tolerance:
            return Proposal(current, per_pod)
        return Proposal(math.ceil(value / target.amount), per_pod)
    usage_ratio = value / target.amount
    if current == 0:  # from zero, as Kubernetes: as many replicas as the ratio says
        return Proposal(math.ceil(usage_ratio), value)
    if ready == 0:  # replicas starting, none Ready to scale the ratio by: keep them
        return Proposal(current if value > 0 else 0, value)
    if abs(1.0 - usage_ratio) <= tolerance:
        return Proposal(current, value)
    return Proposal(math.ceil(usage_ratio * ready), value)
