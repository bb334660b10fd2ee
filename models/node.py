"""Nodes: what a node actor registers about its host, renewed by every heartbeat."""

from __future__ import annotations

from pydantic import Field

from shoal.models.base import Labels, Name, Record
from shoal.models.scheduling import Taint
from shoal.models.workloads import ResourceList


class Node(Record):
    """A node's registration: what it offers and where it is. Written only by that node's actor,
    when it starts and when any of this changes (its liveness travels as heartbeats)."""

    name: Name
    labels: Labels = Field(default_factory=dict)
    capacity: ResourceList
    allocatable: ResourceList
    runtime_version: str = ""
    os: str = ""
    architecture: str = ""
    address: str = ""
    started_at: float = 0.0
    lease_seconds: float = 3.0
    """How long the node may stay silent before it is NotReady."""
    taints: list[Taint] = Field(default_factory=list)
    """Taints the node registered with (``shoal node --taint``)."""
    max_pods: int = 110


class NodeHeartbeat(Record):
    """``shoal.v1.node.<node>.heartbeat``: the node is alive. The same bytes every time, so a
    judge decodes one only when it differs from the last (a restarted node, another lease)."""

    node: Name
    started_at: float = 0.0
    lease_seconds: float = Field(default=3.0, gt=0)


class NodeCondition(Record):
    """A node's Ready condition as the leading scheduler judges it (Kubernetes' node condition)."""

    node: Name
    ready: bool
    since: float
    """When it last changed, by the judge's wall clock."""
    reason: str = ""
    """``HeartbeatsArriving``, ``NodeStatusUnknown`` (no heartbeat for its lease), ``NodeRegistered``."""
    message: str = ""


class NodeSpec(Record):
    """What operators ask of a node. Written by the API actor, read by the scheduler."""

    name: Name
    unschedulable: bool = False
    """Cordoned: no new pods."""
    draining: bool = False
    """Drained: its pods move to other nodes, each replacement Ready before the original stops."""
    labels: dict[str, str] | None = None
    """Set by ``shoal label node``: replaces the labels the node registered with."""
    taints: list[Taint] | None = None
    """Set by ``shoal taint node``: replaces the taints the node registered with."""


class LeaseRecord(Record):
    """Who leads a replicated actor. The holder renews it; others take it when it lapses."""

    holder: str
    term: int
    renewed_at: float
    ttl: float
