"""Resource usage samples: what node actors measure and the autoscaler and ``shoal top`` read.

Each node publishes one ``NodeMetrics`` every sampling interval, holding the usage of every
pod it runs. CPU is an average over the last interval, in millicores; memory is the
working set in bytes at the moment of the sample.
"""

from __future__ import annotations

from pydantic import Field

from shoal.models.base import Record, ShoalModel


class ContainerMetrics(ShoalModel):
    name: str
    cpu_millis: int
    memory_bytes: int


class PodMetrics(ShoalModel):
    namespace: str
    name: str
    uid: str = ""
    cpu_millis: int
    memory_bytes: int
    containers: list[ContainerMetrics] = Field(default_factory=list)


class NodeMetrics(Record):
    node: str
    timestamp: float
    """When the sample was taken (seconds since the epoch)."""
    window: float
    """Seconds the CPU figures are averaged over."""
    cpu_millis: int
    """The node's pods together (not the whole host)."""
    memory_bytes: int
    capacity_cpu_millis: int = 0
    capacity_memory_bytes: int = 0
    pods: list[PodMetrics] = Field(default_factory=list)
