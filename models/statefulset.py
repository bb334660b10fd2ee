"""``apps/v1`` StatefulSet: pods with stable names and their own claims, and its status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shoal.models.base import INT32_MAX, Labels, ObjectMeta, Record, ShoalModel, SubdomainName
from shoal.models.core import ClaimSpec
from shoal.models.workloads import (
    EmptyDirVolume,
    IntOrPercent,
    LabelSelector,
    PodTemplate,
    Volume,
)

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
"""Labels Kubernetes puts on every pod of a StatefulSet (a service may select one pod by name)."""
MADE_BY_STATEFULSET = "shoal.io/statefulset"
"""On a claim a StatefulSet's volumeClaimTemplates made: the StatefulSet's name (apply --prune
leaves such claims, and their data, alone)."""


class RollingUpdateStatefulSet(ShoalModel):
    partition: int = Field(default=0, ge=0)
    """Only ordinals at or above it are updated; those below keep (and are recreated from) the
    template they have."""
    max_unavailable: IntOrPercent | None = None
    """Accepted; pods are updated one at a time."""


class StatefulSetUpdateStrategy(ShoalModel):
    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rolling_update: RollingUpdateStatefulSet | None = None

    @property
    def partition(self) -> int:
        return self.rolling_update.partition if self.type == "RollingUpdate" and self.rolling_update else 0


class ClaimRetentionPolicy(ShoalModel):
    when_deleted: Literal["Retain", "Delete"] = "Retain"
    when_scaled: Literal["Retain", "Delete"] = "Retain"


class ClaimTemplateMeta(ShoalModel):
    name: SubdomainName
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ClaimTemplate(ShoalModel):
    """One of ``volumeClaimTemplates``: each pod gets its own claim ``<name>-<statefulset>-<ordinal>``."""

    metadata: ClaimTemplateMeta
    spec: ClaimSpec = Field(default_factory=ClaimSpec)


class StatefulSetOrdinals(ShoalModel):
    start: int = Field(default=0, ge=0)


class ClaimedTemplate(ShoalModel):
    """A pod template whose containers may mount volume claim templates by name."""

    template: PodTemplate
    volume_claim_templates: list[ClaimTemplate] = Field(default_factory=list)
    claim_placeholders: list[str] = Field(default_factory=list, alias="_claimPlaceholders", exclude=True)
    """Only while validating: the claim templates' names, standing in as volumes meanwhile."""

    @model_validator(mode="before")
    @classmethod
    def _claims_as_volumes(cls, data: Any) -> Any:
        # The template's containers mount the claim templates by name, which are no volumes of
        # the pod spec (each pod gets its own claim as that volume): stand-ins let the pod spec
        # check its mounts, and go again once it has.
        if not isinstance(data, dict):
            return data
        templates = data.get("volumeClaimTemplates", data.get("volume_claim_templates"))
        template = data.get("template")
        if not isinstance(templates, list) or not isinstance(template, dict):
            return data
        spec = template.get("spec")
        if not isinstance(spec, dict):
            return data
        volumes = spec.get("volumes") or []
        if not isinstance(volumes, list):
            return data
        present = {v.get("name") for v in volumes if isinstance(v, dict)}
        wanted = [
            t["metadata"].get("name")
            for t in templates
            if isinstance(t, dict) and isinstance(t.get("metadata"), dict)
        ]
        placeholders = [n for n in wanted if isinstance(n, str) and n and n not in present]
        if not placeholders:
            return data
        spec = {**spec, "volumes": [*volumes, *({"name": n, "emptyDir": {}} for n in placeholders)]}
        return {**data, "template": {**template, "spec": spec}, "_claimPlaceholders": placeholders}

    @model_validator(mode="after")
    def _without_placeholders(self) -> ClaimedTemplate:
        if self.claim_placeholders:
            gone = set(self.claim_placeholders)
            pod_spec = self.template.spec
            pod_spec.volumes = [v for v in pod_spec.volumes if v.name not in gone]
            self.claim_placeholders = []
        return self


class StatefulSetSpec(ClaimedTemplate):
    replicas: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """``None`` only in a manifest that leaves replicas out (1)."""
    selector: LabelSelector
    service_name: str = ""
    """The headless service that gives each pod its DNS name ``<pod>.<service>.<namespace>.svc``."""
    pod_management_policy: Literal["OrderedReady", "Parallel"] = "OrderedReady"
    update_strategy: StatefulSetUpdateStrategy = Field(default_factory=StatefulSetUpdateStrategy)
    persistent_volume_claim_retention_policy: ClaimRetentionPolicy = Field(
        default_factory=ClaimRetentionPolicy
    )
    min_ready_seconds: int = Field(default=0, ge=0)
    revision_history_limit: int = Field(default=10, ge=0)
    """Accepted; the status keeps the one older template a partitioned update needs."""
    ordinals: StatefulSetOrdinals | None = None

    @property
    def desired_replicas(self) -> int:
        return 1 if self.replicas is None else self.replicas

    @property
    def first_ordinal(self) -> int:
        return self.ordinals.start if self.ordinals else 0


class StatefulSet(Record):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["StatefulSet"] = "StatefulSet"
    metadata: ObjectMeta
    spec: StatefulSetSpec


class StatefulSetStatus(Record):
    """The scheduler's count of a StatefulSet's pods (Kubernetes' fields), and the template of
    its current revision (what pods below an update's partition are made from)."""

    namespace: str
    name: str
    uid: str
    observed_generation: int = 0
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    current_replicas: int = 0
    updated_replicas: int = 0
    current_revision: str = ""
    update_revision: str = ""
    current: ClaimedTemplate | None = None
    """The template of ``current_revision`` and its claim templates (Kubernetes keeps them as a
    ControllerRevision): pods below an update's partition are made from it."""


def claim_name(template: str, statefulset: str, ordinal: int) -> str:
    """The claim of one ordinal, named as Kubernetes names it."""
    return f"{template}-{statefulset}-{ordinal}"


def ordinal_of(statefulset: str, pod: str) -> int | None:
    """The ordinal in a pod name ``<statefulset>-<ordinal>``, if it is one."""
    prefix, _, number = pod.rpartition("-")
    if prefix != statefulset or not number.isdigit() or (number != "0" and number.startswith("0")):
        return None
    return int(number)


def with_claim_stand_ins(spec: Any) -> PodTemplate:
    """A workload's template to keep on its own (a revision): a StatefulSet's containers mount
    its claim templates by name, which a pod template alone must have as volumes. The same
    stand-ins ``ClaimedTemplate`` uses while it validates, kept here as emptyDir volumes."""
    template = spec.template
    claims = [t.metadata.name for t in getattr(spec, "volume_claim_templates", [])]
    present = {v.name for v in template.spec.volumes}
    missing = [name for name in claims if name not in present]
    if not missing:
        return template
    volumes = [*template.spec.volumes, *(Volume(name=name, empty_dir=EmptyDirVolume()) for name in missing)]
    return template.model_copy(update={"spec": template.spec.model_copy(update={"volumes": volumes})})


def without_claim_stand_ins(template: PodTemplate, spec: Any) -> PodTemplate:
    """A kept revision's template back as the workload's own: the claims' stand-ins dropped."""
    claims = {t.metadata.name for t in getattr(spec, "volume_claim_templates", [])}
    if not claims:
        return template
    volumes = [v for v in template.spec.volumes if v.name not in claims]
    return template.model_copy(update={"spec": template.spec.model_copy(update={"volumes": volumes})})
