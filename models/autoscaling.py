"""``autoscaling/v2`` HorizontalPodAutoscaler: the desired object, and the status the autoscaler keeps.

Metrics are Resource (cpu, memory: average utilization against requests, or average value
per pod) and External ``jetstream_consumer_pending``: the messages a JetStream consumer has
not yet had acknowledged, which lets a worker deployment follow its queue, down to zero.
``behavior`` has Kubernetes' fields and defaults (``DEFAULT_SCALE_UP``/``DEFAULT_SCALE_DOWN``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from shoal.models.base import Name, ObjectMeta, Record, ShoalModel
from shoal.models.quantity import format_cpu, human_memory, parse_quantity

JETSTREAM_PENDING = "jetstream_consumer_pending"
"""The External metric Shoal reads from NATS itself; selector labels ``stream`` and ``consumer``."""

Quantity = Annotated[float, BeforeValidator(parse_quantity)]
"""A quantity in base units: CPU in cores (``500m`` = 0.5), memory in bytes, counts as is."""


class ScaleTargetRef(ShoalModel):
    api_version: str = "apps/v1"
    kind: str = Field(min_length=1)
    """Shoal scales Deployments; an HPA of another kind is kept and its status says why it waits."""
    name: Name


class MetricTarget(ShoalModel):
    type: Literal["Utilization", "AverageValue", "Value"]
    average_utilization: int | None = Field(default=None, ge=1)
    """Percent of the pods' requests."""
    average_value: Quantity | None = None
    value: Quantity | None = None

    @model_validator(mode="after")
    def _one_value(self) -> MetricTarget:
        field = {"Utilization": "averageUtilization", "AverageValue": "averageValue", "Value": "value"}[
            self.type
        ]
        given = {
            "averageUtilization": self.average_utilization,
            "averageValue": self.average_value,
            "value": self.value,
        }
        if given[field] is None:
            raise ValueError(f"a target of type {self.type} needs {field}")
        if given[field] <= 0:
            raise ValueError(f"{field} must be greater than 0 (got {given[field]:g})")
        return self

    @property
    def amount(self) -> float:
        """The target in the metric's units (percent for Utilization)."""
        value = {"Utilization": self.average_utilization, "AverageValue": self.average_value}.get(
            self.type, self.value
        )
        assert value is not None
        return float(value)


class ResourceMetricSource(ShoalModel):
    name: Literal["cpu", "memory"]
    target: MetricTarget

    @property
    def resource_name(self) -> str:
        return self.name

    @model_validator(mode="after")
    def _per_pod(self) -> ResourceMetricSource:
        if self.target.type == "Value":
            raise ValueError("a Resource metric's target is Utilization or AverageValue, not Value")
        return self


class MetricSelector(ShoalModel):
    match_labels: dict[str, str] = Field(default_factory=dict)


class MetricIdentifier(ShoalModel):
    name: Literal["jetstream_consumer_pending"]
    selector: MetricSelector

    @model_validator(mode="after")
    def _names_a_consumer(self) -> MetricIdentifier:
        missing = [label for label in ("stream", "consumer") if not self.selector.match_labels.get(label)]
        if missing:
            raise ValueError(f"selector.matchLabels needs {' and '.join(missing)} (the JetStream consumer)")
        return self

    @property
    def stream(self) -> str:
        return self.selector.match_labels["stream"]

    @property
    def consumer(self) -> str:
        return self.selector.match_labels["consumer"]


class ExternalMetricSource(ShoalModel):
    metric: MetricIdentifier
    target: MetricTarget

    @model_validator(mode="after")
    def _counted(self) -> ExternalMetricSource:
        if self.target.type == "Utilization":
            raise ValueError("an External metric's target is AverageValue or Value, not Utilization")
        return self


class MetricSpec(ShoalModel):
    type: Literal["Resource", "External"]
    resource: ResourceMetricSource | None = None
    external: ExternalMetricSource | None = None

    @model_validator(mode="after")
    def _source_given(self) -> MetricSpec:
        field = self.type.lower()
        if getattr(self, field) is None:
            raise ValueError(f"a metric of type {self.type} needs the {field} field")
        other = "external" if field == "resource" else "resource"
        if getattr(self, other) is not None:
            raise ValueError(f"a metric of type {self.type} takes only the {field} field, not {other}")
        return self

    @property
    def label(self) -> str:
        """How tables and events name the metric."""
        if self.resource is not None:
            return self.resource.name
        assert self.external is not None
        return f"pending {self.external.metric.stream}/{self.external.metric.consumer}"

    @property
    def target(self) -> MetricTarget:
        source = self.resource or self.external
        assert source is not None
        return source.target

    def show(self, value: float | None) -> str:
        """A current or target value as ``kubectl get hpa`` shows it."""
        if value is None:
            return "<unknown>"
        if self.target.type == "Utilization":
            return f"{value:.0f}%"
        if self.resource is not None and self.resource.name == "cpu":
            return format_cpu(round(value * 1000))
        if self.resource is not None:
            return human_memory(round(value))
        return f"{value:g}"


