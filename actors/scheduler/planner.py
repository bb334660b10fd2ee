"""The scheduler's decisions: from a ClusterView to the list of commands that converge it.

Pure: no I/O, no clock, no randomness of its own (names and ids come from ``ids``), so
tests feed a view and compare command lists. One round:

1. for each deployment, keep exactly ``replicas`` live pods of the current template:
   create the missing, terminate the surplus and those of an older template;
2. terminate pods whose deployment is gone;
3. place every pod without a node (new or still Pending) on the best node that fits,
   accounting for what this round already placed;
4. record each deployment's status when it changed.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from shoal.actors.scheduler.commands import (
    BindPod,
    Command,
    CreatePod,
    DeleteDeploymentStatus,
    DeletePod,
    MarkUnschedulable,
    TerminatePod,
    WriteDeploymentStatus,
)
from shoal.actors.scheduler.placement import NodeFit, PodNeeds, place
from shoal.actors.scheduler.view import ClusterView
from shoal.bus.kv import Entry
from shoal.models.pod import OwnerRef, Pod, PodMeta, SchedulingState
from shoal.models.workloads import Deployment, DeploymentStatus

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TEMPLATE_HASH_LABEL = "pod-template-hash"


class IdSource(Protocol):
    def suffix(self) -> str: ...
    def uid(self) -> str: ...


class RandomIds:
    """Kubernetes-style 5-character pod name suffixes and random uids."""

    def suffix(self) -> str:
        return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))

    def uid(self) -> str:
        return uuid.uuid4().hex


def new_pod(deployment: Deployment, template_hash: str, ids: IdSource, now: float) -> Pod:
    meta = deployment.metadata
    template = deployment.spec.template
    # 63 characters at most: <name>-<10-char hash>-<5-char suffix>.
    name = f"{meta.name[:46].rstrip('-')}-{template_hash}-{ids.suffix()}"
    return Pod(
        metadata=PodMeta(
            name=name,
            namespace=meta.namespace,
            labels={**template.metadata.labels, TEMPLATE_HASH_LABEL: template_hash},
            annotations=dict(template.metadata.annotations),
            uid=ids.uid(),
            creation_timestamp=now,
            owner=OwnerRef(kind="Deployment", name=meta.name, uid=meta.uid),
            template_hash=template_hash,
        ),
        spec=template.spec,
    )


@dataclass
class _Round:
    view: ClusterView
    now: float
    ids: IdSource
    commands: list[Command]
    fits: dict[str, NodeFit]
    removed: set[str]

    def status_rank(self, entry: Entry[Pod]) -> tuple[int, int, int, int, float]:
        """Order pods by how little we lose removing them (Kubernetes' ActivePods order)."""
        pod = entry.value
        status = self.view.status_of(pod)
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.phase if status else "Pending", 2)
        return (
            1 if pod.node_name else 0,
            phase_rank,
            1 if status is not None and status.ready else 0,
            -(status.restarts if status else 0),
            -pod.metadata.creation_timestamp,
        )

    def remove(self, entry: Entry[Pod], reason: str) -> None:
        self.removed.add(entry.key)
        if entry.value.node_name:
            self.commands.append(TerminatePod(entry.key, entry.revision, entry.value, reason))
        else:
            self.commands.append(DeletePod(entry.key, entry.revision, entry.value, reason))


def _usage(view: ClusterView) -> dict[str, NodeFit]:
    fits = {name: NodeFit.of(node_view) for name, node_view in view.nodes.items()}
    for entry in view.pods.values():
        pod = entry.value
        fit = fits.get(pod.node_name) if pod.node_name else None
        if fit is None:
            continue
        status = view.status_of(pod)
        if status is not None and status.terminal:
            continue  # finished pods hold no resources
        fit.add(*pod.spec.requests())
    return fits


