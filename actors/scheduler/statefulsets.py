"""A StatefulSet's decisions, pure: which ordinals get a pod, which pods go, how an update rolls.

Kubernetes' StatefulSet controller, one StatefulSet at a time. Pods are ``<name>-<ordinal>``
for the ordinals ``start .. start+replicas-1``; a pod keeps its name, and so its claims and
its DNS name, across every replacement:

- **claims**: each volume claim template gives each ordinal its claim
  ``<template>-<name>-<ordinal>``, created before the ordinal's pod and kept after it (scale
  down, deletion: the ``Retain`` retention policy), so a returning ordinal finds its data;
- **OrderedReady** (the default): ordinals are created one at a time, lowest first, each once
  every lower one is Running and Ready; nothing more happens while a pod is unhealthy. Scale
  down removes the highest ordinal first, one at a time, each once the last is gone.
  **Parallel**: every missing ordinal is created at once, every surplus one removed at once;
- a Failed pod is deleted, and made again under its name once it is gone; a pod on a node
  being drained is taken down (within its disruption budgets) and made again elsewhere, or
  where its claims are;
- **RollingUpdate**: once every ordinal is Running and Ready, the highest ordinal at or above
  the ``partition`` whose template is not the current one is deleted (its replacement comes
  from the new template); one at a time, waiting for each to be Ready. Ordinals below the
  partition keep, and are recreated from, the template they have (``current_template`` of
  the status). **OnDelete**: pods are replaced only when deleted by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from shoal import keys
from shoal.actors.scheduler.prototype import pod_prototype
from shoal.bus.kv import Entry
from shoal.models.base import replace
from shoal.models.core import NamedMeta, PersistentVolumeClaim
from shoal.models.pod import Pod
from shoal.models.statefulset import (
    MADE_BY_STATEFULSET,
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    ClaimedTemplate,
    StatefulSet,
    StatefulSetStatus,
    claim_name,
    ordinal_of,
)
from shoal.models.workloads import ClaimVolume, PodTemplate, Volume


@dataclass(frozen=True)
class StatefulPod:
    entry: Entry[Pod]
    revision: str
    """The template hash the pod was made from."""
    running_ready: bool = False
    available: bool = False
    failed: bool = False
    draining: bool = False
    """On a node being drained: it goes (within its disruption budgets), and is made again elsewhere."""

    @property
    def name(self) -> str:
        return self.entry.value.metadata.name

    @property
    def terminating(self) -> bool:
        return self.entry.value.terminating

    @property
    def healthy(self) -> bool:
        return self.running_ready and not self.terminating


@dataclass
class StatefulDecision:
    status: StatefulSetStatus
    create: list[tuple[int, PodTemplate]] = field(default_factory=list)
    """Ordinals that get a pod now, each with the template to make it from."""
    remove: list[tuple[Entry[Pod], str]] = field(default_factory=list)
    disrupt: list[tuple[Entry[Pod], str]] = field(default_factory=list)
    """Pods to take down by choice (a drain, an update): each within its disruption budgets."""
    claims: list[PersistentVolumeClaim] = field(default_factory=list)
    """Claims to create before the new pods (those missing)."""


def reconcile(
    statefulset: StatefulSet,
    pods: Sequence[StatefulPod],
    claims: Collection[str],
    stored: StatefulSetStatus | None,
    now: float,
) -> StatefulDecision:
    """``claims``: the keys of the claims that exist."""
    meta, spec = statefulset.metadata, statefulset.spec
    update_revision = spec.template.hash()
    current_revision, current_template = _current(statefulset, stored, update_revision)
    status = StatefulSetStatus(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        observed_generation=meta.generation,
        current_revision=current_revision,
        update_revision=update_revision,
        current=_revision(statefulset, current_template),
    )
    decision = StatefulDecision(status)
    first, count = spec.first_ordinal, spec.desired_replicas
    wanted = range(first, first + count)
    by_ordinal: dict[int, StatefulPod] = {}
    condemned: list[StatefulPod] = []
    for pod in pods:
        ordinal = ordinal_of(meta.name, pod.name)
        if ordinal is None or ordinal not in wanted:
            condemned.append(pod)
        else:
            by_ordinal[ordinal] = pod
    ordered = spec.pod_management_policy == "OrderedReady"
    partition = spec.update_strategy.partition

    def template_for(ordinal: int) -> PodTemplate:
        below = spec.update_strategy.type == "RollingUpdate" and ordinal < partition
        return current_template if below else spec.template

    blocked = False
    for ordinal in wanted:
        pod = by_ordinal.get(ordinal)
        if pod is None:
            decision.create.append((ordinal, template_for(ordinal)))
            decision.claims += _missing_claims(statefulset, ordinal, claims)
            if ordered:
                blocked = True
                break
            continue
        if pod.failed and not pod.terminating:
            decision.remove.append((pod.entry, "the pod failed: it is made again under its name"))
            if ordered:
                blocked = True
                break
            continue
        if pod.draining and not pod.terminating:
            node = pod.entry.value.node_name
            decision.disrupt.append((pod.entry, f"node {node} is being drained"))
            if ordered:
                blocked = True
                break
            continue
        if ordered and not pod.healthy:
            blocked = True  # wait for it to be Running and Ready (or gone) before going on
            break
    if not blocked or not ordered:
        _scale_down(decision, condemned, ordered, meta.name)
    settled = (
        not blocked
        and not condemned
        and all(p.healthy for p in by_ordinal.values())
        and len(by_ordinal) == count
    )
    if spec.update_strategy.type == "RollingUpdate" and settled:
        for ordinal in reversed(wanted):
            if ordinal < partition:
                break
            pod = by_ordinal[ordinal]
            if pod.revision != update_revision:
                decision.disrupt.append((pod.entry, "replaced by the new template"))
                break
    _count(status, [*by_ordinal.values(), *condemned], update_revision, current_revision)
    if status.updated_replicas == count and status.replicas == count:
        # Every pod runs the new template: it is the current revision now.
        status.current_revision = update_revision
        status.current = _revision(statefulset, spec.template)
    return decision


def _current(
    statefulset: StatefulSet, stored: StatefulSetStatus | None, update_revision: str
) -> tuple[str, PodTemplate]:
    """The current revision and its template: the stored ones while an update is under way."""
    if stored is not None and stored.uid == statefulset.metadata.uid and stored.current_revision:
        if stored.current_revision == update_revision:
            return update_revision, statefulset.spec.template
        if stored.current is not None:
            return stored.current_revision, stored.current.template
    return update_revision, statefulset.spec.template


def _revision(statefulset: StatefulSet, template: PodTemplate) -> ClaimedTemplate:
    return ClaimedTemplate.model_construct(
        template=template,
        volume_claim_templates=statefulset.spec.volume_claim_templates,
        claim_placeholders=[],
    )


def _scale_down(decision: StatefulDecision, condemned: list[StatefulPod], ordered: bool, name: str) -> None:
    """Surplus ordinals go highest first: one at a time, each after the last is gone (ordered)."""
    if ordered and any(p.terminating for p in condemned):
        return

    def ordinal(pod: StatefulPod) -> int:
        found = ordinal_of(name, pod.name)
        return -1 if found is None else found

    for pod in sorted(condemned, key=ordinal, reverse=True):
        if pod.terminating:
            continue
        decision.remove.append((pod.entry, "scaled down"))
        if ordered:
            return


def _missing_claims(
    statefulset: StatefulSet, ordinal: int, claims: Collection[str]
) -> list[PersistentVolumeClaim]:
    meta, spec = statefulset.metadata, statefulset.spec
    made = []
    for template in spec.volume_claim_templates:
        name = claim_name(template.metadata.name, meta.name, ordinal)
        if keys.object_key(meta.namespace, name) in claims:
            continue
        labels = {**template.metadata.labels, **spec.selector.match_labels}
        made.append(
            PersistentVolumeClaim.model_construct(
                api_version="v1",
                kind="PersistentVolumeClaim",
                metadata=NamedMeta.model_construct(
                    name=name,
                    namespace=meta.namespace,
                    labels=labels,
                    # Marked as made by the StatefulSet: apply --prune never deletes its data.
                    annotations={**template.metadata.annotations, MADE_BY_STATEFULSET: meta.name},
                    uid="",
                    generation=1,
                    creation_timestamp=0.0,
                ),
                spec=template.spec,
            )
        )
    return made


def _count(status: StatefulSetStatus, pods: list[StatefulPod], update: str, current: str) -> None:
    for pod in pods:
        if pod.terminating:
            continue
        status.replicas += 1
        status.ready_replicas += 1 if pod.running_ready else 0
        status.available_replicas += 1 if pod.available else 0
        status.updated_replicas += 1 if pod.revision == update else 0
        status.current_replicas += 1 if pod.revision == current else 0


def pod_maker(
    statefulset: StatefulSet, now: float, priority: int = 0
) -> Callable[[int, PodTemplate, str], Pod]:
    """New pods: ``make(ordinal, template, uid)``, named ``<statefulset>-<ordinal>``, with their
    hostname and subdomain (the service) set and each claim template mounted as its claim."""
    meta, spec = statefulset.metadata, statefulset.spec
    prototypes: dict[str, Pod] = {}

    def prototype(template: PodTemplate) -> Pod:
        revision = template.hash()
        if revision not in prototypes:
            pod_spec = template.spec
            if pod_spec.priority != priority:
                pod_spec = replace(pod_spec, priority=priority)
            prototypes[revision] = pod_prototype(
                namespace=meta.namespace,
                labels={**template.metadata.labels, REVISION_LABEL: revision},
                annotations=template.metadata.annotations,
                owner=("StatefulSet", meta.name, meta.uid),
                template_hash=revision,
                spec=pod_spec,
                now=now,
            )
        return prototypes[revision]

    def make(ordinal: int, template: PodTemplate, uid: str) -> Pod:
        base = prototype(template)
        name = f"{meta.name}-{ordinal}"
        claimed = {
            t.metadata.name: claim_name(t.metadata.name, meta.name, ordinal)
            for t in spec.volume_claim_templates
        }
        volumes = [v for v in base.spec.volumes if v.name not in claimed] + [
            Volume(name=volume, persistent_volume_claim=ClaimVolume(claim_name=claim))
            for volume, claim in claimed.items()
        ]
        pod_spec = replace(
            base.spec,
            hostname=name,
            subdomain=spec.service_name or base.spec.subdomain,
            volumes=volumes,
        )
        labels = {**base.metadata.labels, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)}
        metadata = replace(base.metadata, name=name, uid=uid, labels=labels)
        return replace(base, metadata=metadata, spec=pod_spec)

    return make


def claim_key(claim: PersistentVolumeClaim) -> str:
    return keys.object_key(claim.metadata.namespace, claim.metadata.name)
