"""From what the metrics ask for to what is done: stabilization, rate policies, bounds.

Kubernetes' rules (``behavior`` of autoscaling/v2), without I/O:

1. Bounds first: replicas above maxReplicas go to max, below minReplicas to min.
2. Stabilization: scaling up goes no higher than the *lowest* recommendation of the last
   ``scaleUp.stabilizationWindowSeconds`` (default 0), scaling down no lower than the
   *highest* of the last ``scaleDown.stabilizationWindowSeconds`` (default 300), so a
   brief dip does not remove pods that a moment later would be needed again.
3. Rate: each policy allows, per ``periodSeconds``, ``value`` pods or ``value`` percent of
   the replicas at the start of the period (counting the changes made during it);
   ``selectPolicy`` Max takes the policy allowing the biggest change, Min the smallest,
   Disabled forbids changes in that direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoal.models.autoscaling import HPASpec, Recommendation, ScaleChange, ScalingRules


@dataclass(frozen=True)
class Normalized:
    replicas: int
    reason: str
    """Why it is not simply what the metrics asked for (empty when it is)."""
    recommendations: list[Recommendation]
    """The history to keep for the next evaluation."""


def _changed_within(changes: list[ScaleChange], period: float, now: float) -> tuple[int, int]:
    """(replicas added, replicas removed) by the decisions of the last ``period`` seconds."""
    recent = [c.delta for c in changes if c.at > now - period]
    return sum(d for d in recent if d > 0), -sum(d for d in recent if d < 0)


def rate_limit(current: int, changes: list[ScaleChange], rules: ScalingRules, now: float, *, up: bool) -> int:
    """The furthest the policies let the count go this evaluation, up or down from ``current``."""
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    sign = 1 if up else -1
    proposals = []
    for policy in rules.policies:
        added, removed = _changed_within(changes, policy.period_seconds, now)
        start = current - added + removed
        if policy.type == "Pods":
            proposals.append(start + sign * policy.value)
        else:  # as Kubernetes: rounded up when scaling up, down when scaling down
            share = start * (1 + sign * policy.value / 100)
            proposals.append(math.ceil(share) if up else math.floor(share))
    # Max: the policy allowing the largest change, in whichever direction.
    largest = max(proposals) if up else min(proposals)
    smallest = min(proposals) if up else max(proposals)
    return largest if rules.select_policy == "Max" else smallest


def normalize(
    spec: HPASpec,
    current: int,
    wanted: int,
    now: float,
    history: list[Recommendation],
    changes: list[ScaleChange],
) -> Normalized:
    up, down = spec.behavior.up(), spec.behavior.down()
    up_window = float(up.stabilization_window_seconds or 0)
    down_window = float(down.stabilization_window_seconds or 0)
    keep = max(up_window, down_window)
    kept = [r for r in history if r.at > now - keep] + [Recommendation(at=now, replicas=wanted)]
    if current > spec.max_replicas:
        return Normalized(spec.max_replicas, "current replicas above maxReplicas", kept)
    if current < spec.min_replicas:
        return Normalized(spec.min_replicas, "current replicas below minReplicas", kept)

    up_recommendation = down_recommendation = wanted
    for past in history:
        if past.at > now - up_window:
            up_recommendation = min(up_recommendation, past.replicas)
        if past.at > now - down_window:
            down_recommendation = max(down_recommendation, past.replicas)
    stabilized = min(max(current, up_recommendation), down_recommendation)
    reason = "" if stabilized == wanted else "held by the stabilization window"

    if stabilized > current:
        limit = max(rate_limit(current, changes, up, now, up=True), current)
        if limit < spec.max_replicas:
            ceiling, why = limit, "limited by the scale-up policy"
        else:
            ceiling, why = spec.max_replicas, "capped at maxReplicas"
        if stabilized > ceiling:
            return Normalized(ceiling, why, kept)
    elif stabilized < current:
        limit = min(rate_limit(current, changes, down, now, up=False), current)
        if limit > spec.min_replicas:
            floor, why = limit, "limited by the scale-down policy"
        else:
            floor, why = spec.min_replicas, "held at minReplicas"
        if stabilized < floor:
            return Normalized(floor, why, kept)
    return Normalized(stabilized, reason, kept)