def plan(view: ClusterView, now: float, ids: IdSource) -> list[Command]:
    round_ = _Round(view, now, ids, [], _usage(view), set())
    owned: dict[str, list[Entry[Pod]]] = defaultdict(list)
    for entry in view.pods.values():
        owner = entry.value.metadata.owner
        owned[owner.uid if owner else ""].append(entry)

    to_place: list[tuple[Pod, Entry[Pod] | None]] = []
    live_deployments = set()
    for dep_entry in view.deployments.values():
        deployment = dep_entry.value
        live_deployments.add(deployment.metadata.uid)
        pods = owned.get(deployment.metadata.uid, [])
        template_hash = deployment.spec.template.hash()
        live = [e for e in pods if not e.value.terminating]
        current = [e for e in live if e.value.metadata.template_hash == template_hash]
        for entry in live:
            if entry.value.metadata.template_hash != template_hash:
                round_.remove(entry, "the deployment's pod template changed")
        want = deployment.spec.desired_replicas
        if len(current) > want:
            surplus = sorted(current, key=round_.status_rank)[: len(current) - want]
            for entry in surplus:
                round_.remove(entry, f"deployment scaled to {want}")
        for _ in range(want - len(current)):
            to_place.append((new_pod(deployment, template_hash, ids, now), None))
        status = _deployment_status(view, dep_entry, pods, template_hash)
        if status is not None:
            round_.commands.append(status)

    for uid, pods in owned.items():
        if uid in live_deployments:
            continue
        for entry in pods:
            if not entry.value.terminating:
                round_.remove(entry, "its deployment was deleted")

    for entry in view.pods.values():
        pod = entry.value
        if pod.node_name:
            continue
        if pod.terminating:
            round_.commands.append(
                DeletePod(entry.key, entry.revision, pod, "deleted before it was scheduled")
            )
        elif (
            pod.metadata.owner.uid if pod.metadata.owner else ""
        ) in live_deployments and entry.key not in round_.removed:
            to_place.append((pod, entry))

    for key, entry in view.deployment_status.items():
        if key not in view.deployments:
            round_.commands.append(DeleteDeploymentStatus(key, entry.revision))

    # Pending pods first (oldest first), then the new ones, so nobody waits forever.
    to_place.sort(key=lambda item: (item[1] is None, item[0].metadata.creation_timestamp))
    for pod, entry in to_place:
        _place_one(round_, pod, entry)
    return round_.commands


def _place_one(round_: _Round, pod: Pod, entry: Entry[Pod] | None) -> None:
    cpu, memory = pod.spec.requests()
    placement = place(PodNeeds(cpu, memory), round_.fits.values())
    if placement.node is not None:
        round_.fits[placement.node].add(cpu, memory)
        if entry is None:
            round_.commands.append(CreatePod(pod.model_copy(update={"node_name": placement.node})))
        else:
            bound = pod.model_copy(update={"node_name": placement.node, "scheduling": None})
            round_.commands.append(BindPod(entry.key, entry.revision, bound, placement.node))
        return
    previous = pod.scheduling
    if previous is not None and previous.message == placement.message:
        return  # already says so
    scheduling = SchedulingState(reason=placement.reason, message=placement.message, since=round_.now)
    if entry is None:
        round_.commands.append(CreatePod(pod.model_copy(update={"scheduling": scheduling})))
    else:
        round_.commands.append(
            MarkUnschedulable(
                entry.key, entry.revision, pod.model_copy(update={"scheduling": scheduling}), scheduling
            )
        )


def _deployment_status(
    view: ClusterView, dep_entry: Entry[Deployment], pods: list[Entry[Pod]], template_hash: str
) -> WriteDeploymentStatus | None:
    """The deployment's status, if it differs from what is stored."""
    deployment = dep_entry.value
    live = [e.value for e in pods if not e.value.terminating]
    ready = 0
    for pod in live:
        status = view.status_of(pod)
        if status is not None and status.ready:
            ready += 1
    want = deployment.spec.desired_replicas
    status = DeploymentStatus(
        namespace=deployment.metadata.namespace,
        name=deployment.metadata.name,
        uid=deployment.metadata.uid,
        observed_generation=deployment.metadata.generation,
        replicas=len(live),
        updated_replicas=sum(1 for p in live if p.metadata.template_hash == template_hash),
        ready_replicas=ready,
        available_replicas=ready,
        unavailable_replicas=max(want - ready, 0),
    )
    stored = view.deployment_status.get(dep_entry.key)
    if stored is not None and stored.value == status:
        return None
    return WriteDeploymentStatus(dep_entry.key, stored.revision if stored else None, status)
