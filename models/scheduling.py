"""Where pods may go: selectors, affinity, taints and tolerations, spread, priority.

The Kubernetes fields of the same names, with their semantics. Each matching rule is a
method here, so the scheduler's filters stay small and the rules are tested once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shoal.models.base import Labels, Name, Record, ShoalModel

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]


class SelectorRequirement(ShoalModel):
    key: str = Field(min_length=1)
    operator: Operator
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> SelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        if self.operator in ("Gt", "Lt") and (
            len(self.values) != 1 or not self.values[0].lstrip("-").isdigit()
        ):
            raise ValueError(f"operator {self.operator} needs exactly one integer value")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case "In":
                return value is not None and value in self.values
            case "NotIn":
                return value is None or value not in self.values
            case "Exists":
                return value is not None
            case "DoesNotExist":
                return value is None
            case "Gt":
                return value is not None and value.lstrip("-").isdigit() and int(value) > int(self.values[0])
            case "Lt":
                return value is not None and value.lstrip("-").isdigit() and int(value) < int(self.values[0])
        return False


class NodeSelectorTerm(ShoalModel):
    match_expressions: list[SelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.match_expressions)


class NodeSelector(ShoalModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1)

    def matches(self, labels: dict[str, str]) -> bool:
        """Terms are ORed, expressions within a term ANDed."""
        return any(term.matches(labels) for term in self.node_selector_terms)


class PreferredSchedulingTerm(ShoalModel):
    weight: int = Field(ge=1, le=100)
    preference: NodeSelectorTerm


class NodeAffinity(ShoalModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list
    )


class PodSelector(ShoalModel):
    """A label selector over pods: matchLabels and matchExpressions, both must hold."""

    match_labels: Labels = Field(default_factory=dict)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )


class PodAffinityTerm(ShoalModel):
    label_selector: PodSelector
    topology_key: str = Field(min_length=1)
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces of the pods to consider; empty means the pod's own."""


class WeightedPodAffinityTerm(ShoalModel):
    weight: int = Field(ge=1, le=100)
    pod_affinity_term: PodAffinityTerm


class PodAntiAffinity(ShoalModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(default_factory=list)
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list
    )


class Affinity(ShoalModel):
    node_affinity: NodeAffinity | None = None
    pod_anti_affinity: PodAntiAffinity | None = None


TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(ShoalModel):
    key: str = Field(min_length=1)
    value: str = ""
    effect: TaintEffect
    time_added: float | None = None
    """When a NoExecute taint appeared: tolerationSeconds count from here."""

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


class Toleration(ShoalModel):
    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = ""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod may stay after the taint appears (None: forever)."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        return self

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:
            return True  # Exists with no key tolerates every taint
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


class TopologySpreadConstraint(ShoalModel):
    max_skew: int = Field(ge=1)
    topology_key: str = Field(min_length=1)
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: PodSelector


class ClusterObjectMeta(ShoalModel):
    """Identity of a cluster-scoped object."""

    name: Name
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    creation_timestamp: float = 0.0


class PriorityClass(Record):
    """``scheduling.k8s.io/v1`` PriorityClass: how much a pod matters when room runs out."""

    api_version: Literal["scheduling.k8s.io/v1"] = "scheduling.k8s.io/v1"
    kind: Literal["PriorityClass"] = "PriorityClass"
    metadata: ClusterObjectMeta
    value: int = Field(ge=-2147483648, le=1_000_000_000)
    global_default: bool = False
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"
    description: str = ""
