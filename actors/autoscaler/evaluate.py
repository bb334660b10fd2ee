"""One autoscaler evaluation of one HPA, without I/O: readings, the replicas to run, and why.

The actor gathers the inputs (the deployment, its pods with their latest samples, the
backlog of each JetStream consumer named) and applies the outcome; this module decides.
Several metrics: the largest recommendation wins, as in Kubernetes. A metric that cannot
be read is left out of a scale-up and prevents a scale-down; when none can be read, only
the bounds (minReplicas, maxReplicas) are enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.actors.autoscaler.behavior import normalize
from shoal.actors.autoscaler.recommend import TargetPod, external_replicas, resource_replicas
from shoal.models.autoscaling import (
    Decision,
    HorizontalPodAutoscaler,
    HPAStatus,
    MetricReading,
    Recommendation,
    ScaleChange,
)

DECISIONS_KEPT = 10
CHANGES_KEPT_SECONDS = 1800.0
"""The longest policy period: older scale changes no longer limit anything."""


@dataclass(frozen=True)
class Backlog:
    pending: float | None
    problem: str = ""


@dataclass
class Evaluation:
    current: int
    desired: int
    readings: list[MetricReading]
    message: str
    recommendations: list[Recommendation] = field(default_factory=list)

    @property
    def scales(self) -> bool:
        return self.desired != self.current


def evaluate(
    hpa: HorizontalPodAutoscaler,
    current: int,
    pods: list[TargetPod],
    backlogs: dict[tuple[str, str], Backlog],
    history: list[Recommendation],
    changes: list[ScaleChange],
    now: float,
) -> Evaluation:
    spec = hpa.spec
    readings: list[MetricReading] = []
    problems: list[str] = []
    wanted: list[int] = []
    ready = sum(1 for pod in pods if pod.ready)
    for metric in spec.metrics:
        if metric.resource is not None:
            proposal = resource_replicas(metric.resource, pods, current)
        else:
            assert metric.external is not None
            ident = metric.external.metric
            backlog = backlogs.get((ident.stream, ident.consumer), Backlog(None, "not read yet"))
            if backlog.pending is None:
                problems.append(f"{metric.label}: {backlog.problem}")
                readings.append(_reading(metric, None, None))
                continue
            proposal = external_replicas(metric.external, backlog.pending, current, ready)
        if proposal.replicas is None:
            problems.append(f"{metric.label}: {proposal.problem}")
        else:
            wanted.append(proposal.replicas)
        readings.append(_reading(metric, proposal.current, proposal.replicas))
    if not wanted:
        message = "; ".join(problems) or "no metric to act on"
        # The bounds hold even when nothing can be measured (a CPU target with no pods).
        bounded = min(max(current, spec.min_replicas), spec.max_replicas)
        if bounded != current:
            message = f"replicas brought within [{spec.min_replicas}, {spec.max_replicas}]; {message}"
        return Evaluation(current, bounded, readings, message, history)
    normalized = normalize(spec, current, max(wanted), now, history, changes)
    asked = max(wanted)
    message = f"metrics ask for {asked} replica(s)"
    desired = normalized.replicas
    if problems and spec.min_replicas <= current <= spec.max_replicas and desired < current:
        # An unreadable metric might be the one that needs the pods (Kubernetes does the same).
        desired = current
        message += "; not scaling down while a metric cannot be read"
    elif normalized.reason and desired != asked:
        message += f"; {normalized.reason}"
    if problems:
        message += "; " + "; ".join(problems)
    return Evaluation(current, desired, readings, message, normalized.recommendations)


def _reading(metric, current: float | None, replicas: int | None) -> MetricReading:  # type: ignore[no-untyped-def]
    return MetricReading(
        metric=metric.label,
        current=current,
        target=metric.target.amount,
        shown_current=metric.show(current),
        shown_target=metric.show(metric.target.amount),
        replicas=replicas,
    )


def next_status(
    hpa: HorizontalPodAutoscaler, previous: HPAStatus | None, evaluation: Evaluation, now: float
) -> HPAStatus:
    """The status after an evaluation; a scaling decision is recorded with its readings."""
    meta = hpa.metadata
    changes = [c for c in (previous.changes if previous else []) if c.at > now - CHANGES_KEPT_SECONDS]
    decisions = list(previous.decisions if previous else [])
    last_scale = previous.last_scale_time if previous else None
    if evaluation.scales:
        changes.append(ScaleChange(at=now, delta=evaluation.desired - evaluation.current))
        decisions.append(
            Decision(
                at=now,
                from_replicas=evaluation.current,
                to_replicas=evaluation.desired,
                reason=evaluation.message,
                readings=evaluation.readings,
            )
        )
        last_scale = now
    return HPAStatus(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        current_replicas=evaluation.current,
        desired_replicas=evaluation.desired,
        readings=evaluation.readings,
        last_scale_time=last_scale,
        message=evaluation.message,
        recommendations=evaluation.recommendations,
        changes=changes,
        decisions=decisions[-DECISIONS_KEPT:],
    )
