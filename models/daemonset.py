"""``apps/v1`` DaemonSet: one pod on every eligible node, and its status."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.models.base import ObjectMeta, Record, ShoalModel
from shoal.models.workloads import IntOrPercent, LabelSelector, PodTemplate, scaled_value

REVISION_LABEL = "controller-revision-hash"
"""The label of a daemon pod naming its template (Kubernetes' ControllerRevision hash)."""


class RollingUpdateDaemonSet(ShoalModel):
    max_unavailable: IntOrPercent = 1
    max_surge: IntOrPercent = 0


class DaemonSetUpdateStrategy(ShoalModel):
    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rolling_update: RollingUpdateDaemonSet | None = None

    def limits(self, desired: int) -> tuple[int, int]:
        """(max surge, max unavailable) in pods, percentages of the nodes that should run one
        rounded up, as Kubernetes does; never both zero."""
        settings = self.rolling_update or RollingUpdateDaemonSet()
        surge = scaled_value(settings.max_surge, desired, round_up=True)
        unavailable = scaled_value(settings.max_unavailable, desired, round_up=True)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable


class DaemonSetSpec(ShoalModel):
    selector: LabelSelector
    template: PodTemplate
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    min_ready_seconds: int = Field(default=0, ge=0)
    revision_history_limit: int = Field(default=10, ge=0)
    """Accepted; Shoal keeps no old templates of a DaemonSet."""


class DaemonSet(Record):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["DaemonSet"] = "DaemonSet"
    metadata: ObjectMeta
    spec: DaemonSetSpec


class DaemonSetStatus(Record):
    """The scheduler's count of a DaemonSet's nodes and pods (Kubernetes' fields)."""

    namespace: str
    name: str
    uid: str
    observed_generation: int = 0
    desired_number_scheduled: int = 0
    current_number_scheduled: int = 0
    number_misscheduled: int = 0
    number_ready: int = 0
    updated_number_scheduled: int = 0
    number_available: int = 0
    number_unavailable: int = 0
