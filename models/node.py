"""Nodes: what a node actor registers about its host, renewed by every heartbeat."""

from __future__ import annotations

from pydantic import Field

from shoal.models.base import Labels, Name, Record
from shoal.models.scheduling import Taint
from shoal.models.workloads import ResourceList


class Node(Record):
    """A node's registration and lease. Written only by that node's actor.

    The node is Ready while its lease holds: a heartbeat at most ``leaseSeconds`` ago.
    """

    name: Name
    labels: Labels = Field(default_factory=dict)
    capacity: ResourceList
    allocatable: ResourceList
    runtime_version: str = ""
    os: str = ""
    architecture: str = ""
    address: str = ""
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    lease_seconds: float = 3.0
    taints: list[Taint] = Field(default_factory=list)
    """Taints the node registered with (``shoal node --taint``)."""
    max_pods: int = 110

    def ready_at(self, now: float) -> bool:
        """Readiness by wall clock, for readers without their own heartbeat timing."""
        return now - self.heartbeat_at <= self.lease_seconds


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
