"""``policy/v1`` PodDisruptionBudget: how many of a set of pods a drain or a rollout may take
down at once, and the scheduler's count of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shoal.models.base import ObjectMeta, Record, ShoalModel
from shoal.models.workloads import IntOrPercent, LabelSelector, scaled_value


class PodDisruptionBudgetSpec(ShoalModel):
    selector: LabelSelector
    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    unhealthy_pod_eviction_policy: Literal["IfHealthyBudget", "AlwaysAllow"] = "IfHealthyBudget"
    """Accepted: pods that are not Ready may always go (they take nothing from the budget)."""

    @model_validator(mode="after")
    def _one_of(self) -> PodDisruptionBudgetSpec:
        if self.min_available is not None and self.max_unavailable is not None:
            raise ValueError("minAvailable and maxUnavailable cannot both be set")
        if self.min_available is None and self.max_unavailable is None:
            raise ValueError("one of minAvailable or maxUnavailable is required")
        return self

    def desired_healthy(self, expected: int) -> int:
        """How many of ``expected`` pods must stay Ready (Kubernetes rounds percentages up)."""
        if self.min_available is not None:
            return scaled_value(self.min_available, expected, round_up=True)
        assert self.max_unavailable is not None
        return max(0, expected - scaled_value(self.max_unavailable, expected, round_up=True))


class PodDisruptionBudget(Record):
    api_version: Literal["policy/v1"] = "policy/v1"
    kind: Literal["PodDisruptionBudget"] = "PodDisruptionBudget"
    metadata: ObjectMeta
    spec: PodDisruptionBudgetSpec


class PodDisruptionBudgetStatus(Record):
    """Kubernetes' counts, and the pods a drain or rollout is waiting to take down because of it."""

    namespace: str
    name: str
    uid: str
    observed_generation: int = 0
    expected_pods: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    disruptions_allowed: int = 0
    waiting: list[str] = Field(default_factory=list)
    """Pods (``namespace/name``) kept because taking them down would break the budget."""