class ScalingPolicy(ShoalModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(ShoalModel):
    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] | None = Field(default=None, min_length=1)
    """None takes the defaults; to forbid scaling in a direction, selectPolicy: Disabled."""


DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=[
        ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ScalingPolicy(type="Percent", value=100, period_seconds=15),
    ],
)
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=300,
    select_policy="Max",
    policies=[ScalingPolicy(type="Percent", value=100, period_seconds=15)],
)


def _with_defaults(rules: ScalingRules | None, default: ScalingRules) -> ScalingRules:
    if rules is None:
        return default
    return ScalingRules(
        stabilization_window_seconds=(
            default.stabilization_window_seconds
            if rules.stabilization_window_seconds is None
            else rules.stabilization_window_seconds
        ),
        select_policy=rules.select_policy,
        policies=default.policies if rules.policies is None else rules.policies,
    )


class Behavior(ShoalModel):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    def up(self) -> ScalingRules:
        return _with_defaults(self.scale_up, DEFAULT_SCALE_UP)

    def down(self) -> ScalingRules:
        return _with_defaults(self.scale_down, DEFAULT_SCALE_DOWN)


DEFAULT_METRICS = [
    MetricSpec(
        type="Resource",
        resource=ResourceMetricSource(
            name="cpu", target=MetricTarget(type="Utilization", average_utilization=80)
        ),
    )
]
"""Kubernetes' default when an HPA names no metric: 80% CPU utilization."""


class HPASpec(ShoalModel):
    scale_target_ref: ScaleTargetRef
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(ge=1)
    metrics: list[MetricSpec] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    behavior: Behavior = Field(default_factory=Behavior)

    @model_validator(mode="after")
    def _bounds(self) -> HPASpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not be greater than"
                f" maxReplicas ({self.max_replicas})"
            )
        if self.min_replicas == 0 and not any(m.type == "External" for m in self.metrics):
            raise ValueError(
                "minReplicas 0 needs an External metric: with no pods there is no CPU to measure"
            )
        if not self.metrics:
            self.metrics = list(DEFAULT_METRICS)
        return self


class HorizontalPodAutoscaler(Record):
    api_version: Literal["autoscaling/v2"] = "autoscaling/v2"
    kind: Literal["HorizontalPodAutoscaler"] = "HorizontalPodAutoscaler"
    metadata: ObjectMeta
    spec: HPASpec


# --- status, kept by the autoscaler --------------------------------------------------------


class MetricReading(ShoalModel):
    metric: str
    """The metric's label: ``cpu``, ``memory``, ``pending STREAM/CONSUMER``."""
    current: float | None
    """Utilization percent, average value or value, as the target is typed; None if unknown."""
    target: float
    shown_current: str
    shown_target: str
    replicas: int | None = None
    """What this metric alone asks for (None when it cannot tell)."""


class Decision(ShoalModel):
    at: float
    from_replicas: int
    to_replicas: int
    reason: str
    readings: list[MetricReading] = Field(default_factory=list)


class Recommendation(ShoalModel):
    at: float
    replicas: int


class ScaleChange(ShoalModel):
    at: float
    delta: int
    """Replicas added (positive) or removed (negative) by one decision."""


class HPAStatus(Record):
    namespace: str
    name: str
    uid: str
    current_replicas: int = 0
    desired_replicas: int = 0
    readings: list[MetricReading] = Field(default_factory=list)
    last_scale_time: float | None = None
    message: str = ""
    """Why the last evaluation decided what it did (or could not decide)."""
    recommendations: list[Recommendation] = Field(default_factory=list)
    """Recent recommendations: the stabilization windows look back over them."""
    changes: list[ScaleChange] = Field(default_factory=list)
    """Recent scale changes: the policies' periods look back over them."""
    decisions: list[Decision] = Field(default_factory=list)
    """The latest scaling decisions, newest last."""
